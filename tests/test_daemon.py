"""The warm server's Unix socket: same results, audit lines and exit codes as in-process; only
the owner may connect (file mode and SO_PEERCRED); fallback when the server is gone or stale."""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
from typer.testing import CliRunner

from rag_k8s import daemon
from rag_k8s.cli import app
from rag_k8s.config import Settings
from rag_k8s.errors import InvalidRequest, RagK8sError
from rag_k8s.index import ensure_index

RESTART_DEV = ["--intent", "restart", "--resource", "deployment", "-n", "dev", "--name", "api"]
# Fields of an audit line that differ between any two runs (time, identity, chain).
VOLATILE = {"timestamp", "operation_id", "hash", "prev_hash", "duration"}


class Counter:
    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> None:
        self.n += 1


@pytest.fixture
def settings() -> Settings:
    s = Settings.resolve()
    ensure_index(s)
    return s


@pytest.fixture
def server(settings: Settings) -> Iterator[tuple[daemon.SocketServer, Counter]]:
    """A real listener on $RAG_K8S_HOME/rag-k8s.sock in this process (a thread per request)."""
    counter = Counter()
    srv = daemon.start_listener(settings, on_request=counter)
    try:
        yield srv, counter
    finally:
        srv.close()


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def audit_lines(settings: Settings) -> list[dict[str, Any]]:
    path = settings.audit_log
    if not path.exists():
        return []
    return [{k: v for k, v in json.loads(line).items() if k not in VOLATILE}
            for line in path.read_text().splitlines() if line.strip()]


def without_ids(result: dict[str, Any]) -> dict[str, Any]:
    out = dict(result)
    out.pop("operation_id")
    if out.get("execution"):
        out["execution"] = {k: v for k, v in out["execution"].items() if k != "duration"}
    return out


