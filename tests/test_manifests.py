"""Manifests (`apply|create|delete|diff -f`, `-k`): every object judged, preview digest confirmed.

The recording kubectl (tests/fakes/recording_kubectl.py) shows what reached kubectl: a refused
manifest reaches nothing, not even the preview. The real kubectl against the API stand-in is in
tests/e2e/test_e2e_manifests.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rag_k8s import k8s_exec, plan
from rag_k8s.manifests import check_kustomization, diff_digest, ManifestError, Manifests
from rag_k8s.request import parse_request
from rag_k8s.errors import InvalidRequest

CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {ns}
data:
  mode: fast
"""
DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
{meta}spec:
  replicas: 2
  selector: {{matchLabels: {{app: api}}}}
  template:
    metadata: {{labels: {{app: api}}}}
    spec:
      containers: [{{name: app, image: "nginx:1.27"}}]
"""
CRB = """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: everyone-admin
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: Group, name: "system:authenticated", apiGroup: rbac.authorization.k8s.io}]
"""
FAKE_DIFF = ("diff -u -N /tmp/LIVE-1/v1.ConfigMap.dev.settings /tmp/MERGED-2/v1.ConfigMap.dev.settings\n"
             "--- /tmp/LIVE-1/v1.ConfigMap.dev.settings\t2026-01-01 00:00:00\n"
             "+++ /tmp/MERGED-2/v1.ConfigMap.dev.settings\t2026-01-01 00:00:00\n"
             "@@ -0,0 +1,3 @@\n+apiVersion: v1\n+kind: ConfigMap\n+  creationTimestamp: \"x\"\n")


def changes(calls: list[list[str]]) -> list[list[str]]:
    """The kubectl calls without undo's state capture (`get ... -o json` before a change)."""
    return [c for c in calls if not (c[:1] == ["get"] and "--ignore-not-found" in c)]


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------- objects outside the policy


@pytest.mark.parametrize(
    ("files", "argv_tail", "reason"),
    [
        ({"m.yaml": CONFIGMAP.format(ns="dev") + "---\n" + CRB}, ["-n", "dev"],
         "ClusterRoleBinding/everyone-admin in namespace dev ({m}, document 2): "
         "ClusterRoleBinding is cluster-scoped"),
        ({"m.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: sneaky}\n"}, [],
         "Namespace/sneaky ({m}): Namespace is cluster-scoped"),
        ({"m.yaml": "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
                    "metadata: {name: x.example.com}\n"}, ["-n", "dev"],
         "CustomResourceDefinition is cluster-scoped"),
        ({"m.yaml": "apiVersion: admissionregistration.k8s.io/v1\n"
                    "kind: MutatingWebhookConfiguration\nmetadata: {name: hook}\n"}, [],
         "MutatingWebhookConfiguration/hook ({m}): MutatingWebhookConfiguration is cluster-scoped"),
        ({"m.yaml": CONFIGMAP.format(ns="kube-system")}, [],
         "ConfigMap/settings in namespace kube-system ({m}): namespace 'kube-system' is not in "
         "the org policy"),
        ({"m.yaml": DEPLOYMENT.format(meta="  namespace: prod\n")}, [],
         "Deployment/api in namespace prod ({m}): namespace 'prod' does not allow apply on "
         "deployment"),
        ({"m.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\n"
                    "metadata: {name: r, namespace: dev}\n"}, [],
         "Role/r in namespace dev ({m}): kind Role is not a kind the org policy knows"),
        ({"m.yaml": DEPLOYMENT.format(meta="")}, [],
         "Deployment/api ({m}): has no namespace and the command has no -n"),
        ({"m.yaml": CONFIGMAP.format(ns="dev")}, ["-n", "staging"],
         "its namespace differs from the command's -n staging"),
        ({"m.json": json.dumps({"apiVersion": "v1", "kind": "List", "items": [
            json.loads(json.dumps({"apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": {"name": "ok", "namespace": "dev"}})),
            {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
             "metadata": {"name": "all"}}]})}, ["-n", "dev"],
         "ClusterRole/all in namespace dev ({m}, item 2): ClusterRole is cluster-scoped"),
    ],
    ids=["crb-in-multidoc", "namespace", "crd", "webhook", "kube-system", "prod-apply", "role",
         "no-namespace", "namespace-mismatch", "list-kind"],
)
def test_an_object_outside_the_policy_refuses_the_whole_manifest(
    tmp_path: Path, files: dict[str, str], argv_tail: list[str], reason: str,
    recording_kubectl: Any,
) -> None:
    paths = [write(tmp_path, name, text) for name, text in files.items()]
    argv = ["kubectl", "apply", *[a for p in paths for a in ("-f", p)], *argv_tail]
    result = k8s_exec({"argv": argv, "constraints": {"confirm": True}})
    assert result["status"] == "denied"
    want = reason.format(m=paths[0])
    assert any(want in r for r in result["decision"]["reasons"]), result["decision"]["reasons"]
    assert result["execution"] is None
    assert recording_kubectl.calls == []  # not even the preview: nothing reached kubectl


