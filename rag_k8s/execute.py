"""Execution: run the kubectl binary as an argv list, with a timeout, truncation and redaction.

Behaviour callers rely on:
- argv[0] (`kubectl`) is replaced by the binary `settings.kubectl` resolves to (a path or a name
  looked up on PATH); the rest is passed verbatim, never through a shell.
- The child runs in its own session (process group) with stdin closed. At the timeout the whole
  group gets SIGTERM, then SIGKILL after `KILL_GRACE` seconds, so a child that ignores SIGTERM or a
  grandchild it spawned dies too. A timed-out run reports `timed_out=True` and exit code 124
  (`TIMEOUT_EXIT_CODE`, as coreutils `timeout` does), with whatever output was read before.
- The executor owns the whole tree (see "Process tree" below): on Linux rag-k8s is a child
  subreaper, every process kubectl starts carries `RAG_K8S_EXEC_ID` in its environment, and
  descendants that left the group (`setsid`) are found and killed too: at the timeout, when
  rag-k8s is interrupted (Ctrl-C, SIGTERM, a server shutting down: `interrupted=True`, exit code
  130) and when kubectl exits and leaves something behind. Nothing outlives the call.
- stdout and stderr are drained concurrently; at most `settings.max_output_bytes` of each are kept,
  the rest is read and discarded, and the kept text ends with `... [truncated N bytes]`.
- Output is decoded as UTF-8 (invalid bytes replaced) and redacted (`rag_k8s.redact`).
- A kubectl that cannot be found gives exit code 127 (126 when it cannot be started) and a message
  saying how to fix it; no exception. An unreachable cluster keeps kubectl's text and adds a hint.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from .config import Settings
from .errors import PolicyError
from .guardrails import executor_findings
from .redact import redact

TIMEOUT_EXIT_CODE = 124
INTERRUPTED_EXIT_CODE = 130  # as a shell reports a command stopped by Ctrl-C
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
    # rag-k8s was stopped while kubectl ran; the tree was killed (status `interrupted`).
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        """CONTRACT §2's `execution` object (`interrupted` is the result's status, not a field)."""
        out = asdict(self)
        del out["interrupted"]
        return out


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
    if _STOPPING.is_set():
        # rag-k8s is shutting down: a call that got this far is stopped before kubectl starts.
        return ExecResult(exit_code=INTERRUPTED_EXIT_CODE, stdout="",
                          stderr=f"kubectl was not started: {_STOPPING_REASON[0]}\n",
                          duration=0.0, dry_run=dry_run, interrupted=True)
    become_subreaper()
    run_id = uuid.uuid4().hex
    try:
        proc = subprocess.Popen(
            [binary, *argv[1:]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            shell=False,
            start_new_session=True,
            env=_kubectl_env(run_id),
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

    live = _Live(proc, run_id)
    with _LIVE_LOCK:
        _LIVE[proc.pid] = live
    if _STOPPING.is_set():  # the shutdown began while kubectl was starting
        live.stop_reason = _STOPPING_REASON[0]
    try:
        return _supervise(live, started=started, timeout=timeout, settings=settings,
                          dry_run=dry_run)
    except BaseException:
        # Interrupted before the supervisor could take over (or it failed): kill, then re-raise.
        if proc.returncode is None:  # not reaped: its pid still names only its group
            with shielded():
                _kill_tree(live)
                proc.wait()
        raise
    finally:
        with _LIVE_LOCK:
            _LIVE.pop(proc.pid, None)


def _supervise(live: _Live, *, started: float, timeout: float, settings: Settings,
               dry_run: bool) -> ExecResult:
    """Wait for kubectl, the deadline or an interruption; leave no process of the tree behind."""
    proc = live.proc
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        _CappedReader(proc.stdout, settings.max_output_bytes),
        _CappedReader(proc.stderr, settings.max_output_bytes),
    ]
    for reader in readers:
        reader.start()
    threading.Thread(target=_wait_exit, args=(live,), daemon=True).start()

    deadline = started + timeout
    timed_out = interrupted = False
    try:
        while not live.exited.is_set():
            remaining = deadline - time.monotonic()
            if live.stop_reason is not None:
                interrupted = True
                break
            if remaining <= 0:
                timed_out = True
                break
            live.wake.wait(remaining)
            live.wake.clear()
    except KeyboardInterrupt:  # Ctrl-C, or SIGTERM/SIGHUP turned into it by the CLI
        interrupted = True
        live.stop_reason = live.stop_reason or "rag-k8s was interrupted"
    with shielded():  # a second Ctrl-C must not leave the tree half killed
        if timed_out or interrupted:
            _kill_tree(live)
        else:
            _sweep_leftovers(live)  # kubectl exited: whatever it left behind goes too
        exit_code = proc.wait()
        drain_until = time.monotonic() + (_DRAIN_AFTER_KILL if timed_out or interrupted
                                          else max(0.0, deadline - time.monotonic()) + 0.1)
        for reader in readers:
            reader.join(max(0.0, drain_until - time.monotonic()))
        if any(reader.is_alive() for reader in readers) and not interrupted:
            timed_out = True  # something outside our reach still holds the pipes
    if timed_out:
        exit_code = TIMEOUT_EXIT_CODE
    if interrupted:
        exit_code = INTERRUPTED_EXIT_CODE
        timed_out = False
    duration = round(time.monotonic() - started, 3)

    (out_bytes, out_dropped), (err_bytes, err_dropped) = (r.snapshot() for r in readers)
    stdout = _finish(out_bytes, out_dropped)
    stderr = _finish(err_bytes, err_dropped)
    if interrupted:
        stderr += (f"kubectl was stopped after {duration:g}s: {live.stop_reason}; "
                   "it and every process it started were killed\n")
    elif timed_out:
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
        interrupted=interrupted,
    )


def _kubectl_env(run_id: str = "") -> dict[str, str]:
    """The caller's environment, with kubectl's preferences file off (a kuberc could add
    defaults and aliases the validator never saw), no external diff program, and the run's
    mark, which every descendant inherits so that one re-parented to rag-k8s can be told apart
    from other children."""
    env = {**os.environ, "KUBERC": "off"}
    # `kubectl diff` runs this program on the object files; only its default (`diff -u -N`).
    env.pop("KUBECTL_EXTERNAL_DIFF", None)
    if run_id:
        env[RUN_ID_ENV] = run_id
    return env


# ---------------------------------------------------------------- process tree
#
# kubectl runs as the leader of a new session, so its group can be signalled at once. A
# descendant may leave that group (`setsid`) or outlive kubectl; on Linux rag-k8s is therefore a
# child subreaper (prctl PR_SET_CHILD_SUBREAPER): orphans of the tree are re-parented to rag-k8s
# instead of init, and carry RUN_ID_ENV, so they are found through /proc and killed, then reaped.
# Elsewhere (macOS) only the process group is killed: see docs/security.md.

RUN_ID_ENV = "RAG_K8S_EXEC_ID"
_PR_SET_CHILD_SUBREAPER = 36
_SUBREAPER: list[bool] = []  # [] until tried, then [whether prctl succeeded]
_LIVE_LOCK = threading.Lock()
_STOPPING = threading.Event()
_STOPPING_REASON = ["rag-k8s is shutting down"]
_SWEEP_ROUNDS = 20


class _Live:
    """One running kubectl: its process, its run mark, and how the supervisor is woken."""

    def __init__(self, proc: subprocess.Popen[bytes], run_id: str) -> None:
        self.proc = proc
        self.run_id = run_id
        self.thread = threading.get_ident()  # the caller's thread, for interrupt_thread
        self.wake = threading.Event()
        self.exited = threading.Event()
        self.stop_reason: str | None = None
        self.seen: set[int] = set()  # pids found in the tree, to reap once they are ours


_LIVE: dict[int, _Live] = {}


def become_subreaper() -> bool:
    """Make this process a child subreaper (Linux), once; False where the platform has none."""
    if not _SUBREAPER:
        ok = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                ok = libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
            except (OSError, AttributeError):
                ok = False
        _SUBREAPER.append(ok)
    return _SUBREAPER[0]


def interrupt_all(reason: str = "rag-k8s is shutting down") -> int:
    """Stop every kubectl now running (their calls return `interrupted`); the count stopped."""
    with _LIVE_LOCK:
        lives = list(_LIVE.values())
    for live in lives:
        live.stop_reason = live.stop_reason or reason
        live.wake.set()
    return len(lives)


def interrupt_thread(thread_id: int, reason: str) -> int:
    """Stop the kubectl that the thread `thread_id` is running (one caller of a shared server
    went away); the count stopped."""
    with _LIVE_LOCK:
        lives = [live for live in _LIVE.values() if live.thread == thread_id]
    for live in lives:
        live.stop_reason = live.stop_reason or reason
        live.wake.set()
    return len(lives)


def begin_shutdown(reason: str = "rag-k8s is shutting down") -> None:
    """Refuse new kubectl runs and stop the running ones, without waiting (signal handlers)."""
    _STOPPING_REASON[0] = reason
    _STOPPING.set()
    interrupt_all(reason)


def shutdown(reason: str = "rag-k8s is shutting down", wait: float = 10.0) -> None:
    """Refuse new kubectl runs, stop the running ones and wait (bounded) until their operations
    are audited. For server shutdown, MCP stdio closing and interpreter exit."""
    begin_shutdown(reason)
    with _OPS_DONE:
        _OPS_DONE.wait_for(lambda: _OPS[0] == 0, timeout=wait)


def reset_shutdown() -> None:
    """Accept kubectl runs again (tests that shut down an in-process server)."""
    _STOPPING.clear()


_OPS = [0]
_OPS_DONE = threading.Condition()


@contextmanager
def operation() -> Iterator[None]:
    """Marks one pipeline call (plan, run, audit) in flight, so `shutdown` waits for its line."""
    with _OPS_DONE:
        _OPS[0] += 1
    try:
        yield
    finally:
        with _OPS_DONE:
            _OPS[0] -= 1
            _OPS_DONE.notify_all()


@atexit.register
def _at_exit() -> None:
    if _LIVE or _OPS[0]:
        shutdown("rag-k8s is exiting", wait=KILL_GRACE + _DRAIN_AFTER_KILL + 2)


@contextmanager
def shielded(reraise: bool = False) -> Iterator[None]:
    """In the main thread, hold SIGINT/SIGTERM off while the tree is killed or the audit line
    written; with `reraise`, a signal that came meanwhile is raised as KeyboardInterrupt after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    saved = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            saved[sig] = signal.signal(sig, lambda s, f: caught.append(s))
        except (ValueError, OSError):
            pass
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    if caught and reraise:
        raise KeyboardInterrupt


