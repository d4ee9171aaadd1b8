"""`k8s_exec` and `plan`: the one pipeline every door calls.

request -> plan (retrieve + template/MLX planner) -> policy decision -> execute -> audit.
Neither function raises for a bad request; each returns CONTRACT §2's result dict.
"""

from __future__ import annotations

import logging
import shlex
import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from . import audit, execute, manifests, policy
from .cards import Card, Corpus, cached_corpus
from .config import Settings
from .errors import (
    InvalidRequest, ModelNotFound, NoMatch, PlannerError, PolicyError, RagK8sError, RefusedAction,
)
from .argv_door import argv_facts, argv_plan
from .kubectl_argv import with_server_dry_run
from .planner import Plan, make_plan
from .policy import Decision
from .request import Request, parse_request
from .vocab import max_risk
from .execute import ExecResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Result:
    operation_id: str
    status: str
    plan: Plan | None
    decision: Decision
    execution: ExecResult | None
    # The normalised request with what planning learnt (intent, kind, name) for the audit log.
    logged_request: dict[str, Any] | None = field(default=None, compare=False)
    # For `invalid`: the request field at fault, so the HTTP door can name it in its 400.
    invalid_field: str | None = field(default=None, compare=False)
    # A runbook card: its steps as planned, as run, and the analyzers' findings (worst first).
    plan_steps: list[dict[str, Any]] | None = field(default=None, compare=False)
    step_runs: list[dict[str, Any]] | None = field(default=None, compare=False)
    findings: list[dict[str, Any]] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "operation_id": self.operation_id,
            "status": self.status,
            "plan": self.plan.to_dict() if self.plan else None,
            "decision": self.decision.to_dict(),
            "execution": self.execution.to_dict() if self.execution else None,
        }
        _add_runbook(out, self)
        return out


def _add_runbook(out: dict[str, Any], result: Result) -> None:
    """The runbook parts of a result: plan.steps, execution.steps and findings (CONTRACT §2)."""
    if result.plan_steps is not None and out["plan"] is not None:
        out["plan"]["steps"] = [dict(s) for s in result.plan_steps]
    if result.step_runs is not None and out["execution"] is not None:
        out["execution"]["steps"] = [dict(s) for s in result.step_runs]
    if result.findings is not None:
        out["findings"] = [dict(f) for f in result.findings]


def _runbook(op_id: str, card: Card, plan_: Plan, decision: Decision, request: Request,
             logged: dict[str, Any], settings: Settings, rules: policy.Policy) -> Result:
    """Run a runbook card's steps and analyze them; the first step's exit decides the status."""
    from .diagnose import plan_actions, plan_steps, run_runbook

    outcome = run_runbook(card, plan_, request, settings=settings, rules=rules)
    first = outcome.execution
    status = "timeout" if first.timed_out else "executed" if first.exit_code == 0 else "failed"
    findings = plan_actions(outcome.findings, plan_.slots.get("namespace"), settings=settings)
    return Result(op_id, status, plan_, decision, first, logged,
                  plan_steps=plan_steps(card, plan_.slots), step_runs=outcome.steps,
                  findings=[f.to_dict() for f in findings])


def _refused(reason: str) -> Decision:
    return Decision(allowed=False, requires_confirmation=False, reasons=[reason])


def _invalid(op_id: str, e: InvalidRequest) -> Result:
    return Result(op_id, "invalid", None, _refused(str(e)), None, invalid_field=e.field)


