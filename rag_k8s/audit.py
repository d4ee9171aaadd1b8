"""The audit log: one hash-chained JSONL line per operation (`logs/agent.log`).

Contract (tools that read or verify the log may rely on it):
- Each line is one JSON object terminated by `\\n`, written with a single `write` to a file opened
  with O_APPEND while holding an exclusive `flock`, so concurrent writers never interleave or lose
  lines.
- `hash` is the sha256 (hex) of the line's canonical JSON without the `hash` key: keys sorted,
  separators `,` and `:`, non-ASCII kept as UTF-8 (`json.dumps(entry, sort_keys=True,
  separators=(",", ":"), ensure_ascii=False)`).
- `prev_hash` is the `hash` of the previous valid line; the first line has `GENESIS_HASH`
  (64 zeros).
- A crash mid-write leaves a torn last line. The next writer starts on a fresh line, chains to the
  last complete valid line and records `"recovered_after_torn_line": true`; `verify` accepts an
  unparseable line only when the line after it says so.
- Every line is strict JSON (RFC 8259: no NaN/Infinity, valid UTF-8). The line is built from a
  JSON-safe copy of the result and request (`jsonsafe.sanitize`), so no payload can make the
  write fail; should building it fail all the same, a minimal line with `"audit_error"` is written
  instead. The request (query included), command, argv, reasons and suggestion are redacted
  (`rag_k8s.redact`).
- A line whose operation raised inside rag-k8s has `"status": "error"` and the exception in
  `reasons`; when kubectl had run by then, its plan and execution are in the line too.
- The raw kubectl output is never stored: only `output_sha256` (over the UTF-8 bytes of stdout
  followed by stderr, as returned to the caller) and `output_bytes`.
- Limits: the chain shows an edited, inserted, deleted or reordered line, but not the removal of
  lines at the very end; ship the log elsewhere (see `logging.yaml`) to guard against that.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from . import jsonsafe
from .redact import redact, redact_data

if TYPE_CHECKING:
    from rich.table import Table

GENESIS_HASH = "0" * 64
MAX_REQUEST_CHARS = 2000  # raw payloads of invalid requests are cut to this many characters
_TAIL_CHUNK = 8192

LEVELS = {
    "executed": "INFO",
    "planned": "INFO",
    "denied": "WARNING",
    "needs_confirmation": "WARNING",
    "invalid": "WARNING",
    "no_match": "WARNING",
    "failed": "ERROR",
    "timeout": "ERROR",
}
# Flags whose following argument is a credential; a denied command is logged with its value hidden.
_CREDENTIAL_FLAGS = {"--token", "--password", "--username", "--client-key", "--client-certificate"}


def canonical_json(entry: dict[str, Any]) -> bytes:
    """The bytes a line's hash is computed over (and the line's own serialisation)."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def entry_hash(entry: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of `entry` without its `hash` key."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def _timestamp() -> str:
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _scrub_argv(argv: list[str]) -> list[str]:
    out: list[str] = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] in _CREDENTIAL_FLAGS:
            out.append("[REDACTED]")
        else:
            out.append(redact(arg))
    return out


def _short_str(value: Any, limit: int = 253) -> str | None:
    return redact(jsonsafe.sanitize(value[:limit])) if isinstance(value, str) else None


def _request_field(request: Any) -> dict[str, Any] | str | None:
    """The request, JSON-safe and redacted; cut to MAX_REQUEST_CHARS of JSON when it is large."""
    if request is None:
        return None
    if not isinstance(request, dict):
        text = request if isinstance(request, str) else repr(jsonsafe.sanitize(request))
        return redact(jsonsafe.sanitize(text))[:MAX_REQUEST_CHARS]
    request = redact_data(jsonsafe.sanitize(request))
    text = canonical_json(request).decode("utf-8")
    if len(text) > MAX_REQUEST_CHARS:
        return text[:MAX_REQUEST_CHARS] + f"... [truncated {len(text) - MAX_REQUEST_CHARS} chars]"
    return json.loads(text)  # round-trip: only JSON types reach the log


