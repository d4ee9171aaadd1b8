"""Redaction of secret-looking values from kubectl output before it is returned or logged.

What is replaced by `[REDACTED]`:
- the values under `data:` / `stringData:` of a `kind: Secret` object, in YAML (documents, and items
  of a `kind: List`) and in JSON (`-o json`), whatever the order of `data` and `kind`;
- the value of a credential-looking key anywhere (`token`, `password`, `*-token`, `*_password`,
  `*-secret`, `client-key-data`, `client-certificate-data`, `certificate-authority-data`,
  `secret_access_key`, `api_key`, ...), as `key: value` (YAML, describe output), `"key": "value"`
  (JSON) or `key=value` (env dumps, URLs, log lines);
- `Authorization: Bearer ...` headers and `Bearer <token>` (a token with a digit or punctuation,
  so prose such as "bearer token required" stays);
- JWT-looking strings (`eyJ...`.`eyJ...`.`...`), AWS access key ids (`AKIA...`/`ASIA...`) and PEM
  private key blocks.

Deliberately not redacted: a ConfigMap's `data:` (configuration, not secrets; only a key named like
a credential inside it is), and ordinary log lines. A value split by output truncation may
survive in JSON form; the policy refuses reading secret contents anyway (CONTRACT §5).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

REDACTED = "[REDACTED]"

# Credential-looking key names. Separators are `-`/`_` only, so camelCase fields such as
# `automountServiceAccountToken` or `secretName` are not mistaken for credentials.
_KEY = (
    r"(?:client-key-data|client-certificate-data|certificate-authority-data"
    r"|(?:[a-z0-9]+[-_])*(?:token|password|passwd|api[-_]?key|secret[-_]access[-_]key)"
    r"|(?:[a-z0-9]+[-_])+secret"
    r"|(?:bearer|access|refresh|id|auth)token|clientsecret|secretaccesskey)"
)

_JSON_KV = re.compile(rf'(?i)("{_KEY}"\s*:\s*")((?:[^"\\]|\\.)+)(")')
# `key: value` to the end of the line; the value may be a block scalar indicator (`|`, `>-`).
_COLON_KV = re.compile(rf"(?im)(?<![\w.])({_KEY})([ \t]*:[ \t]+)(\S.*?)[ \t]*$")
_EQUALS_KV = re.compile(rf"(?i)(?<![\w.])({_KEY})(=)([^\s&\"',;]+)")
_BLOCK_INDICATOR = re.compile(r"^[|>][-+0-9]*$")

_AUTH_HEADER = re.compile(r"(?im)(authorization[ \t]*[:=][ \t]*bearer[ \t]+)\S+")
_BEARER = re.compile(r"(?i)(\bbearer[ \t]+)(?=[\w.~+/-]*[\d.~+/-])[\w.~+/-]{8,}=*")
_JWT = re.compile(r"\beyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]*")
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
_PEM_PRIVATE = re.compile(
    r"-----BEGIN ([A-Z ]*PRIVATE KEY)-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S
)

_SECRET_DATA_KEYS = ("data", "stringData")


def redact(text: str) -> str:
    """Return `text` with secret-looking values replaced by `[REDACTED]` (see the module doc)."""
    if not text:
        return text
    if "Secret" in text:
        text = _redact_yaml_secret_data(text)
        if '"Secret"' in text:
            text = _redact_json_secret_data(text)
    text = _PEM_PRIVATE.sub(lambda m: f"-----BEGIN {m.group(1)}-----{REDACTED}", text)
    text = _JSON_KV.sub(rf"\g<1>{REDACTED}\g<3>", text)
    text = _redact_colon_values(text)
    text = _EQUALS_KV.sub(rf"\g<1>\g<2>{REDACTED}", text)
    text = _AUTH_HEADER.sub(rf"\g<1>{REDACTED}", text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    text = _AWS_KEY_ID.sub(REDACTED, text)
    return text


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _redact_colon_values(text: str) -> str:
    """`key: value` lines; a block scalar (`password: |`) loses its continuation lines too."""
    if not _COLON_KV.search(text):
        return text
    out: list[str] = []
    skip_deeper_than: int | None = None
    for line in text.splitlines(keepends=True):
        if skip_deeper_than is not None:
            if line.strip() and _indent(line) > skip_deeper_than:
                continue
            skip_deeper_than = None
        match = _COLON_KV.search(line)
        if match and match.group(3) != REDACTED:
            if _BLOCK_INDICATOR.match(match.group(3)):
                skip_deeper_than = _indent(line)
            end = "\n" if line.endswith("\n") else ""
            line = line[: match.start(3)] + REDACTED + end
        out.append(line)
    return "".join(out)


# --- YAML Secret manifests -------------------------------------------------------------------

_YAML_KEY_LINE = re.compile(
    r"^( *)(- +)?([A-Za-z0-9_.\-/]+|\"[^\"]*\"|'[^']*'):(?:[ \t]+(.*?))?[ \t]*$"
)


@dataclass
class _KeyLine:
    index: int
    column: int  # column of the key itself (after any `- `)
    key: str
    value: str
    item_start: bool
    colon: int  # offset of the `:` after the key


def _parse_key_line(index: int, line: str) -> _KeyLine | None:
    match = _YAML_KEY_LINE.match(line.rstrip("\r\n"))
    if not match:
        return None
    indent, dash, key, value = match.groups()
    column = len(indent) + (len(dash) if dash else 0)
    return _KeyLine(
        index, column, key.strip("\"'"), (value or "").strip(), bool(dash), match.end(3)
    )


def _is_doc_separator(line: str) -> bool:
    return line.rstrip() in ("---", "...")


def _sibling_keys(lines: list[str], keys: dict[int, _KeyLine], at: _KeyLine) -> list[_KeyLine]:
    """The keys of the mapping `at` belongs to (same column, same list item, same document)."""
    siblings = [at]

    def scan(indexes: range, backwards: bool) -> None:
        for i in indexes:
            line = lines[i]
            if _is_doc_separator(line):
                return
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            kl = keys.get(i)
            if kl and kl.column == at.column:
                if kl.item_start and not backwards:
                    return  # the next item of the same list
                siblings.append(kl)
                if kl.item_start:
                    return  # the first key of this list item
            elif _indent(line) < at.column:
                return  # the parent mapping

    if not at.item_start:
        scan(range(at.index - 1, -1, -1), backwards=True)
    scan(range(at.index + 1, len(lines)), backwards=False)
    return siblings


def _redact_yaml_secret_data(text: str) -> str:
    lines = text.splitlines(keepends=True)
    keys = {i: kl for i, line in enumerate(lines) if (kl := _parse_key_line(i, line))}
    drop: set[int] = set()
    replace: dict[int, str] = {}
    for kl in keys.values():
        if kl.key not in _SECRET_DATA_KEYS:
            continue
        siblings = _sibling_keys(lines, keys, kl)
        if not any(s.key == "kind" and s.value.strip("\"'") == "Secret" for s in siblings):
            continue
        if kl.value and kl.value != "{}":
            replace[kl.index] = REDACTED  # inline flow mapping: `data: {password: aGk=}`
            continue
        child_column: int | None = None
        for i in range(kl.index + 1, len(lines)):
            line = lines[i]
            if _is_doc_separator(line):
                break
            if not line.strip():
                continue
            child = keys.get(i)
            if _indent(line) <= kl.column:
                break
            if child_column is None and child:
                child_column = child.column
            if child and child.column == child_column:
                if child.value:
                    replace[i] = REDACTED
            else:
                drop.add(i)  # a block scalar's continuation under a data key
    if not replace and not drop:
        return text
    out: list[str] = []
    for i, line in enumerate(lines):
        if i in drop:
            continue
        if i in replace:
            end = "\n" if line.endswith("\n") else ""
            line = f"{line[: keys[i].colon + 1]} {REDACTED}{end}"
        out.append(line)
    return "".join(out)


# --- JSON Secret manifests -------------------------------------------------------------------


@dataclass
class _Frame:
    start: int
    is_object: bool
    key_in_parent: str | None
    parent: _Frame | None
    key: str | None = None  # the key whose value is being read in this object
    is_secret: bool = False
    data_spans: list[tuple[int, int]] = field(default_factory=list)


_JSON_STRING_VALUE = re.compile(r'("(?:[^"\\]|\\.)*"\s*:\s*)"(?:[^"\\]|\\.)*"')


def _string_end(text: str, start: int) -> int:
    """Index just past the JSON string opening at `start` (or the end of a cut-off text)."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        i += 1
    return len(text)


