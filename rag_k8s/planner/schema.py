"""The plan the model emits, and the per-request JSON Schema that constrains it.

The model never writes a command: it picks one of the candidate cards and fills that card's
slots. The schema makes anything else impossible: one branch per candidate that fits the request
(its intent and kind, and a slot for every param given), `card_id` a `const`, the request's own
values `const`, and every other slot an `enum` of values grounded in the free text (what the
extractor read, else the text's words and numbers that fit the slot; see `grounded_values`). So
a model can choose, never invent: a name absent from the request cannot reach argv. For free
text whose intent is unclear a last branch, `card_id: "no-card-fits"`, lets the model decline.
Every string is bounded (a weak model never closes an unbounded string).
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..cards import Card, Corpus, Placeholder, request_field
from ..errors import InvalidRequest, NoMatch, PlannerError
from ..request import Request
from ..retrieve import MIN_FREE_TEXT_SCORE, Hit
from .extract import NUMBER, NUMBER_WORDS, Extraction, extract, is_candidate_name

RATIONALE_MAX = 60  # a clause, not an essay: on a CPU each sampled character costs time
NONE_CARD = "no-card-fits"  # the model's way to say that no candidate card fits
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
    values["timeout"] = request.timeout  # constraints.timeout: the bound of kubectl wait/drain
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
_NUMBER_RE = re.compile(NUMBER, re.I)


def grounded_values(slot: str, spec: Placeholder, text: str,
                    extracted: dict[str, Any]) -> list[Any]:
    """The values `slot` may take from free `text`: what the text contains that fits the slot.

    What the extractor read for this slot, when it read something, is the one value offered:
    its cues ("in prod", "-c envoy", "last 50 lines") are explicit, and measured on SmolLM2 a
    small model picks a wrong word more often than the extractor does. Otherwise a required slot
    may take the text's words that fit its pattern (not English or kubectl vocabulary, nor a
    value the extractor read as another slot) or its numbers; an optional slot takes nothing
    (a model cannot tell when a flag is wanted: it filled `-l` with "list" and `-c` with "the").
    """
    found: list[Any] = []

    def add(value: Any) -> None:
        if value in found:
            return
        try:
            spec.check(slot, value)
        except InvalidRequest:
            return
        found.append(value)

    if slot in extracted:
        add(extracted[slot])
        if found:
            return found
    if not spec.required or not text:
        return found
    elsewhere = {v for k, v in extracted.items() if k != slot and isinstance(v, (str, int))}
    if spec.type == "int":
        for m in _NUMBER_RE.finditer(text):
            word = m.group(1).lower()
            value = int(word) if word.isdigit() else NUMBER_WORDS[word]
            if value not in elsewhere:
                add(value)
    elif spec.type == "enum":
        for value in spec.values or []:
            if re.search(r"(?<![\w-])" + re.escape(value) + r"(?![\w-])", text, re.I):
                add(value)
    elif spec.type != "bool":
        for m in _WORD_RE.finditer(text):
            before, after = text[m.start() - 1:m.start()], text[m.end():m.end() + 1]
            if (before and not before.isspace()) or (after and not after.isspace()
                                                     and after not in ".,:?!"):
                continue  # glued to other characters ("-rf", "api;rm", "$(x)"): no one's name
            word = m.group(0).rstrip(".,:")
            for part in ([word, *word.split("/")[1:]] if "/" in word else [word]):
                if part in elsewhere or (spec.type in ("name", "namespace", "label")
                                         and not is_candidate_name(part.lower())):
                    continue
                add(part)
    return found[:16]  # an enum the grammar compiles fast; the text's first mentions win


def _gives_its_params(card: Card, extracted: dict[str, Any]) -> bool:
    """The text gave a value for one of the card's own params (beyond name and namespace)."""
    return any(slot in extracted for slot in card.placeholders
               if slot not in ("name", "namespace", "resource"))


def card_matches(card: Card, request: Request) -> bool:
    """The card is of the request's intent and kind (when the request gives them)."""
    if request.intent is not None and card.intent != request.intent:
        return False
    return request.resource is None or card.resource in (request.resource, "*")


