"""The public evaluation: the cases file, comparison by meaning, and the template planner's scores."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from rag_k8s.config import Settings
from rag_k8s.errors import ConfigError
from rag_k8s.evaluate import (
    EvalReport, effective_status, load_cases, render_report, run_eval, same_command,
)

CASES = Path(__file__).resolve().parent.parent / "eval" / "cases.jsonl"


def _isolated_eval(cases: Path, label: str, rag_home: Path,
                   tmp_path_factory: pytest.TempPathFactory) -> EvalReport:
    """One template-planner run over `cases` with this suite's isolation (module-scoped, so the
    function-scoped autouse fixture does not apply)."""
    with pytest.MonkeyPatch.context() as mp:
        for var in [v for v in os.environ if v.startswith("RAG_K8S_")]:
            mp.delenv(var)
        mp.setenv("RAG_K8S_HOME", str(rag_home))
        mp.setenv("RAG_K8S_CARDS_DIR", str(CASES.parent.parent / "cards"))
        mp.setenv("RAG_K8S_ORG_DIR", str(CASES.parent.parent / "org"))
        mp.setenv("RAG_K8S_AUDIT_LOG", str(tmp_path_factory.mktemp(label) / "agent.log"))
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("HF_HUB_CACHE", str(rag_home / "hf-cache"))
        return run_eval(cases, planner="template", settings=Settings.resolve())


@pytest.fixture(scope="module")
def template_report(rag_home: Path, tmp_path_factory: pytest.TempPathFactory) -> EvalReport:
    """One template-planner run over eval/cases.jsonl, shared by the threshold tests."""
    return _isolated_eval(CASES, "eval", rag_home, tmp_path_factory)


def test_cases_file_has_enough_cases_in_every_group() -> None:
    cases = load_cases(CASES)
    counts = {g: sum(c.group == g for c in cases)
              for g in ("structured", "free_text", "refused", "confirmation")}
    assert len(cases) >= 130
    assert counts["structured"] >= 40 and counts["free_text"] >= 40
    assert counts["refused"] >= 10 and counts["confirmation"] >= 10


def test_cases_cover_every_namespace_kind_of_policy() -> None:
    namespaces = set()
    for case in load_cases(CASES):
        if case.expect.command:
            parts = case.expect.command.split()
            if "-n" in parts:
                namespaces.add(parts[parts.index("-n") + 1])
    assert {"prod", "staging", "dev", "kube-system", "default"} <= namespaces


def test_template_planner_meets_the_structured_threshold(template_report: EvalReport) -> None:
    assert template_report.accuracy("structured") >= 0.98, template_report.to_dict()["failures"]


def test_template_planner_meets_the_free_text_threshold(template_report: EvalReport) -> None:
    assert template_report.accuracy("free_text") >= 0.95, template_report.to_dict()["failures"]


@pytest.mark.parametrize("group", ["refused", "confirmation"])
def test_template_planner_gets_every_refusal_and_confirmation_right(
    group: str, template_report: EvalReport
) -> None:
    assert template_report.accuracy(group) == 1.0, template_report.to_dict()["failures"]


def test_template_run_uses_no_model(template_report: EvalReport) -> None:
    # `none`: cases that stop before a plan exists (invalid, no_match).
    # `argv`: cases sent through the argv door (no planner at all).
    assert set(template_report.planner_counts()) <= {"template", "none", "argv"}


def test_report_dict_and_rendering(template_report: EvalReport) -> None:
    data = template_report.to_dict()
    assert set(data) == {"planner", "cases", "total", "passed", "accuracy", "groups",
                         "unfaithful", "needs",
                         "latency_ms", "planners", "failures"}
    assert data["planner"] == "template" and data["total"] == len(load_cases(CASES))
    assert set(data["groups"]) == {"structured", "free_text", "refused", "confirmation"}
    assert set(data["latency_ms"]) == {"p50", "p95", "mean", "max"}
    assert data["latency_ms"]["p50"] <= data["latency_ms"]["p95"] <= data["latency_ms"]["max"]
    json.dumps(data)  # tooling reads it as JSON
    console = Console(record=True, width=160)
    render_report(template_report, console)
    text = console.export_text()
    for word in ("rag-k8s eval: planner template", "structured", "free_text", "refused",
                 "confirmation", "latency per plan: p50", "planners used: "):
        assert word in text


@pytest.mark.parametrize(
    ("expected", "got"),
    [
        ("kubectl rollout restart deployment/api -n prod",
         ["kubectl", "rollout", "restart", "deploy", "api", "--namespace", "prod"]),
        ("kubectl scale deployment/api --replicas=3 -n staging",
         ["kubectl", "scale", "-n", "staging", "--replicas", "3", "deployments/api"]),
        ("kubectl get pods -n prod -l app=web",
         ["kubectl", "get", "pod", "--selector=app=web", "--namespace=prod"]),
        ("kubectl logs pod/x -n dev --previous", ["kubectl", "logs", "pod/x", "-n", "dev", "-p"]),
        ("kubectl get svc -o wide -n dev", ["kubectl", "get", "service", "-n", "dev", "-o", "wide"]),
    ],
)
def test_commands_that_mean_the_same_compare_equal(expected: str, got: list[str]) -> None:
    assert same_command(expected, got)


@pytest.mark.parametrize(
    ("expected", "got"),
    [
        ("kubectl rollout restart deployment/api -n prod",
         ["kubectl", "rollout", "restart", "deployment/api", "-n", "staging"]),
        ("kubectl rollout restart deployment/api -n prod",
         ["kubectl", "rollout", "restart", "statefulset/api", "-n", "prod"]),
        ("kubectl scale deployment/api --replicas=3 -n dev",
         ["kubectl", "scale", "deployment/api", "--replicas=4", "-n", "dev"]),
        ("kubectl logs pod/x -n dev --tail=50", ["kubectl", "logs", "pod/x", "-n", "dev"]),
        ("kubectl auth can-i delete pods -n dev",
         ["kubectl", "auth", "can-i", "get", "pods", "-n", "dev"]),
        ("kubectl get pods -n dev", None),
    ],
)
def test_commands_that_differ_in_meaning_compare_unequal(expected: str,
                                                         got: list[str] | None) -> None:
    assert not same_command(expected, got)


def _result(status: str, requires_confirmation: bool) -> dict[str, Any]:
    return {"status": status, "decision": {"requires_confirmation": requires_confirmation}}


@pytest.mark.parametrize(
    ("status", "requires", "constraints", "effective"),
    [
        ("planned", True, {}, "needs_confirmation"),
        ("planned", True, {"confirm": True}, "planned"),
        ("planned", True, {"dryRun": True}, "planned"),
        ("planned", False, {}, "planned"),
        ("denied", False, {}, "denied"),
        ("invalid", False, {}, "invalid"),
    ],
)
def test_effective_status_is_what_k8s_exec_would_return_without_running(
    status: str, requires: bool, constraints: dict[str, Any], effective: str
) -> None:
    request = {"intent": "scale", "constraints": constraints}
    assert effective_status(_result(status, requires), request) == effective


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json}\n", "cases.jsonl:1: not valid JSON: "),
        ('{"id": "a", "group": "other", "request": {}, "expect": {"status": "planned"}}\n',
         "cases.jsonl:1: group: Input should be "),
        ('{"id": "a", "group": "structured", "request": {}, "expect": {"status": "planned"},'
         ' "extra": 1}\n', "cases.jsonl:1: extra: Extra inputs are not permitted"),
        ('{"id": "a", "group": "structured", "request": {}, "expect": {"status": "planned"}}\n'
         '{"id": "a", "group": "structured", "request": {}, "expect": {"status": "planned"}}\n',
         "cases.jsonl:2: id 'a' is used twice"),
        ("\n", "cases.jsonl: no cases found"),
    ],
)
def test_malformed_cases_file_names_the_line_and_problem(
    content: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_cases(path)
    assert str(err.value).startswith(f"{tmp_path}/{message}")


def test_run_eval_refuses_an_unknown_planner(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        run_eval(CASES, planner="gpt", settings=Settings.resolve())
    assert str(err.value) == "planner 'gpt' is not one of auto, template, mlx"


def test_eval_cli_fails_below_a_threshold_and_names_the_group(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rag_k8s.cli import app

    cases = tmp_path / "cases.jsonl"
    cases.write_text(
        '{"id": "ok", "group": "structured", "request": {"intent": "get", "resource": "node"}, '
        '"expect": {"status": "planned", "command": "kubectl get node"}}\n'
        '{"id": "wrong", "group": "structured", "request": {"intent": "get", "resource": "node"}, '
        '"expect": {"status": "denied", "command": null}}\n')
    passing = CliRunner().invoke(app, ["eval", "--cases", str(cases), "--min", "structured=0.5"])
    assert passing.exit_code == 0, passing.stderr
    failing = CliRunner().invoke(app, ["eval", "--cases", str(cases), "--min", "structured=0.9"])
    assert failing.exit_code == 1
    assert "below the threshold: structured: 50.0% < 90.0%" in failing.stderr
    bad = CliRunner().invoke(app, ["eval", "--cases", str(cases), "--min", "everything=0.9"])
    assert bad.exit_code == 2
    assert "--min" in bad.stderr


# ----------------------------------------------------------------------------- the kubectl-help set

HELP_CASES = CASES.parent / "kubectl-help.jsonl"


@pytest.fixture(scope="module")
def help_report(rag_home: Path, tmp_path_factory: pytest.TempPathFactory) -> EvalReport:
    """One template-planner run over eval/kubectl-help.jsonl (requests rewritten from the
    examples of `kubectl <verb> --help`, which the project did not write)."""
    return _isolated_eval(HELP_CASES, "eval-help", rag_home, tmp_path_factory)


def test_help_set_is_large_and_sourced() -> None:
    cases = load_cases(HELP_CASES)
    assert len(cases) >= 150
    assert sum(c.group == "supported" for c in cases) >= 100
    assert sum(c.group == "must_refuse" for c in cases) >= 50
    assert {c.group for c in cases} == {"supported", "must_refuse"}
    assert all(c.source and c.source.startswith("kubectl ") and c.source.endswith(" --help")
               for c in cases)
    assert all(c.intent for c in cases if c.group == "supported")
    assert all(c.expect.status in ("denied", "invalid", "no_match")
               for c in cases if c.group == "must_refuse")


def test_help_set_no_allowed_plan_for_a_must_refuse_case(help_report: EvalReport) -> None:
    u = help_report.unfaithful()
    assert u["must_refuse_allowed"] == 0, help_report.to_dict()["failures"]
    assert help_report.accuracy("must_refuse") == 1.0, help_report.to_dict()["failures"]


def test_help_set_no_unfaithful_plan_changes_the_cluster(help_report: EvalReport) -> None:
    assert help_report.unfaithful()["changing"] == 0, help_report.to_dict()["failures"]


def test_help_set_template_gets_90_percent_of_what_the_cards_cover(help_report: EvalReport) -> None:
    assert help_report.accuracy("supported_now") >= 0.90, help_report.to_dict()["failures"]


def test_help_set_cases_needing_new_cards_are_reported_apart(help_report: EvalReport) -> None:
    data = help_report.to_dict()
    assert set(data["unfaithful"]) == {"total", "changing", "must_refuse_allowed"}
    needs = data["needs"]
    assert sum(n["total"] for n in needs.values()) == sum(
        1 for c in load_cases(HELP_CASES) if c.needs)


def test_below_thresholds_names_allowed_must_refuse_plans() -> None:
    from rag_k8s.evaluate import CaseOutcome, below_thresholds

    report = EvalReport(planner="template", cases_path="x")
    report.outcomes.append(CaseOutcome(
        id="r", group="must_refuse", passed=False, expected_status="invalid",
        expected_command=None, got_status="planned", got_command="kubectl drain foo",
        planner="template", latency_ms=1.0, unfaithful=True, changes_cluster=True))
    assert below_thresholds(report, {"must_refuse": 1.0}) == [
        "must_refuse: 0.0% < 100.0%", "1 unfaithful plan(s) would change the cluster",
        "1 must-refuse case(s) got an allowed plan"]