def _redact_json_secret_data(text: str) -> str:
    """Find `data`/`stringData` objects whose enclosing object has `"kind": "Secret"`.

    A small string-aware scanner rather than `json.loads`, so that truncated output and kubectl's
    own formatting survive unchanged apart from the redacted values.
    """
    spans: list[tuple[int, int]] = []
    stack: list[_Frame] = []

    def close(frame: _Frame, end: int) -> None:
        if frame.is_secret:
            spans.extend(frame.data_spans)
        parent = frame.parent
        if frame.is_object and parent is not None and frame.key_in_parent in _SECRET_DATA_KEYS:
            parent.data_spans.append((frame.start, end))

    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            end = _string_end(text, i)
            value = text[i + 1 : end - 1]
            j = end
            while j < n and text[j] in " \t\r\n":
                j += 1
            top = stack[-1] if stack else None
            if top is not None and top.is_object and j < n and text[j] == ":" and top.key is None:
                top.key = value
                i = j + 1
                continue
            if top is not None and top.is_object:
                if top.key == "kind" and value == "Secret":
                    top.is_secret = True
                top.key = None
            i = end
            continue
        if ch in "{[":
            parent = stack[-1] if stack else None
            key = parent.key if parent is not None and parent.is_object else None
            if parent is not None and parent.is_object:
                parent.key = None
            stack.append(_Frame(i, ch == "{", key, parent))
        elif ch in "}]":
            if stack:
                close(stack.pop(), i)
        elif ch == "," and stack and stack[-1].is_object:
            stack[-1].key = None  # a non-string value ended
        i += 1
    while stack:  # truncated output: close what is still open
        close(stack.pop(), n)

    for start, end in sorted(spans, reverse=True):
        inner = _JSON_STRING_VALUE.sub(rf'\g<1>"{REDACTED}"', text[start:end])
        text = text[:start] + inner + text[end:]
    return text
