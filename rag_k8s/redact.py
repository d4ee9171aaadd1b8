"""Redaction: the one module that hides secret-looking values, in everything rag-k8s returns or logs.

Used for kubectl output (execute.py), the k8sgpt answer (server.py), the audit line's command,
argv, request (the query too) and reasons (audit.py), and error text. It errs on the side of
redacting: a false positive costs a `[REDACTED]` in a log, a false negative a leaked credential.

What is replaced by `[REDACTED]`:
- the values under `data:` / `stringData:` of a `kind: Secret` object, in YAML (documents, items
  of a `kind: List`, a `kind: Secret  # comment`) and in JSON (`-o json`), in any order;
- the value of a credential-looking key anywhere (`token`, `password`, `secret`, `PGPASSWORD`,
  `*_token`, `*Password`, `*-secret`, `secret_key`, `api_key`, `private_key`, `passphrase`,
  `client-key-data`, ...; see `is_credential_key`), as `key: value` (YAML, describe output),
  `"key": "value"` or `"key": 123` (JSON, escaped keys such as `"\\u0070assword"` included),
  `key=value` / `key="quoted value"` (env dumps, URLs, log lines), `--key value` (flags), and the
  `value:` of an env entry whose `name:` is such a key (`- name: DB_PASSWORD` / `value: x`);
- `Authorization:` / `Proxy-Authorization:` header values of any scheme (Bearer, Basic, ...),
  `Bearer <token>` (a token with a digit or punctuation, so prose such as "bearer token
  required" stays), and `-u user:password` / `--user user:password`;
- the password of a URL's `user:password@`;
- JWT-looking strings (`eyJ...`.`eyJ...`.`...`), AWS access key ids (`AKIA...`/`ASIA...`),
  GitHub, GitLab, Slack and Google API tokens by their prefixes, every PEM block (`-----BEGIN
  ...-----` to its END; certificates too) and base64-encoded PEM (`LS0tLS1CRUdJTi...`).

Deliberately not redacted: a ConfigMap's `data:` (configuration, not secrets; only a key named like
a credential inside it is), `true`/`false`/`null` values (`automountServiceAccountToken: false`),
names of secrets (`secretName: db`), and ordinary log lines. A value split by output truncation
may survive in JSON form; the policy refuses reading secret contents anyway (CONTRACT §5).
`redact_data` applies all this to every string of a JSON-like value, and hides the whole value of
a credential-looking key.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

REDACTED = "[REDACTED]"

# Credential-looking key names, compared in lower case after stripping leading dashes (`--token`)
# and splitting into words at `-`, `_`, `.` and camelCase humps.
_CREDENTIAL_KEYS = frozenset({
    "client-key-data", "client-certificate-data", "certificate-authority-data",
    "bearertoken", "accesstoken", "refreshtoken", "idtoken", "authtoken", "clientsecret",
    "secretaccesskey", "secret", "passphrase", "credentials", "credential", "apikey",
    "privatekey", "secretkey", "cookie", "set-cookie",
})
# The key's last word alone makes it a credential (`db_password`, `refreshToken`, `API_SECRET`).
_CREDENTIAL_LAST_WORDS = frozenset({
    "token", "password", "passwd", "secret", "passphrase", "credentials", "credential",
    "apikey", "pass", "pwd", "cookie",
})
# ... or its last two words (`secret_key`, `api-key`, `private_key`, `aws_secret_access_key`).
_CREDENTIAL_LAST_PAIRS = frozenset({
    ("api", "key"), ("secret", "key"), ("private", "key"), ("access", "key"), ("signing", "key"),
    ("encryption", "key"), ("master", "key"), ("ssh", "key"), ("client", "key"),
    ("auth", "key"), ("session", "key"), ("webhook", "secret"), ("key", "data"),
})
# Strong words that give a credential even glued to another word (`PGPASSWORD`, `mysqlpasswd`).
_GLUED_SUFFIXES = ("password", "passwd", "passphrase")
# Single words that are not credentials although they end like one (`PWD` is the working folder).
_NOT_CREDENTIALS = frozenset({"pwd", "oldpwd", "pass", "bypass", "key-data"})
_MAX_KEY_LENGTH = 100
_WORD_SPLIT = re.compile(r"[-_.\s]+|(?<=[a-z0-9])(?=[A-Z])")


def _words(key: str) -> list[str]:
    return [w.lower() for w in _WORD_SPLIT.split(key) if w]


def is_credential_key(key: str) -> bool:
    """True for a key whose value is a credential (`token`, `db_password`, `client-secret`...)."""
    stripped = key.lstrip("-")
    k = stripped.lower()
    if not k or len(k) > _MAX_KEY_LENGTH:
        return False
    if k in _NOT_CREDENTIALS:
        return False
    if k in _CREDENTIAL_KEYS or k.endswith(_GLUED_SUFFIXES):
        return True
    words = _words(stripped)
    if not words:
        return False
    if words[-1] in _CREDENTIAL_LAST_WORDS:
        return True
    if len(words) >= 2 and (words[-2], words[-1]) in _CREDENTIAL_LAST_PAIRS:
        return True
    return "".join(words[-3:]) in ("secretaccesskey", "clientkeydata")


# Values that hold no secret whatever their key: `automountServiceAccountToken: false`.
_HARMLESS_VALUES = frozenset({"true", "false", "null", "~", '""', "''", "[]", "{}", REDACTED,
                              f'"{REDACTED}"'})


def _harmless(value: str) -> bool:
    return value.strip().rstrip(",").strip().lower() in _HARMLESS_VALUES or \
        value.strip() == REDACTED


# Every pattern matches a whole word first and checks it in code, with bounded repetition where
# a match could restart at each character: kubectl output is untrusted (pod logs).
_JSON_KEY = r'"((?:[^"\\\n]|\\.){1,100})"'
_JSON_KV = re.compile(_JSON_KEY + r'(\s*:\s*")((?:[^"\\]|\\.)+)(")')
_JSON_KV_NUMBER = re.compile(_JSON_KEY + r"(\s*:\s*)(-?\d[\d.eE+-]{0,60})(?![\w.])")
_COLON_KEY = re.compile(
    r"""(?<![\w.-])("(?:[^"\\\n]|\\.){1,100}"|'[^'\n]{1,100}'|[\w-]+)[ \t]*:[ \t]+(?=\S)"""
)
_EQUALS_KEY = re.compile(r"(?<![\w.-])([\w.-]{1,200})(?:=|[ \t]+=[ \t]+)(?!=)")
_EQUALS_VALUE = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'[^\'\n]*\'|[^\s&"\',;]+')
_FLAG_VALUE = re.compile(
    r"""(?<![\w-])(--?[A-Za-z][\w-]{0,100})([ \t]+)(?!-)("[^"\n]*"|'[^'\n]*'|[^\s'"]+)"""
)
_USER_FLAG = re.compile(r"""(?<![\w-])(-u|--user)([ \t]+|=)([^\s:'"]{1,256}):([^\s'"]+)""")
_URL_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,15}://)([^/\s:@]{0,256}):([^/\s@]{1,256})@")
_BLOCK_INDICATOR = re.compile(r"^[|>][-+0-9]*$")
_LITERAL = re.compile(r"(?:true|false|null|~)(?=[\s,}\]]|$)", re.I)
_ENV_NAME = re.compile(r"""^( *)(- +)?name:[ \t]+["']?([\w.-]{1,100})["']?[ \t]*$""")
_ENV_VALUE = re.compile(r"^( *)(- +)?value:[ \t]+(?=\S)")
_JSON_ENV = re.compile(
    r'("name"\s*:\s*"([\w.-]{1,100})"\s*,\s*"value"\s*:\s*")((?:[^"\\]|\\.)*)(")'
    r'|("value"\s*:\s*")((?:[^"\\]|\\.)*)("\s*,\s*"name"\s*:\s*"([\w.-]{1,100})")'
)