def _run_pipeline(payload: Any, *, run: bool, settings: Settings | None,
                  expected_argv: list[str] | None = None) -> Result:
    op_id = str(uuid.uuid4())
    try:
        settings = settings or Settings.resolve()
        request = parse_request(payload)
    except InvalidRequest as e:
        return _invalid(op_id, e)

    try:
        corpus: Corpus = cached_corpus(settings.cards_dir)
        if request.argv is not None:
            # The argv door: the command as sent, judged below exactly like a planned one.
            plan_ = argv_plan(list(request.argv), corpus)
        elif request.files:
            plan_ = manifests.files_plan(request, corpus)
        else:
            plan_ = make_plan(request, settings=settings, corpus=corpus)
    except InvalidRequest as e:
        return _invalid(op_id, e)
    except NoMatch as e:
        return Result(op_id, "no_match", None, _refused(str(e)), None)
    except RefusedAction as e:
        return _refused_action(op_id, e)
    except PlannerError as e:
        if isinstance(e, ModelNotFound):
            raise  # the set-up is wrong, not the request: the CLI says how to fix it (exit 1)
        # The model gave no plan that renders, twice: nothing fits that anyone could check.
        return Result(op_id, "no_match", None, _refused(str(e)), None)
    logged = _planned_request(request, plan_, corpus)

    # Under dry-run a mutating command gets --dry-run=server where kubectl supports it for the verb;
    # the flag is added before validation so the policy judges exactly what would run.
    server_dry_run: list[str] | None = None
    is_mutating = policy.is_mutating(plan_.argv)
    if request.dry_run and is_mutating:
        server_dry_run = with_server_dry_run(plan_.argv)
        if server_dry_run is not None:
            plan_ = _with_argv(plan_, server_dry_run)

    try:
        rules = policy.load_policy(settings.org_dir)
    except PolicyError as e:
        return Result(op_id, "denied", plan_, _refused(str(e)), None, logged)
    if manifests.is_manifest_argv(plan_.argv):
        # The objects inside the files are judged, and a change is previewed (kubectl diff).
        stage = manifests.evaluate(plan_.argv, policy=rules, settings=settings, request=request,
                                   run=run)
        decision = stage.decision
        plan_ = replace(plan_, risk_level=max_risk(plan_.risk_level, decision.risk_level),
                        preview=stage.preview.to_dict() if stage.preview else None)
    else:
        decision = policy.validate(plan_.argv, card=corpus.by_id.get(plan_.card_id),
                                   policy=rules)

    if not decision.allowed:
        return Result(op_id, "denied", plan_, decision, None, logged)
    if expected_argv is not None and list(expected_argv) != plan_.argv:
        # What was confirmed is not what would run (a model planned twice, a card changed).
        return Result(op_id, "denied", plan_, _refused(
            "the command planned now differs from the one that was confirmed "
            f"({shlex.join(expected_argv)}); nothing ran: review the new command and confirm it"
        ), None, logged)
    card = corpus.by_id.get(plan_.card_id) if plan_.card_id else None
    if plan_.planner == "argv":
        card = None  # the argv door runs exactly the argv sent, never the card's other steps
    if not run:
        if card is not None and card.steps:
            from .diagnose import plan_steps

            return Result(op_id, "planned", plan_, decision, None, logged,
                          plan_steps=plan_steps(card, plan_.slots))
        return Result(op_id, "planned", plan_, decision, None, logged)
    if request.dry_run and is_mutating and server_dry_run is None:
        return Result(op_id, "planned", plan_, decision, None, logged)  # preview only
    confirmed = request.confirm and manifests.digest_confirmed(plan_.preview, request)
    if decision.requires_confirmation and not confirmed and not request.dry_run:
        return Result(op_id, "needs_confirmation", plan_, decision, None, logged)

    if card is not None and card.steps:
        return _runbook(op_id, card, plan_, decision, request, logged, settings, rules)
    outcome = execute.run(plan_.argv, timeout=request.timeout, settings=settings,
                          dry_run=request.dry_run)
    if outcome.timed_out:
        status = "timeout"
    elif outcome.exit_code == 0 or manifests.is_diff_with_changes(plan_.argv, outcome.exit_code):
        status = "executed"
    else:
        status = "failed"
    return Result(op_id, status, plan_, decision, outcome, logged)


def _refused_action(op_id: str, e: RefusedAction) -> Result:
    """A verb rag-k8s never runs: `denied`, with the command for the user to run themselves."""
    refused = Plan(card_id=None, argv=list(e.argv or ["kubectl", *e.verb.split()]), risk_level="high", planner="template",
                   rationale=f"rag-k8s never runs `kubectl {e.verb}`.")
    decision = Decision(allowed=False, requires_confirmation=False, reasons=[e.reason],
                        suggestion=e.suggestion, risk_level="high")
    return Result(op_id, "denied", refused, decision, None)


def _with_argv(plan_: Plan, argv: list[str]) -> Plan:
    return replace(plan_, argv=argv)


def _planned_request(request: Request, plan_: Plan, corpus: Corpus) -> dict[str, Any]:
    """The request as logged: free text gains the intent, kind and names the planner settled on."""
    out = request.to_dict()
    if request.argv is not None:
        return {**out, **argv_facts(list(request.argv))}
    card = corpus.by_id.get(plan_.card_id)
    if card is not None:
        out.setdefault("intent", card.intent)
        if card.resource != "*":
            out.setdefault("resource", card.resource)
    for key in ("namespace", "name"):
        if key not in out and isinstance(plan_.slots.get(key), str):
            out[key] = plan_.slots[key]
    return out


def _request_for_log(payload: Any, result: Result) -> Any:
    if result.logged_request is not None:
        return result.logged_request
    try:
        return parse_request(payload).to_dict()
    except RagK8sError:
        return payload if isinstance(payload, dict) else repr(payload)[:2000]


def execute_request(payload: Any, *, settings: Settings | None = None,
                    expected_argv: list[str] | None = None) -> Result:
    """`k8s_exec`, returning the typed Result (for doors that need more than the dict)."""
    cfg = settings or Settings.resolve()
    result = _run_pipeline(payload, run=True, settings=cfg, expected_argv=expected_argv)
    audit.write_operation(cfg.audit_log, result=result.to_dict(),
                          request=_request_for_log(payload, result))
    return result


def plan_request(payload: Any, *, settings: Settings | None = None) -> Result:
    """`plan`, returning the typed Result."""
    return _run_pipeline(payload, run=False, settings=settings)


def k8s_exec(payload: Any, *, settings: Settings | None = None,
             expected_argv: list[str] | None = None) -> dict[str, Any]:
    """Run the whole pipeline for one request and return the result dict (CONTRACT §2).

    Args:
        payload: the request dict of CONTRACT §1.
        settings: resolved settings; by default from the environment (CONTRACT §10).
        expected_argv: run only if the plan is exactly this argv (what a person confirmed after
            `plan`); otherwise the result is `denied` and nothing runs.

    Every call, refusals and invalid requests included, writes one audit line.
    """
    return execute_request(payload, settings=settings, expected_argv=expected_argv).to_dict()


def plan(payload: Any, *, settings: Settings | None = None) -> dict[str, Any]:
    """Retrieve, plan and validate only; never runs kubectl. Returns the result dict."""
    return plan_request(payload, settings=settings).to_dict()


def parse(payload: Any) -> Request:
    """Validate a request without planning it (raises InvalidRequest)."""
    return parse_request(payload)
