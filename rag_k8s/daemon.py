"""The warm server's Unix socket, and the CLI's client for it.

`rag-k8s serve` and `rag-k8s daemon` listen on `$RAG_K8S_HOME/rag-k8s.sock` (mode 0600). The CLI's
`plan`, `exec` and `retrieve` send their request there when it answers, so the embedder and the
MLX model stay loaded between commands, and run in-process when it does not. The server runs the
very functions the CLI would (tool.plan_request, tool.execute_request, retrieve.retrieve), so
results, audit lines and exit codes are the same either way.

Who may connect: the socket file is 0600, and each connection's peer uid (SO_PEERCRED on Linux,
LOCAL_PEERCRED on macOS) must be the server's own uid, else it is refused before a byte is read.
The client checks the same of the server (the file's owner and the peer uid).

When the client uses the server: only when the server's settings and kubectl environment are the
client's own (a fingerprint: every Settings field, RAG_K8S_*, KUBECONFIG, HOME, PATH, KUBE*,
proxies); otherwise the server answers `refused` and the CLI runs in-process. A request with
manifest `files` or an `argv` is never sent (relative paths belong to the client's directory).

Protocol: one JSON object per line each way, one request per connection.
  -> {"v": 1, "op": "plan"|"exec"|"retrieve", "fingerprint": {...}, ...arguments}
  <- {"ok": true, "result": ...} | {"ok": false, "refused": "why"}
     | {"ok": false, "error": {"type": "IndexError_", "message": "...", "exit": 1}}
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import stat
import struct
import sys
import threading
import time
from dataclasses import fields
from pathlib import Path
from typing import Any, Callable

from .config import Settings
from .errors import ExitStatus, RagK8sError

log = logging.getLogger(__name__)

SOCKET_NAME = "rag-k8s.sock"
PROTOCOL = 1
MAX_LINE = 8 * 1024 * 1024  # a result holds at most 64 KiB of kubectl output per stream
CONNECT_TIMEOUT = 1.0
_ENV_KEYS = ("KUBECONFIG", "HOME", "PATH", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
             "http_proxy", "https_proxy", "no_proxy")


# How the client itself runs, not what it asks: a server serves a client with either value.
_CLIENT_ONLY = frozenset({"RAG_K8S_NO_SOCKET", "RAG_K8S_QUERY_WORKER"})


def socket_path(settings: Settings) -> Path:
    return settings.home / SOCKET_NAME


def fingerprint(settings: Settings, env: dict[str, str] | None = None) -> str:
    """What must be the same in client and server for a result to be the same."""
    from . import __version__

    env = dict(os.environ if env is None else env)
    values = {f.name: str(getattr(settings, f.name)) for f in fields(settings)}
    values["kubectl_path"] = str(settings.kubectl_path())
    picked = {k: v for k, v in env.items()
              if (k in _ENV_KEYS or k.startswith(("RAG_K8S_", "KUBE"))) and k not in _CLIENT_ONLY}
    blob = json.dumps({"v": __version__, "settings": values, "env": picked}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


# ------------------------------------------------------------------------------- peer credentials


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process at the other end of a Unix socket (None where unknown)."""
    if hasattr(socket, "SO_PEERCRED"):  # Linux: struct ucred {pid_t pid; uid_t uid; gid_t gid;}
        data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", data)
        return uid
    if sys.platform == "darwin":  # SOL_LOCAL=0, LOCAL_PEERCRED=1: struct xucred, cr_uid second
        try:
            data = sock.getsockopt(0, 1, 76)
            return int(struct.unpack_from("=II", data)[1])
        except OSError:
            return None
    return None


# ------------------------------------------------------------------------------------- server


