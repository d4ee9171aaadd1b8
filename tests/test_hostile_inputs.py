"""Hostile input: requests that try to smuggle shell syntax, flags, look-alikes or junk through the
doors, and argv a confused or malicious planner could emit. Nothing of it may reach kubectl."""

from __future__ import annotations

import json
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
     "kubectl exec is never run through rag-k8s: it opens a shell or runs a command inside a "
     "container, which no allow-list can judge; run it yourself if you mean to"),
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


# --- JSON-unsafe payloads: refused once at the door, before planning, on every door ----------

RESTART_SURROGATE = {"intent": "restart", "resource": "deployment", "namespace": "prod",
                     "name": "api", "query": "\ud800"}


def deep(levels: int) -> dict[str, Any]:
    """{"a": {"a": ... {}}} nested `levels` deep, built without recursion."""
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels - 1):
        node["a"] = {}
        node = node["a"]
    return root


class Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


# (id, payload, the field the refusal names, its problem)
UNSAFE: list[tuple[str, Any, str, str]] = [
    ("lone-surrogate-query", RESTART_SURROGATE, "query",
     "contains a lone surrogate (\\ud800), which is not valid Unicode text"),
    ("surrogate-in-name", {**RESTART_SURROGATE, "query": "ok", "name": "api\udfff"}, "name",
     "contains a lone surrogate (\\udfff), which is not valid Unicode text"),
    ("surrogate-in-key", {**BASE, "params": {"\ud800": 1}}, "params.\\ud800",
     "the key contains a lone surrogate (\\ud800)"),
    ("int-key", {**BASE, 1: "x"}, "request", "has a non-string key 1 (JSON object keys are strings)"),
    ("tuple-key-in-params", {**BASE, "params": {("a",): 1}}, "params",
     "has a non-string key ('a',) (JSON object keys are strings)"),
    ("none-key", {**BASE, None: 1}, "request",
     "has a non-string key None (JSON object keys are strings)"),
    ("5000-deep", {**BASE, "params": deep(5000)}, "params.a.a...",
     "is nested more than 32 levels deep"),
    ("5000-deep-payload", deep(5000), "a.a.a...", "is nested more than 32 levels deep"),
    ("33-deep-list", {**BASE, "params": {"x": json.loads("[" * 31 + "1" + "]" * 31)}},
     "params.x.0...", "is nested more than 32 levels deep"),
    ("32-deep-is-only-schema-invalid", {**BASE, "params": {"x": json.loads("[" * 30 + "]" * 30)}},
     "params.x", "unknown field"),
    ("nan-replicas", {"intent": "scale", "resource": "deployment", "namespace": "dev",
                      "name": "api", "params": {"replicas": math.nan}}, "params.replicas",
     "is not a finite number (nan)"),
    ("nan-unknown-field", {**BASE, "x": math.nan}, "x", "is not a finite number (nan)"),
    ("infinity-timeout", {**BASE, "constraints": {"timeout": math.inf}}, "constraints.timeout",
     "is not a finite number (inf)"),
    ("minus-infinity", {**BASE, "params": {"tail": -math.inf}}, "params.tail",
     "is not a finite number (-inf)"),
    ("5000-digit-int", {**BASE, "params": {"replicas": 10**5000}}, "params.replicas",
     "is a number too large for any request field"),
    ("set-value", {**BASE, "params": {"selector": {"app=api"}}}, "params.selector",
     "is a set, not a JSON value"),
    ("bytes-value", {**BASE, "name": b"api"}, "name", "is a bytes, not a JSON value"),
    ("object-value", {**BASE, "query": Unprintable()}, "query",
     "is a Unprintable, not a JSON value"),
]


@pytest.mark.parametrize(("payload", "field", "problem"), [(p, f, m) for _, p, f, m in UNSAFE],
                         ids=[i for i, _, _, _ in UNSAFE])
