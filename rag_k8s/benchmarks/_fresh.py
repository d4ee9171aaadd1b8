"""Helper for the benchmarks: time a statement in a fresh Python process (cold imports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def fresh_seconds(setup: str, timed: str, timeout: float = 300) -> float:
    """Seconds `timed` takes in a new interpreter after `setup` (neither shares our imports)."""
    code = (f"import time\n{setup}\nt0 = time.perf_counter()\n{timed}\n"
            "print(time.perf_counter() - t0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=timeout, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1]))


def retrieval_pairs(home: str, cards_dir: str, queries: list[str],
                    rounds: int) -> tuple[list[float], list[float]]:
    """Seconds of the bare query embedding and of `retrieve()` for each query, `rounds` times,
    interleaved (so load from other processes hits both alike), after one unmeasured pass."""
    import time

    from ..config import Settings
    from ..index import query_embedder
    from ..retrieve import retrieve

    settings = Settings.resolve(home=Path(home), cards_dir=Path(cards_dir))
    model = query_embedder(settings)
    for q in queries:  # warm both paths: tokenizer caches, the index, the corpus, the watch
        model.encode([q])
        retrieve(q, settings=settings)
    floor: list[float] = []
    warm: list[float] = []
    for _ in range(rounds):
        for q in queries:
            t0 = time.perf_counter()
            model.encode([q])
            floor.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            retrieve(q, settings=settings)
            warm.append(time.perf_counter() - t0)
    return floor, warm


def fresh_retrieval_pairs(home: str, cards_dir: str, queries: list[str],
                          rounds: int) -> tuple[list[float], list[float]]:
    """`retrieval_pairs` in a new interpreter: the query path as a server runs it, without the
    benchmark's own imports (torch, after an index build) or its heap."""
    code = ("import json, sys\nfrom rag_k8s.benchmarks._fresh import retrieval_pairs\n"
            "print(json.dumps(retrieval_pairs(*json.loads(sys.argv[1]))))")
    out = subprocess.run([sys.executable, "-c", code,
                          json.dumps([home, cards_dir, queries, rounds])],
                         capture_output=True, text=True, timeout=600, check=True)
    floor, warm = json.loads(out.stdout.strip().splitlines()[-1])
    return floor, warm