@pytest.mark.parametrize(
    ("verb", "ns", "reason"),
    [
        ("create", "staging", "namespace 'staging' does not allow create on configmap"),
        ("delete", "staging", "namespace 'staging' does not allow delete on configmap"),
        ("apply", "prod", "namespace 'prod' does not allow apply on configmap"),
    ],
)
def test_each_manifest_verb_has_its_own_namespace_rules(tmp_path: Path, verb: str, ns: str,
                                                        reason: str,
                                                        recording_kubectl: Any) -> None:
    path = write(tmp_path, "cm.yaml", CONFIGMAP.format(ns=ns))
    result = k8s_exec({"argv": ["kubectl", verb, "-f", path], "constraints": {"confirm": True}})
    assert result["status"] == "denied"
    assert any(reason in r for r in result["decision"]["reasons"]), result["decision"]["reasons"]
    assert recording_kubectl.calls == []


def test_deleting_a_pod_through_a_manifest_is_refused_like_delete_pod(tmp_path: Path,
                                                                      recording_kubectl: Any) -> None:
    path = write(tmp_path, "pod.yaml", "apiVersion: v1\nkind: Pod\n"
                                       "metadata: {name: api-7d9f8b6c5-x2x9z, namespace: dev}\n")
    result = k8s_exec({"argv": ["kubectl", "delete", "-f", path],
                       "constraints": {"confirm": True}})
    assert result["status"] == "denied"
    assert "kubectl rollout restart deployment/api -n dev" in result["decision"]["reasons"][0]
    assert recording_kubectl.calls == []


# ---------------------------------------------------------------- the command's flags and files


@pytest.mark.parametrize(
    ("argv_tail", "reason"),
    [
        (["--prune", "-l", "app=api"], "--prune is refused"),
        (["--force"], "--force is refused"),
        (["--force-conflicts", "--server-side"], "--force-conflicts is refused"),
        (["-o", "yaml"], "-o yaml is refused on manifests"),
        (["-l", "app=api"], "--selector is refused"),
        (["--dry-run=client"], "--dry-run=client is refused"),
        (["--server=https://evil:6443"], "--server is refused"),
        (["--kubeconfig=/tmp/other"], "--kubeconfig is refused"),
        (["--all"], "--all is refused"),
        (["deployment/api"], "takes no object names"),
    ],
)
def test_manifest_flags_outside_the_allow_list_are_refused(tmp_path: Path, argv_tail: list[str],
                                                           reason: str,
                                                           recording_kubectl: Any) -> None:
    path = write(tmp_path, "cm.yaml", CONFIGMAP.format(ns="dev"))
    result = k8s_exec({"argv": ["kubectl", "apply", "-f", path, *argv_tail],
                       "constraints": {"confirm": True}})
    assert result["status"] == "denied"
    assert any(reason in r for r in result["decision"]["reasons"]), result["decision"]["reasons"]
    assert recording_kubectl.calls == []


@pytest.mark.parametrize(
    ("argv", "reason"),
    [
        (["kubectl", "diff", "-f", "{cm}", "--show-secrets"], "--show-secrets is refused"),
        (["kubectl", "create", "-f", "{cm}", "--edit"], "--edit is refused"),
        (["kubectl", "apply", "-f", "https://example.com/evil.yaml"], "never fetched"),
        (["kubectl", "apply", "-f", "-", "-n", "dev"], "stdin"),
        (["kubectl", "apply", "-f", "{missing}"], "no such file or folder"),
        (["kubectl", "apply", "-f", "{cm}", "-k", "{dir}"], "not both"),
    ],
)
def test_files_are_local_and_flags_are_judged(tmp_path: Path, argv: list[str], reason: str,
                                              recording_kubectl: Any) -> None:
    cm = write(tmp_path, "cm.yaml", CONFIGMAP.format(ns="dev"))
    values = {"cm": cm, "missing": str(tmp_path / "nope.yaml"), "dir": str(tmp_path)}
    argv = [a.format(**values) for a in argv]
    result = k8s_exec({"argv": argv, "constraints": {"confirm": True}})
    assert result["status"] == "denied"
    assert any(reason in r for r in result["decision"]["reasons"]), result["decision"]["reasons"]
    assert recording_kubectl.calls == []


