"""Execution: run the kubectl binary as an argv list, with a timeout, truncation and redaction.

Behaviour callers rely on:
- argv[0] (`kubectl`) is replaced by the binary `settings.kubectl` resolves to (a path or a name
  looked up on PATH); the rest is passed verbatim, never through a shell.
- The child runs in its own session (process group) with stdin closed. At the timeout the whole
  group gets SIGTERM, then SIGKILL after `KILL_GRACE` seconds, so a child that ignores SIGTERM or a
  grandchild it spawned dies too. A timed-out run reports `timed_out=True` and exit code 124
  (`TIMEOUT_EXIT_CODE`, as coreutils `timeout` does), with whatever output was read before.
- stdout and stderr are drained concurrently; at most `settings.max_output_bytes` of each are kept,
  the rest is read and discarded, and the kept text ends with `... [truncated N bytes]`.
- Output is decoded as UTF-8 (invalid bytes replaced) and redacted (`rag_k8s.redact`).
- A kubectl that cannot be found gives exit code 127 (126 when it cannot be started) and a message
  saying how to fix it; no exception. An unreachable cluster keeps kubectl's text and adds a hint.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import asdict, dataclass
from typing import IO, Any

from .config import Settings
from .errors import PolicyError
from .guardrails import executor_findings
from .redact import redact

TIMEOUT_EXIT_CODE = 124
NOT_FOUND_EXIT_CODE = 127
CANNOT_RUN_EXIT_CODE = 126
KILL_GRACE = 0.5  # seconds between SIGTERM and SIGKILL of the process group
_CHUNK = 65536
# Once the group is killed, readers normally see EOF at once; a process that escaped the group
# (setsid) could hold the pipe open, so stop waiting for it after this long.
_DRAIN_AFTER_KILL = 2.0

_UNREACHABLE = re.compile(
    r"connection refused|connection to the server \S+ was refused"
    r"|Unable to connect to the server|no configuration has been provided"
    r"|dial tcp .*: i/o timeout|no such host|couldn't get current server API group list",
    re.I,
)


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    duration: float
    truncated: bool = False
    timed_out: bool = False
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        """CONTRACT §2's `execution` object."""
        return asdict(self)


class _CappedReader(threading.Thread):
    """Drains one pipe to EOF, keeping the first `limit` bytes and counting the rest."""

    def __init__(self, stream: IO[bytes], limit: int) -> None:
        super().__init__(daemon=True)
        self._fd = stream.fileno()
        self._stream = stream
        self._limit = limit
        self._lock = threading.Lock()
        self._kept = bytearray()
        self._dropped = 0

    def run(self) -> None:
        try:
            while True:
                chunk = os.read(self._fd, _CHUNK)
                if not chunk:
                    break
                with self._lock:
                    room = self._limit - len(self._kept)
                    if room > 0:
                        self._kept += chunk[:room]
                    self._dropped += max(0, len(chunk) - max(room, 0))
        except OSError:
            pass  # the pipe was closed under us after an abandoned drain
        finally:
            self._stream.close()

    def snapshot(self) -> tuple[bytes, int]:
        with self._lock:
            return bytes(self._kept), self._dropped


def resolve_kubectl(settings: Settings) -> str | None:
    """The kubectl binary `settings.kubectl` names (a path or a name on PATH), or None."""
    return shutil.which(settings.kubectl)


