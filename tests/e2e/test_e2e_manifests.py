"""Manifests end to end: rag-k8s -> the real pinned kubectl (apply, diff, kustomize) -> the API.

The checks read the cluster through kubectl itself; "never reached kubectl" is read from the
stand-in's request log (no request at all arrived).
"""

from __future__ import annotations

from pathlib import Path

from rag_k8s import k8s_exec

from tests.e2e.support import E2E

DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      containers: [{{name: app, image: "nginx:1.27"}}]
"""
CONFIGMAP = """apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: {ns}}}
data: {{mode: {mode}}}
"""
CRB = """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: everyone-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: Group, name: "system:authenticated", apiGroup: rbac.authorization.k8s.io}]
"""
SECRET = """apiVersion: v1
kind: Secret
metadata: {name: db-password, namespace: dev}
stringData: {password: hunter2-very-secret}
"""


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return str(path)


def _writes(e2e: E2E) -> list[str]:
    """Requests that would change the cluster (not dry runs)."""
    return [f"{r.method} {r.path}" for r in e2e.requests()
            if r.method in ("POST", "PUT", "PATCH", "DELETE") and not r.dry_run]


def test_apply_shows_the_server_side_diff_then_applies_what_it_showed(e2e: E2E,
                                                                      tmp_path: Path) -> None:
    standin = e2e.cluster.need_standin()
    path = _write(tmp_path, "app.yaml", DEPLOYMENT.format(name="shop", ns="dev", replicas=2)
                  + "---\n" + CONFIGMAP.format(name="shop-config", ns="dev", mode="fast"))
    argv = ["kubectl", "apply", "-f", path]
    standin.clear_requests()
    first = k8s_exec({"argv": argv, "constraints": {"confirm": True}})
    assert first["status"] == "needs_confirmation"
    preview = first["plan"]["preview"]
    assert preview["objects"] == [f"Deployment/shop in namespace dev ({path}, document 1)",
                                  f"ConfigMap/shop-config in namespace dev ({path}, document 2)"]
    diff = preview["diff"]
    assert "apps.v1.Deployment.dev.shop" in diff and "v1.ConfigMap.dev.shop-config" in diff
    assert "+  replicas: 2" in diff and "+  mode: fast" in diff
    assert _writes(e2e) == []  # the preview was a server-side dry run
    assert e2e.kubectl("get", "deployment", "shop", "-n", "dev").exit_code != 0

    done = k8s_exec({"argv": argv, "constraints": {"confirm": True,
                                                   "previewDigest": preview["digest"]}})
    assert done["status"] == "executed", done
    assert done["execution"]["stdout"] == ("deployment.apps/shop created\n"
                                           "configmap/shop-config created\n")
    assert e2e.json("get", "deployment", "shop", "-n", "dev")["spec"]["replicas"] == 2
    assert e2e.json("get", "configmap", "shop-config", "-n", "dev")["data"] == {"mode": "fast"}

    # A change to a live object: the diff shows exactly the changed field.
    Path(path).write_text(DEPLOYMENT.format(name="shop", ns="dev", replicas=4)
                          + "---\n" + CONFIGMAP.format(name="shop-config", ns="dev", mode="fast"))
    again = k8s_exec({"argv": argv, "constraints": {"confirm": True}})
    changed = [line for line in again["plan"]["preview"]["diff"].splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert "-  replicas: 2" in changed and "+  replicas: 4" in changed
    assert not any("mode" in line for line in changed)


def test_a_file_edited_after_its_preview_never_runs(e2e: E2E, tmp_path: Path) -> None:
    path = _write(tmp_path, "cm.yaml", CONFIGMAP.format(name="late", ns="dev", mode="a"))
    argv = ["kubectl", "apply", "-f", path]
    digest = k8s_exec({"argv": argv})["plan"]["preview"]["digest"]
    Path(path).write_text(CONFIGMAP.format(name="late", ns="dev", mode="b"))
    result = k8s_exec({"argv": argv, "constraints": {"confirm": True, "previewDigest": digest}})
    assert result["status"] == "denied"
    assert "changed since the preview" in result["decision"]["reasons"][0]
    assert e2e.kubectl("get", "configmap", "late", "-n", "dev").exit_code != 0


def test_a_manifest_smuggling_a_clusterrolebinding_never_reaches_kubectl(e2e: E2E,
                                                                         tmp_path: Path) -> None:
    standin = e2e.cluster.need_standin()
    path = _write(tmp_path, "bundle.yaml", CONFIGMAP.format(name="ok", ns="dev", mode="x")
                  + "---\n" + CRB)
    standin.clear_requests()
    result = k8s_exec({"argv": ["kubectl", "apply", "-f", path, "-n", "dev"],
                       "constraints": {"confirm": True}})
    assert result["status"] == "denied"
    assert result["decision"]["reasons"] == [
        f"ClusterRoleBinding/everyone-admin in namespace dev ({path}, document 2): "
        "ClusterRoleBinding is cluster-scoped; manifests may change only namespaced objects"]
    assert standin.requests() == []
    assert e2e.kubectl("get", "configmap", "ok", "-n", "dev").exit_code != 0


def test_a_manifest_for_a_namespace_outside_the_policy_never_reaches_kubectl(
    e2e: E2E, tmp_path: Path
) -> None:
    standin = e2e.cluster.need_standin()
    path = _write(tmp_path, "sys.yaml", CONFIGMAP.format(name="hook", ns="kube-system", mode="x"))
    standin.clear_requests()
    for request in ({"argv": ["kubectl", "apply", "-f", path]},
                    {"intent": "apply", "files": [path]},
                    {"argv": ["kubectl", "diff", "-f", path]}):
        result = k8s_exec({**request, "constraints": {"confirm": True}})
        assert result["status"] == "denied", request
        assert result["decision"]["reasons"] == [
            f"ConfigMap/hook in namespace kube-system ({path}): namespace 'kube-system' is not in "
            "the org policy: nothing may run there"]
    assert standin.requests() == []


def test_kustomize_is_rendered_offline_and_judged_object_by_object(e2e: E2E,
                                                                   tmp_path: Path) -> None:
    standin = e2e.cluster.need_standin()
    _write(tmp_path, "k/kustomization.yaml",
           "namespace: dev\nnamePrefix: team-\nresources: [cm.yaml]\n")
    _write(tmp_path, "k/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cfg}\n"
                                  "data: {a: '1'}\n")
    folder = str(tmp_path / "k")
    first = k8s_exec({"intent": "apply", "files": [folder], "constraints": {"confirm": True}})
    assert first["plan"]["argv"] == ["kubectl", "apply", "-k", folder]
    assert first["plan"]["preview"]["objects"] == [
        f"ConfigMap/team-cfg in namespace dev ({folder} rendered by kustomize)"]
    done = k8s_exec({"intent": "apply", "files": [folder],
                     "constraints": {"confirm": True,
                                     "previewDigest": first["plan"]["preview"]["digest"]}})
    assert done["status"] == "executed", done
    assert e2e.json("get", "configmap", "team-cfg", "-n", "dev")["data"] == {"a": "1"}

    # The same folder pointed at kube-system: refused by the object kustomize renders.
    _write(tmp_path, "k/kustomization.yaml",
           "namespace: kube-system\nnamePrefix: team-\nresources: [cm.yaml]\n")
    standin.clear_requests()
    refused = k8s_exec({"argv": ["kubectl", "apply", "-k", folder],
                        "constraints": {"confirm": True}})
    assert refused["status"] == "denied"
    assert refused["decision"]["reasons"][0].startswith(
        f"ConfigMap/team-cfg in namespace kube-system ({folder} rendered by kustomize)")
    assert standin.requests() == []  # kustomize renders locally; nothing reached the API


def test_a_secret_manifest_diff_never_shows_its_data(e2e: E2E, tmp_path: Path) -> None:
    path = _write(tmp_path, "secret.yaml", SECRET)
    result = k8s_exec({"argv": ["kubectl", "apply", "-f", path], "constraints": {"confirm": True}})
    assert result["status"] == "needs_confirmation"
    diff = result["plan"]["preview"]["diff"]
    assert "v1.Secret.dev.db-password" in diff
    assert "hunter2" not in diff and "aHVudGVyMi" not in diff  # neither plain nor base64


def test_the_argv_door_runs_the_real_kubectl_exactly_as_sent(e2e: E2E) -> None:
    argv = ["kubectl", "get", "deployment", "api", "-n", "prod", "-o", "name"]
    result = k8s_exec({"argv": argv})
    assert (result["status"], result["plan"]["argv"]) == ("executed", argv)
    assert result["execution"]["stdout"] == "deployment.apps/api\n"
    scaled = k8s_exec({"argv": ["kubectl", "scale", "deployment/api", "--replicas=2", "-n",
                                "staging"], "constraints": {"dryRun": True}})
    assert scaled["status"] == "executed"
    assert scaled["execution"]["stdout"] == "deployment.apps/api scaled (server dry run)\n"


def test_create_f_then_delete_f_with_their_previews(e2e: E2E, tmp_path: Path) -> None:
    path = _write(tmp_path, "cm.yaml", CONFIGMAP.format(name="once", ns="dev", mode="x"))
    create = ["kubectl", "create", "-f", path]
    first = k8s_exec({"argv": create, "constraints": {"confirm": True}})
    assert first["status"] == "needs_confirmation" and "+  mode: x" in first["plan"]["preview"]["diff"]
    made = k8s_exec({"argv": create, "constraints": {
        "confirm": True, "previewDigest": first["plan"]["preview"]["digest"]}})
    assert (made["status"], made["execution"]["stdout"]) == ("executed", "configmap/once created\n")

    delete = ["kubectl", "delete", "-f", path]
    asked = k8s_exec({"argv": delete, "constraints": {"confirm": True}})
    assert (asked["status"], asked["plan"]["risk_level"]) == ("needs_confirmation", "high")
    assert asked["plan"]["preview"]["objects"] == [f"ConfigMap/once in namespace dev ({path})"]
    gone = k8s_exec({"argv": delete, "constraints": {
        "confirm": True, "previewDigest": asked["plan"]["preview"]["digest"]}})
    assert (gone["status"], gone["execution"]["stdout"]) == ("executed",
                                                            'configmap "once" deleted from dev namespace\n')
    assert e2e.kubectl("get", "configmap", "once", "-n", "dev").exit_code != 0
