"""The template planner: no model. The request (or the text's extraction) picks the card; slots come
straight from the request's own fields, and the card renders the argv.

A structured request names its card by intent and resource; retrieval only ranks several cards that
fit (`diagnose-pod` vs `diagnose-pod-crashloop`). Free text goes through `extract.extract`, and
retrieval, filtered by what the extraction found, picks the card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable

from ..cards import Card, Corpus, request_field
from ..config import Settings
from ..errors import InvalidRequest, NoMatch, RagK8sError
from ..request import Request, parse_request
from ..retrieve import MIN_FREE_TEXT_SCORE
from . import Plan
from .extract import Extraction, extract

log = logging.getLogger(__name__)

# The kind an intent most often means when the text names none ("bounce api" is a deployment).
# A guess: a request resolved through one of these is not "determined" for `auto`.
DEFAULT_KIND: dict[str, str] = {
    "restart": "deployment", "rollback": "deployment", "set-image": "deployment",
    "rollout-status": "deployment", "rollout-history": "deployment", "scale": "deployment",
    "autoscale": "deployment", "logs": "deployment", "diagnose": "deployment", "get": "pod",
    "describe": "pod", "top": "pod", "set-env": "deployment", "set-resources": "deployment",
    "pause": "deployment", "resume": "deployment", "expose": "deployment",
}
# Kinds these intents act on, whatever the text says (so nothing is guessed).
ONLY_KIND: dict[str, str] = {"drain": "node", "cordon": "node", "uncordon": "node",
                             "taint": "node", "run": "pod"}

RetrieveFn = Callable[..., list[Any]]
# How much closer than the plain `{intent}-{kind}` card a variant card must be to be chosen.
VARIANT_MARGIN = 0.1


@dataclass(frozen=True)
class Resolution:
    """The card a request maps to, with the slot values it gets and how sure the choice is."""

    card: Card
    slots: dict[str, Any]
    sources: list[dict[str, Any]]
    determined: bool  # intent and kind were given or read, not guessed
    rationale: str
    structured_fields: frozenset[str] = field(default_factory=frozenset)


def _default_retrieve(settings: Settings) -> RetrieveFn:
    def run(query: str, intent: str | None, resource: str | None, k: int = 4) -> list[Any]:
        from ..retrieve import retrieve

        return retrieve(query, intent, resource, k, settings=settings)

    return run


def resolve(
    request: Request, *, corpus: Corpus, settings: Settings, retrieve_fn: RetrieveFn | None = None,
    extraction: Extraction | None = None,
) -> Resolution:
    """Choose the card and gather its slots; raises NoMatch or InvalidRequest (a slot is missing).

    `extraction` is the text's one reading (make_plan extracts once); read here when not given.
    """
    retrieve_fn = retrieve_fn or _default_retrieve(settings)
    ex = extraction if extraction is not None else (
        extract(request.query) if request.query else Extraction())
    structured = request.intent is not None

    if structured:
        intent: str | None = request.intent
        resource = request.resource
        explicit = resource is not None
        if resource is None and ex.resource and ex.resource_explicit and (
            ex.intent in (None, intent)
        ):
            resource, explicit = ex.resource, True
    else:
        intent = ex.intent
        resource = request.resource or ex.resource
        explicit = request.resource is not None or ex.resource_explicit

    # Request fields win; the text fills what the request leaves out.
    slots: dict[str, Any] = ex.slots()
    slots.pop("resource", None)
    given: dict[str, Any] = {k: v for k, v in (("name", request.name),
                                               ("namespace", request.namespace)) if v is not None}
    given.update(request.params)
    slots.update(given)
    # Commands that wait (kubectl wait, drain --timeout) never outlast the request's own timeout.
    slots["timeout"] = request.timeout

    if intent in ONLY_KIND:
        resource, explicit = ONLY_KIND[intent], True
    if intent in ("get", "describe") and resource == "event":
        intent = "events"  # `kubectl get events` is what the events cards do
    if intent == "delete" and resource is None:
        raise InvalidRequest("resource", "which kind of resource should be deleted? "
                                         "name it, e.g. 'delete pod web-1 in dev'")
    if intent == "explain" and "field" not in slots and resource is not None:
        slots["field"] = resource  # `explain deployment`: the kind is the path
        explicit = True
    if intent == "can-i":
        explicit = True  # one card serves every kind; its `resource` slot says which
        if resource is not None:
            slots["resource"] = resource

    if intent is None:
        card, sources = _pick_by_retrieval(request, ex, resource if explicit else None,
                                           corpus, retrieve_fn)
        return _resolution(card, slots, sources, False, given, structured,
                           f"no intent was recognised; retrieval ranked {card.id} first")

    guessed = resource is None
    kind = resource or DEFAULT_KIND.get(intent)
    candidates = corpus.matching(intent, kind) if kind else corpus.matching(intent)
    if not candidates and guessed:
        candidates = corpus.matching(intent)
    if not candidates and not structured:
        # "the notifications service deployment": try the other kinds the text names.
        for other in ex.kinds:
            if corpus.matching(intent, other):
                kind, candidates = other, corpus.matching(intent, other)
                break
    if not candidates:
        kinds = sorted({c.resource for c in corpus.matching(intent)})
        covered = f"; cards for {intent} cover: {', '.join(kinds)}" if kinds else ""
        raise NoMatch(f"no command card does {intent} on {kind or 'that kind of resource'}{covered}")

    # Prefer cards that take every value the request gives (a `tail` points at the logs cards).
    fitting = [c for c in candidates if set(given) <= set(c.placeholders) | {"namespace", "name"}]
    candidates = fitting or candidates
    if not structured:
        # Free text: the cards that can honour every value the words give (faithful.py refuses a
        # plan that drops one), so "can I delete jobs" is never the card without a verb slot.
        read = set(ex.params) - {"resource"}
        honouring = [c for c in candidates if read <= set(c.placeholders)]
        candidates = honouring or candidates
        # A flag the words ask for that a card carries fixed ("drain node-3 --force" is
        # drain-node-force); without such words, the cards that add no flag of their own win.
        from .faithful import honoured_flags

        wanted = honoured_flags(ex)
        # Only a card that can then plan (its required slots filled): else the plain card's plan
        # is refused by name ("cannot honour "prefix"") rather than a question about a selector.
        carrying = [c for c in candidates if all(f in c.command_template for f in wanted)
                    and set(c.required_slots) <= set(slots)]
        if wanted and carrying:
            candidates = carrying
    # Of those, prefer cards whose required slots all have values (`top pods` is not the
    # --sort-by card): a card that would have to ask is kept only when no other card can answer.
    complete = [c for c in candidates if set(c.required_slots) <= set(slots)]
    candidates = complete or candidates
    determined = explicit or len({c.resource for c in candidates}) == 1 and not guessed

    if len(candidates) == 1:
        card = candidates[0]
        sources = [{"card_id": card.id, "score": 1.0}]
        how = f"the {intent} card for {card.resource}"
        if not structured:
            sources = _sources_for(request.query or "", intent, kind, [card], retrieve_fn) or sources
    elif request.query:
        card, sources = _rank(request.query, intent, kind, candidates, retrieve_fn)
        how = f"retrieval ranked {card.id} first of {len(candidates)} {intent} cards"
        plain = {c.id: c for c in candidates}.get(f"{intent}-{kind}")
        if not structured and plain is not None and card is not plain:
            # A variant card (fixed extra flags: images, labels, a manifest) only when retrieval
            # prefers it clearly or the words give a value only it takes; else the plain card, so
            # "list every pod" never gains columns nobody asked for.
            scores = {s_["card_id"]: s_["score"] for s_ in sources}
            own = set(ex.params) & (set(card.placeholders) - set(plain.placeholders))
            if not own and scores.get(card.id, 0.0) < scores.get(plain.id, 0.0) + VARIANT_MARGIN:
                card = plain
                how = f"the plain {intent} card for {card.resource} (retrieval's first, " \
                      f"{sources[0]['card_id']}, was not clearly asked for)"
    else:
        card = _canonical(intent, kind, candidates)
        sources = [{"card_id": card.id, "score": 1.0}]
        how = f"the plain {intent} card for {card.resource}"
    if guessed:
        how += f" (no kind was named; assumed {card.resource})"
    return _resolution(card, slots, sources, determined, given, structured, how)


def _resolution(card: Card, slots: dict[str, Any], sources: list[dict[str, Any]], determined: bool,
                given: dict[str, Any], structured: bool, how: str) -> Resolution:
    if structured:
        # A value the caller gave that the card cannot use would be silently lost: say so.
        for key in given:
            if key not in card.placeholders and key != "namespace":
                takes = ", ".join(s for s in card.placeholders if s not in ("name", "namespace"))
                raise InvalidRequest(request_field(key),
                                     f"{card.id} does not take {key}"
                                     + (f" (it takes: {takes})" if takes else ""))
    used = {k: v for k, v in slots.items() if k in card.placeholders}
    return Resolution(card, used, sources, determined, how, frozenset(given))


def _canonical(intent: str, kind: str | None, candidates: list[Card]) -> Card:
    by_id = {c.id: c for c in candidates}
    return by_id.get(f"{intent}-{kind}") or sorted(
        candidates, key=lambda c: (c.resource == "*", len(c.id), c.id))[0]


def _sources_for(query: str, intent: str, kind: str | None, cards: list[Card],
                 retrieve_fn: RetrieveFn) -> list[dict[str, Any]]:
    """Retrieval's scores for the cards offered; empty when retrieval is unavailable."""
    try:
        hits = retrieve_fn(query, intent, kind, 4)
    except RagK8sError as e:
        log.warning("retrieval unavailable, planning from intent and kind alone: %s", e)
        return []
    allowed = {c.id for c in cards}
    return [{"card_id": h.card_id, "score": h.score} for h in hits if h.card_id in allowed]


