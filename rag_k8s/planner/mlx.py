"""The MLX planner: a local 4-bit model picks a retrieved card and fills its slots, as JSON
constrained by the per-request schema (schema.py), decoded by our llguidance loop (constrained.py).

Heavy imports (mlx, mlx_lm, llguidance, transformers) happen inside functions, so importing this
module stays cheap for the template path.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..cards import Card, Corpus
from ..config import Settings
from ..errors import InvalidRequest, ModelNotFound, NoMatch, PlannerError
from ..request import Request
from ..retrieve import Hit
from .extract import Extraction
from .constrained import Generation, PromptKV, generate
from .runtime import has_metal, prepare_for_cpu, use_fast_blas
from .schema import NONE_CARD, PlanChoice, plan_schema, request_values, schema_cards

if TYPE_CHECKING:
    from . import Plan

TEMPERATURE = 0.2
MAX_TOKENS = 160
SEED = 0
PROMPT_SNIPPET_TOKENS = 1200  # the retrieved snippets in the prompt stay within this

SYSTEM_PROMPT = (
    "Turn the Kubernetes request into JSON: pick the candidate card that does what it asks, "
    "fill the card's slots with words from the request, give a short rationale. "
    f"If no card does what it asks, the card_id is {NONE_CARD}."
)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_MODELS: dict[str, tuple[Any, Any]] = {}
_KV: dict[str, PromptKV] = {}
_LOAD_LOCK = threading.Lock()


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _looks_like_path(model: str) -> bool:
    return (model.startswith(("/", ".", "~")) or not _HUB_ID.match(model)
            or Path(model).expanduser().exists())


def _hub_caches() -> list[Path]:
    """Every folder huggingface_hub might take as its cache (HF_HUB_CACHE, the legacy
    HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub, ~/.cache/...)."""
    env = os.environ
    home = env.get("HF_HOME") or str(Path(env.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface")
    found = [env.get("HF_HUB_CACHE"), env.get("HUGGINGFACE_HUB_CACHE"), str(Path(home) / "hub")]
    return [Path(p).expanduser() for p in found if p]


def _cached_hub_dir(repo_id: str) -> Path | None:
    """The local snapshot of a hub model when its config is in the HF cache (never downloads)."""
    if not any((d / f"models--{repo_id.replace('/', '--')}").is_dir() for d in _hub_caches()):
        return None  # never cached: skip importing huggingface_hub (~0.6 s on a cold CLI)
    from huggingface_hub import constants, try_to_load_from_cache

    cache_dir = os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE
    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=cache_dir)
    if isinstance(found, str):
        snapshot = Path(found).parent
        if any(snapshot.glob("*.safetensors")):
            return snapshot
    return None


def _not_found_hint() -> str:
    return ("set RAG_K8S_MODEL to a local MLX model dir, e.g. "
            "$RAG_K8S_HOME/models/smollm2-135m-instruct-4bit from `make smollm2`")


def resolve_model(settings: Settings) -> str:
    """What `mlx_lm.load` should open for `settings.model`; raises ModelNotFound when it cannot."""
    model = settings.model
    if _looks_like_path(model):
        path = Path(model).expanduser()
        if not path.is_dir():
            raise ModelNotFound(f"model directory {path} does not exist: {_not_found_hint()}, "
                                "or build the test model with `make tiny-model`")
        if not (path / "config.json").is_file():
            raise ModelNotFound(f"{path} is not an MLX model directory (no config.json): "
                                f"{_not_found_hint()}")
        return str(path)
    snapshot = _cached_hub_dir(model)
    if snapshot is not None:
        return str(snapshot)
    if _offline():
        raise ModelNotFound(
            f"model {model} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set: "
            f"run once online on your Mac to download it, or {_not_found_hint()}"
        )
    return model  # a hub id, online: mlx_lm downloads it on first use (macOS)


def model_available(settings: Settings) -> bool:
    """True when the model can be loaded without a download (a local dir, or a cached hub id)."""
    model = settings.model
    if _looks_like_path(model):
        return (Path(model).expanduser() / "config.json").is_file()
    try:
        return _cached_hub_dir(model) is not None
    except Exception:  # noqa: BLE001 - a broken cache means "not available", never a crash
        return False


def load_model(path_or_id: str) -> tuple[Any, Any]:
    """`mlx_lm.load`, once per process per model."""
    with _LOAD_LOCK:
        hit = _MODELS.get(path_or_id)
        if hit is not None:
            return hit
        use_fast_blas()  # before mlx.core is first imported (see runtime.py)
        from mlx_lm import load

        try:
            loaded = load(path_or_id)
        except (OSError, ValueError, FileNotFoundError) as e:
            raise ModelNotFound(f"cannot load the MLX model {path_or_id}: {e}; "
                                f"{_not_found_hint()}") from None
        model, tokenizer = prepare_for_cpu(loaded[0])[0], loaded[1]
        _MODELS[path_or_id] = (model, tokenizer)
        _KV.setdefault(path_or_id, PromptKV())
        return model, tokenizer


def generation_lock(path: str) -> threading.Lock:
    """The lock every generation on the model loaded from `path` holds (planner and k8sgpt)."""
    with _LOAD_LOCK:
        return _KV.setdefault(path, PromptKV()).lock


def card_line(card: Card) -> str:
    """One compact line per candidate: the grammar already enforces the slots' shapes."""
    slots = ", ".join(s + ("" if p.required else "?") for s, p in card.placeholders.items())
    return f"- {card.id}: {card.description} (slots: {slots or '-'})"


