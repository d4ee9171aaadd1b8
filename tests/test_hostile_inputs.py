"""Hostile input: requests that try to smuggle shell syntax, flags, look-alikes or junk through the
doors, and argv a confused or malicious planner could emit. Nothing of it may reach kubectl."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag_k8s.guardrails import GUARDRAILS, Subject
from rag_k8s.kubectl_argv import parse_argv
from rag_k8s.policy import Policy, load_policy, validate
from rag_k8s.tool import k8s_exec, plan

REPO = Path(__file__).resolve().parent.parent
BASE: dict[str, Any] = {"intent": "get", "resource": "pod", "namespace": "dev"}


def req(**fields: Any) -> dict[str, Any]:
    """A valid request with `fields` replaced by hostile values."""
    return {**BASE, **fields}


# (id, payload, the field the refusal must name)
HOSTILE: list[tuple[str, Any, str]] = [
    # shell metacharacters
    ("ns-semicolon", req(namespace="dev;rm -rf /"), "namespace"),
    ("ns-and", req(namespace="dev && id"), "namespace"),
    ("ns-subshell", req(namespace="$(id)"), "namespace"),
    ("ns-backtick", req(namespace="`id`"), "namespace"),
    ("ns-pipe", req(namespace="dev|sh"), "namespace"),
    ("ns-redirect", req(namespace="dev>out"), "namespace"),
    ("name-semicolon", req(name="api;reboot"), "name"),
    ("name-subshell", req(name="api$(id)"), "name"),
    ("name-and-curl", req(name="api && curl evil"), "name"),
    ("name-glob", req(name="api*"), "name"),
    ("image-semicolon", req(intent="set-image", resource="deployment", name="api",
                            params={"image": "repo/api:1.2;id", "container": "api"}),
     "params.image"),
    ("image-flag-suffix", req(params={"image": "repo/api:1.2 --kubeconfig=/k"}), "params.image"),
    ("selector-semicolon", req(params={"selector": "app=api;id"}), "params.selector"),
    ("selector-space-flag", req(params={"selector": "app=api --all"}), "params.selector"),
    ("container-semicolon", req(params={"container": "api;id"}), "params.container"),
    ("since-semicolon", req(params={"since": "10m;id"}), "params.since"),
    # newlines, NUL and control characters
    ("ns-trailing-newline", req(namespace="dev\n"), "namespace"),
    ("ns-newline-second", req(namespace="dev\nkube-system"), "namespace"),
    ("name-nul", req(name="api\x00"), "name"),
    ("name-crlf", req(name="api\r\n"), "name"),
    ("query-nul", {"query": "restart api in prod\x00"}, "query"),
    ("query-escape", {"query": "restart \x1b[31mapi"}, "query"),
    ("image-newline", req(params={"image": "repo/api:1.2\n"}), "params.image"),
    ("selector-newline", req(params={"selector": "app=api\n"}), "params.selector"),
    ("container-newline", req(params={"container": "api\n"}), "params.container"),
    ("since-newline", req(params={"since": "10m\n"}), "params.since"),
    # flags smuggled as values
    ("ns-kubeconfig", req(namespace="--kubeconfig=/k"), "namespace"),
    ("name-dash-A", req(name="-A"), "name"),
    ("name-all", req(name="--all"), "name"),
    ("ns-dash-n", req(namespace="-n"), "namespace"),
    ("container-flag", req(params={"container": "--privileged"}), "params.container"),
    ("image-overrides", req(params={"image": "--overrides={}"}), "params.image"),
    ("selector-all-ns", req(params={"selector": "--all-namespaces"}), "params.selector"),
    ("verb-as-admin", req(intent="can-i", params={"verb": "get --as=admin"}), "params.verb"),
    # unicode look-alikes
    ("ns-cyrillic-o", req(namespace="pr\u043ed"), "namespace"),
    ("name-cyrillic-a", req(name="\u0430pi"), "name"),
    ("ns-fullwidth", req(namespace="\uff50\uff52\uff4f\uff44"), "namespace"),
    ("name-zero-width", req(name="api\u200b"), "name"),
    ("intent-cyrillic", req(intent="rest\u0430rt"), "intent"),
    ("resource-cyrillic", req(resource="deploym\u0435nt"), "resource"),
    ("ns-uppercase", req(namespace="PROD"), "namespace"),
    ("name-rtl-override", req(name="api\u202egnp"), "name"),
    # over-long values
    ("ns-64", req(namespace="a" * 64), "namespace"),
    ("name-254", req(name="a" * 254), "name"),
    ("query-2001", {"query": "x" * 2001}, "query"),
    ("image-513", req(params={"image": "a" * 513}), "params.image"),
    ("selector-400", req(params={"selector": "a=b," * 99 + "a=b"}), "params.selector"),
    ("container-64", req(params={"container": "a" * 64}), "params.container"),
    # negative and huge numbers
    ("replicas-negative", req(params={"replicas": -1}), "params.replicas"),
    ("replicas-10001", req(params={"replicas": 10001}), "params.replicas"),
    ("replicas-huge", req(params={"replicas": 10**30}), "params.replicas"),
    ("replicas-fraction", req(params={"replicas": 1.5}), "params.replicas"),
    ("replicas-inf", req(params={"replicas": math.inf}), "params.replicas"),
    ("replicas-nan", req(params={"replicas": math.nan}), "params.replicas"),
    ("tail-zero", req(params={"tail": 0}), "params.tail"),
    ("tail-negative", req(params={"tail": -5}), "params.tail"),
    ("min-zero", req(params={"min": 0}), "params.min"),
    ("max-huge", req(params={"max": 10**9}), "params.max"),
    ("cpu-zero", req(params={"cpu_percent": 0}), "params.cpu_percent"),
    ("revision-negative", req(params={"to_revision": -1}), "params.to_revision"),
    ("timeout-zero", req(constraints={"timeout": 0}), "constraints.timeout"),
    ("timeout-301", req(constraints={"timeout": 301}), "constraints.timeout"),
    ("timeout-negative", req(constraints={"timeout": -1}), "constraints.timeout"),
    ("min-above-max", req(params={"min": 5, "max": 2}), "params.min"),
    # unknown keys
    ("key-shell", req(shell="id"), "shell"),
    # argv is the argv door (CONTRACT §1): beside an intent it is invalid, naming the intent
    ("key-argv", req(argv=["kubectl", "delete", "ns", "prod"]), "intent"),
    ("key-proto", req(__proto__={}), "__proto__"),
    ("params-command", req(params={"command": "id"}), "params.command"),
    ("params-kubeconfig", req(params={"kubeconfig": "/k"}), "params.kubeconfig"),
    ("constraints-sudo", req(constraints={"sudo": True}), "constraints.sudo"),
    # wrong types
    ("intent-int", req(intent=7), "intent"),
    ("ns-list", req(namespace=["dev"]), "namespace"),
    ("name-dict", req(name={"x": 1}), "name"),
    ("ns-null", req(namespace=None), "namespace"),
    ("params-string", req(params="replicas=3"), "params"),
    ("confirm-string", req(constraints={"confirm": "yes"}), "constraints.confirm"),
    ("dryrun-int", req(constraints={"dryRun": 1}), "constraints.dryRun"),
    ("replicas-string", req(params={"replicas": "3"}), "params.replicas"),
    ("replicas-bool", req(params={"replicas": True}), "params.replicas"),
    ("previous-string", req(params={"previous": "true"}), "params.previous"),
    ("query-int", {"query": 12}, "query"),
    # nested junk
    ("replicas-operator", req(params={"replicas": {"$gt": 0}}), "params.replicas"),
    ("constraints-list", req(constraints=[]), "constraints"),
    ("output-injection", req(params={"output": "yaml;id"}), "params.output"),
    ("output-template", req(params={"output": "go-template-file=/etc/passwd"}), "params.output"),
    ("intent-exec", req(intent="exec"), "intent"),
    ("resource-traversal", req(resource="secrets/../../"), "resource"),
    ("payload-list", ["kubectl", "delete", "ns", "prod"], "request"),
    ("payload-string", "kubectl get pods", "request"),
    ("payload-none", None, "request"),
    ("blank-query", {"query": "   "}, "query"),
]


def test_there_are_at_least_sixty_hostile_requests() -> None:
    assert len(HOSTILE) >= 60
    assert len({case_id for case_id, _, _ in HOSTILE}) == len(HOSTILE)


@pytest.mark.parametrize(("payload", "field"), [(p, f) for _, p, f in HOSTILE],
                         ids=[i for i, _, _ in HOSTILE])
def test_hostile_request_is_invalid_and_runs_nothing(
    payload: Any, field: str, recording_kubectl: Any
) -> None:
    result = k8s_exec(payload)
    assert result["status"] == "invalid"
    assert result["plan"] is None and result["execution"] is None
    assert result["decision"]["allowed"] is False
    assert result["decision"]["reasons"][0].startswith(f"{field}: ")
    assert recording_kubectl.calls == []


@pytest.mark.parametrize(("payload", "field"), [(p, f) for _, p, f in HOSTILE],
                         ids=[i for i, _, _ in HOSTILE])
def test_hostile_request_is_invalid_when_only_planned(payload: Any, field: str) -> None:
    result = plan(payload)
    assert (result["status"], result["plan"]) == ("invalid", None)
    assert result["decision"]["reasons"][0].startswith(f"{field}: ")


# --- argv a confused or malicious planner could emit, judged directly ------------------------


@pytest.fixture(scope="module")
def org() -> Policy:
    return load_policy(REPO / "org")


MALICIOUS_ARGV: list[tuple[str, Any, str]] = [
    ("delete-prod-namespace", ["kubectl", "delete", "ns", "prod"],
     "deleting a namespace is never allowed"),
    ("delete-all-deployments", ["kubectl", "delete", "deployments", "--all", "-n", "dev"],
     "--all is refused on a command that changes the cluster; name one object"),
    ("read-secret", ["kubectl", "get", "secret", "db", "-n", "dev", "-o", "yaml"],
     "reading secret contents is never allowed (-o yaml); only secret names may be listed"),
    ("redirect-cluster", ["kubectl", "--kubeconfig=/k", "delete", "deploy/api", "-n", "dev"],
     "--kubeconfig is refused: it would point kubectl at other credentials, another identity "
     "or another cluster"),
    ("impersonate", ["kubectl", "get", "pods", "-n", "dev", "--as=system:admin"],
     "--as is refused: it would point kubectl at other credentials, another identity or another "
     "cluster"),
    ("token-after-dashdash", ["kubectl", "logs", "pod/x", "-n", "dev", "--", "--token", "t"],
     "--token is refused: it would point kubectl at other credentials, another identity or "
     "another cluster"),
    ("kube-system", ["kubectl", "rollout", "restart", "deployment/coredns", "-n", "kube-system"],
     "namespace 'kube-system' is not in the org policy: nothing may run there"),
    ("shell-wrapper", ["bash", "-c", "kubectl get pods"],
     "only the kubectl binary may run; the command starts with 'bash'"),
    ("absolute-binary", ["/usr/local/bin/kubectl", "get", "pods", "-n", "dev"],
     "only the kubectl binary may run; the command starts with '/usr/local/bin/kubectl'"),
    ("none-element", ["kubectl", "get", None], "the command must be a non-empty list of strings"),
    ("dict-argv", {"argv": ["kubectl"]}, "the command must be a non-empty list of strings"),
    ("exec-shell", ["kubectl", "exec", "api-0", "-n", "dev", "--", "sh", "-c", "id"],
     "kubectl exec is refused: it is not on any allow-list"),
    ("force-delete", ["kubectl", "delete", "job/x", "-n", "dev", "--force", "--grace-period=0"],
     "--force is refused: it skips graceful deletion and safety checks"),
    ("client-dry-run-lie", ["kubectl", "delete", "job/x", "-n", "dev", "--dry-run=client"],
     "--dry-run=client is refused: only --dry-run=server is checked by the API server"),
    ("scale-to-thousand", ["kubectl", "scale", "deploy/api", "--replicas=1000", "-n", "dev"],
     "--replicas=1000 is above the org's cap of 50 replicas"),
    ("hidden-second-namespace", ["kubectl", "get", "pods", "-n", "dev", "-nkube-system"],
     "the command could not be analysed, so it is refused: the namespace is given more than "
     "once (dev, kube-system); give it once"),
    ("unknown-flag", ["kubectl", "get", "pods", "-n", "dev", "--exec-hook=x"],
     "the command could not be analysed, so it is refused: unknown flag --exec-hook for "
     "`kubectl get`"),
    ("two-kinds", ["kubectl", "get", "pods,secrets", "-n", "dev"],
     "the command could not be analysed, so it is refused: 'pods,secrets' names several kinds; "
     "give one kind per command"),
    ("newline-in-name", ["kubectl", "get", "pod", "api\nid", "-n", "dev"],
     "argument 3 ('api\\nid') contains a control character"),
    ("look-alike-namespace", ["kubectl", "get", "pods", "-n", "pr\u043ed"],
     "argument 4 ('prоd') contains 'о', which no kubectl argument here needs"),
    ("raw-request", ["kubectl", "get", "--raw", "/api/v1/namespaces/dev/secrets", "-n", "dev"],
     "--raw is refused: it sends a raw API request that no allow-list can judge"),
    ("verbose-leak", ["kubectl", "get", "secrets", "-n", "dev", "-v=9"],
     "--v is refused by the org policy (rbac-allowlist.yaml forbidden_flags)"),
    ("restart-everything", ["kubectl", "rollout", "restart", "deployment", "-n", "prod"],
     "kubectl rollout restart must name the deployment it changes; without a name it acts on "
     "every deployment in reach"),
]


@pytest.mark.parametrize(("argv", "first_reason"), [(a, r) for _, a, r in MALICIOUS_ARGV],
                         ids=[i for i, _, _ in MALICIOUS_ARGV])
def test_malicious_planner_argv_is_refused(org: Policy, argv: Any, first_reason: str) -> None:
    decision = validate(argv, card=None, policy=org)
    assert decision.allowed is False
    assert decision.requires_confirmation is False
    assert decision.reasons[0] == first_reason


_TOKENS = st.one_of(
    st.sampled_from(["kubectl", "get", "delete", "pods", "pod/api-0", "secret", "ns", "-n", "dev",
                     "prod", "kube-system", "-A", "--all", "-o", "yaml", "--", "--token=x", "-s",
                     "rollout", "restart", "deployment/api", "--namespace=dev", "-l", "",
                     "--dry-run=client", "--force", "exec", "scale", "--replicas=0"]),
    st.text(max_size=12),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_TOKENS, max_size=9))
def test_validate_never_raises_and_allows_only_clean_argv(argv: list[str]) -> None:
    policy = load_policy(REPO / "org")
    decision = validate(["kubectl", *argv], card=None, policy=policy)
    if decision.allowed:
        parsed = parse_argv(["kubectl", *argv])
        findings = [f for g in GUARDRAILS for f in g(Subject(["kubectl", *argv], parsed))]
        assert findings == []
        assert parsed.namespace in (None, "prod", "staging", "dev")
        assert "all-namespaces" not in parsed.flags or not parsed.is_true("all-namespaces")
        assert not (parsed.kind == "secret" and parsed.value("output") not in (None, "name", "wide"))
