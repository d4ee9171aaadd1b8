"""Findings: what an analyzer concluded, with the kubectl output that shows it.

Log lines and event messages are untrusted text (anyone who can write to a container's stdout
writes them): they are quoted as evidence, cleaned of control characters and cut short, and
never read as instructions, used to pick a command or to fill a slot.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
SEVERITY_ORDER: dict[str, int] = {"error": 0, "warning": 1, "info": 2}
MAX_QUOTE = 300  # characters of one quoted line of untrusted text
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Suggestion:
    """A card an analyzer proposes; the runbook plans it through the policy, never runs it."""

    intent: str
    resource: str
    name: str
    why: str
    params: tuple[tuple[str, Any], ...] = ()  # request params, from structured fields only


@dataclass(frozen=True)
class Finding:
    severity: Severity
    reason: str
    summary: str
    evidence: list[str]
    object: str  # kind/namespace/name (kind/name when cluster-scoped)
    suggest: Suggestion | None = None
    priority: int = 50  # within a severity, lower first: causes before their symptoms
    action: dict[str, Any] | None = field(default=None, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """CONTRACT §2's finding: severity, reason, summary, evidence, plus the object and the
        suggested action with the policy's decision on it."""
        return {"severity": self.severity, "reason": self.reason, "summary": self.summary,
                "evidence": list(self.evidence), "object": self.object, "action": self.action}


def worst_first(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (SEVERITY_ORDER[f.severity], f.priority))


def untrusted(text: Any) -> str:
    """A line of log or event text made safe to quote: no control or escape sequences, one
    line, at most MAX_QUOTE characters."""
    line = _CONTROL.sub("", str(text)).replace("\n", " ").strip()
    return line if len(line) <= MAX_QUOTE else line[:MAX_QUOTE - 3] + "..."


def field_line(step: str, path: str, value: Any) -> str:
    """Evidence from a JSON step: the field's path in the kubectl output and its value."""
    shown = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return f"{step}: {path} = {untrusted(shown)}"


def event_line(step: str, event: dict[str, Any]) -> str:
    count = event.get("count") or 1
    return untrusted(f"{step}: {event.get('type', '')} {event.get('reason', '')} (x{count}): "
                     f"{event.get('message', '')}")


def log_line(step: str, line: str) -> str:
    return f"{step}: {untrusted(line)}"