def test_json_unsafe_payload_is_invalid_runs_nothing_and_is_audited_as_strict_json(
    payload: Any, field: str, problem: str, recording_kubectl: Any
) -> None:
    from rag_k8s import audit
    from rag_k8s.config import Settings

    result = k8s_exec(payload)
    assert (result["status"], result["plan"], result["execution"]) == ("invalid", None, None)
    assert result["decision"]["reasons"] == [f"{field}: {problem}"]
    assert recording_kubectl.calls == []
    assert plan(payload)["decision"]["reasons"] == [f"{field}: {problem}"]
    log = Settings.resolve().audit_log
    lines = log.read_bytes().decode("utf-8").splitlines()  # valid UTF-8: no lone surrogate
    assert len(lines) == 1
    entry = json.loads(lines[0], parse_constant=_not_strict)  # strict JSON: no NaN/Infinity
    assert (entry["status"], entry["reasons"]) == ("invalid", [f"{field}: {problem}"])
    assert audit.verify(log).ok


def _not_strict(name: str) -> Any:
    raise AssertionError(f"{name} in an audit line")


def test_python_door_never_raises_on_a_json_unsafe_payload_even_when_repr_fails() -> None:
    result = k8s_exec({**BASE, "params": {"x": Unprintable()}, 7: Unprintable()})
    assert result["status"] == "invalid"


def test_cli_json_input_with_a_lone_surrogate_is_invalid_and_runs_nothing(
    tmp_path: Path, recording_kubectl: Any
) -> None:
    from typer.testing import CliRunner

    from rag_k8s.cli import app

    path = tmp_path / "req.json"
    path.write_text('{"intent":"restart","resource":"deployment","namespace":"prod",'
                    '"name":"api","query":"\\ud800"}')
    run = CliRunner().invoke(app, ["exec", "--json-input", str(path), "--json"])
    assert run.exit_code == 2
    result = json.loads(run.stdout)
    assert result["status"] == "invalid"
    assert result["decision"]["reasons"] == [
        "query: contains a lone surrogate (\\ud800), which is not valid Unicode text"]
    assert recording_kubectl.calls == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 5000 + "]" * 5000,
         "Error: request: --json-input is nested more than 32 levels deep"),
        ('{"intent":"scale","resource":"deployment","namespace":"dev","name":"api",'
         '"params":{"replicas":NaN}}',
         "Error: request: --json-input is not valid JSON: NaN is not a JSON number"),
        ('{"intent":"get","x":-Infinity}',
         "Error: request: --json-input is not valid JSON: -Infinity is not a JSON number"),
        ('{"params": [1]}', None),  # with --param below: merged without a crash, then invalid
    ],
    ids=["5000-deep", "nan", "minus-infinity", "params-not-an-object"],
)
def test_cli_json_input_that_is_not_strict_json_exits_2(
    tmp_path: Path, recording_kubectl: Any, text: str, message: str | None
) -> None:
    from typer.testing import CliRunner

    from rag_k8s.cli import app

    path = tmp_path / "req.json"
    path.write_text(text)
    run = CliRunner().invoke(app, ["exec", "--json-input", str(path), "--param", "tail=5",
                                   "--confirm"])
    assert run.exit_code == 2, run.output
    if message is not None:
        assert run.stderr.strip() == message
    assert recording_kubectl.calls == []


