"""rag_k8s.undo without a cluster: states, differences, the inverse table, the audit field, and
the undo request's refusals. The round trips against the real kubectl are in tests/e2e."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from rag_k8s import audit, k8s_exec
from rag_k8s.kubectl_argv import parse_argv
from rag_k8s.undo import STRATEGIES, NoInverse, Target, differences, digest, state_of

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "api", "namespace": "staging", "uid": "u-1", "resourceVersion": "7",
                 "generation": 3, "creationTimestamp": "2026-01-01T00:00:00Z",
                 "labels": {"app": "api"},
                 "annotations": {"deployment.kubernetes.io/revision": "2"}},
    "spec": {"replicas": 2, "template": {"spec": {
        "initContainers": [{"name": "init", "image": "busybox:1.36"}],
        "containers": [{"name": "app", "image": "nginx:1.27"},
                       {"name": "log-shipper", "image": "busybox:1.36"}],
        "securityContext": {}}}},
    "status": {"replicas": 2},
}


def _invert(argv: list[str], before: Any, after: Any = None) -> list[str] | NoInverse:
    parsed = parse_argv(argv)
    strategy = STRATEGIES[parsed.verb]
    target = strategy.target(parsed)
    assert isinstance(target, Target)
    return strategy.invert(parsed, target, before, after)


def test_state_keeps_what_users_set_and_drops_the_servers_bookkeeping() -> None:
    assert state_of(DEPLOYMENT) == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "staging", "labels": {"app": "api"}},
        "spec": {"replicas": 2, "template": {"spec": {
            "initContainers": [{"name": "init", "image": "busybox:1.36"}],
            "containers": [{"name": "app", "image": "nginx:1.27"},
                           {"name": "log-shipper", "image": "busybox:1.36"}]}}},
    }
    assert state_of(None) is None


def test_a_jobs_generated_selector_and_labels_are_not_part_of_its_state() -> None:
    job = {"kind": "Job", "metadata": {"name": "m", "labels": {"job-name": "m", "team": "a"}},
           "spec": {"selector": {"matchLabels": {"controller-uid": "x"}},
                    "template": {"metadata": {"labels": {"controller-uid": "x", "job-name": "m"}},
                                 "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    assert state_of(job) == {"kind": "Job", "metadata": {"name": "m", "labels": {"team": "a"}},
                             "spec": {"template": {"spec": {"containers": [
                                 {"name": "c", "image": "busybox"}]}}}}


def test_differences_name_each_field_that_moved() -> None:
    old = {"spec": {"replicas": 4, "template": {"spec": {"containers": [{"image": "a:1"}]}}},
           "metadata": {"labels": {"app": "api", "gone": "x"}}}
    new = {"spec": {"replicas": 6, "template": {"spec": {"containers": [{"image": "a:2"}]}}},
           "metadata": {"labels": {"app": "api", "new": "y"}}}
    assert differences(old, new) == [
        'metadata.labels.gone was removed (it was "x")',
        'metadata.labels.new was added ("y")',
        "spec.replicas is 6 now, was 4",
        'spec.template.spec.containers[0].image is "a:2" now, was "a:1"',
    ]
    assert differences(None, {"kind": "HPA"}) == ["the object exists again"]
    assert differences({"kind": "HPA"}, None) == ["the object no longer exists"]
    assert differences(old, old) == []


def test_the_digest_covers_the_whole_state() -> None:
    assert digest(state_of(DEPLOYMENT)) != digest({**state_of(DEPLOYMENT), "spec": {}})
    assert digest(None) == digest(None)


@pytest.mark.parametrize(("argv", "before", "inverse"), [
    (["kubectl", "scale", "deployment/api", "--replicas=5", "-n", "staging"], DEPLOYMENT,
     ["kubectl", "scale", "deployment/api", "-n", "staging", "--replicas=2",
      "--current-replicas=5"]),
    (["kubectl", "scale", "deployment/api", "--replicas=2", "-n", "staging"], DEPLOYMENT,
     NoInverse("the scale changed nothing: deployment/api already had 2 replicas")),
    (["kubectl", "set", "image", "deployment/api", "*=nginx:1.28", "-n", "staging"], DEPLOYMENT,
     ["kubectl", "set", "image", "deployment/api", "-n", "staging", "init=busybox:1.36",
      "app=nginx:1.27", "log-shipper=busybox:1.36"]),
    (["kubectl", "set", "image", "deployment/api", "app=nginx:1.27", "-n", "staging"], DEPLOYMENT,
     NoInverse("the image change changed nothing: deployment/api already ran those images")),
    (["kubectl", "set", "image", "deployment/api", "db=postgres:16", "-n", "staging"], DEPLOYMENT,
     NoInverse("deployment/api has no container 'db'")),
    (["kubectl", "cordon", "node-1"], {"kind": "Node", "spec": {"unschedulable": True}},
     NoInverse("node node-1 was already cordoned: the command changed nothing")),
    (["kubectl", "uncordon", "node-1"], {"kind": "Node", "spec": {"unschedulable": True}},
     ["kubectl", "cordon", "node-1"]),
    (["kubectl", "delete", "replicaset/api-5c7d8f9b6", "-n", "staging"],
     {"kind": "ReplicaSet", "metadata": {"ownerReferences": [{"kind": "Deployment",
                                                              "name": "api"}]}},
     NoInverse("replicaset/api-5c7d8f9b6 belonged to Deployment/api; re-creating it by hand "
               "would fight its owner's controller")),
    (["kubectl", "delete", "configmap/api-config", "-n", "dev"],
     {"kind": "ConfigMap", "data": {"db_password": "[REDACTED]"}},
     NoInverse("configmap/api-config held values that look like credentials, which are never "
               "stored, so it cannot be re-created as it was")),
    (["kubectl", "delete", "configmap/api-config", "-n", "dev"],
     {"kind": "ConfigMap", "data": {"LOG_LEVEL": "info"}},
     ["kubectl", "create", "-f", "{manifest}", "-n", "dev"]),
], ids=["scale", "scale-no-op", "set-image-all", "set-image-no-op", "set-image-no-container",
        "cordon-no-op", "uncordon", "delete-owned", "delete-redacted", "delete"])
def test_the_inverse_table(argv: list[str], before: Any, inverse: Any) -> None:
    assert _invert(argv, before, before) == inverse


def test_a_restart_goes_back_to_the_revision_that_ran_before() -> None:
    after = json.loads(json.dumps(DEPLOYMENT))
    after["spec"]["template"]["metadata"] = {"annotations": {"kubectl.kubernetes.io/restartedAt":
                                                             "2026-12-02T20:00:00Z"}}
    assert _invert(["kubectl", "rollout", "restart", "deployment/api", "-n", "staging"],
                   DEPLOYMENT, after) == [
        "kubectl", "rollout", "undo", "deployment/api", "-n", "staging", "--to-revision=2"]
    assert _invert(["kubectl", "rollout", "restart", "statefulset/db", "-n", "staging"],
                   {**DEPLOYMENT, "kind": "StatefulSet"}, after) == [
        "kubectl", "rollout", "undo", "statefulset/db", "-n", "staging"]


@pytest.mark.parametrize(("argv", "reason"), [
    (["kubectl", "drain", "node-2", "--ignore-daemonsets"],
     "drain evicted the node's pods and their controllers made new ones elsewhere; evictions "
     "cannot be taken back (`kubectl uncordon node-2` only makes the node schedulable again)"),
    (["kubectl", "delete", "secret/db", "-n", "dev"],
     "secrets are never read or stored, so a change to one cannot be undone"),
])
def test_no_inverse_is_known_before_anything_is_read(argv: list[str], reason: str) -> None:
    parsed = parse_argv(argv)
    assert STRATEGIES[parsed.verb].target(parsed) == NoInverse(reason)


def test_the_capture_read_comes_just_before_the_command_and_the_reason_is_logged(
        recording_kubectl: Any) -> None:
    recording_kubectl.respond(stdout="deployment.apps/api scaled\n")
    result = k8s_exec({"intent": "scale", "resource": "deployment", "namespace": "staging",
                       "name": "api", "params": {"replicas": 3}, "constraints": {"confirm": True}})
    assert result["status"] == "executed"
    assert recording_kubectl.calls == [
        ["get", "deployment/api", "-n", "staging", "-o", "json", "--ignore-not-found"],
        ["scale", "deployment/api", "--replicas=3", "-n", "staging"]]
    (line,) = audit.iter_entries(Path(os.environ["RAG_K8S_AUDIT_LOG"]))
    assert line["undo"] == {"none": "the state before could not be captured: kubectl's answer "
                                    "for deployment/api -n staging is not JSON"}


def test_read_only_and_unconfirmed_commands_read_nothing_and_log_no_undo(
        recording_kubectl: Any) -> None:
    k8s_exec({"intent": "get", "resource": "pod", "namespace": "prod"})
    k8s_exec({"intent": "scale", "resource": "deployment", "namespace": "staging", "name": "api",
              "params": {"replicas": 3}})
    assert recording_kubectl.calls == [["get", "pod", "-n", "prod"]]
    assert ["undo" in e for e in audit.iter_entries(Path(os.environ["RAG_K8S_AUDIT_LOG"]))] == [
        False, False]


def test_the_undo_field_is_inside_the_hash_chain(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    result = {"operation_id": "0123abcd-0000-0000-0000-000000000000", "status": "executed",
              "plan": None, "decision": {}, "execution": None}
    entry = audit.write_operation(log, result=result, request=None, undo={
        "argv": ["kubectl", "uncordon", "node-1"], "captured_at": "t", "before_digest": "b",
        "after_digest": "a"}, undoes="89abcdef-0000-0000-0000-000000000000")
    assert entry["undo"]["argv"] == ["kubectl", "uncordon", "node-1"]
    assert entry["undoes"] == "89abcdef-0000-0000-0000-000000000000"
    assert audit.verify(log).ok
    log.write_text(log.read_text().replace("uncordon", "drain"))
    assert audit.verify(log).problem == ("line 1 was changed after it was written: its hash does "
                                         "not match its content")


@pytest.mark.parametrize(("payload", "reason"), [
    ({"intent": "undo"}, "params.operation_id: give the operation_id of the operation to undo "
                         "(at least 8 hex digits)"),
    ({"intent": "undo", "params": {"operation_id": "not-hex!"}},
     "params.operation_id: 'not-hex!' is not allowed here (expected the documented pattern)"),
    ({"intent": "undo", "namespace": "dev", "params": {"operation_id": "0123abcd"}},
     "namespace: an undo takes only params.operation_id"),
    ({"intent": "undo", "params": {"operation_id": "0123abcd", "replicas": 2}},
     "params.replicas: an undo takes only params.operation_id"),
])
def test_a_malformed_undo_request_is_invalid_naming_the_field(
        recording_kubectl: Any, payload: dict[str, Any], reason: str) -> None:
    result = k8s_exec(payload)
    assert (result["status"], result["decision"]["reasons"]) == ("invalid", [reason])
    assert recording_kubectl.calls == []


def test_audit_tail_marks_what_can_be_undone(tmp_path: Path) -> None:
    from rich.console import Console

    log = tmp_path / "agent.log"
    for op, undo in (("aaaaaaaa", {"argv": ["kubectl", "uncordon", "node-1"], "captured_at": "t",
                                   "before_digest": "b", "after_digest": "a"}),
                     ("bbbbbbbb", {"none": "drain evicted the node's pods"}), ("cccccccc", None)):
        audit.write_operation(log, result={"operation_id": op, "status": "executed", "plan": None,
                                           "decision": {}, "execution": None},
                              request=None, undo=undo)
    entries = audit.tail(log)
    assert [audit.undo_mark(e) for e in entries] == ["yes", "no", ""]
    console = Console(record=True, width=200)
    console.print(audit.render_tail_table(entries))
    rows = [line for line in console.export_text().splitlines() if "aaaaaaaa" in line
            or "bbbbbbbb" in line]
    assert ["yes" in rows[0], "no" in rows[1]] == [True, True]


def test_a_secret_is_never_read_before_it_changes(recording_kubectl: Any) -> None:
    result = k8s_exec({"argv": ["kubectl", "delete", "secret/db", "-n", "dev"],
                       "constraints": {"confirm": True}})
    assert result["status"] == "executed"
    assert recording_kubectl.calls == [["delete", "secret/db", "-n", "dev"]]


# ---------------------------------------------------------------- the intents vocab adds

LABELLED = {"kind": "Deployment", "metadata": {"name": "api", "labels": {"app": "api", "team": "a"},
                                               "annotations": {"note": "old"}},
            "spec": {"paused": False, "template": {"spec": {"containers": [
                {"name": "app", "image": "nginx:1.27", "env": [{"name": "MODE", "value": "fast"}],
                 "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}}]}}}}
NODE = {"kind": "Node", "metadata": {"name": "node-1"},
        "spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}}


@pytest.mark.parametrize(("argv", "before", "inverse"), [
    (["kubectl", "label", "deployment/api", "-n", "dev", "team=b", "tier=web", "app-"], LABELLED,
     ["kubectl", "label", "deployment/api", "-n", "dev", "team=a", "tier-", "app=api",
      "--overwrite"]),
    (["kubectl", "label", "deployment/api", "-n", "dev", "team=a"], LABELLED,
     NoInverse("the command changed no labels of deployment/api")),
    (["kubectl", "annotate", "deployment/api", "-n", "dev", "note=new"], LABELLED,
     ["kubectl", "annotate", "deployment/api", "-n", "dev", "note=old", "--overwrite"]),
    (["kubectl", "taint", "nodes", "node-1", "dedicated=db:NoExecute"], NODE,
     ["kubectl", "taint", "nodes", "node-1", "dedicated:NoExecute-"]),
    (["kubectl", "taint", "nodes", "node-1", "gpu:NoSchedule-"], NODE,
     ["kubectl", "taint", "nodes", "node-1", "gpu=yes:NoSchedule"]),
    (["kubectl", "taint", "nodes", "node-1", "gpu=no:NoSchedule", "--overwrite"], NODE,
     ["kubectl", "taint", "nodes", "node-1", "gpu=yes:NoSchedule", "--overwrite"]),
    (["kubectl", "rollout", "pause", "deployment/api", "-n", "dev"], LABELLED,
     ["kubectl", "rollout", "resume", "deployment/api", "-n", "dev"]),
    (["kubectl", "rollout", "resume", "deployment/api", "-n", "dev"], LABELLED,
     NoInverse("deployment/api was already running: the command changed nothing")),
    (["kubectl", "set", "env", "deployment/api", "-n", "dev", "MODE=slow", "DEBUG=1"], LABELLED,
     ["kubectl", "set", "env", "deployment/api", "-n", "dev", "MODE=fast", "DEBUG-"]),
], ids=["label", "label-no-op", "annotate", "taint-add", "taint-remove", "taint-overwrite",
        "pause", "resume-no-op", "set-env"])
def test_the_inverse_table_for_the_new_intents(argv: list[str], before: Any, inverse: Any) -> None:
    assert _invert(argv, before, before) == inverse


def test_a_patch_is_undone_by_the_merge_patch_back_to_the_captured_state() -> None:
    after = json.loads(json.dumps(LABELLED))
    after["metadata"]["labels"]["team"] = "b"
    after["metadata"]["labels"]["extra"] = "x"
    after["spec"]["paused"] = True
    inverse = _invert(["kubectl", "patch", "deployment/api", "-n", "dev", "--type=merge",
                       '--patch={"spec":{"paused":true}}'], LABELLED, after)
    assert inverse == ["kubectl", "patch", "deployment/api", "-n", "dev", "--type=merge",
                       '--patch={"metadata":{"labels":{"extra":null,"team":"a"}},'
                       '"spec":{"paused":false}}']