# ---------------------------------------------------------------- identical through both paths


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["plan", "--json", "restart the api deployment in prod"], 0),
        (["plan", "--json", *RESTART_DEV], 0),
        (["plan", "--json", "--intent", "explode"], 2),
        (["plan", "--json", "--intent", "restart", "--resource", "deployment", "-n", "default",
          "--name", "api"], 3),
        (["plan", "--json", "make me a sandwich with extra cheese"], 7),
    ],
    ids=["free-text-0", "structured-0", "invalid-2", "denied-3", "no-match-7"],
)
def test_plan_is_the_same_through_the_socket_and_in_process(
    server: tuple[daemon.SocketServer, Counter], args: list[str], code: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, counter = server
    warm = cli(*args)
    assert counter.n == 1  # it went through the socket
    monkeypatch.setenv("RAG_K8S_NO_SOCKET", "1")
    cold = cli(*args)
    assert counter.n == 1  # and this one did not

    assert warm.exit_code == cold.exit_code == code
    assert without_ids(json.loads(warm.stdout)) == without_ids(json.loads(cold.stdout))


def test_exec_results_and_audit_lines_are_the_same_through_both_paths(
    server: tuple[daemon.SocketServer, Counter], settings: Settings, recording_kubectl: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, counter = server
    recording_kubectl.respond(stdout="deployment.apps/api restarted\n")
    srv.fingerprint = daemon.fingerprint(Settings.resolve())  # the kubectl fixture set env vars
    srv.settings = Settings.resolve()

    warm = cli("exec", "--json", *RESTART_DEV)
    assert counter.n == 1
    monkeypatch.setenv("RAG_K8S_NO_SOCKET", "1")
    cold = cli("exec", "--json", *RESTART_DEV)

    assert warm.exit_code == cold.exit_code == 0
    assert without_ids(json.loads(warm.stdout)) == without_ids(json.loads(cold.stdout))
    assert json.loads(warm.stdout)["status"] == "executed"
    assert recording_kubectl.commands == [["rollout", "restart", "deployment/api", "-n", "dev"]] * 2
    first, second = audit_lines(Settings.resolve())
    assert first == second and first["status"] == "executed"


def test_retrieve_and_its_errors_are_the_same_through_both_paths(
    server: tuple[daemon.SocketServer, Counter], settings: Settings,
) -> None:
    srv, counter = server
    hits = daemon.retrieve("scale the worker deployment", settings=settings)
    assert counter.n == 1
    from rag_k8s.retrieve import retrieve

    assert hits == retrieve("scale the worker deployment", settings=settings)

    with pytest.raises(InvalidRequest) as through_socket:
        daemon.request(settings, "retrieve", side_effects=False, query="x", intent="explode")
    with pytest.raises(InvalidRequest) as in_process:
        retrieve("x", "explode", settings=settings)
    assert str(through_socket.value) == str(in_process.value)
    assert through_socket.value.field == in_process.value.field == "intent"
    warm = cli("retrieve", "--intent", "explode", "x")
    assert warm.exit_code == 2


# ---------------------------------------------------------------- who may connect


def test_the_socket_is_a_private_socket_of_its_owner(
    server: tuple[daemon.SocketServer, Counter], settings: Settings,
) -> None:
    st = daemon.socket_path(settings).lstat()
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_uid == os.geteuid()


def test_a_peer_of_another_uid_is_refused_by_its_credentials(
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server's owner is set to another uid: this process is then "another user", and the
    SO_PEERCRED check (not the file mode, which lets us in) must refuse it."""
    counter = Counter()
    srv = daemon.start_listener(settings, owner_uid=os.geteuid() + 4242, on_request=counter)
    try:
        with pytest.raises(daemon.ServerGone, match=rf"uid {os.geteuid()} may not use"):
            daemon.request(settings, "ping", side_effects=False)
        assert srv.refused_peers == 1 and counter.n == 0
        # The CLI then runs in-process, with the same answer it would give anyway.
        result = cli("plan", "--json", *RESTART_DEV)
        assert result.exit_code == 0 and json.loads(result.stdout)["status"] == "planned"
        assert srv.refused_peers == 2 and counter.n == 0
    finally:
        srv.close()


@pytest.mark.skipif(os.geteuid() != 0 or not hasattr(socket, "SO_PEERCRED"),
                    reason="needs root to act as another user, and Linux SO_PEERCRED")
def test_a_real_other_user_cannot_connect(settings: Settings) -> None:
    import tempfile

    # A home other users may traverse (pytest's own folders are 0700 and would hide the socket).
    home = Path(tempfile.mkdtemp(prefix="rag-k8s-peer-"))
    home.chmod(0o755)
    counter = Counter()
    srv = daemon.start_listener(settings.with_(home=home), on_request=counter)
    path = str(daemon.socket_path(srv.settings))

    def as_nobody(chmod_open: bool) -> str:
        if chmod_open:
            os.chmod(path, 0o666)  # the file mode no longer protects: only SO_PEERCRED does
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: become uid 65534 and try
            os.close(read)
            try:
                os.setgid(65534)
                os.setuid(65534)
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    s.connect(path)
                    try:
                        s.sendall(b'{"v": 1, "op": "ping"}\n')
                    except BrokenPipeError:
                        pass  # the server may hang up before reading: its answer is queued
                    answer = s.recv(4096).decode()
            except OSError as e:
                answer = f"OSError {e.errno}"
            os.write(write, answer.encode())
            os._exit(0)
        os.close(write)
        os.waitpid(pid, 0)
        with os.fdopen(read) as fh:
            return fh.read()

    import errno
    import shutil

    try:
        assert as_nobody(False) == f"OSError {errno.EACCES}"  # mode 0600: connect is refused
        answer = json.loads(as_nobody(True))
        assert answer == {"ok": False, "refused": "uid 65534 may not use this server"}
        assert srv.refused_peers == 1 and counter.n == 0
    finally:
        srv.close()
        shutil.rmtree(home, ignore_errors=True)


# ---------------------------------------------------------------- gone, stale, different


def test_no_server_runs_in_process(settings: Settings) -> None:
    assert not daemon.socket_path(settings).exists()
    with pytest.raises(daemon.ServerGone, match="no socket"):
        daemon.request(settings, "ping", side_effects=False)
    result = cli("plan", "--json", "restart the api deployment in prod")
    assert result.exit_code == 0 and json.loads(result.stdout)["status"] == "planned"


def test_a_stale_socket_file_falls_back_and_a_new_server_replaces_it(settings: Settings) -> None:
    path = daemon.socket_path(settings)
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))  # a socket file whose server is gone: nothing listens
    os.chmod(path, 0o600)
    dead.close()
    try:
        with pytest.raises(daemon.ServerGone, match="stale socket"):
            daemon.request(settings, "ping", side_effects=False)
        result = cli("plan", "--json", *RESTART_DEV)
        assert result.exit_code == 0 and json.loads(result.stdout)["status"] == "planned"

        counter = Counter()
        srv = daemon.start_listener(settings, on_request=counter)  # unlinks the stale file
        try:
            assert daemon.request(settings, "ping", side_effects=False) == {"pid": os.getpid()}
        finally:
            srv.close()
        assert not path.exists()  # a clean stop removes it
    finally:
        path.unlink(missing_ok=True)


def test_a_second_server_on_a_live_socket_is_refused(
    server: tuple[daemon.SocketServer, Counter], settings: Settings,
) -> None:
    with pytest.raises(RagK8sError, match="already listens"):
        daemon.start_listener(settings)


def test_a_socket_of_loose_mode_is_not_used(
    server: tuple[daemon.SocketServer, Counter], settings: Settings,
) -> None:
    os.chmod(daemon.socket_path(settings), 0o666)
    with pytest.raises(daemon.ServerGone, match="not a private socket"):
        daemon.request(settings, "ping", side_effects=False)


def test_a_server_with_other_settings_refuses_and_the_cli_runs_in_process(
    server: tuple[daemon.SocketServer, Counter], monkeypatch: pytest.MonkeyPatch,
) -> None:
    srv, counter = server
    monkeypatch.setenv("RAG_K8S_PLANNER", "template")  # the client now differs from the server
    with pytest.raises(daemon.ServerGone, match="settings or environment differ"):
        daemon.request(Settings.resolve(), "ping", side_effects=False)
    result = cli("plan", "--json", *RESTART_DEV)
    assert result.exit_code == 0 and counter.n == 0


def test_a_lost_connection_after_an_exec_was_sent_is_an_error_not_a_second_run(
    settings: Settings, recording_kubectl: Any,
) -> None:
    """A stand-in server that reads the request and hangs up: the command may have run, so the
    client must not run it again in-process."""
    import threading

    path = daemon.socket_path(settings)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    os.chmod(path, 0o600)
    listener.listen(1)

    def hang_up() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.close()

    t = threading.Thread(target=hang_up, daemon=True)
    t.start()
    try:
        result = cli("exec", "--json", *RESTART_DEV)
        assert result.exit_code == 1
        assert "closed the connection" in result.stderr and "may have run" in result.stderr
        assert recording_kubectl.calls == []
    finally:
        listener.close()
        path.unlink(missing_ok=True)


def test_a_request_with_local_manifest_files_never_goes_to_the_server(
    server: tuple[daemon.SocketServer, Counter], settings: Settings,
) -> None:
    srv, counter = server
    daemon.plan({"intent": "restart", "resource": "deployment", "namespace": "dev",
                 "name": "api", "files": ["k8s/app.yaml"]}, settings=settings)
    assert counter.n == 0


def test_the_daemon_command_serves_the_cli_from_another_process(
    settings: Settings, tmp_path: Path,
) -> None:
    """`rag-k8s daemon` in its own process; the console script plans through it."""
    import subprocess
    import time

    bin_dir = Path(sys.executable).parent
    proc = subprocess.Popen([str(bin_dir / "rag-k8s"), "daemon", "--no-preload"],
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        assert "listening on" in line, line
        path = daemon.socket_path(settings)
        assert stat.S_IMODE(path.lstat().st_mode) == 0o600
        assert daemon.request(settings, "ping", side_effects=False)["pid"] == proc.pid
        out = subprocess.run([str(bin_dir / "rag-k8s"), "plan", "--json",
                              "restart the api deployment in prod"],
                             capture_output=True, text=True, timeout=300)
        assert out.returncode == 0
        assert json.loads(out.stdout)["plan"]["command"] == \
            "kubectl rollout restart deployment/api -n prod"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for _ in range(50):  # SIGTERM: the daemon removes its socket on the way out
        if not daemon.socket_path(settings).exists():
            break
        time.sleep(0.1)
    assert not daemon.socket_path(settings).exists()


@pytest.mark.mlx
def test_the_mlx_planner_answers_the_same_through_the_warm_server(
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The point of the warm server: the model stays loaded. Same plan as in-process."""
    from rag_k8s.models import TINY_DIR_NAME, build_tiny_model, is_complete

    model = settings.models_dir / TINY_DIR_NAME
    if not is_complete(model):
        build_tiny_model(model)
    monkeypatch.setenv("RAG_K8S_PLANNER", "mlx")
    monkeypatch.setenv("RAG_K8S_MODEL", str(model))
    mlx = Settings.resolve()
    counter = Counter()
    srv = daemon.start_listener(mlx, on_request=counter, preload=True)  # the model thread
    try:
        from rag_k8s.planner import mlx as mlx_planner

        assert str(model) in mlx_planner._MODELS  # loaded before the first request
        args = ["plan", "--json", "restart the api deployment in prod"]
        warm = cli(*args)
        assert counter.n == 1
        monkeypatch.setenv("RAG_K8S_NO_SOCKET", "1")
        cold = cli(*args)
    finally:
        srv.close()
    assert warm.exit_code == cold.exit_code, warm.stderr
    body = json.loads(warm.stdout)
    assert without_ids(body) == without_ids(json.loads(cold.stdout))
    assert body["plan"] is None or body["plan"]["planner"] in ("mlx", "template")
