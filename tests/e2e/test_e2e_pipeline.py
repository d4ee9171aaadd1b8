"""rag_k8s.k8s_exec end to end: planner, policy, the real kubectl, the API, the audit log.

Checks look at the cluster through kubectl itself, so they hold against the stand-in and a real
cluster alike; the request-log checks (nothing reached the server) need the stand-in.
"""

from __future__ import annotations

from typing import Any

import pytest

from rag_k8s import k8s_exec

from tests.e2e.support import E2E

STALL_POD = "stall-demo"  # the stand-in stalls any request naming a pod `stall-*`


def _revisions(e2e: E2E, ns: str, app: str) -> dict[str, tuple[int, int, str]]:
    """ReplicaSet name -> (revision, replicas, first image) for the app's ReplicaSets."""
    items = e2e.json("get", "rs", "-n", ns, "-l", f"app={app}")["items"]
    return {rs["metadata"]["name"]: (
        int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]),
        rs["spec"]["replicas"], rs["spec"]["template"]["spec"]["containers"][0]["image"])
        for rs in items}


def _replicas(e2e: E2E, ns: str, name: str) -> int:
    return int(e2e.json("get", "deployment", name, "-n", ns)["spec"]["replicas"])


def _current(revs: dict[str, tuple[int, int, str]]) -> tuple[str, tuple[int, int, str]]:
    return max(revs.items(), key=lambda kv: kv[1][0])


def test_restart_in_prod_creates_a_new_replicaset(e2e: E2E) -> None:
    before = _revisions(e2e, "prod", "api")
    result = k8s_exec({"intent": "restart", "resource": "deployment", "namespace": "prod",
                       "name": "api"})
    assert result["status"] == "executed"
    assert result["plan"]["argv"] == ["kubectl", "rollout", "restart", "deployment/api",
                                      "-n", "prod"]
    assert result["execution"]["stdout"] == "deployment.apps/api restarted\n"
    after = _revisions(e2e, "prod", "api")
    new = set(after) - set(before)
    assert len(new) == 1
    (name,) = new
    assert after[name][0] == max(r[0] for r in before.values()) + 1
    if not e2e.cluster.real:
        assert after[name][1] == 3 and all(after[n][1] == 0 for n in before)


def test_restart_dry_run_is_only_planned_and_sends_nothing(e2e: E2E) -> None:
    e2e.cluster.need_standin().clear_requests()
    result = k8s_exec({"intent": "restart", "resource": "deployment", "namespace": "prod",
                       "name": "api", "constraints": {"dryRun": True}})
    # kubectl 1.37's `rollout restart` has no --dry-run flag, so a dry-run only previews.
    assert (result["status"], result["execution"]) == ("planned", None)
    assert result["plan"]["argv"] == ["kubectl", "rollout", "restart", "deployment/api",
                                      "-n", "prod"]
    assert e2e.requests() == []


def test_scale_in_staging_with_confirm_changes_replicas(e2e: E2E) -> None:
    result = k8s_exec({"intent": "scale", "resource": "deployment", "namespace": "staging",
                       "name": "api", "params": {"replicas": 4},
                       "constraints": {"confirm": True}})
    assert result["status"] == "executed"
    assert result["execution"]["stdout"] == "deployment.apps/api scaled\n"
    assert _replicas(e2e, "staging", "api") == 4


def test_scale_without_confirm_needs_confirmation_and_nothing_is_sent(e2e: E2E) -> None:
    e2e.cluster.need_standin().clear_requests()
    result = k8s_exec({"intent": "scale", "resource": "deployment", "namespace": "staging",
                       "name": "api", "params": {"replicas": 4}})
    assert (result["status"], result["execution"]) == ("needs_confirmation", None)
    assert result["decision"]["requires_confirmation"] is True
    assert e2e.requests() == []


