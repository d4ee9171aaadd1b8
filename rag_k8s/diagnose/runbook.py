"""The runbook runner: a card's read-only steps, in order, each through the same policy and
executor as any command, then the analyzers, then the suggested actions (planned and judged,
never run).

A step that fails (no previous logs, no metrics API) is evidence, not an error; only the first
step, the plan's own command, decides the status. A step whose slots come from an earlier step
(`after:`) takes them from that step's JSON object only: log and event text never fills a slot.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import execute, policy
from ..cards import Card, Step
from ..errors import InvalidRequest, RagK8sError
from ..execute import ExecResult
from .analyzers import Gathered, StepOutput, analyze, owner_of
from .findings import Finding

if TYPE_CHECKING:
    from ..config import Settings
    from ..planner import Plan
    from ..policy import Decision, Policy
    from ..request import Request


@dataclass(frozen=True)
class RunbookOutcome:
    execution: ExecResult  # the first step's run: status, exit code and stdout come from it
    steps: list[dict[str, Any]]  # every step as it ran or why it did not
    findings: list[Finding]


def derived_slots(step: Step, source: StepOutput | None) -> tuple[dict[str, str], str | None]:
    """The slots `step` takes from its `after` step's JSON object, or why there are none."""
    if source is None or source.data is None:
        return {}, f"step {step.after} gave no object"
    obj = source.data
    out: dict[str, str] = {}
    if {"owner_kind", "owner_name"} & step.slots:
        owner = owner_of(obj) if isinstance(obj, dict) else None
        if owner is None:
            return {}, "the object has no controlling owner"
        out["owner_kind"], out["owner_name"] = owner
    if "pod_selector" in step.slots:
        spec = obj.get("spec") if isinstance(obj, dict) else None
        labels = (spec or {}).get("selector")
        if isinstance(labels, dict) and isinstance(labels.get("matchLabels"), dict):
            if labels.get("matchExpressions"):
                return {}, "the selector has matchExpressions, which -l cannot carry exactly"
            labels = labels["matchLabels"]
        if not isinstance(labels, dict) or not labels:
            return {}, "the object has no label selector"
        out["pod_selector"] = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return out, None


