"""The argv door (CONTRACT §1 `argv`) through every door: Python, CLI, HTTP and MCP.

The recording kubectl (tests/fakes/recording_kubectl.py) shows what ran: for every refused argv
nothing, for every allowed one exactly the argv as sent (plus `--dry-run=server` under dry-run).
The refusal table walks CONTRACT §5 and §6: forbidden flags, namespaces outside the policy, verbs
that never run, secret reads, bulk mutations.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import anyio
import jsonschema
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from rag_k8s import k8s_exec, plan
from rag_k8s.argv_door import match_card
from rag_k8s.cards import cached_corpus
from rag_k8s.cli import app
from rag_k8s.config import Settings
from rag_k8s.request import parse_request
from rag_k8s.errors import InvalidRequest
from rag_k8s.server import create_app, result_schema

REPO = Path(__file__).resolve().parent.parent
LOCAL = "http://127.0.0.1"  # the HTTP door answers only its own Host (CONTRACT §9)


def changes(calls: list[list[str]]) -> list[list[str]]:
    """The kubectl calls without undo's state capture (`get ... -o json` before a change)."""
    return [c for c in calls if not (c[:1] == ["get"] and "--ignore-not-found" in c)]

# (argv, a fragment the refusal's reasons must contain)
FORBIDDEN_FLAGS = [
    (["kubectl", "get", "pods", "-n", "dev", f"--{flag}=x"], f"--{flag}")
    for flag in ("kubeconfig", "context", "cluster", "server", "token", "as", "as-group", "as-uid",
                 "user", "username", "password", "certificate-authority", "client-key",
                 "client-certificate")
] + [
    (["kubectl", "get", "pods", "-n", "dev", "--insecure-skip-tls-verify"],
     "--insecure-skip-tls-verify"),
    (["kubectl", "get", "pods", "-n", "dev", "-s", "https://evil.example:6443"], "--server"),
    (["kubectl", "--context", "other", "get", "pods", "-n", "dev"], "--context"),
    (["kubectl", "get", "pods", "-n", "dev", "--token", "abc"], "--token"),
    (["kubectl", "get", "pods", "-n", "dev", "--cache-dir=/tmp/x"], "--cache-dir"),
    (["kubectl", "get", "pods", "-n", "dev", "-v=9"], "--v"),
]
NAMESPACES = [
    (["kubectl", "get", "pods", "-n", "default"], "namespace 'default' is not in the org policy"),
    (["kubectl", "get", "pods", "-n", "kube-system"],
     "namespace 'kube-system' is not in the org policy"),
    (["kubectl", "rollout", "restart", "deployment/api", "-n", "payments"],
     "namespace 'payments' is not in the org policy"),
    (["kubectl", "get", "pods"], "must carry -n <namespace>"),
    (["kubectl", "get", "pods", "-A"], "--all-namespaces (-A)"),
    (["kubectl", "delete", "deployment", "api", "-A"], "--all-namespaces (-A) is refused"),
    (["kubectl", "scale", "deployment/api", "--replicas=2", "-n", "prod"],
     "namespace 'prod' does not allow scale"),
    (["kubectl", "delete", "deployment", "api", "-n", "staging"],
     "namespace 'staging' does not allow delete"),
    (["kubectl", "delete", "namespace", "dev"], "deleting a namespace is never allowed"),
    (["kubectl", "delete", "pod", "api-7d9f8b6c5-x2x9z", "-n", "dev"], "deleting a pod is refused"),
    (["kubectl", "scale", "deployment/api", "--replicas=51", "-n", "dev"],
     "above the org's cap of 50"),
    (["kubectl", "delete", "deployment", "--all", "-n", "dev"], "--all is refused"),
    (["kubectl", "delete", "deployment", "-l", "!app", "-n", "dev"], "matches everything"),
]
VERBS = [
    (["kubectl", verb, *rest], f"kubectl {verb}")
    for verb, rest in (
        ("exec", ["api-7d9f8b6c5-x2x9z", "-n", "dev", "--", "sh"]),
        ("attach", ["api-7d9f8b6c5-x2x9z", "-n", "dev"]),
        ("edit", ["deployment/api", "-n", "dev"]),
        ("port-forward", ["pod/api", "8080:80", "-n", "dev"]),
        ("proxy", []),
        ("cp", ["dev/api:/etc/passwd", "passwd"]),
        ("debug", ["pod/api", "-n", "dev"]),
        ("config", ["view", "--raw"]),
        ("config", ["use-context", "prod"]),
        ("certificate", ["approve", "csr-1"]),
        ("cluster-info", ["dump"]),
        ("replace", ["--force", "-n", "dev"]),
        ("frobnicate", ["pods", "-n", "dev"]),
        ("plugin", ["list"]),
    )
]
SECRETS = [
    (["kubectl", "get", "secret", "db", "-n", "dev", "-o", "yaml"], "reading secret contents"),
    (["kubectl", "get", "secret", "db", "-n", "dev", "-o", "json"], "reading secret contents"),
    (["kubectl", "get", "secret", "db", "-n", "dev", "-o", "jsonpath={.data}"],
     "reading secret contents"),
    (["kubectl", "get", "secret", "db", "-n", "dev", "-o=go-template={{.data}}"],
     "reading secret contents"),
    (["kubectl", "get", "secrets", "-n", "dev", "--template={{.items}}"],
     "reading secret contents"),
    (["kubectl", "get", "secret", "-n", "dev", "-o", "custom-columns=D:.data"],
     "reading secret contents"),
    (["kubectl", "describe", "secret", "db", "-n", "dev"],
     "kubectl describe on secret is not on the RBAC allow-list"),
    (["kubectl", "get", "secrets", "-n", "prod"], "namespace 'prod' does not allow get on secret"),
]
SHAPE = [
    (["kubectl", "get", "pods", "-n", "dev;rm"], "contains ';'"),
    (["kubectl", "get", "pods", "-n", "dev", "--raw=/api"], "--raw"),
    (["kubectl", "get", "-f", "pods.yaml", "-n", "dev"], "--filename is refused"),
    (["kubectl", "get", "pods", "-n", "dev", "--dry-run=client"], "unknown flag --dry-run"),
    (["kubectl", "scale", "deployment/api", "--replicas=2", "-n", "dev", "--dry-run=client"],
     "--dry-run=client is refused"),
]
REFUSED = FORBIDDEN_FLAGS + NAMESPACES + VERBS + SECRETS + SHAPE