def test_scale_dry_run_uses_server_dry_run_and_changes_nothing(e2e: E2E) -> None:
    before = _replicas(e2e, "staging", "api")
    standin = e2e.cluster.standin
    if standin:
        standin.clear_requests()
    result = k8s_exec({"intent": "scale", "resource": "deployment", "namespace": "staging",
                       "name": "api", "params": {"replicas": 7},
                       "constraints": {"dryRun": True}})
    assert result["status"] == "executed"
    assert result["plan"]["argv"][-1] == "--dry-run=server"
    assert result["execution"]["dry_run"] is True
    assert result["execution"]["stdout"] == "deployment.apps/api scaled (server dry run)\n"
    if standin:
        writes = [r for r in standin.requests() if r.method != "GET"]
        assert [(r.method, r.path, r.query) for r in writes] == [
            ("PATCH", "/apis/apps/v1/namespaces/staging/deployments/api/scale",
             {"dryRun": ["All"]})]
    assert _replicas(e2e, "staging", "api") == before


@pytest.mark.parametrize("payload", [
    {"intent": "scale", "resource": "deployment", "namespace": "prod", "name": "api",
     "params": {"replicas": 5}, "constraints": {"confirm": True}},
    {"intent": "get", "resource": "pod", "namespace": "kube-system"},
    {"intent": "scale", "resource": "deployment", "namespace": "staging", "name": "api",
     "params": {"replicas": 80}, "constraints": {"confirm": True}},
], ids=["prod-scale", "kube-system", "over-50-replicas"])
def test_a_refused_request_never_reaches_the_server(e2e: E2E, payload: dict[str, Any]) -> None:
    e2e.cluster.need_standin().clear_requests()
    result = k8s_exec(payload)
    assert (result["status"], result["execution"]) == ("denied", None)
    assert result["decision"]["allowed"] is False and result["decision"]["reasons"]
    assert e2e.requests() == []


def test_delete_pod_is_refused_with_a_restart_suggestion(e2e: E2E) -> None:
    pods = e2e.json("get", "pods", "-n", "staging", "-l", "app=api")["items"]
    pod = pods[0]["metadata"]["name"]
    standin = e2e.cluster.standin
    if standin:
        standin.clear_requests()
    result = k8s_exec({"intent": "delete", "resource": "pod", "namespace": "staging",
                       "name": pod, "constraints": {"confirm": True}})
    assert result["status"] == "denied"
    assert result["decision"]["suggestion"] == "kubectl rollout restart deployment/api -n staging"
    if standin:
        assert standin.requests() == []
    assert e2e.kubectl("get", "pod", pod, "-n", "staging").exit_code == 0


def test_logs_with_tail_and_container(e2e: E2E) -> None:
    result = k8s_exec({"intent": "logs", "resource": "deployment", "namespace": "prod",
                       "name": "api", "params": {"container": "log-shipper", "tail": 2}})
    assert result["status"] == "executed"
    assert result["plan"]["argv"] == ["kubectl", "logs", "deployment/api", "-n", "prod",
                                      "-c", "log-shipper", "--tail=2"]
    if e2e.cluster.real:
        assert len(result["execution"]["stdout"].splitlines()) <= 2
    else:
        assert result["execution"]["stdout"] == \
            "shipper: shipped 120 lines\nshipper: shipped 98 lines\n"


def test_logs_default_container_and_tail(e2e: E2E) -> None:
    e2e.cluster.need_standin()
    result = k8s_exec({"intent": "logs", "resource": "deployment", "namespace": "prod",
                       "name": "api", "params": {"tail": 1}})
    assert result["status"] == "executed"
    assert result["execution"]["stdout"] == "INFO GET /healthz 200 1ms\n"


def test_get_pods_in_prod(e2e: E2E) -> None:
    result = k8s_exec({"intent": "get", "resource": "pod", "namespace": "prod"})
    assert result["status"] == "executed"
    lines = result["execution"]["stdout"].splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    names = {p["metadata"]["name"] for p in e2e.json("get", "pods", "-n", "prod")["items"]}
    assert {line.split()[0] for line in lines[1:]} == names


