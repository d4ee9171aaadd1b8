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

from . import audit, embed_worker, execute, jsonsafe, manifests, policy, undo
from .cards import Card, Corpus, cached_corpus
from .config import Settings, effective_timeout
from .errors import (
    InvalidRequest, ModelNotFound, NoMatch, PlannerError, PolicyError, RagK8sError, RefusedAction,
    UndoRefused,
)
from .argv_door import argv_facts, argv_plan
from .kubectl_argv import with_server_dry_run
from .redact import redact
from .planner import Plan, make_plan
from .planner.faithful import screen_request
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
    # The audit line's `undo`: the inverse of what ran, or why there is none (rag_k8s.undo).
    undo: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def undoes(self) -> str | None:
        """For an undo, the operation it undoes (the audit line's `undoes`)."""
        if self.plan is None or self.plan.planner != "undo":
            return None
        return str(self.plan.slots.get("operation_id"))

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
    status = ("interrupted" if first.interrupted else "timeout" if first.timed_out
              else "executed" if first.exit_code == 0 else "failed")
    findings = plan_actions(outcome.findings, plan_.slots.get("namespace"), settings=settings)
    return Result(op_id, status, plan_, decision, first, logged,
                  plan_steps=plan_steps(card, plan_.slots), step_runs=outcome.steps,
                  findings=[f.to_dict() for f in findings])


def _refused(reason: str) -> Decision:
    return Decision(allowed=False, requires_confirmation=False, reasons=[reason])


def _invalid(op_id: str, e: InvalidRequest, card_id: str | None = None) -> Result:
    # The reason may quote the value given; a pasted credential is not echoed back.
    reason = redact(str(e))
    if card_id and card_id not in reason:
        # `plan` is null for `invalid`: the reason still says which card was chosen.
        reason += f" (card {card_id})"
    return Result(op_id, "invalid", None, _refused(reason), None, invalid_field=e.field)


def _run_pipeline(payload: Any, *, run: bool, settings: Settings | None,
                  expected_argv: list[str] | None = None,
                  progress: dict[str, Any] | None = None) -> Result:
    op_id = str(uuid.uuid4())
    progress = {} if progress is None else progress
    progress["operation_id"] = op_id
    try:
        settings = settings or Settings.resolve()
        request = parse_request(payload)
    except InvalidRequest as e:
        return _invalid(op_id, e)
    # The request's own timeout, else RAG_K8S_TIMEOUT, else config.yaml, else 15 (config.py).
    request = replace(request, timeout=effective_timeout(request.timeout, settings))

    undoes: str | None = None
    try:
        corpus: Corpus = cached_corpus(settings.cards_dir)
        if request.intent == "undo":
            plan_, undoes = _plan_undo(request, settings, check_drift=run)
        elif request.argv is not None:
            # The argv door: the command as sent, judged below exactly like a planned one.
            plan_ = argv_plan(list(request.argv), corpus)
        elif request.files:
            plan_ = manifests.files_plan(request, corpus)
        else:
            request = screen_request(request)  # one action, dry-run words, contexts (faithful.py)
            plan_ = make_plan(request, settings=settings, corpus=corpus, screened=True)
    except UndoRefused as e:
        return Result(op_id, "denied", None, _refused(str(e)), None, request.to_dict())
    except InvalidRequest as e:
        return _invalid(op_id, e, card_id=getattr(e, "card_id", None))
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
    embed_worker.stop()  # a cold CLI command's query worker has done its part once there is a plan

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
    if undoes is not None:
        plan_, decision = _undo_risk(plan_, decision)

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

    progress["plan"] = plan_  # from here on, an exception is audited with what ran
    if card is not None and card.steps:
        return _runbook(op_id, card, plan_, decision, request, logged, settings, rules)
    # What the command will change is read just before it runs (never under dry-run).
    before = undo.capture(plan_.argv, settings=settings, rules=rules, timeout=request.timeout) \
        if is_mutating and not request.dry_run else None
    from .progress import phase  # the CLI's spinner, once kubectl has run a second

    assert request.timeout is not None
    with phase(f"running {shlex.join(plan_.argv)[:60]}", delay=1.0):
        outcome = execute.run(plan_.argv, timeout=request.timeout, settings=settings,
                              dry_run=request.dry_run)
    progress["execution"] = outcome
    if outcome.timed_out:
        status = "timeout"
    elif outcome.interrupted:
        status = "interrupted"  # rag-k8s was stopped while kubectl ran; the tree was killed
    elif outcome.exit_code == 0 or manifests.is_diff_with_changes(plan_.argv, outcome.exit_code):
        status = "executed"
    else:
        status = "failed"
    record = _undo_record(op_id, plan_.argv, before, status, settings, rules, request.timeout) \
        if before is not None else None
    return Result(op_id, status, plan_, decision, outcome, logged, undo=record)