_AUTH_HEADER = re.compile(
    r"""(?i)((?:proxy-)?authorization["']?[ \t]*[:=][ \t]*["']?)"""
    r"""((?:basic|bearer|digest|negotiate|token|ntlm|aws4-hmac-sha256)[ \t]+)?([^\s"',]+)"""
)
_BEARER = re.compile(r"(?i)(\bbearer[ \t]+)(?=[\w.~+/-]*[\d.~+/-])[\w.~+/-]{8,}=*")
_BASIC = re.compile(r"(?i)(\bbasic[ \t]+)([A-Za-z0-9+/]{8,}=*)")
_JWT = re.compile(r"\beyJ[\w-]{5,}\.eyJ[\w-]{5,}\.[\w-]*")
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")
_KNOWN_TOKENS = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|glpat-[\w-]{20,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})"
)
_PEM = re.compile(
    r"-----BEGIN ([A-Z0-9 ]{1,60})-----(?!\[REDACTED\]).*?(?:-----END [A-Z0-9 ]{1,60}-----|\Z)",
    re.S,
)
_PEM_BASE64 = re.compile(r"\bLS0tLS1CRUdJTi[A-Za-z0-9+/=]*")

_SECRET_DATA_KEYS = ("data", "stringData")


def _unquote_key(key: str) -> str:
    """A key as written (`"\\u0070assword"`, `'token'`, `token`) -> its text (`password`)."""
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    elif len(key) >= 2 and key[0] == key[-1] == "'":
        return key[1:-1]
    if "\\" not in key:
        return key
    try:
        decoded = json.loads(f'"{key}"')
    except ValueError:
        return key
    return decoded if isinstance(decoded, str) else key


