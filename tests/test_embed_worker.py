"""The query worker (rag_k8s.embed_worker): a cold plain-words CLI command has its query embedded
and scored by a helper process. The answers, results, audit lines and exit codes must be the
ones this process computes by itself, and any worker that cannot answer for the very index the
command checked must leave the work to the command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from rag_k8s import daemon, embed_worker
from rag_k8s.config import Settings
from rag_k8s.index import ensure_index
from rag_k8s.retrieve import retrieve

BIN = Path(sys.executable).parent
VOLATILE = {"timestamp", "operation_id", "hash", "prev_hash", "duration"}
# The last three came out of a reviewer's search: their vectors differ in the last bits when the
# embedder is loaded without weight prepacking, enough to move a rounded score.
QUERIES = ["restart the api deployment in prod", "why is my pod crashlooping",
           "scale worker to 5", "who can delete pods here", "show me the logs of web-1",
           "drain node-3 for maintenance", "events in the dev namespace",
           "list services in prod", "cordon my pod", "fix the hpa please"]
FILTERS = [(None, None), ("get", None), ("restart", "deployment"), (None, "pod"),
           ("delete", "*"), ("logs", "po")]


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("RAG_K8S_NO_SOCKET", "1")  # a server test's socket must not send it away
    s = Settings.resolve()
    ensure_index(s)
    return s


class Asked:
    """Counts the requests this process sends its worker, by op."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ops: list[str] = []
        call = embed_worker.Worker.call

        def counted(worker: embed_worker.Worker, message: dict[str, Any]) -> Any:
            self.ops.append(message["op"])
            return call(worker, message)

        monkeypatch.setattr(embed_worker.Worker, "call", counted)


