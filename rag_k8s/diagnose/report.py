"""A diagnosis as a person reads it: findings first, then their evidence, then the suggested
commands with the policy's decision. Plain text: quoted log lines are never markup."""

from __future__ import annotations

from typing import Any


def _decision_words(action: dict[str, Any]) -> str:
    decision = action.get("decision") or {}
    if not decision.get("allowed"):
        return "refused: " + "; ".join(decision.get("reasons") or ["by the policy"])
    if decision.get("requires_confirmation"):
        return f"allowed, needs confirmation ({action.get('risk_level')} risk)"
    return f"allowed ({action.get('risk_level')} risk)"


def render_diagnosis(result: dict[str, Any]) -> str:
    """The text report of a runbook result (CONTRACT §2 `findings`, `execution.steps`)."""
    findings = result.get("findings") or []
    steps = (result.get("execution") or {}).get("steps") or []
    failed = [s["id"] for s in steps if s.get("exit_code") not in (0, None)]
    skipped = [s["id"] for s in steps if s.get("skipped")]
    what = (result.get("plan") or {}).get("command", "")
    ran = len(steps) - len(skipped)
    facts = f"{ran} of {len(steps)} steps ran" + (f"; failed: {', '.join(failed)}" if failed
                                                  else "")
    if skipped:
        facts += f"; skipped: {', '.join(skipped)}"
    lines = [f"diagnosis ({what}): " + (f"{len(findings)} finding"
                                        f"{'s' if len(findings) != 1 else ''}" if findings
                                        else "no problem found") + f" ({facts})"]
    if not findings:
        return "\n".join(lines) + "\n"
    lines.append("")
    for i, f in enumerate(findings, 1):
        lines.append(f"{i}. {f['severity'].upper()} {f['reason']}  {f['object']}")
        lines.append(f"   {f['summary']}")
    lines += ["", "evidence:"]
    for i, f in enumerate(findings, 1):
        lines += [f"  [{i}] {e}" for e in f["evidence"]]
    actions = [(i, f["action"]) for i, f in enumerate(findings, 1) if f.get("action")]
    if actions:
        lines += ["", "suggested commands (not run; each needs its own request):"]
        shown: set[str] = set()
        for i, action in actions:
            if action["command"] in shown:
                continue
            shown.add(action["command"])
            lines.append(f"  [{i}] {action['command']}")
            lines.append(f"      {_decision_words(action)}; {action['why']}")
    return "\n".join(lines) + "\n"