@pytest.mark.parametrize(
    ("kustomization", "reason"),
    [
        ("resources: ['https://github.com/example/base?ref=v1']\n", "is remote"),
        ("resources: [github.com/example/base]\n", "is remote"),
        ("resources: [missing.yaml]\n", "not a local file or folder"),
        ("helmCharts: [{name: x, repo: 'https://charts.example'}]\n", "`helmCharts` is refused"),
        ("resources: [base]\n", "is remote"),  # base/ holds a kustomization with a remote entry
    ],
)
def test_kustomizations_are_never_fetched(tmp_path: Path, kustomization: str, reason: str,
                                          recording_kubectl: Any) -> None:
    write(tmp_path, "k/kustomization.yaml", kustomization)
    write(tmp_path, "k/base/kustomization.yaml", "resources: [git@github.com:x/y.git]\n")
    with pytest.raises(ManifestError, match=reason):
        check_kustomization(tmp_path / "k")
    result = k8s_exec({"argv": ["kubectl", "apply", "-k", str(tmp_path / "k"), "-n", "dev"],
                       "constraints": {"confirm": True}})
    assert result["status"] == "denied"
    assert reason in result["decision"]["reasons"][0]
    assert recording_kubectl.calls == []  # kustomize itself never ran


# ---------------------------------------------------------------- preview and confirmation


def test_apply_shows_the_diff_and_runs_only_with_its_digest(tmp_path: Path,
                                                            recording_kubectl: Any) -> None:
    recording_kubectl.respond(stdout=FAKE_DIFF, exit_code=1)  # kubectl diff: 1 = differences
    path = write(tmp_path, "cm.yaml", CONFIGMAP.format(ns="dev"))
    argv = ["kubectl", "apply", "-f", path]
    diff = ["diff", f"--filename={path}"]

    planned = plan({"argv": argv})
    assert (planned["status"], planned["plan"]["risk_level"]) == ("planned", "medium")
    assert planned["plan"]["preview"]["diff"] is None  # plan() runs no kubectl
    assert planned["plan"]["preview"]["objects"] == [f"ConfigMap/settings in namespace dev ({path})"]
    assert recording_kubectl.calls == []

    first = k8s_exec({"argv": argv, "constraints": {"confirm": True}})
    assert first["status"] == "needs_confirmation"
    assert first["plan"]["preview"]["diff"] == FAKE_DIFF
    assert first["plan"]["preview"]["command"] == ["kubectl", *diff]
    digest = first["plan"]["preview"]["digest"]
    assert digest.startswith("sha256:")
    assert recording_kubectl.calls == [diff]

    recording_kubectl.respond(stdout=FAKE_DIFF.replace("/tmp/LIVE-1", "/tmp/LIVE-9"), exit_code=0)
    second = k8s_exec({"argv": argv, "constraints": {"confirm": True, "previewDigest": digest}})
    assert second["status"] == "executed"
    assert second["plan"]["argv"] == argv
    assert changes(recording_kubectl.calls) == [diff, diff, argv[1:]]  # the apply exactly as sent


def test_a_file_changed_after_the_preview_is_refused(tmp_path: Path,
                                                     recording_kubectl: Any) -> None:
    recording_kubectl.respond(stdout=FAKE_DIFF, exit_code=1)
    path = write(tmp_path, "cm.yaml", CONFIGMAP.format(ns="dev"))
    argv = ["kubectl", "apply", "-f", path]
    digest = k8s_exec({"argv": argv})["plan"]["preview"]["digest"]
    Path(path).write_text(CONFIGMAP.format(ns="dev").replace("fast", "slow"))
    result = k8s_exec({"argv": argv, "constraints": {"confirm": True, "previewDigest": digest}})
    assert result["status"] == "denied"
    assert "changed since the preview" in result["decision"]["reasons"][0]
    assert len(recording_kubectl.calls) == 2 and all(c[0] == "diff"
                                                     for c in recording_kubectl.calls)


