"""Org policy: loading the two files (fail closed), CONTRACT §5's allow-lists and §4's risk table."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from rag_k8s.cards import Card
from rag_k8s.config import Settings
from rag_k8s.errors import PolicyError
from rag_k8s.policy import Decision, Policy, load_policy, validate
from rag_k8s.vocab import INTENTS

REPO = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent / "assets"
CONFIRM = "it runs only when confirmed (constraints.confirm)"


def k(cmd: str) -> list[str]:
    return ["kubectl", *cmd.split()]


@pytest.fixture(scope="module")
def org() -> Policy:
    return load_policy(REPO / "org")


def allowed(risk: str = "none") -> Decision:
    return Decision(allowed=True, requires_confirmation=False, reasons=[], risk_level=risk)


def confirm(reason: str, risk: str) -> Decision:
    return Decision(allowed=True, requires_confirmation=True, reasons=[reason], risk_level=risk)


def refused(*reasons: str, risk: str = "none", suggestion: str | None = None) -> Decision:
    return Decision(allowed=False, requires_confirmation=False, reasons=list(reasons),
                    suggestion=suggestion, risk_level=risk)


# --- loading --------------------------------------------------------------------------------


def test_shipped_policy_holds_the_contract_defaults(org: Policy) -> None:
    assert sorted(org.namespaces) == ["dev", "prod", "staging"]
    assert org.max_replicas == 50
    assert org.secret_output_formats == {"name", "wide"}
    assert org.cluster_scoped == {
        "node": {"get", "describe", "top", "cordon", "uncordon", "drain", "auth can-i", "label",
                 "annotate", "taint"},
        "namespace": {"get", "describe", "auth can-i", "create namespace"},
    }
    assert {"kubeconfig", "context", "cluster", "server", "token", "as", "as-group", "as-uid",
            "user", "username", "password", "insecure-skip-tls-verify", "certificate-authority",
            "client-key", "client-certificate"} <= org.forbidden_flags
    assert org.namespaces["staging"]["delete"] == {"pod", "job"}
    assert org.namespaces["prod"]["restart"] == {"deployment", "statefulset", "daemonset"}
    assert "secret" not in org.namespaces["prod"]["get"]
    assert "secret" not in org.namespaces["staging"]["get"]
    assert org.namespaces["dev"]["get"] == {"*"}


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("org-missing-rbac", "{dir}/rbac-allowlist.yaml: policy file not found, so nothing may run; "
         "restore it or point RAG_K8S_ORG_DIR at a folder holding namespaces.yaml and "
         "rbac-allowlist.yaml"),
        ("org-broken-yaml", "{dir}/namespaces.yaml: line 6: not valid YAML: expected ',' or ']', "
         "but got ':'"),
        ("org-unknown-key", "{dir}/namespaces.yaml: line 6: namespaces.qa.alow: unknown key"),
        ("org-wrong-type", "{dir}/rbac-allowlist.yaml: line 8: max_replicas: Input should be a "
         "valid integer, unable to parse string as an integer"),
    ],
)
def test_broken_policy_fixture_raises_policy_error_naming_file_line_and_problem(
    fixture: str, message: str
) -> None:
    directory = ASSETS / fixture
    with pytest.raises(PolicyError) as exc:
        load_policy(directory)
    assert str(exc.value) == message.format(dir=directory)


@pytest.mark.parametrize(
    ("file", "text", "problem"),
    [
        ("namespaces.yaml", "version: 1\nnamespaces:\n  qa:\n    allow:\n      gett: [pod]\n",
         "line 4: namespaces.qa.allow: 'gett' is not an intent (" + ", ".join(INTENTS) + ")"),
        ("namespaces.yaml", "version: 1\nnamespaces:\n  qa:\n    allow:\n      get: [pods]\n",
         "line 4: namespaces.qa.allow: 'pods' is not a kind (deployment, pod, node, service, "
         "statefulset, daemonset, replicaset, job, cronjob, configmap, secret, namespace, event, "
         "pvc, hpa, ingress) or '*'"),
        ("namespaces.yaml", "version: 1\nnamespaces:\n  Q_A:\n    allow: {}\n",
         "line 2: namespaces: 'Q_A' is not a DNS-1123 namespace name"),
        ("namespaces.yaml", "version: 2\nnamespaces: {}\n",
         "line 1: version: Input should be 1"),
        ("namespaces.yaml", "namespaces: {}\n", "line 1: version: Field required"),
        ("namespaces.yaml", "- just\n- a list\n", "must be a YAML mapping with `version: 1`"),
        ("namespaces.yaml", "", "must be a YAML mapping with `version: 1`"),
        ("namespaces.yaml", "version: 1\nnamespaces:\n  qa:\n    allow:\n      get: pod\n",
         "line 5: namespaces.qa.allow.get: Input should be a valid list"),
        ("rbac-allowlist.yaml",
         "version: 1\nverbs:\n  exec: [pod]\ncluster_scoped: {}\nsecrets: {output_formats: []}\n"
         "forbidden_flags: []\nmax_replicas: 5\n",
         "line 2: verbs: 'exec' is a verb rag-k8s never runs, whatever the policy says "
         "(rag_k8s/verbs.py NEVER_RUN)"),
        ("rbac-allowlist.yaml",
         "version: 1\nverbs: {}\ncluster_scoped: {pod: [get]}\nsecrets: {output_formats: []}\n"
         "forbidden_flags: []\nmax_replicas: 5\n",
         "line 3: cluster_scoped: 'pod' is not a cluster-scoped kind (namespace, node)"),
        ("rbac-allowlist.yaml",
         "version: 1\nverbs: {}\ncluster_scoped: {}\nsecrets: {output_formats: [yaml]}\n"
         "forbidden_flags: []\nmax_replicas: 5\n",
         "line 4: secrets.output_formats.0: Input should be 'name' or 'wide'"),
        ("rbac-allowlist.yaml",
         "version: 1\nverbs: {}\ncluster_scoped: {}\nsecrets: {output_formats: []}\n"
         "forbidden_flags: [kubeconfig]\nmax_replicas: 5\n",
         "line 5: forbidden_flags: 'kubeconfig' is not a long flag like --kubeconfig"),
        ("rbac-allowlist.yaml",
         "version: 1\nverbs: {}\ncluster_scoped: {}\nsecrets: {output_formats: []}\n"
         "forbidden_flags: []\nmax_replicas: -1\n",
         "line 6: max_replicas: Input should be greater than or equal to 0"),
    ],
)
def test_malformed_policy_file_is_a_policy_error(
    tmp_path: Path, file: str, text: str, problem: str
) -> None:
    shutil.copytree(ASSETS / "org-minimal", tmp_path / "org")
    (tmp_path / "org" / file).write_text(text)
    with pytest.raises(PolicyError) as exc:
        load_policy(tmp_path / "org")
    assert str(exc.value) == f"{tmp_path / 'org' / file}: {problem}"


def test_policy_is_cached_until_a_file_changes(tmp_path: Path) -> None:
    org_dir = tmp_path / "org"
    shutil.copytree(ASSETS / "org-minimal", org_dir)
    first = load_policy(org_dir)
    assert load_policy(org_dir) is first
    rbac = org_dir / "rbac-allowlist.yaml"
    rbac.write_text(rbac.read_text().replace("max_replicas: 5", "max_replicas: 7"))
    stat = rbac.stat()
    os.utime(rbac, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    second = load_policy(org_dir)
    assert second is not first
    assert second.max_replicas == 7


def test_policy_file_deleted_after_caching_fails_closed(tmp_path: Path) -> None:
    org_dir = tmp_path / "org"
    shutil.copytree(ASSETS / "org-minimal", org_dir)
    load_policy(org_dir)
    (org_dir / "namespaces.yaml").unlink()
    with pytest.raises(PolicyError, match="namespaces.yaml: policy file not found"):
        load_policy(org_dir)


def test_rag_k8s_org_dir_points_at_another_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_K8S_ORG_DIR", str(ASSETS / "org-minimal"))
    policy = load_policy(Settings.resolve().org_dir)
    assert validate(k("get pods -n qa"), card=None, policy=policy) == allowed()
    assert validate(k("get pods -n dev"), card=None, policy=policy) == refused(
        "namespace 'dev' is not in the org policy: nothing may run there"
    )
    assert validate(k("get pods -n qa --kuberc=x"), card=None, policy=policy) == refused(
        "--kuberc is refused by the org policy (rbac-allowlist.yaml forbidden_flags)"
    )
    assert validate(k("get secrets -n qa"), card=None, policy=policy) == refused(
        "kubectl get on secret is not on the RBAC allow-list",
        "namespace 'qa' does not allow get on secret",
    )


# --- CONTRACT §5, row by row ----------------------------------------------------------------

READ_ONLY_IN = [
    "get pods -n {ns}",
    "get deployment api -n {ns} -o yaml",
    "describe deployment/api -n {ns}",
    "describe pod/api-0 -n {ns}",
    "logs pod/api-0 -n {ns} --tail=20",
    "logs deployment/api -n {ns} -c app --since=10m",
    "events -n {ns}",
    "events -n {ns} --for=pod/api-0",
    "get events -n {ns}",
    "top pod -n {ns}",
    "auth can-i get deployment -n {ns}",
    "auth can-i delete * -n {ns}",
    "rollout status deployment/api -n {ns} --watch=false",
    "rollout history statefulset/web -n {ns}",
    "get configmap -n {ns}",
    "get hpa -n {ns}",
    "get ingress -n {ns}",
    "get pvc -n {ns}",
]
RESTARTS = [
    "rollout restart deployment/api -n {ns}",
    "rollout restart statefulset/web -n {ns}",
    "rollout restart daemonset/agent -n {ns}",
]
STAGING_CHANGES = [
    ("scale deployment/api --replicas=3 -n {ns}", "scale", "medium"),
    ("scale statefulset/web --replicas=2 -n {ns}", "scale", "medium"),
    ("set image deployment/api api=repo/api:1.2 -n {ns}", "set-image", "medium"),
    ("rollout undo deployment/api -n {ns}", "rollback", "medium"),
    ("rollout undo daemonset/agent -n {ns} --to-revision=2", "rollback", "medium"),
    ("autoscale deployment/api --min=2 --max=5 --cpu=80% -n {ns}", "autoscale", "medium"),
    ("delete job/nightly -n {ns}", "delete", "high"),
]


@pytest.mark.parametrize("ns", ["prod", "staging", "dev"])
@pytest.mark.parametrize("cmd", READ_ONLY_IN)
def test_read_only_intents_are_allowed_in_prod_staging_and_dev(
    org: Policy, ns: str, cmd: str
) -> None:
    assert validate(k(cmd.format(ns=ns)), card=None, policy=org) == allowed()


@pytest.mark.parametrize("ns", ["prod", "staging", "dev"])
@pytest.mark.parametrize("cmd", RESTARTS)
def test_restart_of_workloads_is_allowed_in_prod_staging_and_dev(
    org: Policy, ns: str, cmd: str
) -> None:
    assert validate(k(cmd.format(ns=ns)), card=None, policy=org) == allowed("low")


@pytest.mark.parametrize(("cmd", "intent", "risk"), STAGING_CHANGES)
def test_staging_changes_are_refused_in_prod(org: Policy, cmd: str, intent: str, risk: str) -> None:
    kind = next(t.split("/")[0] for t in cmd.split() if "/" in t)  # every row uses kind/name
    assert validate(k(cmd.format(ns="prod")), card=None, policy=org) == refused(
        f"namespace 'prod' does not allow {intent} on {kind}", risk=risk
    )


@pytest.mark.parametrize("ns", ["staging", "dev"])
@pytest.mark.parametrize(("cmd", "intent", "risk"), STAGING_CHANGES)
def test_staging_changes_are_allowed_in_staging_and_dev_with_confirmation(
    org: Policy, ns: str, cmd: str, intent: str, risk: str
) -> None:
    assert validate(k(cmd.format(ns=ns)), card=None, policy=org) == confirm(
        f"{intent} is {risk} risk: {CONFIRM}", risk
    )


@pytest.mark.parametrize(
    ("cmd", "decision"),
    [
        ("delete deployment/api -n staging",
         refused("namespace 'staging' does not allow delete on deployment", risk="high")),
        ("delete configmap/settings -n staging",
         refused("namespace 'staging' does not allow delete on configmap", risk="high")),
        ("delete service/api -n staging",
         refused("namespace 'staging' does not allow delete on service", risk="high")),
        ("scale daemonset/agent --replicas=2 -n staging",
         refused("kubectl scale on daemonset is not on the RBAC allow-list",
                 "namespace 'staging' does not allow scale on daemonset", risk="medium")),
        ("set image cronjob/nightly app=repo/app:1 -n staging",
         refused("namespace 'staging' does not allow set-image on cronjob", risk="medium")),
        ("get secrets -n staging", refused("namespace 'staging' does not allow get on secret")),
        ("get secrets -n prod", refused("namespace 'prod' does not allow get on secret")),
        ("describe secret/db -n prod",
         refused("kubectl describe on secret is not on the RBAC allow-list",
                 "namespace 'prod' does not allow describe on secret")),
    ],
)
def test_staging_and_prod_refuse_what_the_contract_leaves_out(
    org: Policy, cmd: str, decision: Decision
) -> None:
    assert validate(k(cmd), card=None, policy=org) == decision


@pytest.mark.parametrize(
    ("cmd", "decision"),
    [
        ("delete deployment/api -n dev", confirm(f"delete is high risk: {CONFIRM}", "high")),
        ("delete configmap/settings -n dev", confirm(f"delete is high risk: {CONFIRM}", "high")),
        ("delete pvc/data -n dev", confirm(f"delete is high risk: {CONFIRM}", "high")),
        ("delete service/api -n dev", confirm(f"delete is high risk: {CONFIRM}", "high")),
        ("delete cronjob/nightly -n dev", confirm(f"delete is high risk: {CONFIRM}", "high")),
        ("set image cronjob/nightly app=repo/app:1 -n dev",
         confirm(f"set-image is medium risk: {CONFIRM}", "medium")),
        ("scale replicaset/api-7d9f8b6c5 --replicas=1 -n dev",
         confirm(f"scale is medium risk: {CONFIRM}", "medium")),
        ("get secrets -n dev", allowed()),
        ("get secret db -n dev -o name", allowed()),
        ("get secret db -n dev -o wide", allowed()),
        ("get secret -n dev -l app=db", allowed()),
        ("delete namespace/dev", refused("deleting a namespace is never allowed", risk="high")),
        ("delete ns dev -n dev", refused("deleting a namespace is never allowed", risk="high")),
    ],
)
def test_dev_allows_every_intent_except_deleting_the_namespace(
    org: Policy, cmd: str, decision: Decision
) -> None:
    assert validate(k(cmd), card=None, policy=org) == decision


@pytest.mark.parametrize(
    ("cmd", "output"),
    [
        ("get secret db -n dev -o yaml", "yaml"),
        ("get secret db -n dev -ojson", "json"),
        ("get secret db -n dev --output=jsonpath={.data}", "jsonpath"),
        ("get secret db -n dev -o=go-template={{.data}}", "go-template"),
        ("get secret db -n dev -o custom-columns=D:.data", "custom-columns"),
        ("get secret db -n dev --template={{.data}}", "template"),
        ("get secrets -n dev -o jsonpath-as-json={.items}", "jsonpath-as-json"),
    ],
)
def test_secret_contents_are_never_readable(org: Policy, cmd: str, output: str) -> None:
    assert validate(k(cmd), card=None, policy=org) == refused(
        f"reading secret contents is never allowed (-o {output}); only secret names may be listed",
        suggestion="kubectl get secrets -n dev",
    )


@pytest.mark.parametrize("ns", ["default", "kube-system", "kube-public", "qa"])
@pytest.mark.parametrize(
    ("cmd", "risk"),
    [("get pods -n {ns}", "none"), ("rollout restart deployment/api -n {ns}", "low"),
     ("logs pod/api-0 -n {ns}", "none"), ("delete job/x -n {ns}", "high")],
)
def test_any_other_namespace_allows_nothing(org: Policy, ns: str, cmd: str, risk: str) -> None:
    assert validate(k(cmd.format(ns=ns)), card=None, policy=org) == refused(
        f"namespace '{ns}' is not in the org policy: nothing may run there", risk=risk
    )


@pytest.mark.parametrize(
    ("cmd", "decision"),
    [
        ("get nodes", allowed()),
        ("get node node-1 -o wide", allowed()),
        ("describe node/node-1", allowed()),
        ("top node", allowed()),
        ("top node node-1", allowed()),
        ("auth can-i get nodes", allowed()),
        ("get namespaces", allowed()),
        ("describe namespace/dev", allowed()),
        ("cordon node-1", confirm(f"cordon is medium risk: {CONFIRM}", "medium")),
        ("uncordon node-1", confirm(f"uncordon is medium risk: {CONFIRM}", "medium")),
        ("drain node-1 --ignore-daemonsets", confirm(f"drain is high risk: {CONFIRM}", "high")),
        ("delete node/node-1",
         refused("kubectl delete on node is not on the RBAC allow-list",
                 "kubectl delete on node (cluster-scoped) is not allowed", risk="high")),
        ("logs node/node-1 -n dev",
         refused("kubectl logs on node is not on the RBAC allow-list",
                 "kubectl logs on node (cluster-scoped) is not allowed")),
    ],
)
def test_cluster_scoped_rules(org: Policy, cmd: str, decision: Decision) -> None:
    assert validate(k(cmd), card=None, policy=org) == decision


@pytest.mark.parametrize(
    ("cmd", "decision"),
    [
        ("scale deployment/api --replicas=50 -n staging",
         confirm(f"scale is medium risk: {CONFIRM}", "medium")),
        ("scale deployment/api --replicas=51 -n staging",
         refused("--replicas=51 is above the org's cap of 50 replicas", risk="medium")),
        ("scale deployment/api --replicas 10000 -n dev",
         refused("--replicas=10000 is above the org's cap of 50 replicas", risk="medium")),
        ("autoscale deployment/api --max=51 -n dev",
         refused("--max=51 is above the org's cap of 50 replicas", risk="medium")),
        ("scale deployment/api -n dev --current-replicas=2",
         refused("kubectl scale needs --replicas", risk="medium")),
    ],
)
def test_replica_cap(org: Policy, cmd: str, decision: Decision) -> None:
    assert validate(k(cmd), card=None, policy=org) == decision


@pytest.mark.parametrize(
    ("cmd", "decision"),
    [
        ("get clusterroles -n dev",
         refused("'clusterroles' is not a resource kind the org policy knows")),
        ("get -n dev", refused("kubectl get names no resource kind")),
        ("rollout pause deployment/api -n prod",
         refused("namespace 'prod' does not allow pause on deployment", risk="low")),
        ("rollout pause statefulset/db -n dev",
         refused("kubectl rollout pause on statefulset is not on the RBAC allow-list",
                 risk="low")),
    ],
)
def test_anything_not_on_the_allow_lists_is_refused(
    org: Policy, cmd: str, decision: Decision
) -> None:
    assert validate(k(cmd), card=None, policy=org) == decision


# --- CONTRACT §4: risk, and a card may raise it, never lower it ----------------------------


def make_card(intent: str, resource: str, risk: str) -> Card:
    return Card.model_validate({
        "id": f"{intent}-{resource}", "intent": intent, "resource": resource,
        "risk_level": risk, "description": "a card built for the risk tests",
        "command_template": "kubectl get pods -n {{namespace}}",
        "placeholders": {"namespace": {"type": "namespace"}},
        "examples": [{"query": "list pods", "slots": {"namespace": "dev"},
                      "command": "kubectl get pods -n dev"}],
    })


@pytest.mark.parametrize(
    ("cmd", "card", "decision"),
    [
        ("rollout restart deployment/api -n prod", make_card("restart", "deployment", "medium"),
         confirm(f"restart is medium risk: {CONFIRM}", "medium")),
        ("get pods -n dev", make_card("get", "pod", "high"),
         confirm(f"get is high risk: {CONFIRM}", "high")),
        # A card claiming `get` (risk none) cannot lower the argv's own risk.
        ("scale deployment/api --replicas=0 -n dev", make_card("get", "deployment", "none"),
         confirm(f"scale to 0 replicas is high risk: {CONFIRM}", "high")),
        ("delete job/x -n dev", make_card("get", "job", "none"),
         confirm(f"delete is high risk: {CONFIRM}", "high")),
        ("rollout restart deployment/api -n prod", make_card("get", "deployment", "none"),
         allowed("low")),
        ("scale deployment/api --replicas=00 -n dev", None,
         refused("--replicas='00' is not a whole number", risk="high")),
    ],
)
def test_card_risk_raises_never_lowers(
    org: Policy, cmd: str, card: Card | None, decision: Decision
) -> None:
    assert validate(k(cmd), card=card, policy=org) == decision


def test_decision_to_dict_is_the_contract_shape(org: Policy) -> None:
    decision = validate(k("delete pod/api-7d9f8b6c5-x2x9z -n staging"), card=None, policy=org)
    assert decision.to_dict() == {
        "allowed": False,
        "requires_confirmation": False,
        "reasons": ["deleting a pod is refused: restart the workload that owns it instead"],
        "suggestion": "kubectl rollout restart deployment/api -n staging",
    }


# --- the shipped cards and the shipped policy agree -----------------------------------------


def _card_examples() -> list[tuple[str, list[str]]]:
    from rag_k8s.cards import load_corpus

    out = []
    for card in load_corpus(REPO / "cards"):
        for ex in card.examples:
            slots = dict(ex.slots)
            if "namespace" in card.placeholders:
                slots["namespace"] = "dev"  # dev allows every intent the cards cover
            out.append((card.id, card.render(slots)))
    return out


# The cards whose commands the guardrails refuse by default (CONTRACT §6.1, §6.2; an unsafe
# drain needs rbac-allowlist.yaml unsafe_drain: true).
REFUSED_CARDS = {"delete-pod", "delete-namespace", "drain-node-force"}


@pytest.mark.parametrize(("card_id", "argv"), _card_examples(),
                         ids=[f"{c}-{i}" for i, (c, _) in enumerate(_card_examples())])
def test_every_card_example_is_allowed_in_dev_unless_a_guardrail_forbids_it(
    org: Policy, card_id: str, argv: list[str]
) -> None:
    decision = validate(argv, card=None, policy=org)
    assert decision.allowed is (card_id not in REFUSED_CARDS), decision.reasons


# --- the intents of issue 12: exact decisions per namespace (CONTRACT §5's new paragraph) -------

LOW = "is low risk: it runs only when confirmed (constraints.confirm)"


def _confirm(intent: str, risk: str) -> Decision:
    return confirm(f"{intent} is {risk} risk: {CONFIRM}", risk)


NEW_INTENT_DECISIONS = [
    # read-only: allowed in prod (and everywhere a namespace rule exists)
    ("get deployment api -n prod -o yaml", allowed()),
    ("get pod -n prod -o jsonpath={.items[*].metadata.name}", allowed()),
    ("get all -n prod", allowed()),
    ("get all -n kube-system",
     refused("namespace 'kube-system' is not in the org policy: nothing may run there")),
    ("get pod -n prod --show-labels --sort-by=.metadata.creationTimestamp", allowed()),
    ("get pod -n prod --field-selector=status.phase!=Running", allowed()),
    ("logs -l app=web -n prod --prefix --all-containers=true --timestamps=true", allowed()),
    ("logs pod/web-0 -n prod --since-time=2026-12-02T10:00:00Z", allowed()),
    ("top pod -n prod --containers=true --sort-by=memory", allowed()),
    ("auth can-i --list -n prod", allowed()),
    ("explain deployment.spec.strategy --recursive=true", allowed()),
    ("api-resources --namespaced=true", allowed()),
    ("api-versions", allowed()),
    ("version", allowed()),
    ("cluster-info", allowed()),
    ("config current-context", allowed()),
    ("config get-contexts -o name", allowed()),
    ("wait deployment/api -n prod --for=condition=Available --timeout=15s", allowed()),
    # changing, prod: refused
    ("label deployment api team=a -n prod",
     refused("namespace 'prod' does not allow label on deployment", risk="low")),
    ("rollout pause deployment/api -n prod",
     refused("namespace 'prod' does not allow pause on deployment", risk="low")),
    ("set env deployment/api LOG_LEVEL=debug -n prod",
     refused("namespace 'prod' does not allow set-env on deployment", risk="medium")),
    ("patch service api -n prod --type=merge -p {\"spec\":{\"selector\":{\"v\":\"2\"}}}",
     refused("namespace 'prod' does not allow patch on service", risk="medium")),
    # staging: label, annotate, pause, resume, set-env, set-resources, patch selector/replicas
    ("label deployment api team=a -n staging", allowed("low")),
    ("label pod web-0 canary- -n staging", allowed("low")),
    ("annotate service api example.com/owner=team-a -n staging", allowed("low")),
    ("rollout pause deployment/api -n staging", allowed("low")),
    ("rollout resume deployment/api -n staging", allowed("low")),
    ("set env deployment/api LOG_LEVEL=debug TIMEOUT- -n staging", _confirm("set-env", "medium")),
    ("set resources deployment/api -n staging --requests=cpu=250m,memory=256Mi",
     _confirm("set-resources", "medium")),
    ("patch service api -n staging --type=merge -p {\"spec\":{\"selector\":{\"version\":\"v2\"}}}",
     _confirm("patch", "medium")),
    ("patch deployment api -n staging -p {\"spec\":{\"replicas\":4}}",
     _confirm("patch", "medium")),
    ("patch pvc data -n staging -p {\"spec\":{\"resources\":{\"requests\":{\"storage\":\"20Gi\"}}}}",
     refused("namespace 'staging' does not allow patch on pvc", risk="medium")),
    ("create configmap flags --from-literal=a=b -n staging",
     refused("namespace 'staging' does not allow create on configmap", risk="medium")),
    ("expose deployment api --port=80 -n staging",
     refused("namespace 'staging' does not allow expose on deployment", risk="medium")),
    ("run echo --image=nginx:1.27 --restart=Never -n staging",
     refused("namespace 'staging' does not allow run on pod", risk="medium")),
    # dev: everything (but deleting the namespace)
    ("create configmap flags --from-literal=a=b -n dev", _confirm("create", "medium")),
    ("create deployment hello --image=nginx:1.27 -n dev", _confirm("create", "medium")),
    ("create service nodeport web --tcp=80:8080 -n dev", _confirm("create", "medium")),
    ("create job now --from=cronjob/nightly -n dev", _confirm("create", "medium")),
    ("expose deployment api --port=80 -n dev --target-port=8080", _confirm("expose", "medium")),
    ("run echo --image=nginx:1.27 --restart=Never -n dev", _confirm("run", "medium")),
    ("run echo --image=busybox:1.36 --restart=Never -n dev -- sleep 3600",
     _confirm("run", "medium")),
    ("patch pvc data -n dev -p {\"spec\":{\"resources\":{\"requests\":{\"storage\":\"20Gi\"}}}}",
     _confirm("patch", "medium")),
    ("set image deployment/api *=nginx:1.27 -n dev", _confirm("set-image", "medium")),
    ("scale deployment/api --current-replicas=2 --replicas=4 -n dev", _confirm("scale", "medium")),
    # cluster-scoped
    ("create namespace team-a", _confirm("create", "medium")),
    ("label namespace dev team=a",
     refused("kubectl label on namespace is not on the RBAC allow-list",
             "kubectl label on namespace (cluster-scoped) is not allowed", risk="low")),
    ("label node worker-1 disk=ssd", allowed("low")),
    ("taint nodes worker-1 dedicated=db:NoSchedule", _confirm("taint", "medium")),
    ("taint nodes worker-1 dedicated:NoSchedule-", _confirm("taint", "medium")),
    ("cordon worker-1 worker-2 worker-3", _confirm("cordon", "medium")),
    ("uncordon worker-1 worker-2", _confirm("uncordon", "medium")),
    ("drain worker-1 --ignore-daemonsets --delete-emptydir-data=true --timeout=60s",
     _confirm("drain", "high")),
    ("drain worker-1 --ignore-daemonsets --pod-selector=app=batch --timeout=60s",
     _confirm("drain", "high")),
]


@pytest.mark.parametrize(("cmd", "decision"), NEW_INTENT_DECISIONS,
                         ids=[c for c, _ in NEW_INTENT_DECISIONS])
def test_new_intents_follow_the_contract_defaults(org: Policy, cmd: str,
                                                  decision: Decision) -> None:
    assert validate(_split(cmd), card=None, policy=org) == decision


def _split(cmd: str) -> list[str]:
    import shlex

    return ["kubectl", *shlex.split(cmd.replace('"', '\\"'))]


def test_every_new_intent_has_a_decision_above() -> None:
    from rag_k8s.vocab import CARDLESS_INTENTS

    from rag_k8s.kubectl_argv import parse_argv
    from rag_k8s.policy import intents_of

    seen = {intents_of(parse_argv(_split(cmd)))[0] for cmd, _ in NEW_INTENT_DECISIONS}
    first = {"get", "describe", "logs", "events", "diagnose", "top", "can-i", "rollout-status",
             "rollout-history", "restart", "scale", "set-image", "rollback", "autoscale",
             "cordon", "uncordon", "drain", "delete"}
    assert set(INTENTS) - first - CARDLESS_INTENTS <= seen


def test_unsafe_drain_is_refused_by_default_and_high_risk_when_the_org_allows_it(
    org: Policy, tmp_path: Path
) -> None:
    argv = k("drain worker-4 --ignore-daemonsets --force=true --grace-period=0 --timeout=60s")
    assert validate(argv, card=None, policy=org) == refused(
        "drain with --force, --disable-eviction or --grace-period=0 is refused: the org policy "
        "does not allow unsafe drains (rbac-allowlist.yaml unsafe_drain), as the node may run "
        "prod pods", risk="high")
    shutil.copytree(REPO / "org", tmp_path / "org")
    rbac = tmp_path / "org" / "rbac-allowlist.yaml"
    rbac.write_text(rbac.read_text().replace("unsafe_drain: false", "unsafe_drain: true"))
    assert validate(argv, card=None, policy=load_policy(tmp_path / "org")) == _confirm(
        "drain", "high")
    # --force stays refused on delete whatever the knob says.
    assert validate(k("delete job/x -n dev --force"), card=None,
                    policy=load_policy(tmp_path / "org")).allowed is False


def test_a_run_command_override_only_in_the_listed_namespaces(org: Policy) -> None:
    decision = validate(k("run echo --image=busybox:1.36 --restart=Never -n staging -- sleep 1"),
                        card=None, policy=org)
    assert decision.allowed is False
    assert "arguments after `--` are refused (a command override for kubectl run is allowed only "\
           "in the namespaces of rbac-allowlist.yaml run_command_namespaces)" in decision.reasons


def test_the_policy_file_may_not_list_a_never_run_verb_or_an_unknown_one(tmp_path: Path) -> None:
    shutil.copytree(REPO / "org", tmp_path / "org")
    rbac = tmp_path / "org" / "rbac-allowlist.yaml"
    text = rbac.read_text()
    rbac.write_text(text.replace("  taint: [node]\n", "  taint: [node]\n  config view: []\n"))
    with pytest.raises(PolicyError, match="'config view' is a verb rag-k8s never runs"):
        load_policy(tmp_path / "org")
    rbac.write_text(text.replace("  taint: [node]\n", "  taint: [node]\n  frobnicate: []\n"))
    with pytest.raises(PolicyError, match="'frobnicate' is not a kubectl verb of the verb table"):
        load_policy(tmp_path / "org")
