"""Command cards: load and validate the YAML corpus, and render a card's template to an argv list.

A template is split into tokens once, when the (trusted) card is loaded; user values are then
substituted inside single tokens and never re-split, so no value can become a second argument.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import threading
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from . import yamlsafe
from .dirwatch import WATCH
from .errors import CardError, InvalidRequest
from .vocab import (
    CATEGORIES, DNS1123_LABEL, DNS1123_SUBDOMAIN, INTENTS, RESOURCES, RISK_ORDER, RiskLevel, base_risk,
    READ_ONLY_INTENTS,
)

_SCHEMA = json.loads(
    (Path(__file__).parent / "schemas" / "request.json").read_text("utf-8")
)
_PARAM_SCHEMA: dict[str, dict[str, Any]] = _SCHEMA["properties"]["params"]["properties"]

# Slot names are the request's own fields: `name`, `namespace`, `resource`, the params keys, and
# `timeout` (constraints.timeout, for commands that must not outlast the request: kubectl wait).
SLOT_NAMES: tuple[str, ...] = ("name", "namespace", "resource", *_PARAM_SCHEMA, "timeout")
PLACEHOLDER_RE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")

def _pattern(key: str, *, items: bool = False) -> str:
    spec = _PARAM_SCHEMA[key]
    return str((spec.get("items") or {}).get("pattern") if items else spec["pattern"])


# Slot type -> (pattern, max length): a card names a type, or gives its own pattern. List types
# (LIST_TYPES) check each item against the pattern; JSON types render a checked mapping as JSON.
SLOT_TYPES: dict[str, tuple[str, int]] = {
    "name": (DNS1123_SUBDOMAIN, 253),
    "namespace": (DNS1123_LABEL, 63),
    "label": (DNS1123_LABEL, 63),
    "int": (r"^(0|[1-9][0-9]{0,6})$", 7),
    "bool": (r"^(true|false)$", 5),
    "duration": (_PARAM_SCHEMA["since"]["pattern"], 16),
    "image": (_PARAM_SCHEMA["image"]["pattern"], 512),
    "selector": (_PARAM_SCHEMA["selector"]["pattern"], 256),
    "resource": (r"^[a-z]+$", 32),
    "output": (_pattern("output"), 320),
    "quantity": (_pattern("storage"), 16),
    "resource_list": (_pattern("requests", items=True), 128),
    "taint": (_pattern("taint"), 320),
    "taint_key": (_pattern("remove_taint"), 320),
    "time": (_pattern("since_time"), 35),
    "field_selector": (_pattern("field_selector"), 256),
    "sort_by": (_pattern("sort_by"), 200),
    "condition": (_pattern("condition"), 256),
    "cronjob_ref": (_pattern("from"), 261),
    "field_path": (_pattern("field"), 256),
    "label_pairs": (_pattern("labels", items=True), 317),
    "annotation_pairs": (_pattern("annotations", items=True), 574),
    "env_pairs": (_pattern("env", items=True), 385),
    "literal_pairs": (_pattern("literals", items=True), 510),
    "label_keys": (_pattern("remove_labels", items=True), 317),
    "env_names": (_pattern("remove_env", items=True), 128),
    "names": (_pattern("nodes", items=True), 253),
    "label_map_json": (_pattern("labels", items=True), 317),
    "resource_json": (_pattern("requests", items=True), 40),
}
# Types whose value is a list (or a key: value mapping, for the *_pairs types): one argv item per
# entry, each checked on its own, so no entry can become two arguments or a flag.
LIST_TYPES = frozenset({"label_pairs", "annotation_pairs", "env_pairs", "literal_pairs",
                        "label_keys", "env_names", "names"})
# Types given as a mapping (or a list of key=value) and rendered as one compact JSON object.
JSON_TYPES = frozenset({"label_map_json", "resource_json"})
# Types given as a mapping (or key=value text) and rendered as `k=v,k=v` (kubectl --requests).
MAPPING_TEXT_TYPES = frozenset({"resource_list"})
MAX_ITEMS = 32


def request_field(slot: str) -> str:
    """The request field a slot comes from, as named in error messages."""
    if slot == "timeout":
        return "constraints.timeout"
    return slot if slot in ("name", "namespace", "resource") else f"params.{slot}"


class Placeholder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required: bool = True
    type: Literal["name", "namespace", "label", "int", "bool", "duration", "image", "selector",
                  "resource", "enum", "output", "quantity", "resource_list", "taint", "taint_key", "time",
                  "field_selector", "sort_by", "condition", "cronjob_ref", "field_path",
                  "label_pairs", "annotation_pairs", "env_pairs", "literal_pairs", "label_keys",
                  "env_names", "names", "label_map_json", "resource_json"] = "name"
    pattern: str | None = Field(default=None, description="Overrides the type's pattern.")
    max_length: int | None = Field(default=None, ge=1, le=2000)
    minimum: int | None = None
    maximum: int | None = None
    values: list[str] | None = Field(default=None, description="The allowed values of an enum.")
    description: str = ""

    @model_validator(mode="after")
    def _resolve(self) -> Placeholder:
        if self.type == "enum":
            if not self.values:
                raise ValueError("an enum placeholder needs `values`")
            if self.pattern is None:
                self.pattern = "^(" + "|".join(re.escape(v) for v in self.values) + ")$"
        base_pattern, base_len = SLOT_TYPES.get(self.type, (None, 64))
        if self.pattern is None:
            self.pattern = base_pattern
        if self.max_length is None:
            self.max_length = base_len
        try:
            re.compile(self.pattern or "")
        except re.error as e:
            raise ValueError(f"pattern does not compile: {e}") from None
        return self

    @property
    def is_list(self) -> bool:
        return self.type in LIST_TYPES

    def _entries(self, slot: str, value: Any) -> list[str]:
        """A list or mapping value as `key=value` (or plain) entries, at most MAX_ITEMS."""
        field = request_field(slot)
        if isinstance(value, dict):
            if self.type in ("label_keys", "env_names", "names"):
                raise InvalidRequest(field, "expected a list, got a mapping")
            entries = []
            for k, v in value.items():
                if isinstance(v, bool) or not isinstance(v, (str, int)):
                    raise InvalidRequest(f"{field}.{k}", f"expected text, got {type(v).__name__}")
                entries.append(f"{k}={v}")
        elif isinstance(value, list):
            entries = value
        elif isinstance(value, str) and self.type in MAPPING_TEXT_TYPES:
            entries = value.split(",")
        else:
            raise InvalidRequest(field, f"expected a list or a mapping, got {type(value).__name__}")
        if not entries:
            raise InvalidRequest(field, "is empty")
        if len(entries) > MAX_ITEMS:
            raise InvalidRequest(field, f"has more than {MAX_ITEMS} entries")
        return entries

    def _check_text(self, field: str, text: str) -> str:
        assert self.pattern is not None and self.max_length is not None
        if len(text) > self.max_length:
            raise InvalidRequest(field, f"is longer than {self.max_length} characters")
        # fullmatch: `$` alone would accept a trailing newline.
        if not re.fullmatch(self.pattern.removeprefix("^").removesuffix("$"), text):
            raise InvalidRequest(field, f"{text[:60]!r} does not match {self.pattern}")
        return text

    def check_items(self, slot: str, value: Any) -> list[str]:
        """A list type's entries, each checked; raises InvalidRequest naming the entry."""
        field = request_field(slot)
        out = []
        for i, entry in enumerate(self._entries(slot, value)):
            if not isinstance(entry, str):
                raise InvalidRequest(f"{field}.{i}", f"expected text, got {type(entry).__name__}")
            out.append(self._check_text(f"{field}.{i}", entry))
        if len(set(e.partition("=")[0] for e in out)) < len(out):
            raise InvalidRequest(field, "names the same key twice")
        return out

    def check(self, slot: str, value: Any) -> str:
        """The value as its argv text; raises InvalidRequest naming the request field."""
        field = request_field(slot)
        if self.type in JSON_TYPES or self.type in MAPPING_TEXT_TYPES:
            entries = self.check_items(slot, value)
            if self.type in MAPPING_TEXT_TYPES:
                return ",".join(entries)  # `cpu=100m,memory=128Mi`
            return json.dumps({k: v for k, _, v in (e.partition("=") for e in entries)},
                              separators=(",", ":"))
        if self.type == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidRequest(field, f"expected an integer, got {value!r}")
            if self.minimum is not None and value < self.minimum:
                raise InvalidRequest(field, f"{value} is below the minimum {self.minimum}")
            if self.maximum is not None and value > self.maximum:
                raise InvalidRequest(field, f"{value} is above the maximum {self.maximum}")
            text = str(value)
        elif self.type == "bool":
            if not isinstance(value, bool):
                raise InvalidRequest(field, f"expected true or false, got {value!r}")
            text = "true" if value else "false"
        else:
            if not isinstance(value, str):
                raise InvalidRequest(field, f"expected text, got {type(value).__name__}")
            text = value
        return self._check_text(field, text)


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=3, description="A plain-language request this card answers.")
    slots: dict[str, Any]
    command: str = Field(description="What the slots render to, in shell-quoted form.")