def _wait_exit(live: _Live) -> None:
    """Wake the supervisor when kubectl exits, without reaping it (its pid keeps naming the
    group until the supervisor has swept it)."""
    try:
        os.waitid(os.P_PID, live.proc.pid, os.WEXITED | os.WNOWAIT)
    except ChildProcessError:
        pass  # already reaped
    except OSError:
        pass
    live.exited.set()
    live.wake.set()


def _kill_tree(live: _Live) -> None:
    """SIGTERM the group and every descendant, give them KILL_GRACE, then SIGKILL what is left
    until nothing of the tree remains, and reap what became ours."""
    pgid = live.proc.pid
    tree = _tree(live)
    _signal_group(pgid, signal.SIGTERM)
    _signal_pids(tree, signal.SIGTERM)
    grace_end = time.monotonic() + KILL_GRACE
    while time.monotonic() < grace_end and not (
            _has_exited(live.proc.pid) and not _alive(_tree(live) | tree)):
        time.sleep(0.01)
    _sweep(live, extra=tree)


def _sweep_leftovers(live: _Live) -> None:
    """kubectl exited: kill whatever of its tree is still there (normally nothing)."""
    _sweep(live, extra=set())


def _sweep(live: _Live, extra: set[int]) -> None:
    pgid = live.proc.pid
    found = set(extra)
    for _ in range(_SWEEP_ROUNDS):
        tree = _tree(live)  # before killing: a dead orphan no longer shows its run mark
        found |= tree
        alive = _alive(tree)
        # The leader is not reaped yet, so pgid cannot name an unrelated group.
        _signal_group(pgid, signal.SIGKILL)
        if not alive:
            break
        _signal_pids(alive, signal.SIGKILL)
        time.sleep(0.005)
    _reap(found - {live.proc.pid})