def test_an_exception_after_kubectl_ran_still_leaves_its_audit_line(
    recording_kubectl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pipeline breaks after kubectl returned: the line says what ran, and the error."""
    from rag_k8s import audit, execute, tool
    from rag_k8s.config import Settings

    real_run = execute.run

    class Exploding:
        """The real ExecResult, whose `timed_out` raises when the pipeline reads it."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        @property
        def timed_out(self) -> bool:
            raise RuntimeError("disk on fire")

        def to_dict(self) -> dict[str, Any]:
            return dict(self.inner.to_dict())

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    def run(argv: list[str], **kwargs: Any) -> Any:
        outcome = real_run(argv, **kwargs)  # undo's capture reads pass through untouched
        return Exploding(outcome) if argv[1:3] == ["rollout", "restart"] else outcome

    monkeypatch.setattr(tool.execute, "run", run)
    recording_kubectl.respond(stdout="deployment.apps/api restarted\n")
    request = {"intent": "restart", "resource": "deployment", "namespace": "prod", "name": "api"}
    with pytest.raises(RuntimeError, match="disk on fire"):
        k8s_exec(request)
    assert recording_kubectl.commands == [["rollout", "restart", "deployment/api", "-n", "prod"]]
    log = Settings.resolve().audit_log
    [entry] = audit.tail(log)
    assert entry["status"] == "error"
    assert entry["level"] == "ERROR"
    assert entry["reasons"] == [
        "rag-k8s stopped with RuntimeError after kubectl ran: disk on fire"]
    assert entry["argv"] == ["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"]
    assert entry["exit_code"] == 0
    assert entry["output_bytes"] == len("deployment.apps/api restarted\n")
    assert entry["request"]["name"] == "api"
    assert audit.verify(log).ok


def test_an_exception_before_kubectl_ran_is_audited_too(
    recording_kubectl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_k8s import audit, tool
    from rag_k8s.config import Settings

    def broken(*_: Any, **__: Any) -> Any:
        raise OSError("cards folder vanished")

    monkeypatch.setattr(tool, "cached_corpus", broken)
    with pytest.raises(OSError):
        k8s_exec({"intent": "get", "resource": "pod", "namespace": "dev"})
    [entry] = audit.tail(Settings.resolve().audit_log)
    assert (entry["status"], entry["reasons"]) == (
        "error", ["rag-k8s stopped with OSError before kubectl ran: cards folder vanished"])
    assert recording_kubectl.calls == []


# --- the policy, the cards and config.yaml fail closed on every malformation -----------------

ASSETS = Path(__file__).resolve().parent / "assets"


def test_policy_with_a_duplicated_namespace_key_refuses_everything(
    recording_kubectl: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_k8s.errors import PolicyError

    org = ASSETS / "org-duplicate-key"
    message = (f"{org / 'namespaces.yaml'}: line 12: not valid YAML: duplicate key 'prod' (first "
               "given on line 5); a key may appear only once in a mapping")
    with pytest.raises(PolicyError) as info:
        load_policy(org)
    assert str(info.value) == message
    monkeypatch.setenv("RAG_K8S_ORG_DIR", str(org))
    for request in (
        {"intent": "delete", "resource": "deployment", "namespace": "prod", "name": "api",
         "constraints": {"confirm": True}},
        {"intent": "get", "resource": "pod", "namespace": "dev"},
    ):
        result = k8s_exec(request)
        assert (result["status"], result["decision"]["reasons"]) == ("denied", [message])
        assert result["execution"] is None
    assert recording_kubectl.calls == []


def test_libyaml_and_the_python_parser_read_every_card_alike_and_refuse_the_same_duplicates(
) -> None:
    """yamlsafe.load parses with libyaml for speed; a text it refuses is parsed again by the
    pure-Python loader, so the error (and its line) is the same whichever parser is present."""
    import yaml

    from rag_k8s import yamlsafe

    assert yaml.__with_libyaml__ and issubclass(yamlsafe._FastStrictLoader, yaml.CSafeLoader)
    cards = sorted((Path(__file__).resolve().parents[1] / "cards").glob("*.yaml"))
    assert len(cards) > 100
    for path in cards:
        text = path.read_text("utf-8")
        assert yamlsafe.load(text) == yaml.load(text, Loader=yamlsafe.StrictSafeLoader), path
    for text, key, line in (("a: 1\nb:\n  c: 1\n  c: 2\n", "c", 4), ("a: {x: 1, x: 2}\n", "x", 1)):
        for loader in (yamlsafe._FastStrictLoader, yamlsafe.StrictSafeLoader):
            with pytest.raises(yamlsafe.DuplicateKeyError) as info:
                yaml.load(text, Loader=loader)  # noqa: S506 - a SafeLoader subclass
            assert (info.value.key, info.value.line) == (key, line)
    with pytest.raises(yaml.YAMLError) as bad:
        yamlsafe.load("a: [1, 2\nb: 3\n")
    assert "expected ',' or ']', but got" in str(bad.value)  # the Python parser's wording


@pytest.mark.parametrize(
    ("file", "text", "problem"),
    [
        ("namespaces.yaml", "version: 1\nversion: 1\nnamespaces: {}\n",
         "line 2: not valid YAML: duplicate key 'version' (first given on line 1)"),
        ("namespaces.yaml", "version: 1\nnamespaces:\n  qa:\n    allow:\n      get: [pod]\n"
                            "      get: ['*']\n",
         "line 6: not valid YAML: duplicate key 'get' (first given on line 5)"),
        ("namespaces.yaml", "version: 1\nnamespaces: {qa: {allow: {get: [pod]}}, qa: {allow: {}}}\n",
         "line 2: not valid YAML: duplicate key 'qa' (first given on line 2)"),
        ("rbac-allowlist.yaml", "version: 1\nverbs:\n  get: [pod]\n  get: ['*']\n"
                                "cluster_scoped: {}\nsecrets: {output_formats: [name]}\n"
                                "forbidden_flags: []\nmax_replicas: 5\n",
         "line 4: not valid YAML: duplicate key 'get' (first given on line 3)"),
        ("rbac-allowlist.yaml", "version: 1\nverbs: {}\ncluster_scoped: {}\n"
                                "secrets: {output_formats: [name]}\nforbidden_flags: []\n"
                                "max_replicas: 5\nmax_replicas: 10000\n",
         "line 7: not valid YAML: duplicate key 'max_replicas' (first given on line 6)"),
        ("rbac-allowlist.yaml", "", "must be a YAML mapping with `version: 1`"),
        ("rbac-allowlist.yaml", "# nothing but a comment\n",
         "must be a YAML mapping with `version: 1`"),
        ("namespaces.yaml", "version: 1\nnamespaces:\n  qa:\n", "line 3: namespaces.qa: Input "
                            "should be a valid dictionary or instance of NamespaceRule"),
        ("namespaces.yaml", "version: 1\nnamespaces:\n  qa:\n    allow:\n      get: [pod]\n"
                            "    deny: {}\n", "line 6: namespaces.qa.deny: unknown key"),
        ("namespaces.yaml", "version: '1'\nnamespaces: {}\n", "line 1: version: Input should be 1"),
    ],
    ids=["dup-version", "dup-intent", "dup-in-flow-mapping", "dup-verb", "dup-max-replicas",
         "empty-file", "comment-only", "null-namespace", "unknown-key", "version-string"],
)
def test_every_policy_malformation_is_a_policy_error_naming_file_line_and_key(
    tmp_path: Path, file: str, text: str, problem: str
) -> None:
    import shutil

    from rag_k8s.errors import PolicyError

    shutil.copytree(ASSETS / "org-minimal", tmp_path / "org")
    (tmp_path / "org" / file).write_text(text)
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "org")
    assert str(info.value).startswith(f"{tmp_path / 'org' / file}: {problem}")


def test_a_merge_key_may_still_be_overridden(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(ASSETS / "org-minimal", tmp_path / "org")
    (tmp_path / "org" / "namespaces.yaml").write_text(
        "version: 1\nnamespaces:\n  qa:\n    allow: &qa\n      get: [pod]\n"
        "  qb:\n    allow:\n      <<: *qa\n      get: ['*']\n"
    )
    assert load_policy(tmp_path / "org").namespaces["qb"]["get"] == {"*"}


def test_a_card_with_a_duplicated_key_is_refused() -> None:
    from rag_k8s.cards import load_card, load_corpus
    from rag_k8s.errors import CardError

    path = ASSETS / "cards-duplicate-key" / "restart-deployment.yaml"
    message = (f"{path}: not valid YAML: line 15: duplicate key 'command_template' (first given "
               "on line 7); a key may appear only once in a mapping")
    with pytest.raises(CardError) as info:
        load_card(path)
    assert str(info.value) == message
    with pytest.raises(CardError) as info:
        load_corpus(path.parent)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "not valid YAML: line 5: duplicate key 'kubectl' (first given on line 3); a key "
               "may appear only once in a mapping"),
        ("planner: template\nkubeclt: /bin/sh\n", "line 2: kubeclt: Extra inputs are not permitted"),
        ("planner: template\ntimeout: soon\n",
         "line 2: timeout: Input should be a valid integer, unable to parse string as an integer"),
        ("- a\n- list\n", "line 1: (top level): Input should be a valid dictionary or instance of "
                          "ConfigFile"),
    ],
    ids=["duplicate-key", "unknown-key", "wrong-type", "not-a-mapping"],
)
def test_config_yaml_malformations_name_file_line_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str | None, message: str
) -> None:
    from rag_k8s.config import Settings
    from rag_k8s.errors import ConfigError

    path = ASSETS / "config-duplicate-key.yaml" if text is None else tmp_path / "config.yaml"
    if text is not None:
        path.write_text(text)
    monkeypatch.setenv("RAG_K8S_CONFIG", str(path))
    with pytest.raises(ConfigError) as info:
        Settings.resolve()
    assert str(info.value) == f"{path}: {message}"