# (argv, constraints, status, what kubectl receives or None)
ALLOWED = [
    (["kubectl", "get", "pods", "-n", "dev"], {}, "executed", None),
    (["kubectl", "-n", "prod", "get", "deployment", "api", "-o", "wide"], {}, "executed", None),
    (["kubectl", "logs", "pod/api-7d9f8b6c5-x2x9z", "-n", "prod", "--tail=20"], {}, "executed",
     None),
    (["kubectl", "get", "secrets", "-n", "dev"], {}, "executed", None),
    (["kubectl", "get", "secret", "db", "-n", "dev", "-o", "name"], {}, "executed", None),
    (["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"], {}, "executed", None),
    (["kubectl", "scale", "deployment/api", "--replicas=3", "-n", "staging"], {"confirm": True},
     "executed", None),
    (["kubectl", "scale", "deployment/api", "--replicas=3", "-n", "staging"], {},
     "needs_confirmation", []),
    (["kubectl", "scale", "deployment/api", "--replicas=3", "-n", "staging"], {"dryRun": True},
     "executed", ["scale", "deployment/api", "--replicas=3", "-n", "staging",
                  "--dry-run=server"]),
    (["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"], {"dryRun": True},
     "planned", []),
    (["kubectl", "cordon", "node-1"], {"confirm": True}, "executed", None),
]


def _ids(table: list[tuple[Any, ...]]) -> list[str]:
    return [" ".join(row[0][1:])[:60] for row in table]


def _payload(argv: list[str], constraints: dict[str, Any]) -> dict[str, Any]:
    return {"argv": argv, **({"constraints": constraints} if constraints else {})}


def _valid(body: dict[str, Any]) -> dict[str, Any]:
    jsonschema.Draft202012Validator(result_schema()).validate(body)
    return body


# ---------------------------------------------------------------- the doors


def via_python(argv: list[str], constraints: dict[str, Any]) -> dict[str, Any]:
    return k8s_exec(_payload(argv, constraints))


def via_cli(argv: list[str], constraints: dict[str, Any]) -> dict[str, Any]:
    options = ["--json", "--no-prompt"]
    if constraints.get("confirm"):
        options.append("--yes")
    if constraints.get("dryRun"):
        options.append("--dry-run")
    result = CliRunner().invoke(app, ["exec", *options, "--", *argv])
    body = json.loads(result.stdout)
    from rag_k8s.errors import STATUS_EXIT

    assert result.exit_code == int(STATUS_EXIT[body["status"]]), result.output
    return body


def via_http(argv: list[str], constraints: dict[str, Any]) -> dict[str, Any]:
    with TestClient(create_app(Settings.resolve()), base_url=LOCAL) as client:
        response = client.post("/k8s-exec", json=_payload(argv, constraints))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


