"""Undo end to end: change -> undo -> the object equals its captured before-state, with the real
kubectl against the API (the local stand-in by default; see conftest.py).

Each case changes one object through `k8s_exec`, checks the audit line's `undo`, undoes it by
operation id and compares the object (as `rag_k8s.undo.state_of` sees it: no status, no server
bookkeeping) with what it was before.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from rag_k8s import audit, k8s_exec
from rag_k8s.undo import state_of

from tests.e2e.support import E2E

YES = {"confirm": True}


def _log() -> Path:
    return Path(os.environ["RAG_K8S_AUDIT_LOG"])


def _line(op_id: str) -> dict[str, Any]:
    return next(e for e in audit.iter_entries(_log()) if e["operation_id"] == op_id)


def _state(e2e: E2E, *ref: str) -> Any:
    run = e2e.kubectl("get", *ref, "-o", "json", "--ignore-not-found")
    assert run.exit_code == 0, run.stderr
    return state_of(json.loads(run.stdout)) if run.stdout.strip() else None


def _undo(op_id: str, **constraints: Any) -> dict[str, Any]:
    return k8s_exec({"intent": "undo", "params": {"operation_id": op_id},
                     "constraints": {"confirm": True, **constraints}})


CHANGES = [
    pytest.param({"intent": "scale", "resource": "deployment", "namespace": "staging",
                  "name": "api", "params": {"replicas": 4}},
                 ("deployment/api", "-n", "staging"),
                 ["kubectl", "scale", "deployment/api", "-n", "staging", "--replicas=2",
                  "--current-replicas=4"], id="scale"),
    pytest.param({"intent": "set-image", "resource": "deployment", "namespace": "staging",
                  "name": "api", "params": {"container": "app", "image": "nginx:1.28"}},
                 ("deployment/api", "-n", "staging"),
                 ["kubectl", "set", "image", "deployment/api", "-n", "staging", "app=nginx:1.27"],
                 id="set-image"),
    pytest.param({"intent": "restart", "resource": "deployment", "namespace": "dev",
                  "name": "api"},
                 ("deployment/api", "-n", "dev"),
                 ["kubectl", "rollout", "undo", "deployment/api", "-n", "dev", "--to-revision=1"],
                 id="restart"),
    pytest.param({"intent": "rollback", "resource": "deployment", "namespace": "staging",
                  "name": "web"},
                 ("deployment/web", "-n", "staging"),
                 ["kubectl", "rollout", "undo", "deployment/web", "-n", "staging",
                  "--to-revision=2"], id="rollback"),
    pytest.param({"intent": "autoscale", "resource": "deployment", "namespace": "dev",
                  "name": "web", "params": {"min": 1, "max": 4}},
                 ("hpa/web", "-n", "dev"),
                 ["kubectl", "delete", "hpa/web", "-n", "dev"], id="autoscale"),
    pytest.param({"intent": "cordon", "resource": "node", "name": "node-2"},
                 ("node/node-2",), ["kubectl", "uncordon", "node-2"], id="cordon"),
]


@pytest.mark.parametrize(("change", "ref", "inverse"), CHANGES)
def test_change_then_undo_restores_the_captured_state(
        e2e: E2E, change: dict[str, Any], ref: tuple[str, ...], inverse: list[str]) -> None:
    before = _state(e2e, *ref)
    result = k8s_exec({**change, "constraints": YES})
    assert result["status"] == "executed", result
    line = _line(result["operation_id"])
    assert line["undo"]["argv"] == inverse
    assert line["undo"]["before_digest"] == hashlib.sha256(
        audit.canonical_json({"state": before})).hexdigest()
    assert _state(e2e, *ref) != before

    undone = _undo(result["operation_id"])
    assert undone["status"] == "executed", undone
    assert undone["plan"]["argv"] == inverse
    assert undone["plan"]["planner"] == "undo"
    assert _state(e2e, *ref) == before
    undo_line = _line(undone["operation_id"])
    assert undo_line["undoes"] == result["operation_id"]
    assert audit.verify(_log()).ok


def test_uncordon_of_a_cordoned_node_is_undone_by_cordon(e2e: E2E) -> None:
    assert e2e.kubectl("cordon", "node-3").exit_code == 0
    before = _state(e2e, "node/node-3")
    result = k8s_exec({"intent": "uncordon", "resource": "node", "name": "node-3",
                       "constraints": YES})
    assert _line(result["operation_id"])["undo"]["argv"] == ["kubectl", "cordon", "node-3"]
    assert _undo(result["operation_id"])["status"] == "executed"
    assert _state(e2e, "node/node-3") == before


def test_undo_after_an_outside_change_is_refused_naming_the_field(e2e: E2E) -> None:
    result = k8s_exec({"intent": "scale", "resource": "deployment", "namespace": "staging",
                       "name": "api", "params": {"replicas": 4}, "constraints": YES})
    assert result["status"] == "executed"
    assert e2e.kubectl("scale", "deployment/api", "-n", "staging", "--replicas=6").exit_code == 0
    undone = _undo(result["operation_id"])
    assert (undone["status"], undone["execution"]) == ("denied", None)
    (reason,) = undone["decision"]["reasons"]
    assert reason == (f"deployment/api -n staging changed since operation "
                      f"{result['operation_id']}, so undoing it could overwrite someone else's "
                      "change: spec.replicas is 6 now, was 4")
    assert int(e2e.json("get", "deployment/api", "-n", "staging")["spec"]["replicas"]) == 6


def test_undo_of_an_undo_redoes_the_change(e2e: E2E) -> None:
    before = _state(e2e, "deployment/api", "-n", "staging")
    result = k8s_exec({"intent": "set-image", "resource": "deployment", "namespace": "staging",
                       "name": "api", "params": {"container": "app", "image": "nginx:1.28"},
                       "constraints": YES})
    changed = _state(e2e, "deployment/api", "-n", "staging")
    first = _undo(result["operation_id"])
    assert first["status"] == "executed"
    assert _state(e2e, "deployment/api", "-n", "staging") == before
    again = _undo(first["operation_id"])
    assert again["status"] == "executed", again
    assert again["plan"]["argv"] == ["kubectl", "set", "image", "deployment/api", "-n", "staging",
                                     "app=nginx:1.28"]
    assert _state(e2e, "deployment/api", "-n", "staging") == changed
    # The first undo's work was undone: undoing the original again is allowed, and restores.
    third = _undo(result["operation_id"])
    assert third["status"] == "executed", third
    assert _state(e2e, "deployment/api", "-n", "staging") == before


def test_undoing_twice_is_refused_as_nothing_to_undo(e2e: E2E) -> None:
    result = k8s_exec({"intent": "scale", "resource": "deployment", "namespace": "staging",
                       "name": "api", "params": {"replicas": 3}, "constraints": YES})
    first = _undo(result["operation_id"])
    assert first["status"] == "executed"
    second = _undo(result["operation_id"])
    assert second["status"] == "denied"
    assert second["decision"]["reasons"] == [
        f"nothing to undo: deployment/api -n staging is already as it was before operation "
        f"{result['operation_id']} (operation {first['operation_id']} undid it)"]


def test_undo_needs_confirmation_like_any_medium_risk_change(e2e: E2E) -> None:
    result = k8s_exec({"intent": "scale", "resource": "deployment", "namespace": "staging",
                       "name": "api", "params": {"replicas": 3}, "constraints": YES})
    e2e.cluster.need_standin().clear_requests()
    pending = k8s_exec({"intent": "undo", "params": {"operation_id": result["operation_id"]}})
    assert pending["status"] == "needs_confirmation"
    assert pending["decision"]["reasons"] == [
        "scale is medium risk: it runs only when confirmed (constraints.confirm)"]
    assert [r.method for r in e2e.requests()] == ["GET"]  # the drift check's read, nothing else


def test_dry_run_and_refused_operations_record_nothing_to_undo(e2e: E2E) -> None:
    dry = k8s_exec({"intent": "scale", "resource": "deployment", "namespace": "staging",
                    "name": "api", "params": {"replicas": 4}, "constraints": {"dryRun": True}})
    refused = k8s_exec({"intent": "scale", "resource": "deployment", "namespace": "prod",
                        "name": "api", "params": {"replicas": 4}, "constraints": YES})
    assert (dry["status"], refused["status"]) == ("executed", "denied")
    assert "undo" not in _line(dry["operation_id"]) and "undo" not in _line(refused["operation_id"])
    assert _undo(dry["operation_id"])["decision"]["reasons"] == [
        f"operation {dry['operation_id']} was a dry run: it changed nothing, so there is nothing "
        "to undo"]
    assert _undo(refused["operation_id"])["decision"]["reasons"] == [
        f"operation {refused['operation_id']} ran nothing (denied), so there is nothing to undo"]
    unknown = _undo("0123abcd")
    assert (unknown["status"], unknown["decision"]["reasons"]) == (
        "invalid", [f"params.operation_id: no operation 0123abcd is in the audit log {_log()}"])


def test_drain_records_why_it_cannot_be_undone(e2e: E2E) -> None:
    result = k8s_exec({"intent": "drain", "resource": "node", "name": "node-2",
                       "constraints": YES})
    assert result["status"] == "executed", result
    none = _line(result["operation_id"])["undo"]["none"]
    assert none.startswith("drain evicted the node's pods")
    undone = _undo(result["operation_id"])
    assert undone["status"] == "denied"
    assert undone["decision"]["reasons"] == [
        f"operation {result['operation_id']} cannot be undone: {none}"]


def test_a_tampered_undo_argv_is_caught_by_the_chain_and_refused(e2e: E2E) -> None:
    result = k8s_exec({"intent": "scale", "resource": "deployment", "namespace": "staging",
                       "name": "api", "params": {"replicas": 4}, "constraints": YES})
    log = _log()
    text = log.read_text()
    log.write_text(text.replace('"--replicas=2"', '"--replicas=40"'))
    assert not audit.verify(log).ok
    undone = _undo(result["operation_id"])
    assert undone["status"] == "denied"
    assert undone["decision"]["reasons"][0].startswith("the audit log does not verify (line 1 ")
    assert int(e2e.json("get", "deployment/api", "-n", "staging")["spec"]["replicas"]) == 4


def test_a_rechained_forged_undo_still_goes_through_the_policy(e2e: E2E) -> None:
    """Someone rewrote the log and recomputed every hash: the chain verifies, and the forged
    inverse is judged like any command (prod allows no scale), so nothing runs."""
    result = k8s_exec({"intent": "scale", "resource": "deployment", "namespace": "staging",
                       "name": "api", "params": {"replicas": 4}, "constraints": YES})
    log = _log()
    entries = list(audit.iter_entries(log))
    forged = entries[-1]
    forged["undo"]["argv"] = ["kubectl", "delete", "namespace", "staging"]
    log.write_text("")
    for entry in entries:
        audit.append_entry(log, entry)
    assert audit.verify(log).ok
    undone = _undo(result["operation_id"])
    assert (undone["status"], undone["execution"]) == ("denied", None)
    assert undone["decision"]["reasons"] == ["deleting a namespace is never allowed"]
    assert e2e.json("get", "namespace", "staging")["metadata"]["name"] == "staging"


# ---------------------------------------------------------------- every door


def _scale_staging_api(replicas: int) -> str:
    result = k8s_exec({"intent": "scale", "resource": "deployment", "namespace": "staging",
                       "name": "api", "params": {"replicas": replicas}, "constraints": YES})
    assert result["status"] == "executed"
    return str(result["operation_id"])


def _replicas(e2e: E2E) -> int:
    return int(e2e.json("get", "deployment/api", "-n", "staging")["spec"]["replicas"])


def test_undo_through_the_cli_with_an_id_prefix(e2e: E2E) -> None:
    from tests.e2e.test_e2e_cli import rag_k8s

    op_id = _scale_staging_api(5)
    unconfirmed = rag_k8s("undo", op_id[:8], "--no-prompt", "--json")
    assert unconfirmed.returncode == 4, unconfirmed.stderr
    assert json.loads(unconfirmed.stdout)["plan"]["command"] == (
        "kubectl scale deployment/api -n staging --replicas=2 --current-replicas=5")
    e2e.monkeypatch.setenv("COLUMNS", "200")  # the whole table, not one folded to 80 columns
    tail = rag_k8s("audit", "tail", "-n", "3")
    header, *rows = [line for line in tail.stdout.splitlines() if line.strip()]
    assert header.split()[:5] == ["TIME", "STATUS", "NAMESPACE", "EXIT", "UNDO"]
    (row,) = [line for line in rows if op_id[:8] in line and "scale" in line]
    assert row.split()[5] == "yes"  # the time is two words
    proc = rag_k8s("undo", op_id[:8], "--yes", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "executed"
    assert _replicas(e2e) == 2
    again = rag_k8s("undo", op_id, "--yes")
    assert again.returncode == 3
    assert "nothing to undo" in again.stderr


def test_undo_through_http(e2e: E2E) -> None:
    from fastapi.testclient import TestClient

    from rag_k8s.config import Settings
    from rag_k8s.server import create_app

    op_id = _scale_staging_api(5)
    with TestClient(create_app(Settings.resolve())) as client:
        r = client.post("/k8s-exec", json={"intent": "undo", "params": {"operation_id": op_id},
                                           "constraints": {"confirm": True}})
    assert r.status_code == 200
    assert r.json()["status"] == "executed"
    assert _replicas(e2e) == 2


def test_undo_through_mcp(e2e: E2E) -> None:
    import anyio
    from mcp import Client

    from mcp.client.stdio import StdioServerParameters

    op_id = _scale_staging_api(5)
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("RAG_K8S_", "HF_", "TRANSFORMERS_")) or k in ("KUBECONFIG", "HOME")}
    server = StdioServerParameters(command=str(Path(sys.executable).parent / "rag-k8s"),
                                   args=["mcp"], env=env)

    async def call() -> Any:
        async with Client(server, read_timeout_seconds=120) as client:
            return (await client.call_tool("k8s_exec", {
                "intent": "undo", "params": {"operation_id": op_id},
                "constraints": {"confirm": True}})).structured_content

    assert anyio.run(call)["status"] == "executed"
    assert _replicas(e2e) == 2


# ---------------------------------------------------------------- StatefulSets and DaemonSets

CACHE_STS = {
    "apiVersion": "apps/v1", "kind": "StatefulSet",
    "metadata": {"name": "cache", "namespace": "dev", "labels": {"app": "cache"}},
    "spec": {"replicas": 1, "serviceName": "cache", "selector": {"matchLabels": {"app": "cache"}},
             "template": {"metadata": {"labels": {"app": "cache"}},
                          "spec": {"containers": [{"name": "redis", "image": "redis:7"}]}}},
}


def _create(e2e: E2E, manifest: dict[str, Any]) -> None:
    path = e2e.home / f"{manifest['metadata']['name']}.json"
    path.write_text(json.dumps(manifest))
    run = e2e.kubectl("create", "-f", str(path), "--validate=false")
    assert run.exit_code == 0, run.stderr


@pytest.mark.parametrize("change", [
    {"intent": "restart"},
    {"intent": "set-image", "params": {"container": "redis", "image": "redis:7.2"}},
], ids=["restart", "set-image"])
def test_statefulset_change_then_undo(e2e: E2E, change: dict[str, Any]) -> None:
    _create(e2e, CACHE_STS)
    before = _state(e2e, "statefulset/cache", "-n", "dev")
    result = k8s_exec({**change, "resource": "statefulset", "namespace": "dev", "name": "cache",
                       "constraints": YES})
    assert result["status"] == "executed", result
    assert _state(e2e, "statefulset/cache", "-n", "dev") != before
    undone = _undo(result["operation_id"])
    assert undone["status"] == "executed", undone
    assert _state(e2e, "statefulset/cache", "-n", "dev") == before


def test_statefulset_restart_undo_of_the_undo(e2e: E2E) -> None:
    _create(e2e, CACHE_STS)
    before = _state(e2e, "statefulset/cache", "-n", "dev")
    result = k8s_exec({"intent": "restart", "resource": "statefulset", "namespace": "dev",
                       "name": "cache", "constraints": YES})
    restarted = _state(e2e, "statefulset/cache", "-n", "dev")
    first = _undo(result["operation_id"])
    assert first["status"] == "executed", first
    assert _state(e2e, "statefulset/cache", "-n", "dev") == before
    again = _undo(first["operation_id"])
    assert again["status"] == "executed", again
    assert _state(e2e, "statefulset/cache", "-n", "dev") == restarted


def test_planning_an_undo_reads_nothing_from_the_cluster(e2e: E2E) -> None:
    from rag_k8s import plan

    op_id = _scale_staging_api(5)
    e2e.cluster.need_standin().clear_requests()
    preview = plan({"intent": "undo", "params": {"operation_id": op_id}})
    assert (preview["status"], preview["decision"]["requires_confirmation"]) == ("planned", True)
    assert preview["plan"]["argv"] == ["kubectl", "scale", "deployment/api", "-n", "staging",
                                       "--replicas=2", "--current-replicas=5"]
    assert preview["plan"]["rationale"].endswith("The object is re-checked when it runs.")
    assert e2e.requests() == []


def test_the_inverse_is_judged_by_the_policy_of_its_own_verb(e2e: E2E) -> None:
    """prod allows restart, not rollback: the undo of a prod restart (a rollout undo) is refused."""
    result = k8s_exec({"intent": "restart", "resource": "deployment", "namespace": "prod",
                       "name": "web"})
    assert result["status"] == "executed"
    assert _line(result["operation_id"])["undo"]["argv"] == [
        "kubectl", "rollout", "undo", "deployment/web", "-n", "prod", "--to-revision=1"]
    e2e.cluster.need_standin().clear_requests()
    undone = _undo(result["operation_id"])
    assert (undone["status"], undone["execution"]) == ("denied", None)
    assert undone["decision"]["reasons"] == ["namespace 'prod' does not allow rollback on deployment"]
    assert [r.method for r in e2e.requests()] == ["GET"]  # the drift check's read only
    assert _line(undone["operation_id"])["undoes"] == result["operation_id"]


# ---------------------------------------------------------------- delete and manifests


def _undo_with_preview(op_id: str) -> dict[str, Any]:
    """A manifest change runs only with the digest of the preview it showed (rag_k8s.manifests)."""
    shown = _undo(op_id)
    assert shown["status"] == "needs_confirmation", shown
    digest = shown["plan"]["preview"]["digest"]
    return _undo(op_id, previewDigest=digest)


@pytest.mark.parametrize(("kind", "name"), [("configmap", "api-config"), ("deployment", "web")])
def test_delete_then_undo_recreates_the_captured_object(e2e: E2E, kind: str, name: str) -> None:
    before = _state(e2e, f"{kind}/{name}", "-n", "dev")
    result = k8s_exec({"intent": "delete", "resource": kind, "namespace": "dev", "name": name,
                       "constraints": YES})
    assert result["status"] == "executed", result
    assert _state(e2e, f"{kind}/{name}", "-n", "dev") is None
    record = _line(result["operation_id"])["undo"]
    manifest = Path(os.environ["RAG_K8S_HOME"]) / "undo" / f"{result['operation_id']}.yaml"
    assert record["argv"] == ["kubectl", "create", "-f", str(manifest), "-n", "dev"]
    assert oct(manifest.stat().st_mode & 0o777) == "0o600"
    undone = _undo_with_preview(result["operation_id"])
    assert undone["status"] == "executed", undone
    assert _state(e2e, f"{kind}/{name}", "-n", "dev") == before
    # ... and undoing the undo deletes it again.
    again = _undo(undone["operation_id"])
    assert again["plan"]["argv"] == ["kubectl", "delete", f"{kind}/{name}", "-n", "dev"]
    assert again["status"] == "executed", again
    assert _state(e2e, f"{kind}/{name}", "-n", "dev") is None


def test_a_secret_is_never_captured(e2e: E2E) -> None:
    result = k8s_exec({"argv": ["kubectl", "delete", "secret/dev-token", "-n", "dev"],
                       "constraints": YES})
    assert result["status"] == "executed", result
    assert _line(result["operation_id"])["undo"] == {
        "none": "secrets are never read or stored, so a change to one cannot be undone"}

    assert not (Path(os.environ["RAG_K8S_HOME"]) / "undo" / f"{result['operation_id']}.yaml").exists()


def test_apply_of_a_changed_manifest_then_undo(e2e: E2E) -> None:
    before = _state(e2e, "configmap/api-config", "-n", "dev")
    path = e2e.home / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api-config, namespace: dev}\n"
                    "data: {LOG_LEVEL: warn}\n")
    argv = ["kubectl", "apply", "-f", str(path), "-n", "dev"]
    shown = k8s_exec({"argv": argv, "constraints": YES})
    result = k8s_exec({"argv": argv, "constraints": {
        **YES, "previewDigest": shown["plan"]["preview"]["digest"]}})
    assert result["status"] == "executed", result
    assert _state(e2e, "configmap/api-config", "-n", "dev")["data"] == {"LOG_LEVEL": "warn"}
    assert _line(result["operation_id"])["undo"]["argv"][:2] == ["kubectl", "apply"]
    undone = _undo_with_preview(result["operation_id"])
    assert undone["status"] == "executed", undone
    assert _state(e2e, "configmap/api-config", "-n", "dev") == before


# ---------------------------------------------------------------- the intents vocab added

NEW_INTENTS = [
    pytest.param([], ["kubectl", "label", "deployment", "api", "team=blue", "-n", "dev"],
                 ("deployment/api", "-n", "dev"),
                 ["kubectl", "label", "deployment/api", "-n", "dev", "team-"], id="label"),
    pytest.param([], ["kubectl", "label", "deployment", "api", "app=other", "--overwrite", "-n",
                      "dev"], ("deployment/api", "-n", "dev"),
                 ["kubectl", "label", "deployment/api", "-n", "dev", "app=api", "--overwrite"],
                 id="label-overwrite"),
    pytest.param([], ["kubectl", "annotate", "deployment", "api", "note=hi", "-n", "dev"],
                 ("deployment/api", "-n", "dev"),
                 ["kubectl", "annotate", "deployment/api", "-n", "dev", "note-"], id="annotate"),
    pytest.param([], ["kubectl", "taint", "nodes", "node-2", "dedicated=db:NoSchedule"],
                 ("node/node-2",), ["kubectl", "taint", "nodes", "node-2", "dedicated:NoSchedule-"],
                 id="taint"),
    pytest.param([], ["kubectl", "set", "env", "deployment/api", "MODE=fast", "-n", "dev", "-c",
                      "app"], ("deployment/api", "-n", "dev"),
                 ["kubectl", "set", "env", "deployment/api", "-n", "dev", "--containers=app",
                  "MODE-"], id="set-env"),
    pytest.param([["set", "resources", "deployment/api", "-n", "dev", "-c", "app",
                   "--requests=cpu=100m"]],
                 ["kubectl", "set", "resources", "deployment/api", "-n", "dev", "-c", "app",
                  "--requests=cpu=250m"], ("deployment/api", "-n", "dev"),
                 ["kubectl", "set", "resources", "deployment/api", "-n", "dev",
                  "--containers=app", "--requests=cpu=100m"], id="set-resources"),
    pytest.param([], ["kubectl", "rollout", "pause", "deployment/api", "-n", "dev"],
                 ("deployment/api", "-n", "dev"),
                 ["kubectl", "rollout", "resume", "deployment/api", "-n", "dev"], id="pause"),
    pytest.param([["rollout", "pause", "deployment/api", "-n", "dev"]],
                 ["kubectl", "rollout", "resume", "deployment/api", "-n", "dev"],
                 ("deployment/api", "-n", "dev"),
                 ["kubectl", "rollout", "pause", "deployment/api", "-n", "dev"], id="resume"),
    pytest.param([], ["kubectl", "create", "deployment", "cache", "--image=redis:7", "-n", "dev"],
                 ("deployment/cache", "-n", "dev"),
                 ["kubectl", "delete", "deployment/cache", "-n", "dev"], id="create"),
    pytest.param([], ["kubectl", "expose", "deployment", "api", "--port=80", "-n", "dev"],
                 ("service/api", "-n", "dev"),
                 ["kubectl", "delete", "service/api", "-n", "dev"], id="expose"),
    pytest.param([], ["kubectl", "create", "configmap", "flags", "--from-literal=beta=on", "-n",
                      "dev"], ("configmap/flags", "-n", "dev"),
                 ["kubectl", "delete", "configmap/flags", "-n", "dev"], id="create-configmap"),
    pytest.param([], ["kubectl", "patch", "deployment", "api", "-n", "dev", "-p",
                      '{"spec":{"replicas":2}}'], ("deployment/api", "-n", "dev"),
                 ["kubectl", "patch", "deployment/api", "-n", "dev", "--type=merge",
                  '--patch={"spec":{"replicas":1}}'], id="patch"),
]


def test_run_records_that_rag_k8s_never_deletes_the_pod(e2e: E2E) -> None:
    result = k8s_exec({"argv": ["kubectl", "run", "tmp", "--image=busybox:1.36",
                                "--restart=Never", "-n", "dev"], "constraints": YES})
    assert result["status"] == "executed", result
    assert _line(result["operation_id"])["undo"] == {"none": (
        "rag-k8s never deletes a pod (CONTRACT §6.1), so a pod it ran is not removed through it: "
        "run `kubectl delete pod tmp -n dev` yourself")}


@pytest.mark.parametrize(("setup", "argv", "ref", "inverse"), NEW_INTENTS)
def test_new_intent_change_then_undo(e2e: E2E, setup: list[list[str]], argv: list[str],
                                     ref: tuple[str, ...], inverse: list[str]) -> None:
    for step in setup:
        run = e2e.kubectl(*step)
        assert run.exit_code == 0, run.stderr
    before = _state(e2e, *ref)
    result = k8s_exec({"argv": argv, "constraints": YES})
    assert result["status"] == "executed", result
    assert _line(result["operation_id"])["undo"].get("argv") == inverse, _line(
        result["operation_id"])["undo"]
    assert _state(e2e, *ref) != before
    undone = _undo(result["operation_id"])
    assert undone["status"] == "executed", undone
    assert _state(e2e, *ref) == before
