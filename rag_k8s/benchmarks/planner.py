"""Benchmark of planning: the template fast path, and the MLX planner on a real small model.

The MLX figures need a local model: `RAG_K8S_MODEL` when it names a local directory, else
`$RAG_K8S_HOME/models/smollm2-135m-instruct-4bit` (`make smollm2`). Without one that part of the
section says so and the template figures still appear.

The floor for constrained decoding is unconstrained generation of the same length from the same
prompt with the same loop, so the ratio is what the grammar costs per token.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from ..config import Settings

NAME = "planner"
TITLE = "Planner: template fast path and the constrained MLX planner"

STRUCTURED = [
    {"intent": "restart", "resource": "deployment", "namespace": "prod", "name": "api"},
    {"intent": "scale", "resource": "statefulset", "namespace": "staging", "name": "db",
     "params": {"replicas": 3}, "constraints": {"confirm": True}},
    {"intent": "logs", "resource": "pod", "namespace": "dev", "name": "web-1",
     "params": {"tail": 50}},
    {"intent": "get", "resource": "node"},
]
FREE_TEXT = [
    "restart the api deployment in prod",
    "show me the last 50 lines of logs from pod web-7d9f8b6c5-x2x9z in dev",
    "scale deployment worker in staging to 4 replicas",
    "roll back the frontend deployment in staging",
    "what is using the most cpu among the pods in dev",
    "describe node node-3",
]


def _model_dir(settings: Settings) -> Path | None:
    from ..models import SMOLLM2_DIR_NAME, is_complete

    for candidate in (Path(settings.model).expanduser(), settings.models_dir / SMOLLM2_DIR_NAME):
        if is_complete(candidate):
            return candidate
    return None


def _template_rows(settings: Settings) -> list[str]:
    from ..tool import plan

    tpl = settings.with_(planner="template")
    rows = []
    for label, payloads in (("structured", STRUCTURED), ("free text", [{"query": q}
                                                                       for q in FREE_TEXT])):
        for p in payloads:  # warm: the corpus, the index, the embedder for free text
            plan(p, settings=tpl)
        times = []
        for _ in range(10):
            for p in payloads:
                t0 = time.perf_counter()
                plan(p, settings=tpl)
                times.append(time.perf_counter() - t0)
        rows.append(f"| template planner, {label}: `plan()` p50 (retrieval, planning, policy) | "
                    f"{statistics.median(times) * 1000:.1f} ms |")
    return rows


def _mlx_rows(settings: Settings, model_dir: Path) -> list[str]:
    from ..cards import cached_corpus
    from ..planner.constrained import generate
    from ..planner.mlx import (
        MAX_TOKENS, TEMPERATURE, build_prompt, load_model, plan_with_mlx_traced,
    )
    from ..planner.runtime import use_fast_blas
    from ..planner.schema import plan_schema, schema_cards
    from ._fresh import fresh_seconds
    from ..request import parse_request
    from ..retrieve import retrieve_request

    mlx_settings = settings.with_(planner="mlx", model=str(model_dir))
    corpus = cached_corpus(mlx_settings.cards_dir)
    model, tokenizer = load_model(str(model_dir))
    # In a fresh process: this one may have loaded the model (and mlx) for another section.
    t_load = fresh_seconds("from rag_k8s.planner.mlx import load_model",
                           f"load_model({str(model_dir)!r})")

    traces: list[Any] = []
    outcomes: list[str] = []
    for text in FREE_TEXT:
        request = parse_request({"query": text})
        hits = retrieve_request(request, settings=mlx_settings)
        t0 = time.perf_counter()
        try:
            plan_, trace = plan_with_mlx_traced(request, hits, corpus, mlx_settings)
            outcomes.append(f"`{text}` -> `{plan_.command}` ({time.perf_counter() - t0:.1f} s)")
            traces.append(trace)
        except Exception as e:  # noqa: BLE001 - a refusal is a measured outcome too
            outcomes.append(f"`{text}` -> {type(e).__name__}: {str(e)[:90]} "
                            f"({time.perf_counter() - t0:.1f} s)")
    gens = [g for t in traces for g in t.attempts]
    per_plan = [t.seconds for t in traces]

    # Constrained against unconstrained decoding of the same length, same prompt, same loop.
    constrained_tok: list[float] = []
    free_tok: list[float] = []
    for text in FREE_TEXT[:3]:
        request = parse_request({"query": text})
        hits = retrieve_request(request, settings=mlx_settings)
        schema = plan_schema(request, hits, corpus)
        prompt = build_prompt(tokenizer, request, schema_cards(schema, corpus),
                              {h.card_id: h.snippet for h in hits})
        c = generate(model, tokenizer, prompt, schema=schema, max_tokens=MAX_TOKENS,
                     temperature=TEMPERATURE, seed=0)
        f = generate(model, tokenizer, prompt, schema=None, max_tokens=c.sampled,
                     temperature=TEMPERATURE, seed=0, min_tokens=c.sampled)
        # Per sampled position: both decode the same number of steps after the prefill.
        constrained_tok.append((c.seconds - c.prefill_seconds) / max(1, c.forward_passes - 1))
        free_tok.append((f.seconds - f.prefill_seconds) / max(1, f.forward_passes - 1))
    ratio = statistics.median(constrained_tok) / statistics.median(free_tok)

    def med(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    blas = use_fast_blas()
    q_ms, f_ms = _prefill_per_token(model_dir, model)
    rows = [
        f"| MLX model | `{model_dir.name}` (4-bit checkpoint; OpenBLAS "
        f"{'preloaded' if blas else 'not used'}) |",
        f"| import mlx + load the model + expand it to float32 (fresh process, once) | "
        f"{t_load:.2f} s |",
        f"| MLX planner, seconds per plan, p50 / max ({len(per_plan)} free-text plans) | "
        f"{med(per_plan):.2f} / {max(per_plan, default=float('nan')):.2f} s (aim ≤ 3 s) |",
        f"| generated tokens per attempt, p50 | {med([g.generated for g in gens]):.0f} |",
        f"| sampled tokens per attempt, p50 | {med([g.sampled for g in gens]):.0f} |",
        f"| forward passes per attempt, p50 (forced spans ride along) | "
        f"{med([g.forward_passes for g in gens]):.0f} |",
        f"| prompt tokens, p50 / reused from the kept KV cache, p50 | "
        f"{med([g.prompt_tokens for g in gens]):.0f} / "
        f"{med([g.reused_prompt_tokens for g in gens]):.0f} |",
        f"| prefill seconds per attempt, p50 | {med([g.prefill_seconds for g in gens]):.2f} s |",
        f"| attempts per plan (1 = no retry) | {len(gens) / max(1, len(traces)):.2f} |",
        f"| decode step, constrained / unconstrained, p50 | "
        f"{med(constrained_tok) * 1000:.1f} / {med(free_tok) * 1000:.1f} ms |",
        f"| prefill per prompt token (64 tokens): MLX 4-bit CPU kernels / weights expanded to "
        f"float32 at load | {q_ms:.1f} / {f_ms:.1f} ms ({q_ms / f_ms:.0f}x) |",
        f"| constrained decoding overhead per step | {(ratio - 1) * 100:+.1f}% (aim ≤ 10%) |",
        f"| grammar time per attempt, p50 | "
        f"{med([g.grammar_seconds for g in gens]) * 1000:.1f} ms |",
    ]
    return rows + ["", "Plans made:", ""] + [f"- {o}" for o in outcomes]


def _prefill_per_token(model_dir: Path, expanded: Any, n: int = 64) -> tuple[float, float]:
    """Milliseconds per prompt token through the 4-bit weights as stored, and through the
    float32 copy the planner uses on a CPU (runtime.prepare_for_cpu)."""
    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.models.cache import make_prompt_cache

    quantized = load(str(model_dir))[0]
    ids = mx.array([list(range(100, 100 + n))])
    out = []
    for model in (quantized, expanded):
        mx.eval(model(ids[:, :8], cache=make_prompt_cache(model)))  # warm
        t0 = time.perf_counter()
        mx.eval(model(ids, cache=make_prompt_cache(model)))
        out.append((time.perf_counter() - t0) / n * 1000)
    return out[0], out[1]


def run(settings: Settings) -> str:
    """Measure and return a Markdown section."""
    lines = ["| measure | value |", "|---|---|", *_template_rows(settings)]
    model_dir = _model_dir(settings)
    if model_dir is None:
        lines += ["", "No local MLX model: run `make smollm2` (or set RAG_K8S_MODEL to a local "
                      "model directory) for the MLX figures."]
    else:
        lines += _mlx_rows(settings, model_dir)
    return "\n".join(lines) + "\n"
