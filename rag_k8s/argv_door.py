"""The argv door (CONTRACT §1 `argv`): a caller that knows the exact command sends it as a list.

Nothing here decides whether it may run: the plan made here goes through the same policy,
guardrails, confirmation, dry-run and audit as a planned argv (tool.py). This module only finds
the card whose command pattern the argv matches (for `plan.card_id` and the card's risk floor) and
builds the `Plan`, with `planner="argv"` and the argv exactly as sent.
"""

from __future__ import annotations

import itertools
import re
from typing import TYPE_CHECKING

from .cards import PLACEHOLDER_RE
from .errors import ArgvError
from .kubectl_argv import parse_argv
from .planner import Plan
from .vocab import max_risk, normalize_resource

if TYPE_CHECKING:
    from .cards import Card, Corpus

# Spellings of the namespace flag, reduced to one before matching (`--namespace=x`, `-nx`).
_NS_LONG = re.compile(r"--namespace(=(?P<v>.*))?")
_NS_SHORT = re.compile(r"-n(=?(?P<v>.+))?")
# Beyond this many flag units, order-insensitive matching is not tried (it is factorial).
_MAX_PERMUTED_FLAGS = 6

Unit = tuple[str, ...]  # one positional token, or a flag token with its value token


def _normalise(tokens: list[str]) -> list[str]:
    out: list[str] = []
    for tok in tokens:
        m = _NS_LONG.fullmatch(tok) or _NS_SHORT.fullmatch(tok)
        if m:
            out.append("-n")
            if m.group("v") is not None:
                out.append(m.group("v"))
        elif not tok.startswith("-"):
            out.append(_canonical_kind(tok))
        else:
            out.append(tok)
    return out


def _canonical_kind(token: str) -> str:
    """`pods` -> `pod`, `deploy/api` -> `deployment/api`; other words unchanged."""
    head, slash, rest = token.partition("/")
    kind = normalize_resource(head) if head else None
    return f"{kind}{slash}{rest}" if kind else token


def _units(tokens: list[str]) -> tuple[list[Unit], list[Unit]]:
    """(positional units in order, flag units): a flag without `=` takes the next non-flag token
    as its value. The same rule applies to template and argv, so both split alike."""
    positional: list[Unit] = []
    flags: list[Unit] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.startswith("-") and tok != "-":
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if "=" not in tok and nxt is not None and not nxt.startswith("-"):
                # `--tail 20` is `--tail=20`; short flags keep their separate value.
                flags.append((f"{tok}={nxt}",) if tok.startswith("--") else (tok, nxt))
                i += 2
                continue
            flags.append((tok,))
        else:
            positional.append((tok,))
        i += 1
    return positional, flags


def _token_regex(token: str, card: Card) -> re.Pattern[str]:
    parts: list[str] = []
    pos = 0
    for m in PLACEHOLDER_RE.finditer(token):
        parts.append(re.escape(token[pos:m.start()]))
        spec = card.placeholders[m.group(1)]
        parts.append("(?:" + (spec.pattern or ".+").removeprefix("^").removesuffix("$") + ")")
        pos = m.end()
    parts.append(re.escape(token[pos:]))
    return re.compile("".join(parts))


Shape = tuple[tuple[tuple[re.Pattern[str], ...], ...], tuple[tuple[re.Pattern[str], ...], ...]]
_SHAPES: dict[tuple[str, ...], tuple[Shape, ...]] = {}


def _shapes(card: Card) -> tuple[Shape, ...]:
    """Every form the card's template can take (each optional group present or not), as
    (positional unit patterns, flag unit patterns). Cached by the card's template and patterns."""
    key = (card.id, card.command_template,
           *(f"{k}={v.pattern}" for k, v in sorted(card.placeholders.items())))
    hit = _SHAPES.get(key)
    if hit is None:
        hit = _SHAPES[key] = _build_shapes(card)
    return hit


def _build_shapes(card: Card) -> tuple[Shape, ...]:
    groups = sorted({g for _, g in card.tokens if g is not None})
    shapes = []
    for n in range(len(groups) + 1):
        for present in itertools.combinations(groups, n):
            tokens = [t for t, g in card.tokens if g is None or g in present]
            positional, flags = _units(_normalise(tokens))
            shapes.append((
                tuple(tuple(_token_regex(t, card) for t in u) for u in positional),
                tuple(tuple(_token_regex(t, card) for t in u) for u in flags),
            ))
    return tuple(shapes)


def _unit_matches(patterns: tuple[re.Pattern[str], ...], unit: Unit) -> bool:
    return len(patterns) == len(unit) and all(p.fullmatch(t) for p, t in zip(patterns, unit))


def matches(card: Card, argv: list[str]) -> bool:
    """Whether `argv` is one rendering of the card's template, flags in any order."""
    positional, flags = _units(_normalise(list(argv)))
    for want_pos, want_flags in _shapes(card):
        if len(want_pos) != len(positional) or len(want_flags) != len(flags):
            continue
        if not all(_unit_matches(p, u) for p, u in zip(want_pos, positional)):
            continue
        if all(_unit_matches(p, u) for p, u in zip(want_flags, flags)):
            return True
        if len(flags) <= _MAX_PERMUTED_FLAGS and any(
            all(_unit_matches(p, u) for p, u in zip(want_flags, order))
            for order in itertools.permutations(flags)
        ):
            return True
    return False


def _specificity(card: Card) -> tuple[int, int]:
    """More literal text and fewer slots first: `get-pod` before `get-any`."""
    literal = sum(len(PLACEHOLDER_RE.sub("", t)) for t, _ in card.tokens)
    return (-literal, len(card.placeholders))


def match_card(argv: list[str], corpus: Corpus) -> Card | None:
    """The card whose command pattern `argv` matches (the most specific one), or None."""
    # A runbook card runs several commands: an argv is one command, run as sent.
    found = [card for card in corpus if not getattr(card, "steps", None) and matches(card, argv)]
    return min(found, key=lambda c: (_specificity(c), c.id)) if found else None


def argv_plan(argv: list[str], corpus: Corpus) -> Plan:
    """The plan for an argv sent through the door: the argv exactly as sent, `planner="argv"`."""
    from .policy import risk_of

    card = match_card(argv, corpus)
    try:
        risk = risk_of(parse_argv(list(argv)))
    except ArgvError:
        risk = "high"  # what cannot be read is judged the riskiest (the policy refuses it)
    if card is not None:
        risk = max_risk(risk, card.risk_level)
        rationale = f"Sent as an argv; it matches the command pattern of card {card.id}."
    else:
        rationale = "Sent as an argv; it matches no card's command pattern."
    return Plan(card_id=card.id if card else None, argv=list(argv), risk_level=risk,
                planner="argv", rationale=rationale)


def argv_facts(argv: list[str]) -> dict[str, str]:
    """What the audit line records of an argv: the intent its verb serves, kind, namespace."""
    from .policy import intents_of

    try:
        parsed = parse_argv(list(argv))
    except ArgvError:
        return {}
    facts = {"intent": (intents_of(parsed) or (None,))[0], "resource": parsed.kind,
             "namespace": parsed.namespace, "name": parsed.name}
    return {k: v for k, v in facts.items() if isinstance(v, str)}