def build_prompt(tokenizer: Any, request: Request, cards: list[Card],
                 snippets: dict[str, str], *, compact: bool | None = None) -> list[int]:
    """The chat prompt as token ids: the candidate cards, then the request as JSON.

    With Metal the retrieved snippets go in whole (at most 1,200 tokens). On a CPU each prompt
    token costs about as much as a generated one, so by default each card gets one line instead.
    The request comes last so consecutive prompts share the longest prefix (see PromptKV).
    """
    hf = getattr(tokenizer, "_tokenizer", tokenizer)
    if compact is None:
        compact = not has_metal()
    shown = {k: v for k, v in request.to_dict().items() if k != "constraints"}
    parts: list[str] = []
    used = 0
    for card in cards:
        text = card_line(card) if compact else (snippets.get(card.id) or card.snippet())
        n = len(hf.encode(text, add_special_tokens=False))
        if parts and used + n > PROMPT_SNIPPET_TOKENS:
            break  # the best cards come first; the rest would overflow the budget
        parts.append(text)
        used += n
    user = ("Candidate cards:\n" + "\n".join(parts)
            + f"\n\nRequest: {json.dumps(shown, sort_keys=True)}")
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]
    ids = hf.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "keys"):
        ids = ids["input_ids"]
    return [int(t) for t in ids]


@dataclass
class PlanTrace:
    """What planning cost: every attempt's generation, and why failed attempts failed."""

    model: str
    attempts: list[Generation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _check_choice(text: str, gen: Generation, cards: dict[str, Card],
                  given: dict[str, Any]) -> tuple[PlanChoice, list[str]]:
    """Parse and render the model's output; raises PlannerError saying what is wrong."""
    if not gen.finished:
        raise PlannerError(f"output stopped after {gen.generated} tokens before the JSON was "
                           f"complete: {text[:80]!r}")
    try:
        choice = PlanChoice.model_validate_json(text)
    except ValidationError as e:
        raise PlannerError(f"output is not a plan: {e.errors()[0]['msg']}: {text[:80]!r}") from None
    if choice.card_id == NONE_CARD:
        raise NoMatch(f"the MLX planner found that no command card does what the request asks "
                      f"(it said: {choice.rationale.strip() or 'no reason given'})")
    card = cards.get(choice.card_id)
    if card is None:
        raise PlannerError(f"card {choice.card_id!r} was not among the candidates")
    for slot in card.placeholders:
        if slot in given and choice.slots.get(slot) != given[slot]:
            raise PlannerError(f"slot {slot} was changed from the request's {given[slot]!r}")
    try:
        argv = card.render(choice.slots)
    except InvalidRequest as e:
        raise PlannerError(f"slots do not render through {card.id}: {e}") from None
    return choice, argv


def plan_with_mlx_traced(
    request: Request,
    hits: list[Hit],
    corpus: Corpus,
    settings: Settings,
    *,
    budgets: tuple[int, ...] = (MAX_TOKENS, MAX_TOKENS),
    temperature: float = TEMPERATURE,
    seed: int = SEED,
    extraction: Extraction | None = None,
) -> tuple[Plan, PlanTrace]:
    """`plan_with_mlx`, also returning the trace. Each entry of `budgets` is one attempt's
    max_tokens; a failed attempt is retried once (the next budget, the next seed)."""
    from . import Plan  # here, not at the top: the package __init__ may import this module

    t0 = time.perf_counter()
    path = resolve_model(settings)
    schema = plan_schema(request, hits, corpus, extraction)
    cards = schema_cards(schema, corpus)  # the prompt shows exactly what the grammar allows
    model, tokenizer = load_model(path)
    snippets = {h.card_id: h.snippet for h in hits}
    prompt = build_prompt(tokenizer, request, cards, snippets)
    given = request_values(request)
    by_id = {c.id: c for c in cards}
    trace = PlanTrace(model=path)
    for attempt, budget in enumerate(budgets):
        gen = generate(model, tokenizer, prompt, schema=schema, max_tokens=budget,
                       temperature=temperature, seed=seed + attempt, kv=_KV.get(path))
        trace.attempts.append(gen)
        try:
            choice, argv = _check_choice(gen.text, gen, by_id, given)
        except PlannerError as e:
            trace.errors.append(f"attempt {attempt + 1}: {e}")
            continue
        trace.seconds = time.perf_counter() - t0
        card = by_id[choice.card_id]
        scores = {h.card_id: h.score for h in hits}
        plan = Plan(
            card_id=card.id, argv=argv, risk_level=card.risk_level, planner="mlx",
            sources=[{"card_id": c.id, "score": round(float(scores.get(c.id, 0.0)), 4)}
                     for c in cards],
            rationale=choice.rationale.strip(), slots=dict(choice.slots),
        )
        return plan, trace
    raise PlannerError(
        f"the MLX planner produced no valid plan in {len(budgets)} attempts ("
        + "; ".join(trace.errors)
        + "); give the request's intent, resource and name so the template planner can take it "
        "(RAG_K8S_PLANNER=template), or set RAG_K8S_MODEL to a stronger model"
    )


def plan_with_mlx(request: Request, hits: list[Hit], corpus: Corpus, settings: Settings, *,
                  extraction: Extraction | None = None) -> Plan:
    """Plan with the local MLX model: a card from `hits` and its slots, constrained to valid JSON.

    Raises ModelNotFound when the model cannot be loaded here, and PlannerError when two
    attempts (the first and one retry) give no plan that renders.
    """
    return plan_with_mlx_traced(request, hits, corpus, settings, extraction=extraction)[0]
