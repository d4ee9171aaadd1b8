"""Retrieval: the 2-4 command cards nearest a request, as short snippets for the planner."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .config import Settings


@dataclass(frozen=True)
class Hit:
    card_id: str
    score: float
    snippet: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def retrieve(
    query: str,
    intent: str | None = None,
    resource: str | None = None,
    k: int = 4,
    *,
    settings: Settings | None = None,
) -> list[Hit]:
    """The best 2-4 cards for `query`, filtered by intent and resource when given.

    Scores are inner products of normalised embeddings (cosine); ties break by card id.
    The snippets together stay within 1,200 tokens.
    """
    raise NotImplementedError("owned by the retrieval work (issue 2)")