# Runbook steps only read: their kubectl verbs.
RUNBOOK_VERBS = frozenset({"get", "describe", "logs", "top", "events"})
# Slots a runbook step takes from the JSON object an earlier step fetched (never from log or
# event text): the object's controller (a ReplicaSet resolved to its Deployment) and its pod
# selector. Each value is checked against its pattern like any slot.
DERIVED_SLOTS: dict[str, tuple[str, int]] = {
    "owner_kind": (r"^(deployment|statefulset|daemonset|replicaset|job|cronjob|node)$", 16),
    "owner_name": (DNS1123_SUBDOMAIN, 253),
    "pod_selector": (_PARAM_SCHEMA["selector"]["pattern"], 256),
}


class Step(BaseModel):
    """One read-only command of a runbook card."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9-]{0,30}$")
    command_template: str
    description: str = Field(default="", max_length=200)
    output: Literal["json", "text"] = Field(
        default="text", description="`json`: the step prints JSON the analyzers parse.")
    after: str | None = Field(
        default=None, description="The JSON step whose object fills this step's derived slots "
                                  f"({', '.join(DERIVED_SLOTS)}); the step runs after it.")

    @cached_property
    def tokens(self) -> list[tuple[str, int | None]]:
        return template_tokens(self.command_template, f"steps.{self.id}.command_template")

    @property
    def slots(self) -> set[str]:
        return {m for tok, _ in self.tokens for m in PLACEHOLDER_RE.findall(tok)}

    def render(self, card: Card, slots: dict[str, Any],
               derived: dict[str, str] | None = None) -> list[str]:
        """The step's argv from the card's checked slots and the derived ones; an optional
        group whose slot has no value is left out. Raises InvalidRequest for a bad value."""
        texts: dict[str, str] = {}
        for slot in self.slots:
            if slot in DERIVED_SLOTS:
                value = (derived or {}).get(slot)
                if value is None:
                    continue
                pattern, limit = DERIVED_SLOTS[slot]
                if len(value) > limit or not re.fullmatch(
                        pattern.removeprefix("^").removesuffix("$"), value):
                    raise InvalidRequest(slot, f"{value[:60]!r} does not match {pattern}")
                texts[slot] = value
            elif slots.get(slot) is not None:
                texts[slot] = card.placeholders[slot].check(slot, slots[slot])
        for tok, group in self.tokens:
            if group is None:
                for slot in PLACEHOLDER_RE.findall(tok):
                    if slot not in texts:
                        raise InvalidRequest(request_field(slot), f"{slot} is required for "
                                             f"step {self.id} of {card.id}")
        dropped = {group for tok, group in self.tokens if group is not None
                   for slot in PLACEHOLDER_RE.findall(tok) if slot not in texts}
        return [PLACEHOLDER_RE.sub(lambda m: texts[m.group(1)], tok)
                for tok, group in self.tokens if group is None or group not in dropped]


class Card(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    intent: Literal[INTENTS]  # type: ignore[valid-type]
    resource: str = Field(description="A canonical kind, or `*` for cards about any kind.")
    risk_level: RiskLevel
    description: str = Field(min_length=10, max_length=400)
    command_template: str
    placeholders: dict[str, Placeholder] = Field(default_factory=dict)
    examples: list[Example] = Field(min_length=1)
    notes: str = ""
    keywords: list[str] = Field(default_factory=list,
                                description="Extra words users say for this (synonyms).")
    steps: list[Step] | None = Field(
        default=None, min_length=2, max_length=12,
        description="A runbook: read-only commands run in order instead of one command; "
                    "`command_template` is then the first step's.")

    @model_validator(mode="before")
    @classmethod
    def _runbook_command(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("steps") is not None:
            if "command_template" in data:
                raise ValueError("command_template: a runbook card gives `steps` instead")
            steps = data["steps"]
            if isinstance(steps, list) and steps and isinstance(steps[0], dict):
                data = {**data, "command_template": steps[0].get("command_template", "")}
        return data

    @model_validator(mode="after")
    def _runbook_steps(self) -> Card:
        if self.steps is None:
            return self
        if self.mutating:
            raise ValueError(f"steps: a runbook only reads; intent {self.intent} changes things")
        seen: dict[str, Step] = {}
        for step in self.steps:
            where = f"steps.{step.id}"
            if step.id in seen:
                raise ValueError(f"{where}: the id is used twice")
            if len(step.tokens) < 2 or step.tokens[0][0] != "kubectl":
                raise ValueError(f"{where}.command_template: must start with `kubectl`")
            if step.tokens[1][0] not in RUNBOOK_VERBS:
                raise ValueError(f"{where}.command_template: kubectl {step.tokens[1][0]} is not "
                                 f"a read-only verb ({', '.join(sorted(RUNBOOK_VERBS))})")
            derived = step.slots & set(DERIVED_SLOTS)
            if derived and (step.after not in seen or seen[step.after].output != "json"):
                raise ValueError(f"{where}.after: {', '.join(sorted(derived))} come from an "
                                 "earlier `output: json` step; name it in `after`")
            for slot in step.slots - set(DERIVED_SLOTS) - set(self.placeholders):
                raise ValueError(f"{where}: uses {{{{{slot}}}}} but placeholders lacks it")
            seen[step.id] = step
        if self.steps[0].after is not None or self.steps[0].slots & set(DERIVED_SLOTS):
            raise ValueError("steps: the first step must stand alone (it is the plan's command)")
        return self

    @field_validator("resource")
    @classmethod
    def _known_resource(cls, v: str) -> str:
        if v != "*" and v not in RESOURCES and v not in CATEGORIES:
            raise ValueError(f"{v!r} is not a canonical kind ({', '.join(RESOURCES)}), "
                             f"a category ({', '.join(CATEGORIES)}) or '*'")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Card:
        tokens = self.tokens  # parses the template, raising on bad syntax
        if not tokens or tokens[0][0] != "kubectl":
            raise ValueError("command_template: must start with `kubectl`")
        used = {m for tok, _ in tokens for m in PLACEHOLDER_RE.findall(tok)}
        for step in self.steps or ():  # a runbook's placeholders may serve any of its steps
            used |= step.slots - set(DERIVED_SLOTS)
        for slot in used - set(self.placeholders):
            raise ValueError(f"command_template: uses {{{{{slot}}}}} but placeholders lacks it")
        for slot in set(self.placeholders) - used:
            raise ValueError(f"placeholders.{slot}: is never used in command_template")
        for slot in self.placeholders:
            if slot not in SLOT_NAMES:
                raise ValueError(f"placeholders.{slot}: not a request field ({', '.join(SLOT_NAMES)})")
        for tok, _ in tokens:
            if sum(self.placeholders[s].is_list for s in PLACEHOLDER_RE.findall(tok)) > 1:
                raise ValueError(f"command_template: {tok!r} holds two list slots")
        for tok, group in tokens:
            if group is None:
                for slot in PLACEHOLDER_RE.findall(tok):
                    if not self.placeholders[slot].required:
                        raise ValueError(
                            f"placeholders.{slot}: optional, so it must sit inside"
                            " an optional [group]"
                        )
        floor = base_risk(self.intent)
        if RISK_ORDER[self.risk_level] < RISK_ORDER[floor]:
            raise ValueError(
                f"risk_level: {self.risk_level} is below the contract's {floor} for {self.intent}"
            )
        return self

    @cached_property
    def tokens(self) -> list[tuple[str, int | None]]:
        """Template tokens, each with the index of its optional group (None when mandatory)."""
        return template_tokens(self.command_template, "command_template")

    @property
    def mutating(self) -> bool:
        return self.intent not in READ_ONLY_INTENTS

    @property
    def required_slots(self) -> list[str]:
        return [s for s, p in self.placeholders.items() if p.required]

    def render(self, slots: dict[str, Any]) -> list[str]:
        """The argv for these slot values; raises InvalidRequest for a missing or bad value.

        A token holding a list slot becomes one argv item per entry (`{{labels}}` with two
        labels is two items; `--from-literal={{literals}}` repeats the flag)."""
        texts: dict[str, str] = {}
        lists: dict[str, list[str]] = {}
        for slot, spec in self.placeholders.items():
            value = slots.get(slot)
            if value is None:
                if spec.required:
                    missing = InvalidRequest(request_field(slot), _ask_for(slot, self))
                    missing.card_id = self.id  # type: ignore[attr-defined] # shown by the doors
                    raise missing
                continue
            if spec.is_list:
                lists[slot] = spec.check_items(slot, value)
            else:
                texts[slot] = spec.check(slot, value)
        dropped = {
            group for tok, group in self.tokens if group is not None
            for slot in PLACEHOLDER_RE.findall(tok) if slot not in texts and slot not in lists
        }
        argv: list[str] = []
        for tok, group in self.tokens:
            if group in dropped and group is not None:
                continue
            listed = [s for s in PLACEHOLDER_RE.findall(tok) if s in lists]
            if listed:
                for entry in lists[listed[0]]:
                    argv.append(PLACEHOLDER_RE.sub(
                        lambda m, e=entry: e if m.group(1) == listed[0] else texts[m.group(1)],
                        tok))
            else:
                argv.append(PLACEHOLDER_RE.sub(lambda m: texts[m.group(1)], tok))
        return argv

    def snippet(self) -> str:
        """The short text the planner sees for this card."""
        slots = ", ".join(
            f"{s}{'' if p.required else '?'}" + (f" ({p.description})" if p.description else "")
            for s, p in self.placeholders.items()
        )
        ex = self.examples[0]
        return (
            f"[{self.id}] {self.intent} {self.resource} (risk {self.risk_level}): "
            f"{self.description}\n  template: {self.command_template}\n  slots: {slots or '-'}\n"
            f"  e.g. \"{ex.query}\" -> {ex.command}"
        )

    def embedding_text(self) -> str:
        """What the index embeds for this card: description, intent, resource, examples, notes."""
        parts = [
            self.description, f"intent: {self.intent}", f"resource: {self.resource}",
            *(ex.query for ex in self.examples), *self.keywords, self.notes,
        ]
        return "\n".join(p.strip() for p in parts if p and p.strip())

    def content_hash(self) -> str:
        payload = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()


def template_tokens(template: str, where: str) -> list[tuple[str, int | None]]:
    """A command template's tokens, each with the index of its optional group (None when
    mandatory); `where` names the field in error messages."""
    try:
        raw = shlex.split(template)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    out: list[tuple[str, int | None]] = []
    group: int | None = None
    n_groups = 0
    for tok in raw:
        opens, closes = tok.startswith("["), tok.endswith("]") and not tok.endswith("]]")
        if opens:
            if group is not None:
                raise ValueError(f"{where}: nested [optional] groups")
            group, n_groups = n_groups, n_groups + 1
            tok = tok[1:]
        if closes:
            if group is None:
                raise ValueError(f"{where}: `]` without `[`")
            tok = tok[:-1]
        out.append((tok, group))
        if closes:
            group = None
    if group is not None:
        raise ValueError(f"{where}: unclosed [optional] group")
    return out


def _ask_for(slot: str, card: Card) -> str:
    kind = card.resource if card.resource != "*" else "resource"
    return {
        "name": f"which {kind}? give its name",
        "namespace": "which namespace?",
        "replicas": "how many replicas?",
        "image": "which image?",
        "container": "which container?",
        "resource": "which kind of resource?",
        "verb": "which verb (get, list, create, update, patch, delete)?",
    }.get(slot, f"{slot} is required for {card.id}")


@dataclass(frozen=True)
class Corpus:
    """The loaded cards, in id order, with lookups."""

    cards: tuple[Card, ...]
    paths: dict[str, Path]

    def __len__(self) -> int:
        return len(self.cards)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.cards)

    @cached_property
    def by_id(self) -> dict[str, Card]:
        return {c.id: c for c in self.cards}

    @cached_property
    def snippets(self) -> tuple[str, ...]:
        """Each card's snippet, in card order: built once, not on every retrieval."""
        return tuple(c.snippet() for c in self.cards)

    def get(self, card_id: str) -> Card:
        return self.by_id[card_id]

    def matching(self, intent: str | None = None, resource: str | None = None) -> list[Card]:
        return [
            c for c in self.cards
            if (intent is None or c.intent == intent)
            and (resource is None or c.resource in (resource, "*"))
        ]


