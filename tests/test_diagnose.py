"""Runbook cards and analyzers without a cluster: card validation, derived slots, quoting of
untrusted text, and analyzers over hand-written kubectl JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from rag_k8s.cards import load_card
from rag_k8s.diagnose import Gathered, StepOutput, analyze
from rag_k8s.diagnose.analyzers import PodView, analyze_pod, owner_of, unschedulable
from rag_k8s.diagnose.findings import untrusted
from rag_k8s.diagnose.report import render_diagnosis
from rag_k8s.diagnose.runbook import derived_slots, plan_steps
from rag_k8s.errors import CardError, InvalidRequest

CARDS = Path(__file__).resolve().parents[1] / "cards"

RUNBOOK = {
    "id": "diagnose-thing", "intent": "diagnose", "resource": "pod", "risk_level": "none",
    "description": "A test runbook for pods.",
    "steps": [
        {"id": "pod", "output": "json",
         "command_template": "kubectl get pod/{{name}} -n {{namespace}} -o json"},
        {"id": "owner", "output": "json", "after": "pod",
         "command_template": "kubectl get {{owner_kind}}/{{owner_name}} -n {{namespace}} -o json"},
    ],
    "placeholders": {"name": {"type": "name"}, "namespace": {"type": "namespace"}},
    "examples": [{"query": "why is pod a-1 in dev broken", "slots": {"name": "a-1",
                                                                      "namespace": "dev"},
                  "command": "kubectl get pod/a-1 -n dev -o json"}],
}


def _card(tmp_path: Path, **changes: Any) -> Any:
    data = {**RUNBOOK, **changes}
    path = tmp_path / f"{data['id']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_card(path)


def test_runbook_card_takes_its_first_step_as_the_plan_command(tmp_path: Path) -> None:
    card = _card(tmp_path)
    assert card.command_template == "kubectl get pod/{{name}} -n {{namespace}} -o json"
    assert card.render({"name": "a-1", "namespace": "dev"}) == [
        "kubectl", "get", "pod/a-1", "-n", "dev", "-o", "json"]
    assert plan_steps(card, {"name": "a-1", "namespace": "dev"})[1]["command"] == \
        "kubectl get <owner_kind>/<owner_name> -n dev -o json"


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"command_template": "kubectl get pod/{{name}} -n {{namespace}}"}, "command_template",
     "a runbook card gives `steps` instead"),
    ({"intent": "restart", "risk_level": "low"}, "steps",
     "a runbook only reads; intent restart changes things"),
    ({"steps": [RUNBOOK["steps"][0], {"id": "boom", "command_template":
                                      "kubectl delete pod/{{name}} -n {{namespace}}"}]},
     "steps.boom.command_template", "kubectl delete is not a read-only verb"),
    ({"steps": [RUNBOOK["steps"][0], {**RUNBOOK["steps"][1], "after": None}]},
     "steps.owner.after", "owner_kind, owner_name come from an earlier `output: json` step"),
    ({"steps": [RUNBOOK["steps"][0], RUNBOOK["steps"][0]]}, "steps.pod", "the id is used twice"),
    ({"steps": [RUNBOOK["steps"][0], {"id": "logs", "command_template":
                                      "kubectl logs pod/{{name}} -n {{namespace}} -c {{container}}"}]},
     "steps.logs", "uses {{container}} but placeholders lacks it"),
])
def test_bad_runbook_cards_are_refused_naming_the_field(tmp_path: Path, change: dict[str, Any],
                                                        field: str, message: str) -> None:
    with pytest.raises(CardError) as info:
        _card(tmp_path, **change)
    assert info.value.field == field
    assert message in str(info.value)


def test_derived_slots_come_from_structured_fields_and_are_checked(tmp_path: Path) -> None:
    card = _card(tmp_path)
    step = card.steps[1]
    pod = {"metadata": {"labels": {"pod-template-hash": "5c7d8f9b6"}, "ownerReferences": [
        {"kind": "ReplicaSet", "name": "web-5c7d8f9b6", "controller": True}]}}
    slots, why = derived_slots(step, StepOutput("pod", "", 0, data=pod))
    assert (slots, why) == ({"owner_kind": "deployment", "owner_name": "web"}, None)
    assert step.render(card, {"name": "x", "namespace": "dev"}, slots) == [
        "kubectl", "get", "deployment/web", "-n", "dev", "-o", "json"]
    # A name that is no Kubernetes name never reaches an argv.
    with pytest.raises(InvalidRequest):
        step.render(card, {"name": "x", "namespace": "dev"},
                    {"owner_kind": "deployment", "owner_name": "web --all-namespaces"})
    orphan = {"metadata": {"ownerReferences": []}}
    assert derived_slots(step, StepOutput("pod", "", 0, data=orphan)) == (
        {}, "the object has no controlling owner")


def test_selector_with_match_expressions_is_not_approximated() -> None:
    from rag_k8s.cards import cached_corpus

    step = cached_corpus(CARDS).get("diagnose-deployment").steps[3]
    dep = {"spec": {"selector": {"matchLabels": {"app": "a"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["x"]}]}}}
    assert derived_slots(step, StepOutput("deployment", "", 0, data=dep)) == (
        {}, "the selector has matchExpressions, which -l cannot carry exactly")
    dep = {"spec": {"selector": {"matchLabels": {"tier": "b", "app": "a"}}}}
    assert derived_slots(step, StepOutput("deployment", "", 0, data=dep)) == (
        {"pod_selector": "app=a,tier=b"}, None)


def test_owner_of_a_bare_pod_or_a_job_pod() -> None:
    assert owner_of({"metadata": {}}) is None
    job_pod = {"metadata": {"ownerReferences": [{"kind": "Job", "name": "m", "controller": True}]}}
    assert owner_of(job_pod) == ("job", "m")


@pytest.mark.parametrize(("raw", "clean"), [
    ("\x1b[31mERROR\x1b[0m disk full", "ERROR disk full"),
    ("bell\x07 and\rcarriage", "bell andcarriage"),
    ("x" * 400, "x" * 297 + "..."),
])
def test_untrusted_text_is_cleaned_and_cut(raw: str, clean: str) -> None:
    assert untrusted(raw) == clean


def _pending(message: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "p-1", "namespace": "dev"}, "spec": spec,
            "status": {"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": message}]}}


@pytest.mark.parametrize(("message", "spec", "summary"), [
    ("0/3 nodes are available: 3 node(s) had untolerated taint {dedicated: gpu}. preemption: "
     "0/3 nodes are available: 3 Preemption is not helpful for scheduling.", {},
     "pod p-1 cannot be scheduled: 3 nodes have a taint it does not tolerate (dedicated: gpu)"),
    ("0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were unschedulable.",
     {"containers": [{"name": "a", "resources": {"requests": {"cpu": "8"}}}]},
     "pod p-1 cannot be scheduled: 1 node lacks the cpu it requests (8); 1 node is cordoned"),
])
def test_scheduler_messages_become_causes(message: str, spec: dict[str, Any],
                                          summary: str) -> None:
    [finding] = unschedulable(PodView(_pending(message, **spec), "pod"))
    assert finding.summary == summary


def test_a_running_ready_pod_has_no_finding() -> None:
    pod = {"metadata": {"name": "ok-1", "namespace": "dev"},
           "spec": {"containers": [{"name": "a", "image": "nginx"}]},
           "status": {"phase": "Running",
                      "conditions": [{"type": "Ready", "status": "True"}],
                      "containerStatuses": [{"name": "a", "ready": True, "restartCount": 0,
                                             "state": {"running": {}}}]}}
    assert analyze_pod(PodView(pod, "pod")) == []


def test_findings_are_worst_first_and_the_report_quotes_them_plainly() -> None:
    node = {"metadata": {"name": "n1"}, "spec": {"unschedulable": True}, "status": {"conditions": [
        {"type": "DiskPressure", "status": "True", "reason": "KubeletHasDiskPressure",
         "message": "[bold]disk[/bold]"},
        {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "PLEG"}]}}
    g = Gathered("node", None, "n1", {"node": StepOutput("node", "kubectl get node/n1 -o json", 0,
                                                         json.dumps(node), "", node)})
    found = analyze(g)
    assert [(f.severity, f.reason) for f in found] == [
        ("error", "NodeNotReady"), ("warning", "DiskPressure"), ("info", "Cordoned")]
    result = {"plan": {"command": "kubectl describe node/n1"},
              "execution": {"steps": [{"id": "node", "exit_code": 0, "skipped": None}]},
              "findings": [f.to_dict() for f in found]}
    text = render_diagnosis(result)
    assert text.startswith("diagnosis (kubectl describe node/n1): 3 findings (1 of 1 steps ran)")
    assert "  [2] node: status.conditions[0].message = [bold]disk[/bold]\n" in text