def test_the_digest_ignores_what_a_dry_run_stamps_afresh() -> None:
    manifests = Manifests((), "0" * 64)
    argv = ["kubectl", "apply", "-f", "x.yaml"]
    again = FAKE_DIFF.replace("LIVE-1", "LIVE-7").replace('"x"', '"y"')
    assert diff_digest(manifests, argv, FAKE_DIFF) == diff_digest(manifests, argv, again)
    assert diff_digest(manifests, argv, FAKE_DIFF) != diff_digest(
        manifests, argv, FAKE_DIFF.replace("ConfigMap\n", "Secret\n"))


def test_delete_f_is_high_risk_and_lists_what_goes(tmp_path: Path,
                                                   recording_kubectl: Any) -> None:
    path = write(tmp_path, "cm.yaml", CONFIGMAP.format(ns="dev"))
    argv = ["kubectl", "delete", "-f", path]
    first = k8s_exec({"argv": argv, "constraints": {"confirm": True}})
    assert (first["status"], first["plan"]["risk_level"]) == ("needs_confirmation", "high")
    assert first["plan"]["preview"]["objects"] == [f"ConfigMap/settings in namespace dev ({path})"]
    assert recording_kubectl.calls == []
    digest = first["plan"]["preview"]["digest"]
    done = k8s_exec({"argv": argv, "constraints": {"confirm": True, "previewDigest": digest}})
    assert done["status"] == "executed" and changes(recording_kubectl.calls) == [argv[1:]]


def test_a_diff_that_deletes_an_object_is_high_risk(tmp_path: Path,
                                                    recording_kubectl: Any) -> None:
    recording_kubectl.respond(stdout="--- a\n+++ b\n@@ -1,3 +0,0 @@\n-kind: ConfigMap\n",
                              exit_code=1)
    path = write(tmp_path, "cm.yaml", CONFIGMAP.format(ns="dev"))
    result = k8s_exec({"argv": ["kubectl", "apply", "-f", path]})
    assert (result["status"], result["plan"]["risk_level"]) == ("needs_confirmation", "high")


def test_dry_run_applies_server_side_without_preview_or_confirmation(
    tmp_path: Path, recording_kubectl: Any
) -> None:
    path = write(tmp_path, "cm.yaml", CONFIGMAP.format(ns="dev"))
    result = k8s_exec({"argv": ["kubectl", "apply", "-f", path],
                       "constraints": {"dryRun": True}})
    assert result["status"] == "executed"
    assert recording_kubectl.calls == [["apply", "-f", path, "--dry-run=server"]]


def test_diff_is_read_only_and_exit_1_means_differences(tmp_path: Path,
                                                       recording_kubectl: Any) -> None:
    recording_kubectl.respond(stdout=FAKE_DIFF, exit_code=1)
    path = write(tmp_path, "cm.yaml", CONFIGMAP.format(ns="prod"))
    result = k8s_exec({"intent": "diff", "files": [path]})
    assert result["status"] == "executed"
    assert result["plan"]["argv"] == ["kubectl", "diff", "-f", path]
    assert result["execution"]["exit_code"] == 1
    assert recording_kubectl.calls == [["diff", "-f", path]]


def test_a_failed_preview_stops_the_change(tmp_path: Path, recording_kubectl: Any) -> None:
    recording_kubectl.respond(stderr="error: the server is unreachable\n", exit_code=2)
    path = write(tmp_path, "cm.yaml", CONFIGMAP.format(ns="dev"))
    result = k8s_exec({"argv": ["kubectl", "apply", "-f", path],
                       "constraints": {"confirm": True}})
    assert result["status"] == "denied"
    assert "the preview (kubectl diff) failed" in result["decision"]["reasons"][0]
    assert len(recording_kubectl.calls) == 1


# ---------------------------------------------------------------- the structured request