def _plan_undo(request: Request, settings: Settings, *, check_drift: bool) -> tuple[Plan, str]:
    """The `undo` intent: the recorded inverse of an earlier operation (rag_k8s.undo)."""
    try:
        rules = policy.load_policy(settings.org_dir)
    except PolicyError as e:
        raise UndoRefused(str(e)) from None
    plan_, context = undo.plan_undo(request, settings=settings, rules=rules,
                                    check_drift=check_drift)
    slots = {**plan_.slots, "name": context.target.name}
    if context.target.namespace:
        slots["namespace"] = context.target.namespace
    return replace(plan_, slots=slots), context.operation_id


def _undo_risk(plan_: Plan, decision: Decision) -> tuple[Plan, Decision]:
    """CONTRACT §4: an undo is at least medium risk, so it always needs confirmation."""
    risk = max_risk(decision.risk_level, "medium")
    plan_ = replace(plan_, risk_level=risk)
    if not decision.allowed or decision.requires_confirmation:
        return plan_, replace(decision, risk_level=risk)
    return plan_, replace(decision, requires_confirmation=True, risk_level=risk, reasons=[
        f"undo is {risk} risk: it runs only when confirmed (constraints.confirm)"])


def _undo_record(op_id: str, argv: list[str], before: undo.Capture, status: str,
                 settings: Settings, rules: policy.Policy, timeout: int) -> dict[str, Any]:
    try:
        return undo.finish(op_id, argv, before, status=status, settings=settings, rules=rules,
                           timeout=timeout)
    except (OSError, RagK8sError, ValueError) as e:  # the audit line is written whatever happens
        return {"none": f"the undo could not be recorded: {e}"}


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


def _request_for_log(payload: Any, result: Result | None) -> Any:
    if result is not None and result.logged_request is not None:
        return result.logged_request
    try:
        return parse_request(payload).to_dict()
    except Exception:  # noqa: BLE001 - anything at all is logged, made JSON-safe by audit
        return payload if isinstance(payload, dict) else jsonsafe.sanitize(payload)


def execute_request(payload: Any, *, settings: Settings | None = None,
                    expected_argv: list[str] | None = None) -> Result:
    """`k8s_exec`, returning the typed Result (for doors that need more than the dict)."""
    cfg = settings or Settings.resolve()
    progress: dict[str, Any] = {}
    with execute.operation():  # a shutdown waits until this call's audit line is written
        try:
            result = _run_pipeline(payload, run=True, settings=cfg, expected_argv=expected_argv,
                                   progress=progress)
        except BaseException as e:
            # Whatever went wrong, and even if kubectl already ran, the operation leaves its line.
            with execute.shielded(reraise=True):
                audit.write_operation(cfg.audit_log, result=_error_result(progress, e),
                                      request=_request_for_log(payload, None))
            raise
        with execute.shielded(reraise=True):  # Ctrl-C now would lose the line of what ran
            audit.write_operation(cfg.audit_log, result=result.to_dict(),
                                  request=_request_for_log(payload, result),
                                  undo=result.undo, undoes=result.undoes)
    return result


def _error_result(progress: dict[str, Any], error: BaseException) -> dict[str, Any]:
    """The audit record of an operation that raised: status `error`, and what had run."""
    plan_ = progress.get("plan")
    outcome = progress.get("execution")
    ran = "after kubectl ran" if outcome is not None else (
        "while kubectl ran" if plan_ is not None else "before kubectl ran")
    reason = f"rag-k8s stopped with {type(error).__name__} {ran}: {error}"
    return {
        "operation_id": progress.get("operation_id") or str(uuid.uuid4()),
        "status": "error",
        "plan": plan_.to_dict() if plan_ is not None else None,
        "decision": {"allowed": plan_ is not None, "requires_confirmation": False,
                     "reasons": [reason], "suggestion": None},
        "execution": outcome.to_dict() if outcome is not None else None,
    }


def refuse_unreadable(raw: str, error: InvalidRequest, *,
                      settings: Settings | None = None) -> Result:
    """An exec request whose text is not readable JSON: `invalid`, audited with the raw text (cut,
    JSON-safe and redacted by audit), so every call to a running door leaves its line."""
    cfg = settings or Settings.resolve()
    result = _invalid(str(uuid.uuid4()), error)
    audit.write_operation(cfg.audit_log, result=result.to_dict(), request=raw)
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