def _rank(query: str, intent: str, kind: str | None, candidates: list[Card],
          retrieve_fn: RetrieveFn) -> tuple[Card, list[dict[str, Any]]]:
    sources = _sources_for(query, intent, kind, candidates, retrieve_fn)
    by_id = {c.id: c for c in candidates}
    if sources:
        return by_id[sources[0]["card_id"]], sources
    card = _canonical(intent, kind, candidates)
    return card, [{"card_id": card.id, "score": 1.0}]


def _pick_by_retrieval(request: Request, ex: Extraction, resource: str | None, corpus: Corpus,
                       retrieve_fn: RetrieveFn) -> tuple[Card, list[dict[str, Any]]]:
    query = request.query or ""
    hits = retrieve_fn(query, None, resource, 4)
    hits = [h for h in hits if h.card_id in corpus.by_id
            and (resource is None or corpus.get(h.card_id).resource in (resource, "*"))]
    if not hits or hits[0].score < MIN_FREE_TEXT_SCORE:
        raise NoMatch("no command card fits this request; say what to do and to what, "
                      "e.g. 'restart the api deployment in prod'")
    # Of the close cards, the first that can honour every value the words give and has all its
    # required slots ("last 50 lines of pod worker-2" is logs-pod, not the selector card).
    have = set(ex.slots()) | {k for k, v in (("name", request.name),
                                             ("namespace", request.namespace)) if v}
    close = [corpus.get(h.card_id) for h in hits if h.score >= MIN_FREE_TEXT_SCORE]
    able = [c for c in close if set(ex.params) <= set(c.placeholders)
            and set(c.required_slots) <= have | set(request.params)]
    card = able[0] if able else corpus.get(hits[0].card_id)
    return card, [{"card_id": h.card_id, "score": h.score} for h in hits]