DOORS: dict[str, Callable[[list[str], dict[str, Any]], dict[str, Any]]] = {
    "python": via_python, "cli": via_cli, "http": via_http,
}


@pytest.mark.parametrize("door", sorted(DOORS))
@pytest.mark.parametrize(("argv", "reason"), REFUSED, ids=_ids(REFUSED))
def test_refused_argv_never_runs(door: str, argv: list[str], reason: str,
                                 recording_kubectl: Any) -> None:
    result = _valid(DOORS[door](argv, {"confirm": True}))
    assert result["status"] == "denied", result
    assert result["plan"]["planner"] == "argv"
    assert result["plan"]["argv"] == argv
    assert result["decision"]["allowed"] is False
    assert any(reason in r for r in result["decision"]["reasons"]), result["decision"]["reasons"]
    assert result["execution"] is None
    assert recording_kubectl.calls == []


@pytest.mark.parametrize("door", sorted(DOORS))
@pytest.mark.parametrize(("argv", "constraints", "status", "ran"), ALLOWED, ids=_ids(ALLOWED))
def test_allowed_argv_runs_exactly_as_sent(door: str, argv: list[str],
                                           constraints: dict[str, Any], status: str,
                                           ran: list[str] | None,
                                           recording_kubectl: Any) -> None:
    recording_kubectl.respond(stdout="ok\n")
    result = _valid(DOORS[door](argv, constraints))
    assert result["status"] == status, result["decision"]
    assert result["plan"]["argv"] == (argv if ran is None or not ran else ["kubectl", *ran])
    assert result["plan"]["planner"] == "argv"
    expected = [argv[1:]] if ran is None else ([ran] if ran else [])
    assert changes(recording_kubectl.calls) == expected


# ---------------------------------------------------------------- MCP: one server, every case


def test_mcp_kubectl_tool_refuses_and_runs_like_the_other_doors(recording_kubectl: Any) -> None:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    recording_kubectl.respond(stdout="ok\n")
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("RAG_K8S_", "RECORDING_KUBECTL_", "HF_", "TRANSFORMERS_"))}
    params = StdioServerParameters(command=str(Path(sys.executable).parent / "rag-k8s"),
                                   args=["mcp"], env=env)
    allowed = [row for row in ALLOWED if row[2] == "executed" and row[3] is None]

    async def main() -> tuple[Any, list[Any], list[Any], Any]:
        async with Client(params, read_timeout_seconds=120) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            refused = []
            for argv, _ in REFUSED:
                res = await client.call_tool("kubectl", {"argv": argv,
                                                         "constraints": {"confirm": True}})
                refused.append(res.structured_content)
            ran = []
            for argv, constraints, _, _ in allowed:
                res = await client.call_tool("kubectl", _payload(argv, constraints))
                ran.append(res.structured_content)
            extra = (await client.call_tool(
                "kubectl", {"argv": ["kubectl", "get", "pods", "-n", "dev"],
                            "intent": "get"})).structured_content
            return tools["kubectl"], refused, ran, extra

    tool, refused, ran, extra = anyio.run(main)
    assert tool.input_schema["required"] == ["argv"]
    assert tool.annotations.destructive_hint is True
    for (argv, reason), result in zip(REFUSED, refused):
        assert result["status"] == "denied", (argv, result)
        assert any(reason in r for r in result["decision"]["reasons"]), (argv, result)
    for (argv, _, _, _), result in zip(allowed, ran):
        assert (result["status"], result["plan"]["argv"]) == ("executed", argv)
    assert changes(recording_kubectl.calls) == [argv[1:] for argv, *_ in allowed]
    # The tool's schema has no `intent`: the request is invalid, naming the field.
    assert extra["status"] == "invalid"
    assert extra["decision"]["reasons"][0].startswith("intent:")