def load_card(path: Path) -> Card:
    """Load and validate one card file, checking every example renders to what it claims."""
    try:
        data = yamlsafe.load(path.read_text(encoding="utf-8"))  # refuses duplicate keys
    except yaml.YAMLError as e:
        raise CardError(str(path), "", f"not valid YAML: {e}") from None
    except OSError as e:
        raise CardError(str(path), "", f"cannot be read: {e.strerror}") from None
    if not isinstance(data, dict):
        raise CardError(str(path), "", "must be a YAML mapping")
    try:
        card = Card.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if not loc:  # a whole-card check: its message starts with the field it is about
            field_, sep, rest = msg.partition(": ")
            loc, msg = (field_, rest) if sep and " " not in field_ else ("card", msg)
        raise CardError(str(path), loc, msg) from None
    if path.stem != card.id:
        raise CardError(str(path), "id", f"{card.id!r} must match the file name {path.stem!r}")
    for i, ex in enumerate(card.examples):
        try:
            got = card.render(ex.slots)
        except InvalidRequest as e:
            raise CardError(str(path), f"examples[{i}].slots", str(e)) from None
        if got != shlex.split(ex.command):
            raise CardError(
                str(path), f"examples[{i}].command",
                f"renders to {shlex.join(got)!r}, not {ex.command!r}",
            )
    return card