def _credential(key: str) -> bool:
    return is_credential_key(_unquote_key(key))


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
    if "-----BEGIN " in text:
        text = _PEM.sub(lambda m: f"-----BEGIN {m.group(1)}-----{REDACTED}", text)
    text = _PEM_BASE64.sub(REDACTED, text)
    text = _JSON_KV.sub(
        lambda m: f'"{m[1]}"{m[2]}{REDACTED}"' if _credential(m[1]) else m[0], text
    )
    text = _JSON_KV_NUMBER.sub(
        lambda m: f'"{m[1]}"{m[2]}"{REDACTED}"' if _credential(m[1]) else m[0], text
    )
    if "name" in text and "value" in text:
        text = _redact_env_entries(text)
    text = _redact_colon_values(text)
    text = _redact_equals_values(text)
    text = _FLAG_VALUE.sub(
        lambda m: f"{m[1]}{m[2]}{REDACTED}" if _credential(m[1]) and not _harmless(m[3])
        else m[0], text
    )
    text = _USER_FLAG.sub(lambda m: f"{m[1]}{m[2]}{m[3]}:{REDACTED}", text)
    if "://" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m[1]}{m[2]}:{REDACTED}@", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m[1]}{m[2] or ''}{REDACTED}", text)
    text = _BEARER.sub(rf"\g<1>{REDACTED}", text)
    text = _BASIC.sub(lambda m: f"{m[1]}{REDACTED}" if _looks_base64(m[2]) else m[0], text)
    text = _JWT.sub(REDACTED, text)
    text = _AWS_KEY_ID.sub(REDACTED, text)
    text = _KNOWN_TOKENS.sub(REDACTED, text)
    return text


def _looks_base64(word: str) -> bool:
    """`dXNlcjpwYXNz` yes, `Authentication` no: a digit, `+/=`, or several capitals and small
    letters mixed."""
    if any(c.isdigit() or c in "+/=" for c in word):
        return True
    return sum(c.isupper() for c in word) >= 2 and sum(c.islower() for c in word) >= 2


