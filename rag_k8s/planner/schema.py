"""The plan the model emits, and the per-request JSON Schema that constrains it.

The model never writes a command: it picks one of the retrieved cards and fills that card's slots.
The schema makes anything else impossible: one branch per candidate card that fits the request
(its intent and kind, and a slot for every param given), `card_id` a `const`, values the request
already gives fixed as `const`, and every other slot an `enum` of the values its free text
actually contains (words that match the slot's pattern, numbers, what the extractor read). So a
model can choose, never invent: a name absent from the request cannot reach argv. A last branch,
`card_id: "none"`, lets the model say that no card fits. Every string is bounded (a weak model
never closes an unbounded string).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..cards import Card, Corpus, Placeholder
from ..errors import InvalidRequest, PlannerError
from ..request import Request
from ..retrieve import Hit
from .extract import NUMBER_WORDS, extract, is_candidate_name

RATIONALE_MAX = 60  # a clause, not an essay: on a CPU each sampled character costs time
NONE_CARD = "none"  # the model's way to say that no candidate card fits
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


# Words of the free text, with the characters names, images, selectors and durations use.
_WORD_RE = re.compile(r"[A-Za-z0-9][\w./:@=,+-]*")
_NUMBER_RE = re.compile(r"(?<![\w.-])(\d+|" + "|".join(NUMBER_WORDS) + r")(?![\w.-]\w)", re.I)


def grounded_values(slot: str, spec: Placeholder, text: str,
                    extracted: dict[str, Any]) -> list[Any]:
    """The values `slot` may take from free `text`: what the text contains that fits the slot.

    Numbers for an int slot, the enum values the text names, words matching the slot's pattern
    (not English or kubectl vocabulary), and whatever the extractor read for this slot, first.
    A value the extractor read as another slot ("prod" in "in prod") is not offered here.
    """
    found: list[Any] = []
    elsewhere = {v for k, v in extracted.items() if k != slot and isinstance(v, (str, int))}

    def add(value: Any) -> None:
        if value in found or (value in elsewhere and extracted.get(slot) != value):
            return
        try:
            spec.check(slot, value)
        except InvalidRequest:
            return
        found.append(value)

    if slot in extracted:
        add(extracted[slot])
    if spec.type == "int":
        for m in _NUMBER_RE.finditer(text):
            word = m.group(1).lower()
            add(int(word) if word.isdigit() else NUMBER_WORDS[word])
    elif spec.type == "enum":
        for value in spec.values or []:
            if re.search(r"(?<![\w-])" + re.escape(value) + r"(?![\w-])", text, re.I):
                add(value)
    elif spec.type != "bool":  # a flag like --previous comes from the extractor only
        for m in _WORD_RE.finditer(text):
            word = m.group(0).rstrip(".,:")
            parts = [word, *word.split("/")[1:]] if "/" in word else [word]
            for part in parts:
                if spec.type in ("name", "namespace") and not is_candidate_name(part.lower()):
                    continue
                add(part)
    return found[:16]  # an enum the grammar compiles fast; the text's first mentions win


def card_fits(card: Card, request: Request, given: dict[str, Any]) -> bool:
    """Whether the request can be planned through `card` at all: its intent and kind agree, and
    every value the request gives has a slot on the card and fits it."""
    if request.intent is not None and card.intent != request.intent:
        return False
    if request.resource is not None and card.resource not in (request.resource, "*"):
        return False
    for slot, value in given.items():
        spec = card.placeholders.get(slot)
        if spec is None:
            if slot == "resource" and card.resource != "*":
                continue  # the card's own kind, checked above
            return False
        try:
            spec.check(slot, value)
        except InvalidRequest:
            return False
    return True


def card_branch(card: Card, given: dict[str, Any], text: str = "",
                extracted: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The schema branch for one card, or None when the request cannot fill its required slots.

    Slots the request gives are `const`; the others are an enum of `grounded_values` (left out
    when there are none, which rules the card out for a required slot).
    """
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
        values = grounded_values(slot, spec, text, extracted or {})
        if not values:
            if spec.required:
                return None  # nothing in the request can fill it: never let the model invent it
            continue
        properties[slot] = {"enum": values}
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


def none_branch() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "card_id": {"const": NONE_CARD},
            "slots": {"type": "object", "properties": {}, "additionalProperties": False},
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
    """The JSON Schema for this request: one `anyOf` branch per fitting candidate card, and the
    `none` branch.

    Raises InvalidRequest when no candidate can take the request (a value it gives fits no card,
    or a required slot has nothing in the request to fill it), naming what is missing.
    """
    given = request_values(request)
    text = request.query or ""
    extracted = {k: v for k, v in extract(text).slots().items() if k not in given} if text else {}
    fitting = [c for c in candidate_cards(hits, corpus) if card_fits(c, request, given)]
    branches = [b for card in fitting if (b := card_branch(card, given, text, extracted))
                is not None]
    if not branches:
        offered = ", ".join(h.card_id for h in hits) or "none"
        if fitting:
            card = fitting[0]
            missing = [s for s, p in card.placeholders.items() if p.required and s not in given]
            what = missing[0] if missing else "name"
            raise InvalidRequest(what, f"which {card.resource if what == 'name' else what}? "
                                       f"the request does not say (cards offered: {offered})")
        raise InvalidRequest("request", f"no retrieved card can take this request's values "
                                        f"(cards offered: {offered}); check the intent, "
                                        "resource and params, or rephrase the query")
    return {"anyOf": [*branches, none_branch()]}