def load_corpus(cards_dir: Path) -> Corpus:
    """Every `*.yaml` card under `cards_dir`; the first bad card is a CardError."""
    if not cards_dir.is_dir():
        raise CardError(str(cards_dir), "", "cards directory not found (set RAG_K8S_CARDS_DIR)")
    paths = sorted(p for p in cards_dir.glob("*.yaml"))
    if not paths:
        raise CardError(str(cards_dir), "", "no *.yaml cards found")
    cards: list[Card] = []
    seen: dict[str, Path] = {}
    for path in paths:
        card = load_card(path)
        if card.id in seen:
            raise CardError(str(path), "id", f"{card.id!r} is also used by {seen[card.id]}")
        seen[card.id] = path
        cards.append(card)
    return Corpus(cards=tuple(sorted(cards, key=lambda c: c.id)), paths=seen)


def card_json_schema() -> dict[str, Any]:
    """The JSON Schema of a card file (published as `rag_k8s/schemas/card.json`)."""
    schema = Card.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "rag-k8s command card"
    # A runbook card gives `steps` instead of `command_template` (its first step's is used).
    schema["required"] = [r for r in schema["required"] if r != "command_template"]
    schema["oneOf"] = [{"required": ["command_template"], "not": {"required": ["steps"]}},
                       {"required": ["steps"], "not": {"required": ["command_template"]}}]
    return schema


