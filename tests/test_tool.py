"""`k8s_exec` through the Python door with the RecordingKubectl stand-in: the exact argv that ran."""

from __future__ import annotations

from typing import Any

import pytest

from rag_k8s import k8s_exec, plan

CASES = [
    ({"intent": "restart", "resource": "deployment", "namespace": "prod", "name": "api"},
     "executed", [["rollout", "restart", "deployment/api", "-n", "prod"]]),
    ({"intent": "restart", "resource": "deploy", "namespace": "prod", "name": "api"},
     "executed", [["rollout", "restart", "deployment/api", "-n", "prod"]]),
    ({"intent": "scale", "resource": "deployment", "namespace": "staging", "name": "web",
      "params": {"replicas": 4}, "constraints": {"confirm": True}},
     "executed", [["scale", "deployment/web", "--replicas=4", "-n", "staging"]]),
    ({"intent": "scale", "resource": "deployment", "namespace": "staging", "name": "web",
      "params": {"replicas": 4}, "constraints": {"dryRun": True}},
     "executed", [["scale", "deployment/web", "--replicas=4", "-n", "staging",
                   "--dry-run=server"]]),
    ({"intent": "scale", "resource": "deployment", "namespace": "staging", "name": "web",
      "params": {"replicas": 4}}, "needs_confirmation", []),
    ({"intent": "delete", "resource": "namespace", "name": "prod",
      "constraints": {"confirm": True}}, "denied", []),
    ({"intent": "restart", "resource": "deployment", "namespace": "kube-system",
      "name": "coredns"}, "denied", []),
    ({"intent": "restart", "bogus": True}, "invalid", []),
    ({"query": "restart the api deployment in prod"},
     "executed", [["rollout", "restart", "deployment/api", "-n", "prod"]]),
]


@pytest.mark.parametrize(("payload", "status", "calls"), CASES,
                         ids=["restart", "short-name", "scale-confirmed", "scale-dry-run",
                              "scale-unconfirmed", "delete-namespace", "kube-system",
                              "invalid", "free-text"])
def test_k8s_exec_runs_exactly_this_argv(recording_kubectl: Any, payload: dict[str, Any],
                                         status: str, calls: list[list[str]]) -> None:
    result = k8s_exec(payload)
    assert result["status"] == status, result["decision"]
    assert recording_kubectl.commands == calls
    if calls:
        assert result["plan"]["argv"] == ["kubectl", *calls[0]]


def test_plan_never_runs_kubectl(recording_kubectl: Any) -> None:
    result = plan({"intent": "drain", "resource": "node", "name": "worker-1"})
    assert result["status"] == "planned"
    assert result["decision"]["requires_confirmation"] is True
    assert recording_kubectl.calls == []


@pytest.mark.parametrize("payload", [None, [], "restart api", 42])
def test_bad_payloads_return_invalid_instead_of_raising(payload: Any) -> None:
    assert k8s_exec(payload)["status"] == "invalid"
    assert plan(payload)["status"] == "invalid"


def test_seed_import_path_still_works(recording_kubectl: Any) -> None:
    from rag_k8s.agent.tool import k8s_exec as seed_k8s_exec, plan as seed_plan

    assert seed_k8s_exec is k8s_exec
    assert seed_plan is plan


SCALE_WEB = {"intent": "scale", "resource": "deployment", "namespace": "staging", "name": "web",
             "params": {"replicas": 4}, "constraints": {"confirm": True}}


def test_expected_argv_runs_only_the_confirmed_command(recording_kubectl: Any) -> None:
    shown = plan(SCALE_WEB)["plan"]["argv"]
    result = k8s_exec(SCALE_WEB, expected_argv=shown)
    assert result["status"] == "executed"
    assert recording_kubectl.commands == [shown[1:]]


def test_a_plan_that_differs_from_the_confirmed_one_is_refused(recording_kubectl: Any) -> None:
    confirmed = ["kubectl", "scale", "deployment/web", "--replicas=2", "-n", "staging"]
    result = k8s_exec(SCALE_WEB, expected_argv=confirmed)
    assert result["status"] == "denied"
    assert result["decision"]["reasons"] == [
        "the command planned now differs from the one that was confirmed (kubectl scale "
        "deployment/web --replicas=2 -n staging); nothing ran: review the new command and "
        "confirm it"]
    assert result["execution"] is None
    assert recording_kubectl.calls == []
