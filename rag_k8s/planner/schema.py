"""The plan the model emits, and the per-request JSON Schema that constrains it.

The model never writes a command: it picks one of the retrieved cards and fills that card's slots.
The schema makes anything else impossible: one branch per candidate card, `card_id` a `const`,
each slot carrying its card's pattern and bounds, values the request already gives fixed as
`const`, and every string bounded (a weak model never closes an unbounded string).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..cards import Card, Corpus, Placeholder
from ..errors import InvalidRequest, PlannerError
from ..request import Request
from ..retrieve import Hit

RATIONALE_MAX = 120
# Printable ASCII without `"` and `\`: no escapes for the model to get lost in.
RATIONALE_PATTERN = r"^[ !#-\[\]-~]*$"
# An int slot with no bounds of its own still needs some (its type's pattern allows 7 digits).
INT_MAX_DEFAULT = 9_999_999


class PlanChoice(BaseModel):
    """What the model returns: a card, its slot values and a one-line reason."""

    model_config = ConfigDict(extra="forbid")

    card_id: str = Field(max_length=63)
    slots: dict[str, Any] = Field(default_factory=dict)
    rationale: str = Field(default="", max_length=RATIONALE_MAX)


def request_values(request: Request) -> dict[str, Any]:
    """The slot values the request itself gives (slot names are the request's field names)."""
    values: dict[str, Any] = {
        k: v for k, v in (("name", request.name), ("namespace", request.namespace),
                          ("resource", request.resource)) if v is not None
    }
    values.update(request.params)
    return values


def ecma_pattern(pattern: str) -> str:
    """A card pattern (Python `re`) as an ECMA-262 pattern llguidance accepts, anchored.

    Raises PlannerError for constructs with no ECMA equivalent here (lookbehind).
    """
    if re.search(r"\(\?<[=!]", pattern):
        raise PlannerError(f"pattern {pattern!r} uses lookbehind, which constrained decoding "
                           "cannot enforce; rewrite the card's pattern without it")
    body = pattern.removeprefix("^")
    body = re.sub(r"\\[Zz]$", "", body).removesuffix("$")
    body = body.replace("(?P<", "(?<")  # named groups: Python spelling -> ECMA spelling
    body = re.sub(r"\(\?P=\w+\)", "", body)  # back-references cannot be enforced; render checks
    return f"^{body}$"


def slot_schema(spec: Placeholder) -> dict[str, Any]:
    """The JSON Schema of one slot, from its card placeholder."""
    if spec.type == "int":
        return {
            "type": "integer",
            "minimum": spec.minimum if spec.minimum is not None else 0,
            "maximum": spec.maximum if spec.maximum is not None else INT_MAX_DEFAULT,
        }
    if spec.type == "bool":
        return {"type": "boolean"}
    if spec.type == "enum":
        return {"type": "string", "enum": list(spec.values or [])}
    assert spec.pattern is not None and spec.max_length is not None
    return {"type": "string", "minLength": 1, "maxLength": spec.max_length,
            "pattern": ecma_pattern(spec.pattern)}


def card_branch(card: Card, given: dict[str, Any]) -> dict[str, Any] | None:
    """The schema branch for one card, or None when a value the request fixes cannot fit it."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for slot, spec in card.placeholders.items():
        if slot in given:
            try:
                spec.check(slot, given[slot])
            except InvalidRequest:
                return None  # the request's own value rules this card out
            properties[slot] = {"const": given[slot]}
            required.append(slot)
            continue
        properties[slot] = slot_schema(spec)
        if spec.required:
            required.append(slot)
    return {
        "type": "object",
        "properties": {
            "card_id": {"const": card.id},
            "slots": {"type": "object", "properties": properties, "required": required,
                      "additionalProperties": False},
            "rationale": {"type": "string", "maxLength": RATIONALE_MAX,
                          "pattern": RATIONALE_PATTERN},
        },
        "required": ["card_id", "slots", "rationale"],
        "additionalProperties": False,
    }


def candidate_cards(hits: list[Hit], corpus: Corpus) -> list[Card]:
    """The retrieved cards that exist in the corpus, best first, without duplicates."""
    seen: set[str] = set()
    cards: list[Card] = []
    for hit in hits:
        if hit.card_id in corpus.by_id and hit.card_id not in seen:
            seen.add(hit.card_id)
            cards.append(corpus.get(hit.card_id))
    return cards


def plan_schema(request: Request, hits: list[Hit], corpus: Corpus) -> dict[str, Any]:
    """The JSON Schema for this request: one `anyOf` branch per candidate card."""
    given = request_values(request)
    branches = [b for card in candidate_cards(hits, corpus)
                if (b := card_branch(card, given)) is not None]
    if not branches:
        offered = ", ".join(h.card_id for h in hits) or "none"
        raise PlannerError(
            f"no retrieved card can take this request's values (cards offered: {offered}); "
            "check the name, namespace and params, or rephrase the query"
        )
    if len(branches) == 1:
        return branches[0]
    return {"anyOf": branches}