def card_rejects(card: Card, given: dict[str, Any]) -> str | None:
    """The first request value the card has no slot for or cannot take, or None."""
    for slot, value in given.items():
        spec = card.placeholders.get(slot)
        if spec is None:
            if slot == "resource" and card.resource != "*":
                continue  # the card's own kind, checked by card_matches
            if slot in ("namespace", "timeout"):
                continue  # a cluster-scoped card: the namespace does not apply (as in template);
                # the request's timeout fills only the cards that take one
            return slot
        try:
            spec.check(slot, value)
        except InvalidRequest:
            return slot
    return None


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


def plan_schema(request: Request, hits: list[Hit], corpus: Corpus,
                extraction: Extraction | None = None) -> dict[str, Any]:
    """The JSON Schema for this request: one `anyOf` branch per fitting candidate card, and for
    free text without an intent the `none` branch.

    For free text the intent and kind the extractor reads narrow the candidates the way a
    structured request's own fields do, when some candidate is left (the model then chooses
    among what the words allow). Raises InvalidRequest when no candidate can take the request
    (a value it gives fits no card, or a required slot has nothing in the request to fill it),
    naming what is missing.
    """
    given = request_values(request)
    text = request.query or ""
    ex = extraction if extraction is not None else (extract(text) if text else None)
    extracted = {k: v for k, v in ex.slots().items() if k not in given} if ex else {}
    offered = ", ".join(h.card_id for h in hits) or "none"
    candidates = candidate_cards(hits, corpus)
    if request.intent is None and (ex is None or ex.intent is None):
        # Nothing says what to do: only cards retrieval finds close enough, as for the template,
        # and a changing card only when the text gives a value only it takes ("to 1 replica",
        # "to image x:2"): "deployment api in dev" must never become a delete.
        close = {h.card_id for h in hits if h.score >= MIN_FREE_TEXT_SCORE}
        candidates = [c for c in candidates if c.id in close
                      and (not c.mutating or _gives_its_params(c, extracted))]
    if ex is not None and ex.intent is not None and request.intent is None:
        # The card the words name ("describe service frontend") joins retrieval's candidates.
        named = corpus.matching(ex.intent, ex.resource if ex.resource_explicit else None)
        if len(named) <= 2:
            candidates += [c for c in named if c not in candidates]
    matching = [c for c in candidates if card_matches(c, request)]
    if not matching:
        raise NoMatch(f"no retrieved card fits this request (cards offered: {offered}); "
                      "name the intent and resource, or rephrase the query")
    fitting = [c for c in matching if card_rejects(c, given) is None]
    if not fitting:
        slot = card_rejects(matching[0], given) or "params"
        raise InvalidRequest(request_field(slot), f"no {matching[0].intent} card can take it "
                                                  f"(cards offered: {offered})")
    # Free text: the intent and kind the extractor reads narrow the choice as a structured
    # request's own fields would, when a candidate is left. Then "no card fits" is off the table.
    sure = request.intent is not None
    if ex is not None and request.intent is None:
        by_intent = [c for c in fitting if c.intent == ex.intent]
        sure = bool(by_intent)
        fitting = by_intent or fitting
    if ex is not None and request.resource is None and ex.resource_explicit:
        fitting = [c for c in fitting if c.resource in (ex.resource, "*")] or fitting
    branches = [b for card in fitting if (b := card_branch(card, given, text, extracted))
                is not None]
    if not branches:
        card = fitting[0]
        slot = next((s for s, p in card.placeholders.items() if p.required and s not in given
                     and not grounded_values(s, p, text, extracted)), "name")
        question = {"name": f"which {card.resource}? give its name",
                    "namespace": "which namespace?"}.get(slot, f"give {request_field(slot)}")
        raise InvalidRequest(request_field(slot), f"{question} (the request does not say; "
                                                  f"cards offered: {offered})")
    if sure:
        return branches[0] if len(branches) == 1 else {"anyOf": branches}
    return {"anyOf": [*branches, none_branch()]}


def schema_cards(schema: dict[str, Any], corpus: Corpus) -> list[Card]:
    """The cards a plan schema lets the model choose, in its order (`no-card-fits` left out)."""
    ids = [b["properties"]["card_id"]["const"] for b in schema.get("anyOf", [schema])]
    return [corpus.get(i) for i in ids if i != NONE_CARD]