def _alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if _state(pid) not in (None, "Z", "X")}


def _signal_pids(pids: set[int], sig: signal.Signals) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _reap(pids: set[int]) -> None:
    """waitpid the pids of the tree that became our children (re-parented to the subreaper)."""
    pending = set(pids)
    end = time.monotonic() + 1.0
    while pending and time.monotonic() < end:
        for pid in list(pending):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                # Not our child (yet): gone, or its dying parent has not handed it over.
                if _state(pid) is None:
                    pending.discard(pid)
                continue
            if done:
                pending.discard(pid)
        if pending:
            time.sleep(0.005)


def _tree(live: _Live) -> set[int]:
    """Live pids of kubectl's tree, kubectl excluded: its descendants, and our children (orphans
    re-parented to the subreaper) that carry this run's mark, with theirs. Linux only."""
    if not sys.platform.startswith("linux"):
        return set()
    me = os.getpid()
    leader = live.proc.pid
    roots = [pid for pid in _children(me)
             if pid != leader and pid not in _LIVE
             and (_run_id_of(pid) == live.run_id or _group(pid) == leader)]
    found: set[int] = set()
    stack = [leader, *roots]
    found.update(roots)
    while stack:
        for child in _children(stack.pop()):
            if child not in found and child != leader:
                found.add(child)
                stack.append(child)
    live.seen |= found
    return found


def _children(pid: int) -> list[int]:
    """Child pids of `pid`: /proc/PID/task/*/children (every thread's), else a /proc scan
    (kernels built without CONFIG_PROC_CHILDREN)."""
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out.extend(int(p) for p in (task / "children").read_text().split())
        except FileNotFoundError:
            if task.exists() and not _HAS_CHILDREN_FILE:
                return [p for p in _all_pids() if _parent(p) == pid]
        except (OSError, ValueError):
            continue  # the thread ended meanwhile
    return out


_HAS_CHILDREN_FILE = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()


def _all_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def _state(pid: int) -> str | None:
    """The /proc state letter of `pid` (R, S, Z, ...), None when it does not exist."""
    fields = _stat_fields(pid)
    return fields[0] if fields else None


def _parent(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def _group(pid: int) -> int | None:
    """The process group of `pid` (kept by a zombie, unlike its environment)."""
    fields = _stat_fields(pid)
    return int(fields[2]) if fields else None


def _run_id_of(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    prefix = RUN_ID_ENV.encode() + b"="
    for item in raw.split(b"\0"):
        if item.startswith(prefix):
            return item[len(prefix):].decode(errors="replace")
    return None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
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
