"""Planning: choose a card and fill its slots, by template (no model) or by the MLX model."""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from ..errors import InvalidRequest, NoMatch, PlannerError

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from ..cards import Corpus
    from ..config import Settings
    from ..request import Request
    from .extract import Extraction

PlannerName = Literal["template", "mlx", "argv", "undo"]


@dataclass(frozen=True)
class Plan:
    card_id: str | None  # None: no card (a refused verb, or an argv that matches no card)
    argv: list[str]
    risk_level: str
    planner: PlannerName
    sources: list[dict[str, Any]] = field(default_factory=list)  # [{"card_id", "score"}]
    rationale: str = ""
    slots: dict[str, Any] = field(default_factory=dict)
    # Manifest commands: what will change (rag_k8s.manifests.Preview.to_dict), else None.
    preview: dict[str, Any] | None = None

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def to_dict(self) -> dict[str, Any]:
        """CONTRACT §2's `plan` object."""
        return {
            "card_id": self.card_id,  # None only for a refused verb or an argv matching no card
            "command": self.command,
            "argv": list(self.argv),
            "risk_level": self.risk_level,
            "planner": self.planner,
            "sources": [dict(s) for s in self.sources],
            "rationale": self.rationale,
            **({"preview": self.preview} if self.preview is not None else {}),
        }


def make_plan(request: Request, *, settings: Settings, corpus: Corpus,
              screened: bool = False) -> Plan:
    """Plan a request with the planner `settings.planner` names (CONTRACT §10).

    Free text is extracted once here; the faithfulness check (faithful.py) runs before planning
    (an intent with no card, a misspelt word) and on whatever plan comes out, from either planner.
    Raises InvalidRequest (a slot is missing, or a part of the words cannot be honoured) or NoMatch.
    """
    from . import faithful
    from .extract import extract

    # tool.py screens first (its dry-run reading must reach the executor) and says so; callers of
    # make_plan alone (benchmarks, tests) get the same one-action and never-run refusals here.
    if not screened:
        request = faithful.screen_request(request)
    ex = extract(request.query) if request.query else None
    free_text = ex is not None and request.intent is None
    if free_text:
        assert ex is not None
        ex = faithful.bind_options(ex, corpus)
        faithful.check_request(request, ex, corpus, _policy_namespaces(settings))
    plan = _plan(request, settings=settings, corpus=corpus, extraction=ex)
    if free_text:
        assert ex is not None
        faithful.check_plan(request, ex, plan, corpus)
    return plan


def _policy_namespaces(settings: Settings) -> list[str]:
    from ..errors import PolicyError
    from ..policy import load_policy

    try:
        return sorted(load_policy(settings.org_dir).namespaces)
    except PolicyError:
        return []  # the policy check refuses later, naming the file


def _plan(request: Request, *, settings: Settings, corpus: Corpus,
          extraction: Extraction | None) -> Plan:
    """`template` never loads a model; `mlx` always uses the model (a missing one is a clear
    ModelNotFound); `auto` takes the template path when the request determines one card with all
    its required slots, else the MLX planner when a model is available locally, else the template.
    """
    from .template import plan_with_template, resolve

    ex = extraction
    if settings.planner == "template":
        return plan_with_template(request, corpus=corpus, settings=settings, extraction=ex)
    if settings.planner == "mlx":
        return _plan_with_mlx(request, settings=settings, corpus=corpus, extraction=ex)

    try:
        resolution = resolve(request, corpus=corpus, settings=settings, extraction=ex)
    except (InvalidRequest, NoMatch) as e:
        if request.intent is not None or not _model_available(settings):
            raise
        try:
            return _plan_with_mlx(request, settings=settings, corpus=corpus, extraction=ex)
        except (PlannerError, InvalidRequest, NoMatch) as mlx_error:
            log.warning("MLX planner failed (%s); reporting the template planner's answer", mlx_error)
            raise e from None
    if resolution.determined:
        # Determined but a slot missing: a model could only invent it, so ask instead.
        return plan_with_template(request, corpus=corpus, settings=settings, resolution=resolution)
    if _model_available(settings):
        try:
            return _plan_with_mlx(request, settings=settings, corpus=corpus, extraction=ex)
        except (PlannerError, InvalidRequest, NoMatch) as mlx_error:
            # auto promises a plan when the template path has one: fall back, and say so.
            log.warning("MLX planner failed (%s); falling back to the template planner", mlx_error)
            fallback = plan_with_template(request, corpus=corpus, settings=settings,
                                          resolution=resolution)
            return replace(fallback, rationale=f"{fallback.rationale} The MLX planner failed "
                                               f"first: {str(mlx_error)[:160]}")
    return plan_with_template(request, corpus=corpus, settings=settings, resolution=resolution)


def _model_available(settings: Settings) -> bool:
    from .mlx import model_available

    return model_available(settings)


def _plan_with_mlx(request: Request, *, settings: Settings, corpus: Corpus,
                   extraction: Extraction | None = None) -> Plan:
    from ..retrieve import retrieve_request
    from .mlx import plan_with_mlx

    hits = retrieve_request(request, settings=settings)
    return plan_with_mlx(request, hits, corpus, settings, extraction=extraction)
