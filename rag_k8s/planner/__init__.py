"""Planning: choose a card and fill its slots, by template (no model) or by the MLX model."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any, Literal

PlannerName = Literal["template", "mlx"]


@dataclass(frozen=True)
class Plan:
    card_id: str
    argv: list[str]
    risk_level: str
    planner: PlannerName
    sources: list[dict[str, Any]] = field(default_factory=list)  # [{"card_id", "score"}]
    rationale: str = ""
    slots: dict[str, Any] = field(default_factory=dict)

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def to_dict(self) -> dict[str, Any]:
        """CONTRACT §2's `plan` object."""
        return {
            "card_id": self.card_id,
            "command": self.command,
            "argv": list(self.argv),
            "risk_level": self.risk_level,
            "planner": self.planner,
            "sources": [dict(s) for s in self.sources],
            "rationale": self.rationale,
        }