_CORPUS_CACHE: dict[Path, tuple[tuple[tuple[str, int, int], ...], Corpus]] = {}
# Past this many cards the file-by-file check costs more than a retrieval (10,000 cards: ~45 ms),
# so it runs at most every RECHECK_SECONDS; a file added, removed or renamed changes the
# directory's mtime and is seen at once.
BIG_CORPUS = 1000
RECHECK_SECONDS = 2.0
_CHECKED: dict[Path, tuple[int, float]] = {}  # dir -> (its mtime_ns, when last checked)
_CORPUS_LOCK = threading.Lock()


def _signature(cards_dir: Path) -> tuple[tuple[str, int, int], ...]:
    """Name, mtime and size of every card file: checked whenever the directory watch cannot
    answer, so it must stay cheap (os.scandir and one stat per file: ~10 ms for 10,000 cards,
    where pathlib took ~300)."""
    found = []
    with os.scandir(cards_dir) as entries:
        for entry in entries:
            if entry.name.endswith(".yaml"):
                st = entry.stat()
                # A symlink's target, or a file hard-linked from elsewhere, changes without an
                # event in this directory: size -1 keeps the watch off (stat on every call).
                found.append((entry.name, st.st_mtime_ns,
                              -1 if entry.is_symlink() or st.st_nlink > 1 else st.st_size))
    found.sort()
    return tuple(found)