def test_files_request_plans_the_kubectl_argv(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", CONFIGMAP.format(ns="dev"))
    b = write(tmp_path, "b.yaml", DEPLOYMENT.format(meta="  namespace: dev\n"))
    result = plan({"intent": "apply", "files": [a, b], "namespace": "dev"})
    assert result["plan"]["argv"] == ["kubectl", "apply", "-f", a, "-f", b, "-n", "dev"]
    assert result["status"] == "planned"
    assert len(result["plan"]["preview"]["objects"]) == 2
    write(tmp_path, "k/kustomization.yaml", "resources: [cm.yaml]\n")
    write(tmp_path, "k/cm.yaml", CONFIGMAP.format(ns="dev"))
    assert plan({"intent": "diff", "files": [str(tmp_path / "k")]})["plan"]["argv"] == [
        "kubectl", "diff", "-k", str(tmp_path / "k")]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"intent": "get", "files": ["a.yaml"]}, "files"),
        ({"query": "apply this", "files": ["a.yaml"]}, "files"),
        ({"intent": "apply", "files": ["https://example.com/a.yaml"]}, "files.0"),
        ({"intent": "apply", "files": ["a.yaml", "-"]}, "files.1"),
        ({"intent": "apply", "files": []}, "files"),
        ({"argv": ["kubectl", "apply", "-f", "a.yaml"], "files": ["a.yaml"]}, "files"),
        ({"intent": "apply", "files": ["a.yaml"],
          "constraints": {"previewDigest": "md5:abc"}}, "constraints.previewDigest"),
    ],
)
def test_bad_files_are_invalid_naming_the_field(payload: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as err:
        parse_request(payload)
    assert err.value.field == field


# ---------------------------------------------------------------- the CLI


def test_cli_prompt_shows_the_diff_and_confirms_exactly_it(tmp_path: Path,
                                                           recording_kubectl: Any) -> None:
    from typer.testing import CliRunner

    from rag_k8s.cli import app

    recording_kubectl.respond(stdout=FAKE_DIFF, exit_code=1)
    path = write(tmp_path, "cm.yaml", CONFIGMAP.format(ns="dev"))
    argv = ["kubectl", "apply", "-f", path]
    result = CliRunner().invoke(app, ["exec", "--prompt", "--", *argv], input="y\n")
    assert result.exit_code == 5  # the fake kubectl exits 1 for the apply too: `failed`
    assert "+kind: ConfigMap" in result.stderr and "Run it?" in result.stderr
    assert f"ConfigMap/settings in namespace dev ({path})" in result.stderr
    diff = ["diff", f"--filename={path}"]
    assert changes(recording_kubectl.calls) == [diff, diff, argv[1:]]


def test_cli_yes_alone_does_not_confirm_a_manifest_change(tmp_path: Path,
                                                          recording_kubectl: Any) -> None:
    from typer.testing import CliRunner

    from rag_k8s.cli import app

    recording_kubectl.respond(stdout=FAKE_DIFF, exit_code=1)
    path = write(tmp_path, "cm.yaml", CONFIGMAP.format(ns="dev"))
    argv = ["kubectl", "apply", "-f", path]
    first = CliRunner().invoke(app, ["exec", "--yes", "--json", "--", *argv])
    assert first.exit_code == 4
    digest = json.loads(first.stdout)["plan"]["preview"]["digest"]
    done = CliRunner().invoke(app, ["exec", "--yes", "--json", "--preview-digest", digest,
                                    "--", *argv])
    assert json.loads(done.stdout)["plan"]["argv"] == argv
    assert changes(recording_kubectl.calls)[-1] == argv[1:]


def test_an_argv_that_is_itself_a_server_dry_run_needs_no_preview(tmp_path: Path,
                                                                  recording_kubectl: Any) -> None:
    path = write(tmp_path, "cm.yaml", CONFIGMAP.format(ns="dev"))
    argv = ["kubectl", "apply", "-f", path, "--dry-run=server"]
    result = k8s_exec({"argv": argv, "constraints": {"confirm": True}})
    assert result["status"] == "executed"
    assert changes(recording_kubectl.calls) == [argv[1:]]


def test_a_key_given_twice_is_refused_not_read_one_way(tmp_path: Path,
                                                       recording_kubectl: Any) -> None:
    path = write(tmp_path, "cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                      "  name: x\n  namespace: dev\n  namespace: kube-system\n")
    result = k8s_exec({"argv": ["kubectl", "apply", "-f", path], "constraints": {"confirm": True}})
    assert result["status"] == "denied"
    assert f"{path}: line 6: duplicate key 'namespace'" in result["decision"]["reasons"][0]
    assert recording_kubectl.calls == []


def test_a_manifest_nested_too_deeply_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """Manifests come from whoever sends a request. libyaml (used for the operator's own cards
    and policy) recurses in C without a limit: 100 KB of nested brackets ended the process with
    SIGSEGV, the whole server with it. Manifests keep the pure-Python parser, whose recursion
    limit makes this a ManifestError in a child process that lives on."""
    import subprocess
    import sys

    path = tmp_path / "deep.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: "
                    + "[" * 50000 + "]" * 50000 + "\n")
    code = ("from rag_k8s.manifests import _documents, ManifestError\n"
            "import sys\n"
            "try:\n"
            f"    _documents(open({str(path)!r}).read(), 'deep.yaml')\n"
            "except ManifestError as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert (out.returncode, out.stdout.strip()) == (0, "deep.yaml: is nested too deeply to be read")