def plan_steps(card: Card, slots: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps as a plan shows them; a derived slot shows as <slot> until the run fills it."""
    out = []
    for step in card.steps or ():
        marks = {s: f"<{s}>" for s in step.slots if s not in slots}
        words = []
        for tok, group in step.tokens:
            filled = tok
            for slot in step.slots:
                value = slots.get(slot, marks.get(slot))
                if value is None:
                    continue
                filled = filled.replace("{{" + slot + "}}", str(value))
            if group is not None and "{{" in filled:
                continue
            words.append(filled)
        out.append({"id": step.id, "command": " ".join(words), "description": step.description})
    return out


def _output_hash(res: ExecResult) -> str:
    return hashlib.sha256((res.stdout + res.stderr).encode()).hexdigest()


# Steps that do not depend on each other run at the same time (the plan's own command
# included); a step with `after` starts as soon as that step is done. A pod runbook is 7 kubectl
# starts that mostly wait on the API server.
MAX_PARALLEL_STEPS = 6


def _blank(step: Step) -> dict[str, Any]:
    return {"id": step.id, "argv": None, "command": None, "exit_code": None, "stdout": "",
            "stderr": "", "duration": 0.0, "truncated": False, "timed_out": False,
            "skipped": None, "reasons": []}


def _run_step(step: Step, argv: list[str] | None, card: Card, plan_: Plan, request: Request,
              gathered: Gathered, settings: Settings,
              rules: Policy) -> tuple[dict[str, Any], StepOutput]:
    """One step: derive its slots, render, judge, run; a refusal or failure is its record."""
    record = _blank(step)
    if argv is None:
        derived, why = ({}, None)
        if step.after is not None:
            derived, why = derived_slots(step, gathered.steps.get(step.after))
        if why is None:
            try:
                argv = step.render(card, plan_.slots, derived)
            except InvalidRequest as e:
                why = str(e)
        if why is not None or argv is None:
            record["skipped"] = why
            return record, StepOutput(step.id, "", None, skipped=why)
        decision = policy.validate(argv, card=card, policy=rules)
        if not decision.allowed or decision.requires_confirmation:
            record.update(argv=argv, command=shlex.join(argv),
                          skipped="the policy refused this step", reasons=list(decision.reasons))
            return record, StepOutput(step.id, shlex.join(argv), None,
                                      skipped="; ".join(decision.reasons))
    res = execute.run(argv, timeout=request.timeout, settings=settings, dry_run=request.dry_run)
    data = None
    if step.output == "json" and res.exit_code == 0 and not res.truncated:
        try:
            data = json.loads(res.stdout)
        except ValueError:
            data = None
    record.update(argv=argv, command=shlex.join(argv), exit_code=res.exit_code,
                  stdout=res.stdout, stderr=res.stderr, duration=res.duration,
                  truncated=res.truncated, timed_out=res.timed_out,
                  output_sha256=_output_hash(res))
    return record, StepOutput(step.id, shlex.join(argv), res.exit_code, res.stdout, res.stderr,
                              data, truncated=res.truncated)


def run_runbook(card: Card, plan_: Plan, request: Request, *, settings: Settings,
                rules: Policy) -> RunbookOutcome:
    """Run every step of `card` (the first is `plan_.argv`, already judged), then analyze.

    Independent steps run at once on MAX_PARALLEL_STEPS threads, a dependent step when its
    `after` step is done; the records keep the card's order. Every step is a read, so a failed
    first step (the object does not exist) costs a few failed reads, not a change.
    """
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    assert card.steps is not None
    started = time.monotonic()
    gathered = Gathered(card.resource, plan_.slots.get("namespace"), str(plan_.slots.get("name")))
    records: dict[str, dict[str, Any]] = {}
    head = card.steps[0]
    with ThreadPoolExecutor(max_workers=MAX_PARALLEL_STEPS) as pool:
        running: dict[Future[tuple[dict[str, Any], StepOutput]], Step] = {}

        def start(step: Step, argv: list[str] | None = None) -> None:
            running[pool.submit(_run_step, step, argv, card, plan_, request, gathered,
                                settings, rules)] = step

        start(head, list(plan_.argv))
        for step in card.steps[1:]:
            if step.after is None:
                start(step)
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                step = running.pop(fut)
                records[step.id], gathered.steps[step.id] = fut.result()
                for later in card.steps[1:]:
                    if later.after == step.id:
                        start(later)
    first = gathered.steps[head.id]
    ordered = [records[s.id] for s in card.steps]
    findings = analyze(gathered) if first.exit_code == 0 else []
    json_steps = {s.id for s in card.steps if s.output == "json"}
    for rec in ordered:
        if rec["truncated"] and rec["id"] in json_steps:
            findings.append(Finding("info", "OutputTruncated",
                                    f"step {rec['id']} printed more than max_output_bytes, so "
                                    "it was not analysed", [f"{rec['id']}: truncated"],
                                    f"{card.resource}/{gathered.name}", priority=99))
    head_rec = records[head.id]
    execution = ExecResult(
        exit_code=int(head_rec["exit_code"]), stdout=head_rec["stdout"],
        stderr=head_rec["stderr"], duration=round(time.monotonic() - started, 3),
        truncated=any(r["truncated"] for r in ordered), timed_out=bool(head_rec["timed_out"]),
        dry_run=request.dry_run)
    return RunbookOutcome(execution, ordered, findings)


def plan_actions(findings: list[Finding], namespace: str | None, *,
                 settings: Settings) -> list[Finding]:
    """Each finding's suggested card, planned and judged by the policy (never run): the action
    names its command, status and decision. Slots come from the finding's structured fields."""
    from dataclasses import replace

    from ..tool import plan_request

    cfg = settings.with_(planner="template")  # the suggestion is a structured request
    out = []
    cache: dict[tuple[str, str, str, str], dict[str, Any] | None] = {}
    for f in findings:
        s = f.suggest
        if s is None:
            out.append(f)
            continue
        key = (s.intent, s.resource, s.name, repr(s.params))
        if key not in cache:
            payload: dict[str, Any] = {"intent": s.intent, "resource": s.resource,
                                       "name": s.name}
            if s.params:
                payload["params"] = dict(s.params)
            if namespace and s.resource != "node":
                payload["namespace"] = namespace
            try:
                result = plan_request(payload, settings=cfg).to_dict()
            except RagK8sError:
                result = None
            plan = (result or {}).get("plan")
            cache[key] = None if not plan else {
                "card_id": plan["card_id"], "command": plan["command"], "argv": plan["argv"],
                "risk_level": plan["risk_level"], "status": result["status"],  # type: ignore[index]
                "decision": result["decision"], "why": s.why}  # type: ignore[index]
        out.append(replace(f, action=cache[key]))
    return out