def test_describe_deployment(e2e: E2E) -> None:
    result = k8s_exec({"intent": "describe", "resource": "deployment", "namespace": "prod",
                       "name": "api"})
    assert result["status"] == "executed"
    out = result["execution"]["stdout"]
    assert [line.split() for line in out.splitlines()[:2]] == [["Name:", "api"],
                                                                ["Namespace:", "prod"]]
    current, _ = _current(_revisions(e2e, "prod", "api"))
    assert f"NewReplicaSet:   {current} " in out


def test_events_in_staging(e2e: E2E) -> None:
    e2e.cluster.need_standin()
    result = k8s_exec({"intent": "events", "resource": "event", "namespace": "staging"})
    assert result["status"] == "executed"
    warnings = [line for line in result["execution"]["stdout"].splitlines() if "Warning" in line]
    assert len(warnings) == 1
    words = warnings[0].split()
    at = words.index("Warning")
    assert words[at + 1:at + 3] == ["BackOff", "Deployment/worker"]
    assert warnings[0].endswith("Back-off restarting failed container worker")


def test_forbidden_for_the_namespace_scoped_user_comes_back_failed(e2e: E2E) -> None:
    e2e.as_dev_user()
    result = k8s_exec({"intent": "get", "resource": "deployment", "namespace": "prod",
                       "name": "api"})
    # rag-k8s's policy allows reads in prod; the API server's RBAC refuses this user.
    assert result["decision"]["allowed"] is True
    assert result["status"] == "failed"
    assert result["execution"]["exit_code"] == 1
    assert result["execution"]["stderr"] == (
        'Error from server (Forbidden): deployments.apps "api" is forbidden: User "dev-user" '
        'cannot get resource "deployments" in API group "apps" in the namespace "prod"\n')


@pytest.mark.parametrize(("user", "namespace", "verb", "answer", "status"), [
    ("admin", "prod", "patch", "yes", "executed"),
    ("dev-user", "prod", "patch", "no", "failed"),
    ("dev-user", "dev", "delete", "yes", "executed"),
    ("dev-user", "staging", "get", "yes", "executed"),
])
def test_auth_can_i_for_both_users(e2e: E2E, user: str, namespace: str, verb: str,
                                   answer: str, status: str) -> None:
    if user == "dev-user":
        e2e.as_dev_user()
    result = k8s_exec({"intent": "can-i", "resource": "deployment", "namespace": namespace,
                       "params": {"verb": verb}})
    assert result["status"] == status
    assert result["execution"]["stdout"] == f"{answer}\n"


def test_executor_timeout_against_a_stalled_request(e2e: E2E) -> None:
    e2e.cluster.need_standin()
    result = k8s_exec({"intent": "get", "resource": "pod", "namespace": "dev",
                       "name": STALL_POD, "constraints": {"timeout": 1}})
    assert result["status"] == "timeout"
    assert result["execution"]["timed_out"] is True
    assert result["execution"]["duration"] < 5
    assert [r.path for r in e2e.requests() if STALL_POD in r.path] == \
        [f"/api/v1/namespaces/dev/pods/{STALL_POD}"]


def test_drain_with_confirmation_evicts_the_nodes_pods_and_cordons_it(e2e: E2E) -> None:
    node = "node-2" if not e2e.cluster.real else e2e.json("get", "nodes")["items"][-1][
        "metadata"]["name"]
    unconfirmed = k8s_exec({"intent": "drain", "resource": "node", "name": node})
    assert unconfirmed["status"] == "needs_confirmation"
    try:
        result = k8s_exec({"intent": "drain", "resource": "node", "name": node,
                           "constraints": {"confirm": True, "timeout": 60}})
        assert result["status"] == "executed", result["execution"]
        assert result["execution"]["stdout"].splitlines()[-1] == f"node/{node} drained"
        assert e2e.json("get", "node", node)["spec"]["unschedulable"] is True
        left = e2e.json("get", "pods", "-A", "--field-selector", f"spec.nodeName={node}")
        owners = {(p["metadata"].get("ownerReferences") or [{}])[0].get("kind")
                  for p in left["items"]}
        assert owners <= {"DaemonSet"}
    finally:
        e2e.kubectl("uncordon", node)