def _mcp_raw_calls(arguments_json: list[str], expect: set[int]) -> dict[int, Any]:
    """Call `k8s_exec` on a `rag-k8s mcp` stdio server with each raw JSON text as arguments
    (ids 1, 2, ...), then a last call (`bogus: unknown field`); return the structured result of
    each id answered once every id in `expect` and the last one are (calls run concurrently).

    Raw JSON-RPC lines, not the `mcp` client: the client refuses to encode a lone surrogate, and
    a hostile client would not. Fails after 300 s without the expected answers.
    """
    import os
    import select
    import subprocess
    import sys
    import time

    import mcp_types

    env = {k: v for k, v in os.environ.items()
           if k.startswith(("RAG_K8S_", "RECORDING_KUBECTL_", "HF_", "TRANSFORMERS_", "PATH"))}
    last = len(arguments_json) + 1
    lines = [
        json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": mcp_types.LATEST_PROTOCOL_VERSION, "capabilities": {},
            "clientInfo": {"name": "hostile", "version": "1"}}}),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    ]
    for i, args in enumerate([*arguments_json, '{"intent":"get","bogus":1}'], start=1):
        lines.append('{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":'
                     '{"name":"k8s_exec","arguments":%s}}' % (i, args))
    proc = subprocess.Popen([str(Path(sys.executable).parent / "rag-k8s"), "mcp"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    assert proc.stdin is not None and proc.stdout is not None
    answers: dict[int, Any] = {}
    deadline = time.monotonic() + 300
    try:
        for index, line in enumerate(lines):
            number = 0 if index == 0 else index - 1 if index > 1 else -1  # the JSON-RPC id
            proc.stdin.write(line.encode() + b"\n")
            proc.stdin.flush()
            # One call at a time: wait for each answer that should come before the next call.
            while number in {0, *expect, last} and number not in answers:
                ready, _, _ = select.select([proc.stdout], [], [], deadline - time.monotonic())
                assert ready, f"no answer in 300 s; answered: {sorted(answers)}"
                message = json.loads(proc.stdout.readline())
                if "id" in message:
                    answers[message["id"]] = message.get("result", {}).get("structuredContent")
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    answers.pop(0, None)  # initialize
    return answers


def test_mcp_door_refuses_json_unsafe_arguments_and_runs_nothing(recording_kubectl: Any) -> None:
    """Over stdio, raw JSON-RPC. A lone surrogate escape never reaches rag-k8s: the mcp library's
    JSON parser refuses the line and drops it (no answer, nothing runs, no audit line) and the
    server goes on serving. 40-deep params and a null replica count are `invalid` and audited."""
    from rag_k8s import audit
    from rag_k8s.config import Settings

    answers = _mcp_raw_calls(expect={2, 3}, arguments_json=[
        '{"intent":"restart","resource":"deployment","namespace":"prod","name":"api",'
        '"query":"\\ud800"}',
        '{"intent":"get","resource":"pod","namespace":"dev","params":'
        + '{"a":' * 40 + "1" + "}" * 40 + "}",
        '{"intent":"scale","resource":"deployment","namespace":"dev","name":"api",'
        '"params":{"replicas":null}}',
    ])
    assert sorted(answers) == [2, 3, 4]
    assert [answers[i]["status"] for i in (2, 3, 4)] == ["invalid"] * 3
    assert answers[2]["decision"]["reasons"] == ["params.a.a...: is nested more than 32 levels deep"]
    assert answers[3]["decision"]["reasons"] == ["params.replicas: expected integer, got NoneType"]
    assert recording_kubectl.calls == []
    log = Settings.resolve().audit_log
    assert [e["status"] for e in audit.tail(log)] == ["invalid"] * 3
    assert audit.verify(log).ok
