"""JSON safety at the doors: a payload is checked once, before planning, so no door can raise.

Python values and parsed JSON can hold what JSON text cannot carry or what breaks code further on:
lone surrogates (`"\\ud800"`, not encodable as UTF-8), non-string dict keys, NaN/Infinity, values
nested thousands deep (RecursionError), integers too large to print (Python refuses to turn an
int of over 4,300 digits into text), and non-JSON types (sets, bytes, objects). `check` refuses
each with `InvalidRequest` naming the field; `loads` parses JSON text under the same rules;
`sanitize` turns anything into a JSON-safe copy for the audit log of a request that was refused.

Every walk here is iterative or bounded by MAX_DEPTH, so no input can exhaust the stack.
"""

from __future__ import annotations

import json
import math
from typing import Any

from .errors import InvalidRequest

MAX_DEPTH = 32  # objects and arrays nested deeper than this are refused (a request needs 3)
MAX_INT = 2**63  # larger integers are refused: no request field takes one, and they print slowly
MAX_NODES = 100_000  # values in one payload; the HTTP body limit (64 KiB) holds far fewer

_SCALARS = (str, int, float, bool, type(None))


def _path(parts: list[str]) -> str:
    return ".".join(parts) or "request"


def _surrogate(text: str) -> str | None:
    """The first lone surrogate in `text`, as `\\udXXX`, or None."""
    for ch in text:
        if "\ud800" <= ch <= "\udfff":
            return f"\\u{ord(ch):04x}"
    return None


def _key_name(key: Any) -> str:
    """A dict key as shown in a field path (never raises, never carries a surrogate)."""
    if isinstance(key, str):
        return key.encode("utf-8", "backslashreplace").decode("utf-8")[:100]
    return repr(key)[:100]


def check(payload: Any) -> None:
    """Raise InvalidRequest naming the first field that is not plain, safe JSON.

    Refused: lone surrogates in strings or keys, non-string keys, NaN/Infinity, integers beyond
    +-2**63, nesting deeper than MAX_DEPTH, more than MAX_NODES values, and non-JSON types.
    """
    stack: list[tuple[Any, list[str], int]] = [(payload, [], 0)]
    nodes = 0
    while stack:
        value, parts, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise InvalidRequest("request", f"has more than {MAX_NODES} values")
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, str):
            bad = _surrogate(value)
            if bad is not None:
                raise InvalidRequest(_path(parts), f"contains a lone surrogate ({bad}), which is "
                                                   "not valid Unicode text")
            continue
        if isinstance(value, int):
            if not -MAX_INT <= value <= MAX_INT:
                raise InvalidRequest(_path(parts), "is a number too large for any request field")
            continue
        if isinstance(value, float):
            if not math.isfinite(value):
                raise InvalidRequest(_path(parts), f"is not a finite number ({value!r})")
            continue
        if isinstance(value, (dict, list)):
            if depth >= MAX_DEPTH:
                raise InvalidRequest(_path(parts[:3]) + ("..." if len(parts) > 3 else ""),
                                     f"is nested more than {MAX_DEPTH} levels deep")
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        raise InvalidRequest(_path(parts), f"has a non-string key {_key_name(key)} "
                                                           "(JSON object keys are strings)")
                    bad = _surrogate(key)
                    if bad is not None:
                        raise InvalidRequest(_path([*parts, _key_name(key)]),
                                             f"the key contains a lone surrogate ({bad})")
                    stack.append((item, [*parts, key], depth + 1))
            else:
                for i, item in enumerate(value):
                    stack.append((item, [*parts, str(i)], depth + 1))
            continue
        raise InvalidRequest(_path(parts), f"is a {type(value).__name__}, not a JSON value")


def _reject_constant(name: str) -> Any:
    raise InvalidRequest("body", f"is not valid JSON: {name} is not a JSON number")


def _max_depth_of(text: str) -> int:
    """The deepest `[`/`{` nesting of a JSON text, strings skipped (linear, no recursion)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse(raw: str | bytes, *, field: str = "body") -> Any:
    """Parse JSON text strictly: UTF-8, no NaN/Infinity literals, at most MAX_DEPTH deep.

    Raises InvalidRequest(`field`, ...) for text that is not such JSON. The values themselves
    (surrogates from `\\ud800` escapes, say) are left to `check`, which `parse_request` runs.
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InvalidRequest(field, f"is not valid UTF-8: {e.reason} at byte {e.start}") from None
    else:
        text = raw
    if _max_depth_of(text) > MAX_DEPTH:
        raise InvalidRequest(field, f"is nested more than {MAX_DEPTH} levels deep")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except InvalidRequest as e:
        raise InvalidRequest(field, e.problem) from None
    except (json.JSONDecodeError, RecursionError) as e:
        raise InvalidRequest(field, f"is not valid JSON: {e}") from None
    except ValueError as e:  # an integer literal of over 4,300 digits
        raise InvalidRequest(field, f"is not valid JSON here: {e}") from None


def loads(raw: str | bytes, *, field: str = "body") -> Any:
    """`parse`, then `check` the value (InvalidRequest naming the request field at fault)."""
    value = parse(raw, field=field)
    check(value)
    return value


def sanitize(value: Any, *, max_depth: int = MAX_DEPTH) -> Any:
    """A JSON-safe copy of any value, for logging what was refused; never raises.

    Lone surrogates become the text `\\udXXX`, non-string keys their repr, NaN/Infinity and huge integers
    strings, non-JSON types their repr (cut to 200 characters), and anything below `max_depth`
    the string "[nested too deep]".
    """
    return _sanitize(value, max_depth)


def _clean_text(text: str) -> str:
    if _surrogate(text) is None:
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")  # "\ud800" -> "\\ud800"


def _sanitize(value: Any, depth: int) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, int):
        if -MAX_INT <= value <= MAX_INT:
            return int(value)
        return f"[integer of {value.bit_length()} bits]"
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else repr(value)
    if isinstance(value, (dict, list, tuple)):
        if depth <= 0:
            return "[nested too deep]"
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in list(value.items())[:MAX_NODES]:
                name = _clean_text(key) if isinstance(key, str) else _clean_text(repr(key)[:200])
                out[name] = _sanitize(item, depth - 1)
            return out
        return [_sanitize(item, depth - 1) for item in list(value)[:MAX_NODES]]
    try:
        return _clean_text(repr(value)[:200])
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not stop the audit line
        return f"[unprintable {type(value).__name__}]"


def dumps_strict(value: Any) -> str:
    """JSON text of an already JSON-safe value; raises ValueError on NaN, like the log's writer."""
    return json.dumps(value, allow_nan=False, ensure_ascii=False)
