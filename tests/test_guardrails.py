"""Guardrails (CONTRACT §6): each named check on its own, and through `validate`, with the
spellings that try to slip past them."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from rag_k8s.guardrails import (
    GUARDRAILS, Finding, Subject, argv_shape, namespace_required, no_bulk_mutation,
    no_credential_flags, no_dangerous_flags, no_denied_verbs, no_pod_delete, patch_named_fields,
    restart_suggestion, safe_run, selects_everything, server_dry_run_only, set_env_writes_only,
    well_formed_values,
)
from rag_k8s.kubectl_argv import parse_argv
from rag_k8s.policy import Decision, Policy, load_policy, validate
from rag_k8s.verbs import NEVER_RUN
from rag_k8s.vocab import INTENTS, READ_ONLY_INTENTS

REPO = Path(__file__).resolve().parent.parent
CONFIRM = "it runs only when confirmed (constraints.confirm)"
CREDENTIALS = "it would point kubectl at other credentials, another identity or another cluster"


def k(cmd: str) -> list[str]:
    return ["kubectl", *cmd.split()]


@pytest.fixture(scope="module")
def org() -> Policy:
    return load_policy(REPO / "org")


def parsed_subject(cmd: str) -> Subject:
    return Subject(k(cmd), parse_argv(k(cmd)))


def refused(*reasons: str, risk: str, suggestion: str | None = None) -> Decision:
    return Decision(allowed=False, requires_confirmation=False, reasons=list(reasons),
                    suggestion=suggestion, risk_level=risk)


UNSAFE_DRAIN = ("drain with --force, --disable-eviction or --grace-period=0 is refused: the org "
                "policy does not allow unsafe drains (rbac-allowlist.yaml unsafe_drain), as the "
                "node may run prod pods")


def test_guardrails_are_registered_once_in_order() -> None:
    assert GUARDRAILS == [argv_shape, no_credential_flags, no_denied_verbs, no_dangerous_flags,
                          well_formed_values, no_pod_delete, no_bulk_mutation, namespace_required,
                          safe_run, set_env_writes_only, patch_named_fields, server_dry_run_only]


# --- 1. delete pod -> restart the owner -----------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "namespace", "suggestion"),
    [
        ("api-7d9f8b6c5-x2x9z", "prod", "kubectl rollout restart deployment/api -n prod"),
        ("web-frontend-6d4cf56db6-4xq7z", "staging",
         "kubectl rollout restart deployment/web-frontend -n staging"),
        ("web-0", "dev", "kubectl rollout restart statefulset/web -n dev"),
        ("db-cluster-12", "dev", "kubectl rollout restart statefulset/db-cluster -n dev"),
        ("nightly-28xkq", "dev", "kubectl describe pod nightly-28xkq -n dev"),
        ("standalone", "dev", "kubectl describe pod standalone -n dev"),
        ("api-7d9f8b6c5-x2x9z", None, "kubectl rollout restart deployment/api -n <namespace>"),
    ],
)
def test_restart_suggestion_strips_pod_and_replicaset_hashes(
    pod: str, namespace: str | None, suggestion: str
) -> None:
    assert restart_suggestion(pod, namespace) == suggestion


@pytest.mark.parametrize(
    ("cmd", "decision"),
    [
        ("delete pod api-7d9f8b6c5-x2x9z -n staging",
         refused("deleting a pod is refused: restart the workload that owns it instead",
                 risk="high", suggestion="kubectl rollout restart deployment/api -n staging")),
        ("delete po/api-7d9f8b6c5-x2x9z --namespace=staging",
         refused("deleting a pod is refused: restart the workload that owns it instead",
                 risk="high", suggestion="kubectl rollout restart deployment/api -n staging")),
        ("-n staging delete pods api-7d9f8b6c5-x2x9z",
         refused("deleting a pod is refused: restart the workload that owns it instead",
                 risk="high", suggestion="kubectl rollout restart deployment/api -n staging")),
        ("delete pod/web-0 -n dev",
         refused("deleting a pod is refused: restart the workload that owns it instead",
                 risk="high", suggestion="kubectl rollout restart statefulset/web -n dev")),
        ("delete pod standalone -n dev",
         refused("deleting a pod is refused: restart the workload that owns it instead "
                 "(`Controlled By` in kubectl describe pod shows the owner)",
                 risk="high", suggestion="kubectl describe pod standalone -n dev")),
        ("delete pods -l app=api -n dev",
         refused("deleting a pod is refused: restart the workload that owns it instead",
                 risk="high")),
        # Even in prod, where delete is not allowed at all, the guardrail speaks first.
        ("delete pod api-7d9f8b6c5-x2x9z -n prod",
         refused("deleting a pod is refused: restart the workload that owns it instead",
                 risk="high", suggestion="kubectl rollout restart deployment/api -n prod")),
    ],
)
def test_delete_pod_is_refused_with_a_restart_suggestion(
    org: Policy, cmd: str, decision: Decision
) -> None:
    assert validate(k(cmd), card=None, policy=org) == decision


@pytest.mark.parametrize(
    ("cmd", "findings"),
    [
        ("delete pod/web-0 -n dev", [Finding(
            "no_pod_delete", "deleting a pod is refused: restart the workload that owns it instead",
            "kubectl rollout restart statefulset/web -n dev")]),
        ("delete job/web-0 -n dev", []),
        ("get pod/web-0 -n dev", []),
    ],
)
def test_no_pod_delete_alone(cmd: str, findings: list[Finding]) -> None:
    assert no_pod_delete(parsed_subject(cmd)) == findings


# --- 2. nothing in bulk, never delete a namespace -------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "reasons", "risk"),
    [
        ("delete jobs --all -n dev",
         ["--all is refused on a command that changes the cluster; name one object"], "high"),
        ("delete jobs --all=true -n dev",
         ["--all is refused on a command that changes the cluster; name one object"], "high"),
        ("scale deployment --all --replicas=0 -n dev",
         ["--all is refused on a command that changes the cluster; name one object"], "high"),
        ("delete jobs -A -l app=x",
         ["--all-namespaces (-A) is refused on a command that changes the cluster",
          "job is namespaced: the command must carry -n <namespace>",
          "--all-namespaces (-A) reaches namespaces outside the org policy; name one with "
          "-n <namespace>"], "high"),
        ("delete job/x --all-namespaces=true -n dev",
         ["--all-namespaces (-A) is refused on a command that changes the cluster",
          "--all-namespaces (-A) reaches namespaces outside the org policy; name one with "
          "-n <namespace>"], "high"),
        ("delete jobs --selector= -n dev",
         ["--selector='' matches everything; name one object"], "high"),
        ("delete jobs -l !app -n dev",
         ["--selector='!app' matches everything; name one object"], "high"),
        ("delete jobs -l app!=x,tier!=db -n dev",
         ["--selector='app!=x,tier!=db' matches everything; name one object"], "high"),
        ("delete jobs --field-selector= -n dev",
         ["--field-selector='' matches everything; name one object"], "high"),
        ("cordon --selector=", ["--selector='' matches everything; name one object"], "medium"),
        ("rollout restart deployment -n prod",
         ["kubectl rollout restart must name the deployment it changes; without a name it acts "
          "on every deployment in reach"], "low"),
        ("rollout undo statefulset -n staging",
         ["kubectl rollout undo must name the statefulset it changes; without a name it acts "
          "on every statefulset in reach"], "medium"),
        ("delete job a b -n dev",
         ["kubectl delete names 2 objects; a command that changes the cluster may name only "
          "one"], "high"),
        ("delete namespace dev", ["deleting a namespace is never allowed"], "high"),
        ("delete namespaces/dev", ["deleting a namespace is never allowed"], "high"),
        ("delete ns/staging -n staging", ["deleting a namespace is never allowed"], "high"),
    ],
)
def test_no_bulk_mutation(org: Policy, cmd: str, reasons: list[str], risk: str) -> None:
    assert validate(k(cmd), card=None, policy=org) == refused(*reasons, risk=risk)


@pytest.mark.parametrize(
    "cmd",
    ["get pods -l !app -n dev", "get pods --all-namespaces=false -n dev",
     "delete jobs -l app=nightly -n dev", "rollout restart deployment/api -n prod"],
)
def test_no_bulk_mutation_lets_read_only_and_targeted_commands_pass(cmd: str) -> None:
    assert no_bulk_mutation(parsed_subject(cmd)) == []


@pytest.mark.parametrize(
    ("selector", "everything"),
    [("", True), (" ", True), (",", True), ("!app", True), ("app!=x", True),
     ("app notin (a)", True), ("app=api", False), ("app", False), ("app=api,!canary", False),
     ("tier!=db,app==api", False)],
)
def test_selects_everything(selector: str, everything: bool) -> None:
    assert selects_everything(selector) is everything


# --- 3. credential and redirect flags, anywhere ---------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "flag"),
    [
        ("get pods -n dev --kubeconfig=/k", "kubeconfig"),
        ("get pods -n dev --kubeconfig /k", "kubeconfig"),
        ("--kubeconfig=/k get pods -n dev", "kubeconfig"),
        ("--context=other get pods -n dev", "context"),
        ("--context other get pods -n dev", "context"),
        ("get pods -n dev --cluster=other", "cluster"),
        ("get pods -n dev -s https://evil:6443", "server"),
        ("-s https://evil:6443 get pods -n dev", "server"),
        ("get pods -n dev -shttps://evil:6443", "server"),
        ("get pods -n dev --server=https://evil:6443", "server"),
        ("get pods -n dev --token=abc", "token"),
        ("get pods -n dev --token abc", "token"),
        ("get pods -n dev --as=admin", "as"),
        ("--as admin get pods -n dev", "as"),
        ("get pods -n dev --as-group=system:masters", "as-group"),
        ("get pods -n dev --as-uid=0", "as-uid"),
        ("get pods -n dev --user=admin", "user"),
        ("get pods -n dev --username=admin", "username"),
        ("get pods -n dev --password=x", "password"),
        ("get pods -n dev --insecure-skip-tls-verify", "insecure-skip-tls-verify"),
        ("get pods -n dev --insecure-skip-tls-verify=false", "insecure-skip-tls-verify"),
        ("get pods -n dev --certificate-authority=/ca", "certificate-authority"),
        ("get pods -n dev --client-key=/key", "client-key"),
        ("get pods -n dev --client-certificate=/crt", "client-certificate"),
        ("rollout restart deployment/api -n prod --token=abc", "token"),
        ("logs pod/api-0 -n dev -- --token=abc", "token"),  # even where kubectl would not look
    ],
)
def test_credential_flags_are_refused_in_every_spelling(org: Policy, cmd: str, flag: str) -> None:
    decision = validate(k(cmd), card=None, policy=org)
    assert decision.allowed is False
    assert decision.reasons == [f"--{flag} is refused: {CREDENTIALS}"]


@pytest.mark.parametrize(
    ("cmd", "flag"),
    [("get pods -n dev -v=9", "v"), ("get pods -n dev --v 9", "v"),
     ("get pods -n dev --kuberc=/prefs", "kuberc"), ("get pods -n dev --cache-dir=/c", "cache-dir"),
     ("logs pod/x -n dev --insecure-skip-tls-verify-backend", "insecure-skip-tls-verify-backend"),
     ("get pods -n dev --proxy-url=http://p:3128", "proxy-url")],
)
def test_org_forbidden_flags_are_refused(org: Policy, cmd: str, flag: str) -> None:
    assert validate(k(cmd), card=None, policy=org).reasons == [
        f"--{flag} is refused by the org policy (rbac-allowlist.yaml forbidden_flags)"
    ]


def test_contract_flags_are_refused_even_when_the_policy_file_omits_them() -> None:
    subject = Subject(k("get pods -n dev --token=abc"), None, frozenset())
    assert no_credential_flags(subject) == [
        Finding("no_credential_flags", f"--token is refused: {CREDENTIALS}")
    ]


# --- 4. -n <namespace> on every namespaced command ------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "reasons", "risk"),
    [
        ("get pods", ["pod is namespaced: the command must carry -n <namespace>"], "none"),
        ("rollout restart deployment/api",
         ["deployment is namespaced: the command must carry -n <namespace>"], "low"),
        ("logs api-0", ["pod is namespaced: the command must carry -n <namespace>"], "none"),
        ("events --for=pod/api-0", ["event is namespaced: the command must carry -n <namespace>"],
         "none"),
        ("auth can-i get *", ["the resource is namespaced: the command must carry -n <namespace>"],
         "none"),
        ("get pods -A", ["pod is namespaced: the command must carry -n <namespace>",
                         "--all-namespaces (-A) reaches namespaces outside the org policy; name "
                         "one with -n <namespace>"], "none"),
        ("get pods --all-namespaces=true -n dev",
         ["--all-namespaces (-A) reaches namespaces outside the org policy; name one with "
          "-n <namespace>"], "none"),
        ("top pod -A -n dev",
         ["--all-namespaces (-A) reaches namespaces outside the org policy; name one with "
          "-n <namespace>"], "none"),
    ],
)
def test_namespace_required(org: Policy, cmd: str, reasons: list[str], risk: str) -> None:
    assert validate(k(cmd), card=None, policy=org) == refused(*reasons, risk=risk)


@pytest.mark.parametrize(
    "cmd",
    [
        "rollout restart deployment/api -n prod",
        "rollout restart deploy api -n prod",
        "rollout restart deployment api -nprod",
        "rollout restart deployments.apps/api --namespace=prod",
        "rollout restart deploy/api --namespace prod",
        "-n prod rollout restart deployment/api",
        "--namespace=prod rollout restart deployment/api",
        "rollout -n prod restart deployment/api",
        "rollout restart deployment/api -n=prod",
    ],
)
def test_every_spelling_of_a_restart_gets_the_same_decision(org: Policy, cmd: str) -> None:
    assert validate(k(cmd), card=None, policy=org) == Decision(
        allowed=True, requires_confirmation=False, reasons=[], risk_level="low"
    )


@pytest.mark.parametrize(
    ("cmd", "namespaces"),
    [
        ("get pods -n dev -n kube-system", "dev, kube-system"),
        ("get pods -n dev --namespace=kube-system", "dev, kube-system"),
        ("--namespace=dev get pods -nkube-system", "dev, kube-system"),
        ("-n dev rollout restart deployment/api -n dev", "dev, dev"),
    ],
)
def test_repeated_namespace_is_refused(org: Policy, cmd: str, namespaces: str) -> None:
    assert validate(k(cmd), card=None, policy=org) == refused(
        "the command could not be analysed, so it is refused: the namespace is given more "
        f"than once ({namespaces}); give it once", risk="high",
    )


@pytest.mark.parametrize("cmd", ["get nodes", "cordon node-1", "get namespaces"])
def test_cluster_scoped_kinds_need_no_namespace(cmd: str) -> None:
    assert namespace_required(parsed_subject(cmd)) == []


# --- 5. only kubectl, plain arguments, no dangerous verbs or flags --------------------------


@pytest.mark.parametrize(
    ("argv", "reasons"),
    [
        ([], ["the command must be a non-empty list of strings"]),
        ("kubectl get pods -n dev", ["the command must be a non-empty list of strings"]),
        (["kubectl", "get", 7], ["the command must be a non-empty list of strings"]),
        (["sh", "-c", "kubectl get pods"],
         ["only the kubectl binary may run; the command starts with 'sh'",
          "argument 2 ('kubectl get pods') contains ' ', which no kubectl argument here needs"]),
        (["kubectl.exe", "get", "pods", "-n", "dev"],
         ["only the kubectl binary may run; the command starts with 'kubectl.exe'"]),
        (["kubectl", "get", "pods;rm", "-n", "dev"],
         ["argument 2 ('pods;rm') contains ';', which no kubectl argument here needs"]),
        (["kubectl", "get", "pods", "-n", "dev|sh"],
         ["argument 4 ('dev|sh') contains '|', which no kubectl argument here needs"]),
        (["kubectl", "get", "pods", "-n", "$(id)"],
         ["argument 4 ('$(id)') contains '$', which no kubectl argument here needs"]),
        (["kubectl", "get", "pods", "-n", "`id`"],
         ["argument 4 ('`id`') contains '`', which no kubectl argument here needs"]),
        (["kubectl", "get", "pods", "-n", "dev>out"],
         ["argument 4 ('dev>out') contains '>', which no kubectl argument here needs"]),
        (["kubectl", "get", "pods", "-n", "dev\n"],
         ["argument 4 ('dev\\n') contains a control character"]),
        (["kubectl", "get", "pods", "-n", "dev\x00"],
         ["argument 4 ('dev\\x00') contains a control character"]),
        (["kubectl", "get", "pods", "-n", "pr\u043ed"],
         ["argument 4 ('prоd') contains 'о', which no kubectl argument here needs"]),
        (["kubectl", "get", "pods", "-l", "", "-n", "dev"], ["argument 4 is empty"]),
        (["kubectl", "get", "pods", "-n", "a" * 1025],
         ["argument 4 is longer than 1024 characters"]),
    ],
)
def test_argv_shape(org: Policy, argv: list, reasons: list[str]) -> None:
    decision = validate(argv, card=None, policy=org)
    assert (decision.allowed, decision.reasons) == (False, reasons)
    assert argv_shape(Subject(argv, None)) == [Finding("argv_shape", r) for r in reasons]


NEVER = "is never run through rag-k8s"


@pytest.mark.parametrize(
    ("argv", "verb", "why"),
    [
        (["kubectl", "exec", "api-0", "-n", "dev", "--", "sh"], "exec", "opens a shell"),
        (["kubectl", "exec", "-it", "api-0", "-n", "dev", "--", "sh", "-c", "ls -la"], "exec",
         "opens a shell"),
        (["kubectl", "cp", "dev/api-0:etc/passwd", "passwd"], "cp", "copies files"),
        (["kubectl", "proxy"], "proxy", "serves the whole Kubernetes API"),
        (["kubectl", "port-forward", "pod/api-0", "8080:80", "-n", "dev"], "port-forward",
         "network tunnel"),
        (["kubectl", "edit", "deployment/api", "-n", "dev"], "edit", "opens an editor"),
        (["kubectl", "replace", "-n", "dev"], "replace", "overwrites whole objects"),
        (["kubectl", "attach", "api-0", "-n", "dev"], "attach", "console"),
        (["kubectl", "debug", "node/node-1", "-it", "--image=busybox"], "debug",
         "debugging container"),
        (["kubectl", "plugin", "list"], "plugin", "arbitrary programs"),
        (["kubectl", "config", "view", "--raw"], "config view", "credentials"),
        (["kubectl", "config", "view"], "config view", "prints the kubeconfig"),
        (["kubectl", "config", "use-context", "prod-admin"], "config use-context",
         "switches the cluster"),
        (["kubectl", "config", "set-context", "--current", "--namespace=x"], "config set-context",
         "edits the kubeconfig"),
        (["kubectl", "config", "delete-context", "x"], "config delete-context",
         "edits the kubeconfig"),
        (["kubectl", "config", "set-credentials", "me", "--token=abc"], "config set-credentials",
         "writes credentials"),
        (["kubectl", "certificate", "approve", "csr-1"], "certificate approve", "grants"),
        (["kubectl", "certificate", "deny", "csr-1"], "certificate deny", "decides"),
        (["kubectl", "cluster-info", "dump"], "cluster-info dump", "dumps the state"),
    ],
)
def test_never_run_verbs_are_denied_with_the_command_to_run_yourself(
    org: Policy, argv: list[str], verb: str, why: str
) -> None:
    decision = validate(argv, card=None, policy=org)
    assert (decision.allowed, decision.requires_confirmation, decision.risk_level) == (
        False, False, "high")
    [reason] = decision.reasons
    assert reason.startswith(f"kubectl {verb} {NEVER}: ") and why in reason
    assert reason.endswith("; run it yourself if you mean to")
    assert decision.suggestion == shlex.join(argv)


@pytest.mark.parametrize(
    "argv",
    [["kubectl", "frobnicate", "pods", "-n", "dev"], ["kubectl", "create", "secret", "generic",
                                                      "x", "-n", "dev"],
     ["kubectl", "rollout", "frobnicate", "deployment/api", "-n", "dev"],
     ["kubectl", "auth", "whoami"], ["kubectl", "set", "subject", "rolebinding/x", "-n", "dev"]],
)
def test_verbs_no_table_lists_are_denied_with_the_command_to_run_yourself(
    org: Policy, argv: list[str]
) -> None:
    decision = validate(argv, card=None, policy=org)
    assert decision.allowed is False and decision.suggestion == shlex.join(argv)
    [reason] = decision.reasons
    assert reason.startswith("kubectl ") and reason.endswith("; run it yourself if you mean to")


def test_a_verb_the_org_does_not_list_is_denied_with_the_command_to_run_yourself(
    tmp_path: Path
) -> None:
    import shutil

    shutil.copytree(REPO / "org", tmp_path / "org")
    rbac = tmp_path / "org" / "rbac-allowlist.yaml"
    rbac.write_text(rbac.read_text().replace("  taint: [node]\n", ""))
    argv = k("taint nodes node-1 dedicated=db:NoSchedule")
    assert validate(argv, card=None, policy=load_policy(tmp_path / "org")) == refused(
        "kubectl taint is not on the RBAC allow-list (org/rbac-allowlist.yaml verbs); run it "
        "yourself if you mean to", risk="medium",
        suggestion="kubectl taint nodes node-1 dedicated=db:NoSchedule")


def test_no_denied_verbs_alone() -> None:
    assert no_denied_verbs(parsed_subject("exec api-0 -n dev")) == [
        Finding("no_denied_verbs", NEVER_RUN["exec"])
    ]
    assert no_denied_verbs(parsed_subject("frobnicate api-0 -n dev")) == [
        Finding("no_denied_verbs", "kubectl frobnicate is refused: it is not a verb rag-k8s runs")
    ]
    assert no_denied_verbs(parsed_subject("get pods -n dev")) == []


def test_no_verb_list_is_left_outside_the_verb_table() -> None:
    """kubectl_argv, policy and guardrails read rag_k8s/verbs.py; none keeps a list of its own."""
    import rag_k8s.guardrails as g
    import rag_k8s.kubectl_argv as ka
    import rag_k8s.policy as pol
    from rag_k8s import verbs

    assert not hasattr(g, "DENIED_VERBS")
    assert pol.VERB_INTENTS is verbs.POLICY_VERBS
    assert ka._VERB_FLAGS == {w: spec.flags for w, spec in verbs.VERBS.items()}
    assert ka.READ_ONLY_VERBS is verbs.READ_ONLY_VERBS
    assert ka.SERVER_DRY_RUN_VERBS is verbs.SERVER_DRY_RUN_VERBS
    # Every intent but the card-less `undo` is served by a verb of the table, and back.
    served = {i for spec in verbs.VERBS.values() for i in spec.intents}
    assert served == set(INTENTS) - {"undo"}
    assert {s.name for s in verbs.VERBS.values() if s.read_only} == {
        v for v, intents in verbs.POLICY_VERBS.items() if intents[0] in READ_ONLY_INTENTS}
    # The shipped allow-list names only table verbs.
    assert set(load_policy(REPO / "org").verbs) <= set(verbs.POLICY_VERBS)


@pytest.mark.parametrize(
    ("cmd", "reasons", "risk"),
    [
        ("delete job/x -n dev --force",
         ["--force is refused: it skips graceful deletion and safety checks"], "high"),
        ("delete job/x -n dev --force=true",
         ["--force is refused: it skips graceful deletion and safety checks"], "high"),
        ("delete job/x -n dev --grace-period=0",
         ["--grace-period=0 is refused: it kills pods without a graceful shutdown"], "high"),
        ("drain node-1 --ignore-daemonsets --force --grace-period 0", [UNSAFE_DRAIN], "high"),
        ("drain node-1 --disable-eviction", [UNSAFE_DRAIN], "high"),
        ("get pods -n dev --raw=/api/v1/namespaces/dev/secrets",
         ["--raw is refused: it sends a raw API request that no allow-list can judge"], "none"),
        ("delete -f pod.yaml -n dev",
         ["--filename is refused: commands act only on named objects, never on files or inline "
          "objects"], "high"),
        ("get pods -n dev -k overlay",
         ["--kustomize is refused: commands act only on named objects, never on files or inline "
          "objects"], "none"),
        ("get pods -n dev -o go-template-file=/t",
         ["-o go-template-file is refused: it reads a local file"], "none"),
    ],
)
def test_dangerous_flags_are_refused(org: Policy, cmd: str, reasons: list[str], risk: str) -> None:
    assert validate(k(cmd), card=None, policy=org) == refused(*reasons, risk=risk)


@pytest.mark.parametrize(
    "cmd", ["delete job/x -n dev --force=false", "delete job/x -n dev --grace-period=30",
            "logs -f api-0 -n dev"],
)
def test_harmless_spellings_of_dangerous_flags_pass(cmd: str) -> None:
    assert no_dangerous_flags(parsed_subject(cmd)) == []


# --- well-formed values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        ("get pods -n Prod", "namespace 'Prod' is not a DNS-1123 label"),
        ("get pods -n dev.prod", "namespace 'dev.prod' is not a DNS-1123 label"),
        ("get pod API_1 -n dev", "name 'API_1' is not a valid Kubernetes name"),
        ("scale deployment/api --replicas=-1 -n dev", "--replicas='-1' is not a whole number"),
        ("scale deployment/api --replicas=3.5 -n dev", "--replicas='3.5' is not a whole number"),
        ("scale deployment/api --replicas=1e3 -n dev", "--replicas='1e3' is not a whole number"),
        ("logs pod/api-0 -n dev --tail=abc", "--tail='abc' is not a whole number"),
        ("auth can-i GET pods -n dev", "can-i verb 'GET' is not a verb"),
        ("set image deployment/api api=Repo/API:1 -n dev", "'api=Repo/API:1' is not container=image"),
        ("set image deployment/api -n dev", "kubectl set image needs container=image"),
        ("logs pod/api-0 -n dev --since=10d", "--since='10d' is not well-formed"),
        ("logs pod/api-0 -n dev -c Bad_Name", "--container='Bad_Name' is not well-formed"),
        ("autoscale deployment/api --max=5 --cpu=lots -n dev", "--cpu='lots' is not well-formed"),
        ("events -n dev --for=pod/", "--for='pod/' is not kind/name"),
        ("events -n dev --for=widget/x", "--for='widget/x' is not kind/name"),
        ("logs pod/api-0 -n dev -- extra", "arguments after `--` are refused"),
    ],
)
def test_well_formed_values(cmd: str, reason: str) -> None:
    assert well_formed_values(parsed_subject(cmd)) == [Finding("well_formed_values", reason)]


# --- 6. only a server-side dry run ----------------------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "value"),
    [("delete job/x -n dev --dry-run=client", "client"),
     ("delete job/x -n dev --dry-run=none", "none"),
     ("delete job/x -n dev --dry-run", "unchanged"),
     ("scale deployment/api --replicas=2 -n dev --dry-run=client", "client")],
)
def test_client_dry_run_is_refused(org: Policy, cmd: str, value: str) -> None:
    assert validate(k(cmd), card=None, policy=org).reasons == [
        f"--dry-run={value} is refused: only --dry-run=server is checked by the API server"
    ]


def test_server_dry_run_passes(org: Policy) -> None:
    assert server_dry_run_only(parsed_subject("delete job/x -n dev --dry-run=server")) == []
    assert validate(k("delete job/x -n dev --dry-run=server"), card=None, policy=org) == Decision(
        allowed=True, requires_confirmation=True,
        reasons=[f"delete is high risk: {CONFIRM}"], risk_level="high",
    )


@pytest.mark.parametrize(
    ("selector", "everything"),
    [
        ("", True), ("!app", True), ("app!=web", True),
        ("kubernetes.io/hostname", True), ("kubernetes.io/os=linux", True),
        ("topology.kubernetes.io/zone", True), ("kubernetes.io/os=windows", False),
        ("app=web", False), ("kubernetes.io/hostname=node-3", False),
        ("kubernetes.io/hostname,app=web", False), ("app", False),
    ],
)
def test_selectors_that_match_every_node_in_practice(selector: str, everything: bool) -> None:
    from rag_k8s.guardrails import selects_everything

    assert selects_everything(selector) is everything


# --- the guardrails of the new intents --------------------------------------------------------


def j(cmd: str) -> list[str]:
    """Split like a shell, keeping the double quotes of a JSON patch."""
    return ["kubectl", *shlex.split(cmd.replace('"', '\\"'))]


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        ("run x --image=busybox:1.36 -n dev -i", "kubectl run --stdin is refused"),
        ("run x --image=busybox:1.36 -n dev -t", "kubectl run --tty is refused"),
        ("run x --image=busybox:1.36 -n dev --rm", "kubectl run --rm is refused"),
        ("run x --image=busybox:1.36 -n dev --privileged", "kubectl run --privileged is refused"),
        ("run x --image=busybox:1.36 -n dev --attach", "kubectl run --attach is refused"),
        ("run x -n dev --restart=Never", "kubectl run needs --image"),
        ("run x --image=busybox:1.36 -n dev --restart=Always",
         "kubectl run makes a pod only: --restart=Never or OnFailure"),
    ],
)
def test_safe_run(cmd: str, reason: str) -> None:
    findings = safe_run(parsed_subject(cmd))
    assert any(f.reason.startswith(reason) for f in findings), findings


@pytest.mark.parametrize("flag", ["--list", "--resolve", "--from=secret/db", "--keys=a",
                                  "--prefix=X_"])
def test_set_env_never_prints_or_copies_values(flag: str) -> None:
    name = flag[2:].partition("=")[0]
    assert set_env_writes_only(parsed_subject(f"set env deployment/api A=b -n dev {flag}")) == [
        Finding("set_env_writes_only", f"kubectl set env --{name} is refused: it prints or copies "
                                       "variable values, which may hold secrets")]


@pytest.mark.parametrize(
    ("cmd", "ok"),
    [
        ('patch service api -n dev --type=merge -p {"spec":{"selector":{"app":"web"}}}', True),
        ('patch deployment api -n dev -p {"spec":{"replicas":3}}', True),
        ('patch statefulset db -n dev --type=strategic -p {"spec":{"replicas":0}}', True),
        ('patch deployment api -n dev -p {"spec":{"template":{"spec":{"containers":'
         '[{"name":"app","resources":{"requests":{"cpu":"250m"}}}]}}}}', True),
        ('patch pvc data -n dev -p {"spec":{"resources":{"requests":{"storage":"20Gi"}}}}', True),
        # other fields, other kinds, other patch types: refused
        ('patch deployment api -n dev -p {"spec":{"template":{"spec":{"containers":'
         '[{"name":"app","image":"evil:1"}]}}}}', False),
        ('patch deployment api -n dev -p {"spec":{"replicas":3,"paused":true}}', False),
        ('patch service api -n dev -p {"spec":{"type":"LoadBalancer"}}', False),
        ('patch pvc data -n dev -p {"spec":{"replicas":3}}', False),
        ('patch configmap x -n dev -p {"data":{"a":"b"}}', False),
        ('patch deployment api -n dev --type=json -p {"spec":{"replicas":3}}', False),
        ("patch deployment api -n dev", False),
        ('patch deployment api -n dev -p {"spec":{"replicas":"3"}}', False),
    ],
)
def test_patch_changes_only_the_fields_a_card_names(org: Policy, cmd: str, ok: bool) -> None:
    decision = validate(j(cmd), card=None, policy=org)
    assert decision.allowed is ok, decision.reasons


def test_a_patch_body_with_shell_syntax_is_refused_by_its_shape(org: Policy) -> None:
    argv = ["kubectl", "patch", "deployment", "api", "-n", "dev", "-p",
            '{"spec":{"replicas":"$(id)"}}']
    assert validate(argv, card=None, policy=org).reasons == [
        "argument 7: the patch must be a JSON object of plain names and values"]
    argv[-1] = '{"spec":{"replicas":3},"x":"a;b"}'
    assert validate(argv, card=None, policy=org).reasons == [
        "argument 7: the patch must be a JSON object of plain names and values"]
    argv[-1] = '{"spec": {"replicas": 3}}'  # JSON's own spaces are fine: one argv item
    assert validate(argv, card=None, policy=org).allowed is True


@pytest.mark.parametrize(
    ("cmd", "reason"),
    [
        ("wait deployment/api -n dev --timeout=15s",
         "kubectl wait needs --for=condition=NAME, --for=delete or --for=jsonpath={...}=VALUE"),
        ("wait deployment/api -n dev --for=condition=Available",
         "kubectl wait needs --timeout of at most 300s (it is bounded by the request's timeout)"),
        ("wait deployment/api -n dev --for=condition=Available --timeout=301s",
         "kubectl wait needs --timeout of at most 300s (it is bounded by the request's timeout)"),
        ("wait deployment/api -n dev --for=condition=Available --timeout=10m",
         "kubectl wait needs --timeout of at most 300s (it is bounded by the request's timeout)"),
        ("taint nodes n1 dedicated=db:Sometimes",
         "'dedicated=db:Sometimes' is not a taint (key[=value]:Effect, key:Effect- or key-)"),
        ("taint nodes n1 dedicated=db:NoSchedule-",
         "'dedicated=db:NoSchedule-' is not a taint (key[=value]:Effect, key:Effect- or key-)"),
        ("label deployment api bad!key=x -n dev", "'bad!key=x' is not key=value or key-"),
        ("set env deployment/api 1BAD=x -n dev", "'1BAD=x' is not key=value or key-"),
        ("set resources deployment/api -n dev", "kubectl set resources needs --requests or --limits"),
        ("set resources deployment/api -n dev --requests=gpu=1",
         "--requests='gpu=1' is not well-formed"),
        ("create job x --from=deployment/api -n dev", "--from='deployment/api' is not cronjob/NAME"),
        ("logs pod/x -n dev --since-time=yesterday", "--since-time='yesterday' is not well-formed"),
        ("explain deployment/spec", "'deployment/spec' is not a resource field path"),
    ],
)
def test_new_flag_values_are_well_formed(org: Policy, cmd: str, reason: str) -> None:
    decision = validate(k(cmd), card=None, policy=org)
    assert decision.allowed is False and reason in decision.reasons, decision.reasons


def test_cordon_may_name_up_to_twenty_nodes_other_changes_one_object(org: Policy) -> None:
    nodes = " ".join(f"n{i}" for i in range(21))
    assert validate(k(f"cordon {nodes}"), card=None, policy=org).reasons == [
        "kubectl cordon names 21 objects; at most 20"]
    assert validate(k("label pod a b x=y -n dev"), card=None, policy=org).reasons == [
        "kubectl label names 2 objects; a command that changes the cluster may name only one"]
    assert validate(k("taint nodes n1 n2 a=b:NoSchedule"), card=None, policy=org).reasons == [
        "kubectl taint names 2 objects; a command that changes the cluster may name only one"]


def test_the_argv_door_refuses_never_run_verbs_with_the_command_as_suggestion(tmp_path: Path
                                                                           ) -> None:
    """Through the Python door (argv field): denied, nothing runs, the suggestion is the argv."""
    from rag_k8s.config import Settings
    from rag_k8s.tool import plan

    settings = Settings.resolve()
    argv = ["kubectl", "exec", "-it", "api-0", "-n", "dev", "--", "sh"]
    result = plan({"argv": argv}, settings=settings)
    assert result["status"] == "denied"
    assert result["decision"]["suggestion"] == "kubectl exec -it api-0 -n dev -- sh"
    assert result["decision"]["reasons"][0].startswith("kubectl exec is never run through rag-k8s")
    assert result["execution"] is None