def build_entry(result: dict[str, Any], request: dict[str, Any] | str | None,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fields of one operation's line, before chaining (no prev_hash/hash yet).

    `extra` adds fields (such as `undo`); they are made JSON-safe and redacted like the rest.
    """
    plan = result.get("plan") or {}
    decision = result.get("decision") or {}
    execution = result.get("execution")
    req = request if isinstance(request, dict) else {}
    status = str(result.get("status", ""))
    entry: dict[str, Any] = {
        "timestamp": _timestamp(),
        "level": LEVELS.get(status, "ERROR"),
        "operation_id": result.get("operation_id"),
        "status": status,
        "intent": _short_str(req.get("intent")),
        "namespace": _short_str(req.get("namespace")),
        "resource": _short_str(req.get("resource")),
        "name": _short_str(req.get("name")),
        "command": redact(plan["command"]) if plan.get("command") else None,
        "argv": _scrub_argv([str(a) for a in plan.get("argv") or []]) or None,
        "card_id": plan.get("card_id"),
        "planner": plan.get("planner"),
        "risk": plan.get("risk_level"),
        "reasons": [redact(str(r)) for r in decision.get("reasons") or []],
        "suggestion": redact(str(decision["suggestion"])) if decision.get("suggestion") else None,
        "exit_code": None,
        "duration": None,
        "timed_out": None,
        "truncated": None,
        "dry_run": bool((req.get("constraints") or {}).get("dryRun", False))
        if isinstance(req.get("constraints"), dict) else False,
        "output_sha256": None,
        "output_bytes": None,
        "request": _request_field(request),
    }
    if execution:
        output = (str(execution.get("stdout", "")) + str(execution.get("stderr", ""))).encode(
            "utf-8", "backslashreplace")
        entry.update(
            exit_code=execution.get("exit_code"),
            duration=execution.get("duration"),
            timed_out=execution.get("timed_out"),
            truncated=execution.get("truncated"),
            dry_run=bool(execution.get("dry_run")),
            output_sha256=hashlib.sha256(output).hexdigest(),
            output_bytes=len(output),
        )
    _runbook_fields(entry, result)
    if extra:
        entry.update(redact_data(jsonsafe.sanitize(extra)))
    return jsonsafe.sanitize(entry, max_depth=jsonsafe.MAX_DEPTH + 8)  # whatever the result held


def _fallback_entry(result: Any, error: BaseException) -> dict[str, Any]:
    """The line written when building the full one failed: what is known, nothing that can fail."""
    def text(value: Any, limit: int = 500) -> str | None:
        if value is None:
            return None
        try:
            return redact(jsonsafe.sanitize(str(value)))[:limit]
        except Exception:  # noqa: BLE001
            return f"[unprintable {type(value).__name__}]"

    got = result if isinstance(result, dict) else {}
    plan = got.get("plan") if isinstance(got.get("plan"), dict) else {}
    status = text(got.get("status"), 32) or "error"
    return {
        "timestamp": _timestamp(),
        "level": LEVELS.get(status, "ERROR"),
        "operation_id": text(got.get("operation_id"), 64),
        "status": status,
        "command": text(plan.get("command")),
        "audit_error": text(f"{type(error).__name__}: {error}"),
    }


def _runbook_fields(entry: dict[str, Any], result: dict[str, Any]) -> None:
    """A runbook is one operation, so one line: it lists every step and the findings' reasons."""
    steps = (result.get("execution") or {}).get("steps")
    if steps:
        entry["steps"] = [{
            "id": str(s.get("id")),
            "argv": _scrub_argv([str(a) for a in s.get("argv") or []]) or None,
            "exit_code": s.get("exit_code"), "duration": s.get("duration"),
            "timed_out": s.get("timed_out"), "truncated": s.get("truncated"),
            "skipped": s.get("skipped"), "output_sha256": s.get("output_sha256"),
        } for s in steps]
    findings = result.get("findings")
    if findings is not None:
        entry["findings"] = [f"{f.get('severity')} {f.get('reason')} {f.get('object')}"
                             for f in findings]


def write_operation(
    path: Path, *, result: dict[str, Any], request: Any, extra: dict[str, Any] | None = None,
    undo: dict[str, Any] | None = None, undoes: str | None = None,
) -> dict[str, Any]:
    """Append one hash-chained line for an operation (CONTRACT §2 `result`) and return it.

    Args:
        path: the audit log file; parent directories are created.
        result: the result dict of the operation, refusals and invalid requests included.
        request: the normalised request dict, or the raw payload, whatever it holds (made
            JSON-safe, redacted and cut to 2,000 characters of JSON).
        extra: further fields for the line.
        undo: for a changing command that ran, its inverse `{argv, captured_at, before_digest,
            after_digest}` or `{none: reason}` (rag_k8s.undo); inside the hash chain.
        undoes: for an undo, the operation_id it undoes.

    No payload makes this raise; only an unwritable log file does (OSError).
    """
    try:
        entry = build_entry(result, request, extra)
        if undo is not None:
            entry["undo"] = _undo_field(undo)
        if undoes is not None:
            entry["undoes"] = str(undoes)
        canonical_json(entry)  # strict: a value that slipped through is caught here, not later
    except Exception as e:  # noqa: BLE001 - the line is written whatever the payload held
        entry = _fallback_entry(result, e)
    return append_entry(path, entry)


def _undo_field(undo: dict[str, Any]) -> dict[str, Any]:
    """The `undo` field: JSON types only, the argv scrubbed like the command's own."""
    if "none" in undo:
        return {"none": redact(str(undo["none"]))}
    return {"argv": _scrub_argv([str(a) for a in undo.get("argv") or []]),
            "captured_at": str(undo.get("captured_at")),
            "before_digest": str(undo.get("before_digest")),
            "after_digest": str(undo.get("after_digest"))}


def append_entry(path: Path, entry: dict[str, Any]) -> dict[str, Any]:
    """Chain `entry` to the log's last valid line and append it atomically under an flock."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            prev_hash, torn = _chain_state(fd)
            entry = {k: v for k, v in entry.items() if k not in ("prev_hash", "hash")}
            entry = jsonsafe.sanitize(entry, max_depth=jsonsafe.MAX_DEPTH + 8)
            if torn:
                entry["recovered_after_torn_line"] = True
            entry["prev_hash"] = prev_hash
            entry["hash"] = entry_hash(entry)
            data = (b"\n" if torn else b"") + canonical_json(entry) + b"\n"
            written = os.write(fd, data)
            while written < len(data):  # only a full disk makes a regular-file write short
                written += os.write(fd, data[written:])
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
    return entry


def _chain_state(fd: int) -> tuple[str, bool]:
    """(hash of the last complete valid line, whether the file ends in a torn line)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return GENESIS_HASH, False
    torn = os.pread(fd, 1, size - 1) != b"\n"
    # Read backwards in growing chunks until a complete line with a hash turns up.
    end = size
    buffer = b""
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        buffer = os.pread(fd, end - start, start) + buffer
        end = start
        lines = buffer.split(b"\n")
        # lines[0] may be cut by the chunk boundary unless we reached the file's start.
        candidates = lines if end == 0 else lines[1:]
        if torn and candidates:
            fragment = candidates.pop()
            if end == 0 or len(lines) > 1:
                whole = _hash_of(fragment)
                if whole is not None:  # a complete entry that only lacks its newline
                    return whole, True
        for raw in reversed(candidates):
            found = _hash_of(raw)
            if found is not None:
                return found, torn
    return GENESIS_HASH, torn


def _hash_of(raw: bytes) -> str | None:
    entry = _parse(raw)
    if entry is None:
        return None
    value = entry.get("hash")
    return value if isinstance(value, str) else None


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not strict JSON")


def _parse(raw: bytes) -> dict[str, Any] | None:
    if not raw.strip():
        return None
    try:
        entry = json.loads(raw, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return entry if isinstance(entry, dict) else None


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    lines: int  # lines in the file, a torn last line included
    valid_lines: int  # lines that verified before the first problem
    first_bad_line: int | None  # 1-based
    problem: str | None  # plain words; also set for a torn tail, which alone does not fail
    torn_tail: bool


def _read_lines(path: Path) -> tuple[list[bytes], bytes | None]:
    """(complete lines, torn last fragment or None)."""
    data = Path(path).read_bytes()
    if not data:
        return [], None
    parts = data.split(b"\n")
    tail = parts.pop()  # b"" when the file ends with a newline
    return parts, (tail or None)


def verify(path: Path) -> VerifyReport:
    """Recompute every line's hash and the chain; point at the first line that does not fit.

    A missing or empty log verifies (nothing to check). A torn last line (a crash mid-write) is
    reported with `torn_tail=True` and leaves `ok` true when every complete line verifies.
    """
    path = Path(path)
    if not path.exists():
        return VerifyReport(True, 0, 0, None, None, False)
    lines, torn = _read_lines(path)
    total = len(lines) + (1 if torn is not None else 0)

    def bad(index: int, valid: int, problem: str) -> VerifyReport:
        return VerifyReport(False, total, valid, index, problem, torn is not None)

    prev = GENESIS_HASH
    valid = 0
    unparsed: int | None = None  # 1-based number of an unparseable line awaiting a recovery line
    for number, raw in enumerate(lines, start=1):
        entry = _parse(raw)
        if entry is None:
            if unparsed is not None:
                return bad(unparsed, valid, f"line {unparsed} is not a valid JSON audit entry")
            unparsed = number
            continue
        if unparsed is not None and entry.get("recovered_after_torn_line") is not True:
            return bad(unparsed, valid, f"line {unparsed} is not a valid JSON audit entry")
        unparsed = None
        if not isinstance(entry.get("hash"), str) or "prev_hash" not in entry:
            return bad(number, valid, f"line {number} has no hash or prev_hash field")
        if entry_hash(entry) != entry["hash"]:
            return bad(number, valid, f"line {number} was changed after it was written: its hash "
                                      "does not match its content")
        if entry["prev_hash"] != prev:
            where = "the start of the log" if number == 1 else f"line {number - 1}"
            return bad(number, valid, f"line {number} does not follow {where}: its prev_hash does "
                                      "not match; a line was deleted, inserted or reordered")
        prev = entry["hash"]
        valid += 1
    if unparsed is not None:
        return bad(unparsed, valid, f"line {unparsed} is not a valid JSON audit entry")
    if torn is not None:
        return VerifyReport(True, total, valid, None,
                            f"line {total} is incomplete (a write was interrupted); the "
                            f"{valid} lines before it verify", True)
    return VerifyReport(True, total, valid, None, None, False)


def iter_entries(path: Path) -> Iterator[dict[str, Any]]:
    """Every complete, parseable entry in file order (torn or garbled lines are skipped)."""
    path = Path(path)
    if not path.exists():
        return
    with path.open("rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                return  # a torn last line
            entry = _parse(raw)
            if entry is not None:
                yield entry


def tail(path: Path, n: int = 20) -> list[dict[str, Any]]:
    """The last `n` complete entries, oldest first."""
    if n <= 0:
        return []
    return list(deque(iter_entries(path), maxlen=n))


def undo_mark(entry: dict[str, Any]) -> str:
    """`yes` when `rag-k8s undo` can take the operation back, `no` when it recorded why not."""
    record = entry.get("undo")
    if not isinstance(record, dict):
        return ""
    return "yes" if record.get("argv") else "no"


def render_tail_table(entries: list[dict[str, Any]]) -> Table:
    """A Rich table of audit entries (for `rag-k8s audit tail`); cell text is never markup."""
    from rich.markup import escape
    from rich.table import Table

    styles = {"INFO": "green", "WARNING": "yellow", "ERROR": "red"}
    table = Table(title="rag-k8s audit log (times in UTC)")
    for column in ("time", "status", "intent", "namespace", "exit", "duration", "operation",
                   "undo"):
        table.add_column(column, no_wrap=True)
    # Only the command folds, so narrow terminals keep the short columns readable.
    table.add_column("command", overflow="fold", ratio=1)
    for e in entries:
        duration = e.get("duration")
        style = styles.get(str(e.get("level")), "white")
        cells = [
            str(e.get("timestamp", ""))[5:19].replace("T", " "),  # MM-DD HH:MM:SS, UTC
            str(e.get("intent") or ""),
            str(e.get("namespace") or ""),
            # A refusal has no command to show when nothing was planned: show why instead.
            str(e.get("command") or "; ".join(str(r) for r in e.get("reasons") or [])),
            "" if e.get("exit_code") is None else str(e["exit_code"]),
            f"{duration:.3f}s" if isinstance(duration, (int, float)) else "",
            str(e.get("operation_id") or "")[:8],
        ]
        time_, intent, namespace, command, exit_code, took, op = (escape(c) for c in cells)
        status = f"[{style}]{escape(str(e.get('status', '')))}[/]"
        table.add_row(time_, status, intent, namespace, exit_code, took, op, undo_mark(e), command)
    return table