def redact_data(value: Any) -> Any:
    """A copy of a JSON-like value with every string redacted and every credential-keyed value
    (`{"password": ...}`) replaced whole; bounded in depth, so any value is safe to pass."""
    return _redact_data(value, 64)


def _redact_data(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return redact(value)
    if depth <= 0:
        return value
    if isinstance(value, dict):
        return {
            key: (REDACTED if isinstance(key, str) and is_credential_key(key)
                  and item not in (None, True, False) else _redact_data(item, depth - 1))
            for key, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_redact_data(item, depth - 1) for item in value]
    return value


def _redact_equals_values(text: str) -> str:
    """`key=value`, `key="quoted value"`, `--from-literal=password=x`: a key that is not a
    credential consumes only `key=`, so a credential key inside its value is still found."""
    if "=" not in text:
        return text
    out: list[str] = []
    pos = 0
    for m in _EQUALS_KEY.finditer(text):
        if m.start() < pos or not _credential(m[1]):
            continue
        value = _EQUALS_VALUE.match(text, m.end())
        if value is None or _harmless(value[0]):
            continue
        out.append(text[pos:m.end()])
        quote = value[0][0] if value[0][0] in "\"'" else ""
        out.append(f"{quote}{REDACTED}{quote}")
        pos = value.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def _redact_env_entries(text: str) -> str:
    """The `value:` of an env entry whose `name:` is a credential key (YAML and JSON)."""
    def json_env(m: re.Match[str]) -> str:
        if m[1] is not None:
            return f"{m[1]}{REDACTED}{m[4]}" if is_credential_key(m[2]) else m[0]
        return f"{m[5]}{REDACTED}{m[7]}" if is_credential_key(m[8]) else m[0]

    text = _JSON_ENV.sub(json_env, text)
    lines = text.splitlines(keepends=True)
    changed = False
    for i, line in enumerate(lines):
        m = _ENV_NAME.match(line.rstrip("\r\n"))
        if m is None or not is_credential_key(m[3]):
            continue
        column = len(m[1]) + len(m[2] or "")
        j = _sibling_value(lines, i, column, +1)
        if j is None and not m[2]:
            j = _sibling_value(lines, i, column, -1)
        if j is None:
            continue
        kl = _parse_key_line(j, lines[j])
        if kl is not None and not _harmless(kl.value):
            end = "\n" if lines[j].endswith("\n") else ""
            lines[j] = f"{lines[j][: kl.colon + 1]} {REDACTED}{end}"
            changed = True
    return "".join(lines) if changed else text


def _sibling_value(lines: list[str], i: int, column: int, step: int) -> int | None:
    """The line of the `value:` key in the same mapping as the key on line `i`, if any."""
    j = i + step
    while 0 <= j < len(lines):
        line = lines[j]
        j += step
        if not line.strip():
            continue
        kl = _parse_key_line(j - step, line)
        if kl is None or kl.column > column:
            if _indent(line) > column:
                continue  # a nested or continued value
            return None
        if kl.column < column:
            return None
        if kl.key == "value" and not (step > 0 and kl.item_start):
            return j - step
        if kl.item_start:
            return None  # the next (or, going up, this) list item starts: no value here
    return None


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _credential_value_start(line: str) -> int | None:
    """Where the value of the line's first `key: value` with a credential key starts, if any."""
    for match in _COLON_KEY.finditer(line):
        key = match[1]
        if not _credential(key):
            continue
        if key[0] in "\"'" and line[match.end():match.end() + 1] in "\"{[":
            continue  # JSON: a string value is _JSON_KV's, an object is no value to hide
        if _LITERAL.match(line, match.end()):
            continue  # `"automountServiceAccountToken": true, ...`: no secret in a boolean
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
        if start is not None and not _harmless(value):
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


_COMMENT = re.compile(r"(?:^|[ \t]+)#.*$")


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
    value = _COMMENT.sub("", value or "")  # `kind: Secret  # comment` is still a Secret
    return _KeyLine(index, column, key.strip("\"'"), value.strip(), bool(dash), match.end(3))


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