# ---------------------------------------------------------------- request validation


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"argv": ["kubectl", "get", "pods"], "intent": "get"}, "intent"),
        ({"argv": ["kubectl", "get", "pods"], "query": "list pods"}, "query"),
        ({"argv": ["kubectl", "get", "pods"], "namespace": "dev"}, "namespace"),
        ({"argv": ["kubectl", "get", "pods"], "params": {"tail": 3}}, "params"),
        ({"argv": ["sh", "-c", "kubectl get pods"]}, "argv.0"),
        ({"argv": ["kubectl"]}, "argv"),
        ({"argv": "kubectl get pods"}, "argv"),
        ({"argv": ["kubectl", "get", 3]}, "argv.2"),
        ({"argv": ["kubectl", "get", ""]}, "argv.2"),
        ({"argv": ["kubectl", "get", "pods\x00"]}, "argv.2"),
        ({"argv": ["kubectl", "get", "x" * 1025]}, "argv.2"),
        ({"argv": ["kubectl"] + ["pods"] * 64}, "argv"),
    ],
    ids=["intent", "query", "namespace", "params", "not-kubectl", "verb-missing", "string",
         "number", "empty", "nul", "long", "too-many"],
)
def test_bad_argv_is_invalid_naming_the_field(payload: dict[str, Any], field: str,
                                              recording_kubectl: Any) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_request(payload)
    assert err.value.field == field
    result = k8s_exec(payload)
    assert result["status"] == "invalid" and result["plan"] is None
    assert result["decision"]["reasons"][0].startswith(f"{field}:")
    assert recording_kubectl.calls == []
    with TestClient(create_app(Settings.resolve()), base_url=LOCAL) as client:
        response = client.post("/k8s-exec", json=payload)
    assert (response.status_code, response.json()["field"]) == (400, field)


def test_cli_argv_door_refuses_request_options_beside_it(recording_kubectl: Any) -> None:
    result = CliRunner().invoke(app, ["exec", "--json", "-n", "dev", "--",
                                      "kubectl", "get", "pods", "-n", "dev"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["decision"]["reasons"][0].startswith("namespace:")
    stray = CliRunner().invoke(app, ["exec", "restart api", "--bogus"])
    assert stray.exit_code == 2 and "-- kubectl" in stray.output
    assert recording_kubectl.calls == []


# ---------------------------------------------------------------- plan, card_id, audit


@pytest.mark.parametrize(
    ("argv", "card_id"),
    [
        (["kubectl", "get", "pods", "-n", "dev"], "get-pod"),
        (["kubectl", "get", "po", "api", "--namespace=dev", "-o", "wide"], "get-pod"),
        (["kubectl", "-n", "prod", "rollout", "restart", "deploy/api"], "restart-deployment"),
        (["kubectl", "logs", "pod/api-1", "-n", "prod", "--tail", "20"], "logs-pod"),
        (["kubectl", "scale", "deployment/api", "-n", "staging", "--replicas=3"],
         "scale-deployment"),
        (["kubectl", "get", "pods", "-n", "dev", "--show-labels"], None),
        (["kubectl", "exec", "api", "-n", "dev", "--", "sh"], None),
    ],
)
def test_card_id_is_the_card_whose_pattern_the_argv_matches(argv: list[str],
                                                            card_id: str | None) -> None:
    card = match_card(argv, cached_corpus(REPO / "cards"))
    assert (card.id if card else None) == card_id
    assert plan({"argv": argv})["plan"]["card_id"] == card_id


def test_plan_never_runs_and_reports_risk_and_confirmation(recording_kubectl: Any) -> None:
    argv = ["kubectl", "scale", "deployment/api", "--replicas=0", "-n", "staging"]
    result = _valid(plan({"argv": argv}))
    assert result["status"] == "planned"
    assert (result["plan"]["risk_level"], result["plan"]["card_id"]) == ("high", "scale-deployment")
    assert result["decision"]["requires_confirmation"] is True
    cli = CliRunner().invoke(app, ["plan", "--json", "--", *argv])
    assert cli.exit_code == 0 and json.loads(cli.stdout)["plan"]["argv"] == argv
    with TestClient(create_app(Settings.resolve()), base_url=LOCAL) as client:
        body = client.post("/plan", json={"argv": argv}).json()
    assert (body["status"], body["plan"]["argv"]) == ("planned", argv)
    assert recording_kubectl.calls == []


def test_argv_door_is_audited_with_the_argv(recording_kubectl: Any) -> None:
    argv = ["kubectl", "get", "pods", "-n", "kube-system"]
    k8s_exec({"argv": argv})
    entry = json.loads(Path(os.environ["RAG_K8S_AUDIT_LOG"]).read_text().splitlines()[-1])
    assert (entry["argv"], entry["planner"], entry["status"]) == (argv, "argv", "denied")
    assert (entry["intent"], entry["resource"], entry["namespace"]) == ("get", "pod",
                                                                         "kube-system")


def test_an_argv_like_a_runbooks_first_step_runs_only_itself(recording_kubectl: Any) -> None:
    corpus = cached_corpus(REPO / "cards")
    runbook = next(c for c in corpus if getattr(c, "steps", None))
    argv = runbook.render({"name": "api", "namespace": "dev"})
    result = k8s_exec({"argv": argv})
    assert result["plan"]["card_id"] != runbook.id
    assert "steps" not in result["plan"]
    assert recording_kubectl.calls == [argv[1:]]