@pytest.fixture
def worker(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[embed_worker.Worker]:
    """A real worker process for the session's home, as `rag-k8s plan "..."` starts one."""
    w = embed_worker.Worker()
    monkeypatch.setattr(embed_worker, "_WORKER", w)
    try:
        yield w
    finally:
        w.close()
        w.proc.wait(timeout=30)


# ---------------------------------------------------------------- when the CLI starts one


@pytest.mark.parametrize(("argv", "wanted"), [
    (["plan", "restart the api deployment in prod"], True),
    (["plan", "--json", "restart the api"], True),
    (["exec", "-n", "prod", "restart the api deployment"], True),
    (["retrieve", "why is my pod crashlooping"], True),
    (["restart the api deployment in prod", "--json"], True),  # a bare query
    (["plan", "--intent", "restart", "--resource", "deployment", "--name", "api"], False),
    (["plan", "get", "pods", "-n", "prod"], False),  # kubectl's own words: no embedding
    (["audit", "tail"], False),
    (["serve", "--port", "8000"], False),
    (["eval", "--cases", "my cases.jsonl"], False),  # not a one-shot query command
    ([], False),
])
def test_a_worker_is_started_for_free_text_only(argv: list[str], wanted: bool) -> None:
    assert embed_worker.wanted(argv) is wanted


def test_the_switch_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_K8S_QUERY_WORKER", "0")
    assert embed_worker.wanted(["plan", "restart the api deployment"]) is False


# ---------------------------------------------------------------- the same answers


def test_the_worker_ranks_every_query_and_filter_as_this_process_does(
    settings: Settings, worker: embed_worker.Worker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked = Asked(monkeypatch)
    by_worker = [retrieve(q, intent, resource, k, settings=settings)
                 for q in QUERIES for intent, resource in FILTERS for k in (2, 4)]
    assert asked.ops.count("rank") == len(QUERIES) * len(FILTERS) * 2
    assert embed_worker.pending()

    monkeypatch.setattr(embed_worker, "_WORKER", None)
    here = [retrieve(q, intent, resource, k, settings=settings)
            for q in QUERIES for intent, resource in FILTERS for k in (2, 4)]
    assert by_worker == here  # card ids, scores to the last digit, snippets


def test_token_counts_come_from_the_worker_when_this_process_loaded_no_embedder(
    settings: Settings, worker: embed_worker.Worker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rag_k8s import embed

    monkeypatch.setattr(embed, "_LOADED", {})
    asked = Asked(monkeypatch)
    texts = ["kubectl rollout restart deployment/api -n prod", "Ünïcode pods 🚀",
             " ".join(["word"] * 300)]  # past the embedder's truncation: the counting tokenizer
    by_worker = [embed.token_count(t) for t in texts]
    assert asked.ops == ["count"] * 3
    monkeypatch.setattr(embed_worker, "_WORKER", None)
    assert by_worker == [embed.token_count(t) for t in texts]


# ---------------------------------------------------------------- a worker that cannot answer


def _answered_here(monkeypatch: pytest.MonkeyPatch, settings: Settings, *args: Any) -> None:
    """`retrieve(*args)` asks the worker nothing, leaves none pending, and answers as this
    process does with no worker at all."""
    asked = Asked(monkeypatch)
    hits = retrieve(*args, settings=settings)
    assert asked.ops == [] and not embed_worker.pending()
    monkeypatch.setattr(embed_worker, "_WORKER", None)
    assert hits == retrieve(*args, settings=settings)


def _replaced_by_a_copy(path: Path) -> None:
    """What a build does: a new file renamed over the old (same bytes, new stamp)."""
    copy = path.with_name(path.name + ".tmp")
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)


def test_a_worker_gone_before_its_hello_leaves_the_work_to_this_process(
    settings: Settings, worker: embed_worker.Worker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    worker.proc.kill()
    worker.proc.wait(timeout=30)
    _answered_here(monkeypatch, settings, "scale worker to 5")


def test_a_worker_gone_mid_command_leaves_the_work_to_this_process(
    settings: Settings, worker: embed_worker.Worker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert worker.hello() is not None
    worker.proc.kill()
    worker.proc.wait(timeout=30)
    hits = retrieve("drain node-3 for maintenance", "drain", None, 4, settings=settings)
    assert not embed_worker.pending()
    monkeypatch.setattr(embed_worker, "_WORKER", None)
    assert hits == retrieve("drain node-3 for maintenance", "drain", None, 4, settings=settings)


def test_a_worker_holding_an_index_since_replaced_is_not_asked(
    settings: Settings, worker: embed_worker.Worker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert worker.hello() is not None
    _replaced_by_a_copy(settings.index_dir / "manifest.json")
    _answered_here(monkeypatch, settings, "restart the api deployment in prod")


def test_a_worker_whose_export_was_replaced_is_not_asked(
    settings: Settings, worker: embed_worker.Worker, monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert worker.hello() is not None
    _replaced_by_a_copy(settings.index_dir / "embedder" / "export.json")
    _answered_here(monkeypatch, settings, "list services in prod")


def stand_in_worker(script: str) -> embed_worker.Worker:
    """A stand-in for the worker process: a Python script that says what the test makes it
    say, on the CLI's side of the protocol."""
    return embed_worker.Worker([sys.executable, "-c", script])


def _hello_of(settings: Settings) -> str:
    """The hello the real worker would send for the session's index (read from a real one)."""
    real = embed_worker.Worker()
    try:
        hello = real.hello()
        assert hello is not None
        return json.dumps(hello)
    finally:
        real.close()


@pytest.mark.parametrize("how", ["garbage", "another package", "another version", "silent",
                                 "gone"])
def test_a_worker_that_says_the_wrong_thing_is_stopped_and_not_asked(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, how: str,
) -> None:
    hello = json.loads(_hello_of(settings))
    if how == "another package":
        hello["package"][0] = "/elsewhere/rag_k8s"
    elif how == "another version":
        hello["package"][1] = "0.0.0"
    line = {"garbage": "hello, world", "silent": "", "gone": ""}.get(how, json.dumps(hello))
    wait = "import time; time.sleep(30)" if how == "silent" else "pass"
    monkeypatch.setattr(embed_worker, "REPLY_TIMEOUT", 1.0)
    w = stand_in_worker(f"import sys; sys.stdout.write({line!r} + '\\n' if {line!r} else '');"
                        f" sys.stdout.flush(); {wait}")
    monkeypatch.setattr(embed_worker, "_WORKER", w)
    _answered_here(monkeypatch, settings, "cordon my pod")
    assert w.failed and w.proc.wait(timeout=30) is not None


def test_a_reply_in_pieces_or_with_a_line_after_it_is_read_whole(
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CLI reads the pipe itself: a line that arrives in two writes is one reply, and a
    second line already in the pipe is not lost behind select()."""
    script = ("import sys, time\n"
              "sys.stdout.write('{\"a\": '); sys.stdout.flush(); time.sleep(0.3)\n"
              "sys.stdout.write('1}\\n{\"b\": 2}\\n'); sys.stdout.flush()\n"
              "sys.stdin.read()\n")
    w = stand_in_worker(script)
    try:
        assert w._read() == {"a": 1}
        monkeypatch.setattr(embed_worker, "REPLY_TIMEOUT", 1.0)
        assert w._read() == {"b": 2}
        assert w._read() is None  # nothing more: the timeout, not a hang
    finally:
        w.close()


def test_a_stale_socket_does_not_send_the_worker_away(
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    import socket

    monkeypatch.delenv("RAG_K8S_NO_SOCKET")
    path = daemon.socket_path(settings)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, no one listens: a daemon that crashed
    os.chmod(path, 0o600)
    try:
        w = embed_worker.Worker()
        assert w.hello() is not None
        w.close()
    finally:
        path.unlink()


def test_a_warm_server_with_other_settings_does_not_send_the_worker_away(
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAG_K8S_NO_SOCKET")
    srv = daemon.start_listener(settings)
    srv.fingerprint = "another environment"  # it would refuse this command
    try:
        w = embed_worker.Worker()
        assert w.hello() is not None
        w.close()
    finally:
        srv.close()


def test_the_switch_is_not_part_of_the_warm_servers_fingerprint(settings: Settings) -> None:
    env = dict(os.environ)
    assert daemon.fingerprint(settings, {**env, "RAG_K8S_QUERY_WORKER": "0"}) == \
        daemon.fingerprint(settings, env)


def test_the_worker_is_stopped_once_the_plan_is_made(
    settings: Settings, worker: embed_worker.Worker,
) -> None:
    from rag_k8s import tool

    result = tool.plan({"query": "restart the api deployment in prod"}, settings=settings)
    assert result["plan"]["command"] == "kubectl rollout restart deployment/api -n prod"
    assert not embed_worker.pending()
    assert worker.proc.wait(timeout=30) is not None


def test_a_worker_sees_the_warm_server_and_steps_aside(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    monkeypatch.delenv("RAG_K8S_NO_SOCKET")
    srv = daemon.start_listener(settings)
    try:
        w = embed_worker.Worker()
        with caplog.at_level(logging.INFO, logger="rag_k8s.embed_worker"):
            assert w.hello() is None and w.failed
        assert caplog.messages == ["query worker not used: {'server': True}"]
    finally:
        srv.close()


def test_a_worker_exits_when_the_command_closes_its_stdin(
    settings: Settings, worker: embed_worker.Worker,
) -> None:
    assert worker.hello() is not None
    assert worker.proc.stdin is not None
    worker.proc.stdin.close()
    assert worker.proc.wait(timeout=30) == 0


# ---------------------------------------------------------------- the CLI, both ways


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "rag-k8s"), *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "HF_HUB_OFFLINE": "1", **env},
                          stdin=subprocess.DEVNULL, check=False)


def _without_ids(body: dict[str, Any]) -> dict[str, Any]:
    body = dict(body)
    body.pop("operation_id", None)
    if body.get("execution"):
        body["execution"] = {k: v for k, v in body["execution"].items() if k != "duration"}
    return body


def _audit(settings: Settings) -> list[dict[str, Any]]:
    lines = settings.audit_log.read_text().splitlines() if settings.audit_log.exists() else []
    return [{k: v for k, v in json.loads(x).items() if k not in VOLATILE} for x in lines if x]


@pytest.mark.parametrize(("args", "code"), [
    (["plan", "--json", "restart the api deployment in prod"], 0),
    (["plan", "--json", "make me a sandwich with extra cheese"], 7),
    (["retrieve", "--json", "why is my pod crashlooping"], 0),
    (["restart the api deployment in the default namespace", "--json"], 3),
], ids=["planned-0", "no-match-7", "retrieve-0", "denied-3"])
def test_the_cli_answers_the_same_with_and_without_a_worker(
    settings: Settings, args: list[str], code: int,
) -> None:
    with_worker, alone = _run(args), _run(args, RAG_K8S_QUERY_WORKER="0")
    assert with_worker.returncode == alone.returncode == code, with_worker.stderr
    first, second = json.loads(with_worker.stdout), json.loads(alone.stdout)
    if isinstance(first, dict):
        first, second = _without_ids(first), _without_ids(second)
    assert first == second


def test_exec_results_audit_lines_and_commands_are_the_same_with_and_without_a_worker(
    settings: Settings, recording_kubectl: Any,
) -> None:
    recording_kubectl.respond(stdout="deployment.apps/api restarted\n")
    args = ["exec", "--json", "restart the api deployment in dev"]
    with_worker, alone = _run(args), _run(args, RAG_K8S_QUERY_WORKER="0")
    assert with_worker.returncode == alone.returncode == 0, with_worker.stderr
    assert _without_ids(json.loads(with_worker.stdout)) == _without_ids(json.loads(alone.stdout))
    assert recording_kubectl.commands == [["rollout", "restart", "deployment/api", "-n", "dev"]] * 2
    first, second = _audit(Settings.resolve())
    assert first == second and first["status"] == "executed"


_MODULES_AT_EXIT = (
    "import atexit, sys\n"
    "atexit.register(lambda: print(sorted(m for m in ('numpy', 'onnxruntime', 'tokenizers')"
    " if m in sys.modules), file=sys.stderr))\n"
    "sys.argv = ['rag-k8s', 'plan', '--json', 'restart the api deployment in prod']\n"
    "from rag_k8s.launch import main\n"
    "main()\n")


@pytest.mark.parametrize(("switch", "imported"), [
    ("1", "[]"), ("0", "['numpy', 'onnxruntime', 'tokenizers']")])
def test_with_a_worker_the_command_imports_neither_numpy_nor_onnx_runtime(
    settings: Settings, switch: str, imported: str,
) -> None:
    proc = subprocess.run([sys.executable, "-c", _MODULES_AT_EXIT], capture_output=True,
                          text=True, timeout=180, stdin=subprocess.DEVNULL, check=False,
                          env={**os.environ, "RAG_K8S_QUERY_WORKER": switch})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["plan"]["command"] == \
        "kubectl rollout restart deployment/api -n prod"
    assert proc.stderr.splitlines()[-1] == imported