_RESOLVED: dict[Path, tuple[tuple[int, int], Path]] = {}  # given path -> (dev, inode), real path


def resolved_dir(cards_dir: Path) -> Path:
    """`cards_dir.resolve()`, with one stat instead of a walk on a warm call: the path still
    names the same directory (device and inode) it did when resolved, through any symlink.

    When it does not (a symlink re-pointed, a parent renamed and the folder made anew, the path
    gone), the path is resolved again and the watch on it forgotten: events of the old folder
    say nothing about the new one, so the next call compares the files themselves."""
    try:
        st = os.stat(cards_dir)
    except OSError:
        real = cards_dir.resolve()
        _RESOLVED.pop(cards_dir, None)
        WATCH.forget(real)
        return real
    ident = (st.st_dev, st.st_ino)
    hit = _RESOLVED.get(cards_dir)
    if hit is not None and hit[0] == ident:
        return hit[1]
    real = cards_dir.resolve()
    WATCH.forget(real)
    if len(_RESOLVED) > 64:
        _RESOLVED.clear()
    _RESOLVED[cards_dir] = (ident, real)
    return real


def cached_corpus(cards_dir: Path) -> Corpus:
    """`load_corpus`, reloaded only when a card file is added, removed or changed.

    On Linux a directory watch answers "unchanged" in one read. Without it, every card file is
    stat-ed per call, except past BIG_CORPUS cards, where an edit in place is seen within
    RECHECK_SECONDS (a file added, removed or renamed at once)."""
    key = resolved_dir(cards_dir)
    # The watch first, the cache after: a reload empties the entry before it arms the watch,
    # so "unchanged" never pairs with a corpus read before the change.
    if WATCH.unchanged(key):
        hit = _CORPUS_CACHE.get(key)
        if hit is not None:
            return hit[1]
    hit = _CORPUS_CACHE.get(key)
    now = time.monotonic()
    if hit is not None and len(hit[1].cards) > BIG_CORPUS:
        checked = _CHECKED.get(key)
        try:
            dir_mtime = key.stat().st_mtime_ns
        except OSError:
            dir_mtime = -1
        if checked is not None and checked[0] == dir_mtime and now - checked[1] < RECHECK_SECONDS:
            return hit[1]
    with _CORPUS_LOCK:  # after an edit, concurrent requests reload the corpus once, not each
        hit = _CORPUS_CACHE.pop(key, None)
        armed = key.is_dir() and WATCH.arm(key)  # before the read: an edit during it is an event
        try:
            sig = _signature(key) if key.is_dir() else ()
            if any(size == -1 for _, _, size in sig):
                WATCH.forget(key)
            if hit is None or hit[0] != sig:
                hit = (sig, load_corpus(key))
        except BaseException:
            if armed:
                WATCH.forget(key)  # a bad or vanished card is reported again on the next call
            raise
        _CORPUS_CACHE[key] = hit
        try:
            _CHECKED[key] = (key.stat().st_mtime_ns, now)
        except OSError:
            _CHECKED.pop(key, None)
        return hit[1]