def _validate_values(res: Resolution) -> None:
    """Values read from text pass the same schema as structured ones (names, images, ranges)."""
    from_text = {k: v for k, v in res.slots.items()
                 if k not in res.structured_fields and k != "timeout"}
    payload: dict[str, Any] = {"query": "validate"}
    params = {k: v for k, v in from_text.items() if k not in ("name", "namespace", "resource")}
    for key in ("name", "namespace"):
        if key in from_text:
            payload[key] = from_text[key]
    if params:
        payload["params"] = params
    parse_request(payload)


def render(res: Resolution) -> list[str]:
    """The argv for a resolution; raises InvalidRequest with the card's question for a gap."""
    _validate_values(res)
    return res.card.render(res.slots)


def plan_with_template(
    request: Request, *, corpus: Corpus, settings: Settings,
    retrieve_fn: RetrieveFn | None = None, resolution: Resolution | None = None,
    extraction: Extraction | None = None,
) -> Plan:
    """Plan without a model: raises NoMatch, or InvalidRequest naming what to add."""
    res = resolution or resolve(request, corpus=corpus, settings=settings, retrieve_fn=retrieve_fn,
                                extraction=extraction)
    argv = render(res)
    return Plan(
        card_id=res.card.id, argv=argv, risk_level=res.card.risk_level, planner="template",
        sources=res.sources, rationale=f"Template planner: {res.rationale}.",
        slots=dict(res.slots),
    )