def test_cordon_and_uncordon_with_confirmation(e2e: E2E) -> None:
    result = k8s_exec({"intent": "cordon", "resource": "node", "name": "node-1",
                       "constraints": {"confirm": True}})
    assert (result["status"], result["execution"]["stdout"]) == (
        "executed", "node/node-1 cordoned\n")
    assert e2e.json("get", "node", "node-1")["spec"]["unschedulable"] is True
    result = k8s_exec({"intent": "uncordon", "resource": "node", "name": "node-1",
                       "constraints": {"confirm": True}})
    assert (result["status"], result["execution"]["stdout"]) == (
        "executed", "node/node-1 uncordoned\n")
    assert not e2e.json("get", "node", "node-1")["spec"].get("unschedulable")


def test_set_image_creates_a_replicaset_with_the_new_image(e2e: E2E) -> None:
    result = k8s_exec({"intent": "set-image", "resource": "deployment", "namespace": "staging",
                       "name": "worker",
                       "params": {"container": "worker", "image": "busybox:1.37"},
                       "constraints": {"confirm": True}})
    assert result["status"] == "executed"
    assert result["execution"]["stdout"] == "deployment.apps/worker image updated\n"
    name, (rev, replicas, image) = _current(_revisions(e2e, "staging", "worker"))
    assert image == "busybox:1.37"
    if not e2e.cluster.real:
        assert (rev, replicas) == (2, 1)


def test_rollback_restores_the_previous_template(e2e: E2E) -> None:
    before = _revisions(e2e, "staging", "web")
    _, (_, _, current_image) = _current(before)
    previous = sorted(before.values())[-2][2] if len(before) > 1 else None
    if previous is None:
        pytest.skip("web in staging has no previous revision on this cluster")
    result = k8s_exec({"intent": "rollback", "resource": "deployment", "namespace": "staging",
                       "name": "web", "constraints": {"confirm": True}})
    assert (result["status"], result["execution"]["stdout"]) == (
        "executed", "deployment.apps/web rolled back\n")
    dep = e2e.json("get", "deployment", "web", "-n", "staging")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == previous != current_image
    _, (rev, _, image) = _current(_revisions(e2e, "staging", "web"))
    assert (rev, image) == (max(r[0] for r in before.values()) + 1, previous)


def test_rollout_status_and_history(e2e: E2E) -> None:
    status = k8s_exec({"intent": "rollout-status", "resource": "deployment",
                       "namespace": "prod", "name": "web"})
    assert (status["status"], status["execution"]["stdout"]) == (
        "executed", 'deployment "web" successfully rolled out\n')
    history = k8s_exec({"intent": "rollout-history", "resource": "deployment",
                        "namespace": "staging", "name": "web"})
    assert history["status"] == "executed"
    lines = history["execution"]["stdout"].splitlines()
    assert lines[:2] == ["deployment.apps/web ", "REVISION  CHANGE-CAUSE"]
    if not e2e.cluster.real:
        assert lines[2:4] == ["1         first release on nginx 1.26",
                              "2         upgrade web to nginx 1.27"]


def test_top_fails_cleanly_without_metrics(e2e: E2E) -> None:
    e2e.cluster.need_standin()  # a real cluster may well run metrics-server
    result = k8s_exec({"intent": "top", "resource": "pod", "namespace": "prod"})
    assert result["status"] == "failed"
    assert result["execution"]["stderr"] == "error: Metrics API not available\n"


def test_free_text_restart_plans_and_runs(e2e: E2E) -> None:
    before = _revisions(e2e, "prod", "api")
    result = k8s_exec({"query": "restart the api deployment in prod"})
    assert result["status"] == "executed"
    assert result["plan"]["card_id"] == "restart-deployment"
    assert len(_revisions(e2e, "prod", "api")) == len(before) + 1
