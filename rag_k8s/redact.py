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

# Credential-looking key names, compared in lower case after stripping leading dashes (`--token`).
# Separators are `-`/`_` only, so camelCase fields such as `automountServiceAccountToken` or
# `secretName` are not mistaken for credentials.
_CREDENTIAL_KEYS = frozenset({
    "client-key-data", "client-certificate-data", "certificate-authority-data",
    "bearertoken", "accesstoken", "refreshtoken", "idtoken", "authtoken", "clientsecret",
    "secretaccesskey",
})
_CREDENTIAL_SUFFIXES = ("token", "password", "passwd", "apikey", "api-key", "api_key",
                        "secret-access-key", "secret_access_key")
_MAX_KEY_LENGTH = 100


def is_credential_key(key: str) -> bool:
    """True for a key whose value is a credential (`token`, `db_password`, `client-secret`...)."""
    k = key.lstrip("-").lower()
    if not k or len(k) > _MAX_KEY_LENGTH:
        return False
    if k in _CREDENTIAL_KEYS:
        return True
    for suffix in _CREDENTIAL_SUFFIXES:
        if k == suffix or (k.endswith(suffix) and k[-len(suffix) - 1] in "-_"):
            return True
    return k.endswith(("-secret", "_secret")) and len(k) > len("-secret")


# Every pattern matches a whole word first and checks it in code: a key pattern with nested
# repetition here was quadratic on long dashed words, and output is untrusted.
_JSON_KV = re.compile(r'"([\w.-]+)"(\s*:\s*")((?:[^"\\]|\\.)+)(")')
_COLON_KEY = re.compile(r"(?<![\w.-])([\w-]+)[ \t]*:[ \t]+(?=\S)")
_EQUALS_KV = re.compile(r"(?<![\w.-])([\w-]+)=([^\s&\"',;]+)")
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
        # JSON first: the YAML pass leaves a multi-line JSON object to it (see _opens_json).
        json_done = '"Secret"' in text
        if json_done:
            text = _redact_json_secret_data(text)
        text = _redact_yaml_secret_data(text, json_done=json_done)
    text = _PEM_PRIVATE.sub(lambda m: f"-----BEGIN {m.group(1)}-----{REDACTED}", text)
    text = _JSON_KV.sub(
        lambda m: f'"{m[1]}"{m[2]}{REDACTED}"' if is_credential_key(m[1]) else m[0], text
    )
    text = _redact_colon_values(text)
    text = _EQUALS_KV.sub(
        lambda m: f"{m[1]}={REDACTED}" if is_credential_key(m[1]) else m[0], text
    )
    text = _AUTH_HEADER.sub(rf"\g<1>{REDACTED}", text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    text = _AWS_KEY_ID.sub(REDACTED, text)
    return text


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _credential_value_start(line: str) -> int | None:
    """Where the value of the line's first `key: value` with a credential key starts, if any."""
    for match in _COLON_KEY.finditer(line):
        if is_credential_key(match[1]):
            return match.end()
    return None


def _redact_colon_values(text: str) -> str:
    """`key: value` lines; a block scalar (`password: |`) loses its continuation lines too."""
    out: list[str] = []
    skip_deeper_than: int | None = None
    for line in text.splitlines(keepends=True):
        if skip_deeper_than is not None:
            if line.strip() and _indent(line) > skip_deeper_than:
                continue
            skip_deeper_than = None
        if ":" not in line:
            out.append(line)
            continue
        start = _credential_value_start(line)
        value = line[start:].rstrip() if start is not None else ""
        if start is not None and value != REDACTED:
            if _BLOCK_INDICATOR.match(value):
                skip_deeper_than = _indent(line)
            end = "\n" if line.endswith("\n") else ""
            line = line[:start] + REDACTED + end
        out.append(line)
    return "".join(out)


# --- YAML Secret manifests -------------------------------------------------------------------

_YAML_KEY_LINE = re.compile(
    r"( *)(- +)?([A-Za-z0-9_.\-/]+|\"[^\"]*\"|'[^']*'):(?:[ \t]+(.*))?"
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
    match = _YAML_KEY_LINE.fullmatch(line.rstrip("\r\n"))
    if not match:
        return None
    indent, dash, key, value = match.groups()
    column = len(indent) + (len(dash) if dash else 0)
    return _KeyLine(
        index, column, key.strip("\"'"), (value or "").strip(), bool(dash), match.end(3)
    )


def _is_doc_separator(line: str) -> bool:
    return line.rstrip() in ("---", "...")


def _mapping_blocks(lines: list[str], keys: dict[int, _KeyLine]) -> dict[int, int]:
    """Line index of each key -> id of the mapping it belongs to, in one pass over the lines.

    A mapping is the run of keys at one column within one parent, one list item and one document;
    `data` comes before `kind` in kubectl's output, so the whole mapping is needed.
    """
    block_of: dict[int, int] = {}
    open_blocks: list[tuple[int, int]] = []  # (column, block id), innermost last
    next_id = 0
    for i, line in enumerate(lines):
        if _is_doc_separator(line):
            open_blocks.clear()
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        kl = keys.get(i)
        column = kl.column if kl else _indent(line)
        while open_blocks and open_blocks[-1][0] > column:
            open_blocks.pop()
        if kl is None:
            continue
        if kl.item_start and open_blocks and open_blocks[-1][0] == column:
            open_blocks.pop()  # the next item of a list starts a new mapping
        if not open_blocks or open_blocks[-1][0] != column:
            open_blocks.append((column, next_id))
            next_id += 1
        block_of[i] = open_blocks[-1][1]
    return block_of


def _unclosed_flow(value: str) -> bool:
    """`{` or `[` opening a flow collection that goes on past this line."""
    v = value.strip()
    return v[:1] in ("{", "[") and v[-1:] not in ("}", "]")


def _opens_json(lines: list[str], kl: _KeyLine) -> bool:
    """A key whose value opens an object continued on the next lines with quoted keys (JSON)."""
    if not _unclosed_flow(kl.value):
        return False
    for line in lines[kl.index + 1:]:
        if line.strip():
            return line.strip().startswith('"')
    return False


def _redact_yaml_secret_data(text: str, *, json_done: bool = False) -> str:
    lines = text.splitlines(keepends=True)
    keys = {i: kl for i, line in enumerate(lines) if (kl := _parse_key_line(i, line))}
    block_of = _mapping_blocks(lines, keys)
    secret_blocks = {
        block_of[i] for i, kl in keys.items()
        if kl.key == "kind" and kl.value.strip("\"'") == "Secret"
    }
    drop: set[int] = set()
    replace: set[int] = set()
    for kl in keys.values():
        if kl.key not in _SECRET_DATA_KEYS or block_of[kl.index] not in secret_blocks:
            continue
        if json_done and _opens_json(lines, kl):
            continue  # `"data": {` with quoted keys below: the JSON pass redacted it
        if kl.value and kl.value != "{}" and not _unclosed_flow(kl.value):
            replace.add(kl.index)  # inline flow mapping: `data: {password: aGk=}`
            continue
        child_column: int | None = None
        for i in range(kl.index + 1, len(lines)):
            line = lines[i]
            if _is_doc_separator(line):
                break
            if not line.strip():
                continue
            if _indent(line) <= kl.column:
                break
            child = keys.get(i)
            if child_column is None and child:
                child_column = child.column
            if child and child.column == child_column:
                if child.value:
                    replace.add(i)
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
