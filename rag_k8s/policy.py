"""Policy: the org allow-lists (org/*.yaml), the risk table and the guardrails, on the final argv."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Decision:
    allowed: bool
    requires_confirmation: bool
    reasons: list[str] = field(default_factory=list)
    suggestion: str | None = None
    risk_level: str = "none"

    def to_dict(self) -> dict[str, Any]:
        """CONTRACT §2's `decision` object."""
        return {
            "allowed": self.allowed,
            "requires_confirmation": self.requires_confirmation,
            "reasons": list(self.reasons),
            "suggestion": self.suggestion,
        }