class SocketServer:
    """The listener: a thread accepting connections, one thread per request."""

    def __init__(self, settings: Settings, *, owner_uid: int | None = None,
                 on_request: Callable[[], None] | None = None, preload: bool = False) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.settings = settings
        # One worker runs every request: MLX streams belong to the thread that made them, so
        # the model is loaded and used on this one thread (requests queue; one user's CLI).
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-k8s-model")
        self.preload = preload
        self.path = socket_path(settings)
        self.owner_uid = os.geteuid() if owner_uid is None else owner_uid
        self.fingerprint = fingerprint(settings)
        self.on_request = on_request
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None
        self.refused_peers = 0

    def start(self) -> SocketServer:
        if self.preload:
            self.worker.submit(preload_models, self.settings).result()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise RagK8sError(f"another rag-k8s server already listens on {self.path}")
            self.path.unlink()  # stale: its server is gone
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # created 0600: no moment when others could connect
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o600)
        sock.listen(16)
        self.sock = sock
        self.thread = threading.Thread(target=self._accept_loop, name="rag-k8s-socket",
                                       daemon=True)
        self.thread.start()
        log.info("listening on %s", self.path)
        return self

    def close(self) -> None:
        self.worker.shutdown(wait=False, cancel_futures=True)
        sock, self.sock = self.sock, None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def _accept_loop(self) -> None:
        while self.sock is not None:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve_one, args=(conn,), daemon=True).start()

    def _serve_one(self, conn: socket.socket) -> None:
        with conn:
            uid = peer_uid(conn)
            if uid is None or uid != self.owner_uid:
                self.refused_peers += 1
                log.warning("refused a connection from uid %s on %s", uid, self.path)
                _send(conn, {"ok": False, "refused": f"uid {uid} may not use this server"})
                return
            try:
                request = _recv(conn)
            except (OSError, ValueError) as e:
                _send(conn, {"ok": False, "refused": f"bad request: {e}"})
                return
            if isinstance(request, dict) and request.get("op") == "ping":
                _send(conn, self.answer(request))
                return
            worker: dict[str, int] = {}
            started = time.perf_counter()

            def job() -> dict[str, Any]:
                worker["thread"] = threading.get_ident()
                return self.answer(request)

            future = self.worker.submit(job)
            _stop_kubectl_when_client_leaves(conn, future, worker)
            try:
                reply = future.result()
                reply["seconds"] = round(time.perf_counter() - started, 4)  # for the benchmark
                _send(conn, reply)
            except OSError:
                pass  # the client is gone; the operation is audited all the same

    def answer(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or request.get("v") != PROTOCOL:
            return {"ok": False, "refused": f"not protocol {PROTOCOL}"}
        if request.get("fingerprint") != self.fingerprint:
            return {"ok": False, "refused": "the client's settings or environment differ"}
        op = request.get("op")
        try:
            if op == "plan":
                from . import tool

                result: Any = tool.plan(request.get("payload"), settings=self.settings)
            elif op == "exec":
                from . import tool

                result = tool.k8s_exec(request.get("payload"), settings=self.settings,
                                       expected_argv=request.get("expected_argv"))
            elif op == "retrieve":
                from .retrieve import retrieve

                hits = retrieve(request.get("query") or "", request.get("intent"),
                                request.get("resource"), request.get("k", 4),
                                settings=self.settings)
                result = [h.to_dict() for h in hits]
            elif op == "ping":
                result = {"pid": os.getpid()}
            else:
                return {"ok": False, "refused": f"unknown op {op!r}"}
        except RagK8sError as e:
            return {"ok": False, "error": {"type": type(e).__name__, "message": str(e),
                                           "exit": int(e.exit_status),
                                           "field": getattr(e, "field", None)}}
        except Exception as e:  # noqa: BLE001 - a bug must reach the client as an error
            log.exception("socket request failed")
            return {"ok": False, "error": {"type": type(e).__name__, "message": str(e),
                                           "exit": int(ExitStatus.ERROR), "field": None}}
        if self.on_request is not None:
            self.on_request()
        return {"ok": True, "result": result}


def _stop_kubectl_when_client_leaves(conn: socket.socket, future: Any,
                                     worker: dict[str, int]) -> None:
    """Wait for the answer; should the client close its end first (Ctrl-C in the CLI), stop
    the kubectl this request runs: it answers `interrupted`, audited, like Ctrl-C in-process."""
    import select

    from . import execute

    # The answer wakes this wait at once (a poll with a timeout here added up to 100 ms to
    # every request). A socket, not a pipe: a late callback on a closed socket only raises.
    done_r, done_w = socket.socketpair()

    def wake(_: Any) -> None:
        try:
            done_w.send(b"x")
        except OSError:
            pass

    future.add_done_callback(wake)
    try:
        while not future.done():
            ready, _, _ = select.select([conn, done_r], [], [])
            if done_r in ready:
                return
            try:
                gone = conn.recv(1, socket.MSG_PEEK) == b""
            except OSError:
                gone = True
            if not gone:
                select.select([done_r], [], [], 0.1)  # stray bytes after the request
                continue
            while "thread" not in worker and not future.done():
                select.select([], [], [], 0.01)
            if "thread" in worker:
                execute.interrupt_thread(worker["thread"], "rag-k8s was interrupted")
            return
    finally:
        done_r.close()
        done_w.close()


def preload_models(settings: Settings) -> str | None:
    """Load the index, the ONNX embedder and, when the planner may use one and it is on this
    machine, the MLX model; returns the model's key (None without one)."""
    from .index import query_state

    query_state(settings)  # what a request reads, watched: its first retrieval is warm
    if settings.planner == "template":
        return None
    from .planner import mlx as mlx_planner

    if not mlx_planner.model_available(settings):
        return None
    path = mlx_planner.resolve_model(settings)
    mlx_planner.load_model(path)
    return str(path)


def start_listener(settings: Settings, **kwargs: Any) -> SocketServer:
    """Start listening on the settings' socket; the hook `rag-k8s serve` calls."""
    return SocketServer(settings, **kwargs).start()


def run_daemon(settings: Settings, *, preload: bool = True) -> None:
    """`rag-k8s daemon`: only the Unix socket, in the foreground until interrupted."""
    import signal

    server = start_listener(settings, preload=preload)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        print(f"rag-k8s daemon listening on {server.path}", file=sys.stderr, flush=True)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


# ------------------------------------------------------------------------------------- client


class ServerGone(Exception):
    """The socket is absent, stale, not ours, or refused the request: run in-process."""


def _answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(CONNECT_TIMEOUT)
            s.connect(str(path))
        return True
    except OSError:
        return False


def _send(conn: socket.socket, obj: Any) -> None:
    try:
        conn.sendall(json.dumps(obj).encode() + b"\n")
    except OSError:
        pass  # the peer left; nothing to tell


def _recv(conn: socket.socket) -> Any:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
        if size > MAX_LINE:
            raise ValueError("message too long")
    data = b"".join(chunks)
    if not data.endswith(b"\n"):
        raise ConnectionError("the connection closed mid-message")
    return json.loads(data)


def _connect(settings: Settings) -> socket.socket:
    path = socket_path(settings)
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise ServerGone("no socket") from None
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077:
        raise ServerGone(f"{path} is not a private socket of this user")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(CONNECT_TIMEOUT)
    try:
        sock.connect(str(path))
    except OSError as e:
        sock.close()
        raise ServerGone(f"stale socket ({e.strerror})") from None
    if peer_uid(sock) not in (os.geteuid(), None):
        sock.close()
        raise ServerGone("the socket's server runs as another user")
    sock.settimeout(None)  # planning with a model or kubectl may take a while
    return sock


def request(settings: Settings, op: str, *, side_effects: bool, **args: Any) -> Any:
    return timed_request(settings, op, side_effects=side_effects, **args)[0]


def timed_request(settings: Settings, op: str, *, side_effects: bool,
                  **args: Any) -> tuple[Any, float | None]:
    """Send one request: (its result, the server's seconds on it), or raise ServerGone (run
    in-process) or the server's error.

    `side_effects`: once an `exec` request has been sent, a lost connection is an error, never a
    reason to run the command a second time in-process.
    """
    sock = _connect(settings)
    with sock:
        message = {"v": PROTOCOL, "op": op, "fingerprint": fingerprint(settings), **args}
        try:
            sock.sendall(json.dumps(message).encode() + b"\n")
            try:
                reply = _recv(sock)
            except KeyboardInterrupt:
                if not side_effects:
                    raise
                # Ctrl-C: half-close, so the server stops the kubectl it runs for us (it
                # answers `interrupted`, audited); wait for that answer like in-process.
                from .execute import shielded

                with shielded():
                    sock.shutdown(socket.SHUT_WR)
                    sock.settimeout(30)
                    reply = _recv(sock)
        except (OSError, ValueError) as e:
            if side_effects:
                raise RagK8sError(
                    f"the warm server at {socket_path(settings)} closed the connection ({e}); "
                    "the command may have run: check `rag-k8s audit tail`"
                ) from None
            raise ServerGone(f"lost the connection ({e})") from None
    if not isinstance(reply, dict):
        raise ServerGone("a reply that is not an object")
    if reply.get("ok"):
        return reply.get("result"), reply.get("seconds")
    if "refused" in reply:
        raise ServerGone(str(reply["refused"]))
    raise _rebuilt_error(reply.get("error") or {})


def _rebuilt_error(info: dict[str, Any]) -> RagK8sError:
    """The server's error as the same exception class (same message, same exit code)."""
    from . import errors

    cls = getattr(errors, str(info.get("type")), None)
    message = str(info.get("message", "the warm server failed"))
    if isinstance(cls, type) and issubclass(cls, RagK8sError):
        if cls is errors.InvalidRequest:
            field = info.get("field") or ""
            problem = message[len(field) + 2:] if field and message.startswith(f"{field}: ") \
                else message
            return errors.InvalidRequest(field, problem)
        err = RagK8sError.__new__(cls)
        RagK8sError.__init__(err, message)
        return err
    err = RagK8sError(message)
    err.exit_status = ExitStatus(int(info.get("exit", 1)))  # type: ignore[misc]
    return err


def use_socket() -> bool:
    """Whether the CLI tries the warm server at all (RAG_K8S_NO_SOCKET=1: never)."""
    return os.environ.get("RAG_K8S_NO_SOCKET", "") not in ("1", "true", "yes")


def _try(settings: Settings, op: str, side_effects: bool, **args: Any) -> tuple[bool, Any]:
    if not use_socket():
        return False, None
    try:
        return True, request(settings, op, side_effects=side_effects, **args)
    except ServerGone as e:
        log.info("warm server not used (%s); running in-process", e)
        return False, None


# The CLI's calls: the warm server when it answers, else the same function in-process.


def plan(payload: Any, *, settings: Settings | None = None) -> dict[str, Any]:
    from .progress import spinner

    settings = settings or Settings.resolve()
    with spinner("planning"):
        if not _has_files(payload):
            used, result = _try(settings, "plan", False, payload=payload)
            if used:
                return result  # type: ignore[no-any-return]
        _prefetch_for(payload, settings)
        from . import tool

        return tool.plan(payload, settings=settings)


def k8s_exec(payload: Any, *, settings: Settings | None = None,
             expected_argv: list[str] | None = None) -> dict[str, Any]:
    from .progress import spinner

    settings = settings or Settings.resolve()
    with spinner("planning"):
        if not _has_files(payload):
            used, result = _try(settings, "exec", True, payload=payload,
                                expected_argv=expected_argv)
            if used:
                return result  # type: ignore[no-any-return]
        _prefetch_for(payload, settings)
        from . import tool

        return tool.k8s_exec(payload, settings=settings, expected_argv=expected_argv)


def retrieve(query: str, intent: str | None = None, resource: str | None = None, k: int = 4,
             *, settings: Settings | None = None) -> list[Any]:
    from .progress import spinner
    from .retrieve import Hit

    settings = settings or Settings.resolve()
    with spinner("searching the cards"):
        used, result = _try(settings, "retrieve", False, query=query, intent=intent,
                            resource=resource, k=k)
        if used:
            return [Hit(**h) for h in result]
        from .embed import prefetch

        prefetch(settings.index_dir)
        from .retrieve import retrieve as retrieve_in_process

        return retrieve_in_process(query, intent, resource, k, settings=settings)


def _prefetch_for(payload: Any, settings: Settings) -> None:
    """Free text will need the embedder: start loading it while the pipeline imports."""
    if isinstance(payload, dict) and isinstance(payload.get("query"), str) and payload["query"]:
        from .embed import prefetch

        prefetch(settings.index_dir)


def _has_files(payload: Any) -> bool:
    """Requests that may name local paths (`files`, or an `argv` with -f/-k) run in-process:
    the server's working directory is not the client's."""
    return isinstance(payload, dict) and bool(payload.get("files") or payload.get("argv"))