def run(
    argv: list[str], *, timeout: float, settings: Settings, dry_run: bool = False
) -> ExecResult:
    """Run kubectl with `argv` (argv[0] is `kubectl`) and return its redacted, capped output.

    Args:
        argv: the full command, starting with `kubectl`; passed as a list, never to a shell.
        timeout: seconds before the whole process group is killed.
        settings: resolved settings (`kubectl` binary, `max_output_bytes`).
        dry_run: echoed into the result; the caller has already added `--dry-run=server`.
    """
    refused = executor_findings(argv)
    if refused:
        # Defence in depth: the pipeline validated already; a caller that did not gets nothing.
        raise PolicyError("the executor refuses this command: "
                          + "; ".join(f.reason for f in refused))
    binary = resolve_kubectl(settings)
    if binary is None:
        return ExecResult(
            exit_code=NOT_FOUND_EXIT_CODE,
            stdout="",
            stderr=(
                f"kubectl not found: {settings.kubectl!r} is not an executable file or a command "
                "on PATH; set RAG_K8S_KUBECTL or install kubectl\n"
            ),
            duration=0.0,
            dry_run=dry_run,
        )

    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            [binary, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            shell=False,
            start_new_session=True,
            env=_kubectl_env(),
        )
    except OSError as e:
        return ExecResult(
            exit_code=CANNOT_RUN_EXIT_CODE,
            stdout="",
            stderr=(
                f"kubectl could not be started: {binary}: {e.strerror or e}; "
                "set RAG_K8S_KUBECTL to a working kubectl binary\n"
            ),
            duration=round(time.monotonic() - started, 3),
            dry_run=dry_run,
        )

    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        _CappedReader(proc.stdout, settings.max_output_bytes),
        _CappedReader(proc.stderr, settings.max_output_bytes),
    ]
    for reader in readers:
        reader.start()

    deadline = started + timeout
    for reader in readers:
        reader.join(max(0.0, deadline - time.monotonic()))
    timed_out = any(reader.is_alive() for reader in readers)
    exit_code: int | None = None
    if not timed_out:
        try:
            exit_code = proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            timed_out = True  # closed its pipes but kept running
    if timed_out:
        _kill_group(proc)
        for reader in readers:
            reader.join(_DRAIN_AFTER_KILL)
        exit_code = TIMEOUT_EXIT_CODE
    duration = round(time.monotonic() - started, 3)

    assert exit_code is not None
    (out_bytes, out_dropped), (err_bytes, err_dropped) = (r.snapshot() for r in readers)
    stdout = _finish(out_bytes, out_dropped)
    stderr = _finish(err_bytes, err_dropped)
    if timed_out:
        stderr += f"kubectl timed out after {timeout:g}s and was killed\n"
    elif exit_code != 0 and _UNREACHABLE.search(stderr):
        stderr += _unreachable_hint()
    return ExecResult(
        exit_code=exit_code,
        stdout=stdout,
        stderr=stderr,
        duration=duration,
        truncated=bool(out_dropped or err_dropped),
        timed_out=timed_out,
        dry_run=dry_run,
    )


def _kubectl_env() -> dict[str, str]:
    """The caller's environment, with kubectl's preferences file off: a kuberc could add
    defaults and aliases the validator never saw; and no external diff program."""
    env = {**os.environ, "KUBERC": "off"}
    # `kubectl diff` runs this program on the object files; only its default (`diff -u -N`).
    env.pop("KUBECTL_EXTERNAL_DIFF", None)
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole group, give it KILL_GRACE, then SIGKILL whatever is left, and reap."""
    # The leader is not reaped until after SIGKILL, so its pid (= the group id) cannot be reused
    # by an unrelated process while we still signal the group.
    pgid = proc.pid
    _signal_group(pgid, signal.SIGTERM)
    grace_end = time.monotonic() + KILL_GRACE
    while time.monotonic() < grace_end and not _has_exited(proc.pid):
        time.sleep(0.01)
    _signal_group(pgid, signal.SIGKILL)  # also the grandchildren that outlived the leader
    proc.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass  # the group is already gone


def _has_exited(pid: int) -> bool:
    """True once `pid` has exited, without reaping it (WNOWAIT)."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _finish(kept: bytes, dropped: int) -> str:
    """Decode, redact, and mark truncation at the end of the kept text."""
    if dropped:
        # Do not end on half a UTF-8 character: count its bytes as dropped instead.
        cut = _utf8_boundary(kept)
        dropped += len(kept) - cut
        kept = kept[:cut]
    text = redact(kept.decode("utf-8", errors="replace"))
    if dropped:
        if text and not text.endswith("\n"):
            text += "\n"
        text += f"... [truncated {dropped} bytes]\n"
    return text


def _utf8_boundary(data: bytes) -> int:
    """Length of `data` without a trailing incomplete UTF-8 sequence."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte & 0b1100_0000 == 0b1000_0000:
            continue  # a continuation byte: keep looking for the lead byte
        if byte & 0b1000_0000 == 0:
            return len(data)  # ASCII: complete
        width = 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
        return len(data) if back >= width else len(data) - back
    return len(data)


def _unreachable_hint() -> str:
    kubeconfig = os.environ.get("KUBECONFIG") or "~/.kube/config (KUBECONFIG is not set)"
    return (
        f"hint: kubectl could not reach a cluster; check KUBECONFIG ({kubeconfig}) and the current "
        "context (`kubectl config current-context`), and that the API server is running\n"
    )
