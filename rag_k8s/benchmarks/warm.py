"""Benchmark of the wait a person sees: cold CLI commands in plain words against flags, the CLI
through a warm server, warm retrieval against the bare ONNX query embedding, and the MLX planner
through the warm server against its own seconds per plan.

Every figure is a ratio of two things measured in this one run, interleaved, median of 5 (cold
commands) so load from other processes hits both sides alike. Peak memory is each process's own
maximum resident set (wait4's ru_maxrss; the daemon's VmHWM).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from ..config import Settings
from ..embed_worker import worker_argv

NAME = "warm"
TITLE = "Waiting: cold plain words vs flags, the warm server, ONNX query embeddings"

FREE = "restart the api deployment in prod"
STRUCTURED = ["--intent", "restart", "--resource", "deployment", "-n", "prod", "--name", "api"]
MLX_QUERIES = ["restart the api deployment in prod", "scale deployment worker in staging to 4",
               "show the logs of pod web-1 in dev"]
QUERIES = [
    "restart the api deployment in prod", "why is my pod crashlooping", "scale worker to 5",
    "show the logs of web-1 in dev", "drain node-3 for maintenance", "list the services in staging",
    "who can delete pods here", "roll back the frontend", "events in the dev namespace",
]
ROUNDS = 5
RETRIEVAL_ROUNDS = 20  # 180 pairs: a median of 45 moved by a few hundredths between runs


def _cli() -> str:
    return str(Path(sys.executable).parent / "rag-k8s")


# Runs one command and prints its seconds, peak RSS and exit code. A child forked from this big
# process would report our own RSS as its peak (ru_maxrss counts the pages before exec), so the
# commands are started from this small launcher instead.
_LAUNCHER = """
import json, os, subprocess, sys, time
t0 = time.perf_counter()
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
_, status, usage = os.wait4(p.pid, 0)
print(json.dumps([time.perf_counter() - t0, usage.ru_maxrss, os.waitstatus_to_exitcode(status)]))
"""


def _timed_run(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """(seconds, peak MiB, exit code) of one process: wall time from its start to its exit."""
    out = subprocess.run([sys.executable, "-c", _LAUNCHER, *argv], env=env, capture_output=True,
                         text=True, timeout=900, check=True)
    seconds, maxrss, code = json.loads(out.stdout.strip().splitlines()[-1])
    kib = maxrss / 1024 if sys.platform == "darwin" else maxrss  # bytes on macOS, KiB on Linux
    return float(seconds), kib / 1024, int(code)


def _median(xs: list[float]) -> float:
    return statistics.median(xs)


def _env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "RAG_K8S_HOME": str(settings.home),
           "RAG_K8S_CARDS_DIR": str(settings.cards_dir), "RAG_K8S_ORG_DIR": str(settings.org_dir)}
    env.update(extra)
    return env


class _Daemon:
    """`rag-k8s daemon` in its own process, until closed; its peak memory on the way out."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([_cli(), "daemon"], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline() if self.proc.stderr else ""
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError(f"rag-k8s daemon did not start: {line.strip()}")

    def peak_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


def _cold_rows(settings: Settings) -> tuple[list[str], dict[str, float]]:
    cold = _env(settings, RAG_K8S_NO_SOCKET="1", RAG_K8S_PLANNER="template")
    keys = ("struct", "free", "retrieve", "import", "worker")
    runs: dict[str, list[tuple[float, float, int]]] = {k: [] for k in keys}
    argvs = {"struct": [_cli(), "plan", *STRUCTURED], "free": [_cli(), "plan", FREE],
             "retrieve": [_cli(), "retrieve", FREE],
             "import": [sys.executable, "-c", "import rag_k8s"],
             # The query worker a plain-words command starts, on its own: it loads, says hello,
             # finds its stdin closed and exits.
             "worker": worker_argv()}
    for argv in argvs.values():  # page cache warm, as for any second command of the day
        _timed_run(argv, cold)
    for _ in range(ROUNDS):
        for key, argv in argvs.items():
            runs[key].append(_timed_run(argv, cold))
    bad = [k for k, rs in runs.items() if any(code != 0 for _, _, code in rs)]
    if bad:
        raise RuntimeError(f"cold commands failed: {', '.join(bad)}")
    med = {k: _median([s for s, _, _ in rs]) for k, rs in runs.items()}
    peak = {k: max(m for _, m, _ in rs) for k, rs in runs.items()}

    warm_env = _env(settings, RAG_K8S_PLANNER="template")
    daemon = _Daemon(warm_env)
    try:
        for _ in range(2):
            _timed_run([_cli(), "plan", FREE], warm_env)
        warm = [_timed_run([_cli(), "plan", FREE], warm_env) for _ in range(ROUNDS)]
        daemon_peak = daemon.peak_mib()
    finally:
        daemon.close()
    med["warm"] = _median([s for s, _, _ in warm])
    peak["warm"] = max(m for _, m, _ in warm)
    rows = [
        "| measure (median of 5, one run) | seconds | peak MiB | ratio |",
        "|---|---|---|---|",
        f"| cold `rag-k8s plan` with flags (`{' '.join(STRUCTURED)}`) | {med['struct']:.2f} | "
        f"{peak['struct']:.0f} | 1 |",
        f"| cold `rag-k8s plan \"{FREE}\"` | {med['free']:.2f} | {peak['free']:.0f} | "
        f"**{med['free'] / med['struct']:.2f}** x flags (target <= 1.5) |",
        f"| its query worker alone (load, hello, exit) | "
        f"{med['worker']:.2f} | {peak['worker']:.0f} | on the other core, beside the command |",
        f"| cold `python -c \"import rag_k8s\"` | {med['import']:.2f} | {peak['import']:.0f} | 1 |",
        f"| cold `rag-k8s retrieve \"{FREE}\"` | **{med['retrieve']:.2f}** (target < 1.5 s) | "
        f"{peak['retrieve']:.0f} | {med['retrieve'] / med['import']:.1f} x the import |",
        f"| `rag-k8s plan \"{FREE}\"` through a warm `rag-k8s daemon` | {med['warm']:.2f} | "
        f"{peak['warm']:.0f} (client) | **{med['warm'] / med['struct']:.2f}** x cold flags |",
        f"| the warm daemon itself (template planner) | - | {daemon_peak:.0f} | - |",
    ]
    return rows, med


def _warm_retrieval_rows(settings: Settings) -> list[str]:
    from ._fresh import fresh_retrieval_pairs

    floor, warm = fresh_retrieval_pairs(str(settings.home), str(settings.cards_dir), QUERIES,
                                        RETRIEVAL_ROUNDS)
    f50, w50 = _median(floor) * 1000, _median(warm) * 1000
    return [
        f"| warm `retrieve()` p50, {len(QUERIES)} queries x {RETRIEVAL_ROUNDS} | {w50:.1f} ms | - | "
        f"**{w50 / f50:.2f}** x the bare embedding (target <= 1.1) |",
        f"| bare ONNX query embedding `encode([q])` p50 (the floor) | {f50:.1f} ms | - | 1 |",
    ]


def _mlx_models(settings: Settings) -> list[tuple[str, Path]]:
    from ..models import SMOLLM2_DIR_NAME, TINY_DIR_NAME, is_complete

    out = []
    for label, name in (("tiny random model", TINY_DIR_NAME), ("SmolLM2-135M", SMOLLM2_DIR_NAME)):
        path = settings.models_dir / name
        if is_complete(path):
            out.append((label, path))
    return out


def _mlx_rows(settings: Settings) -> list[str]:
    """The planner's own seconds per plan are the daemon's own time on the same request sent
    straight to its socket, interleaved with the CLI runs: same process, same warm state."""
    from .. import daemon as daemon_client

    rows = []
    for label, path in _mlx_models(settings):
        env = _env(settings, RAG_K8S_PLANNER="mlx", RAG_K8S_MODEL=str(path))
        mlx = Settings.resolve(env=env)
        daemon = _Daemon(env)
        try:
            for q in MLX_QUERIES[:1]:  # compile, prompt cache: what a warm server has done
                _timed_run([_cli(), "plan", q], env)
            own: list[float] = []
            through = []
            for q in MLX_QUERIES:
                saved = dict(os.environ)
                os.environ.clear()
                os.environ.update(env)  # the client's fingerprint is taken from the environment
                try:
                    _, seconds = daemon_client.timed_request(mlx, "plan", side_effects=False,
                                                             payload={"query": q})
                finally:
                    os.environ.clear()
                    os.environ.update(saved)
                own.append(float(seconds or 0.0))
                through.append(_timed_run([_cli(), "plan", q], env))
            peak = daemon.peak_mib()
        finally:
            daemon.close()
        o, t = _median(own), _median([s for s, _, _ in through])
        rows += [
            f"| MLX planner ({label}), the daemon's own time per plan | {o:.2f} s/plan | - | 1 |",
            f"| `rag-k8s plan \"...\"` (CLI wall time) through the warm daemon, MLX ({label}) | {t:.2f} s/plan | "
            f"{peak:.0f} (daemon) | **{t / o:.2f}** x the planner's own (target < 1.5) |",
        ]
    if not rows:
        rows.append("| MLX through the warm daemon | not measured: no local model "
                    "(`make tiny-model`, `make smollm2`) | - | - |")
    return rows


def run(settings: Settings) -> str:
    """Measure and return a Markdown section."""
    from ..index import build_index

    build_index(settings, progress=False)  # fresh index and ONNX export before anything is timed
    rows, _ = _cold_rows(settings)
    rows += _warm_retrieval_rows(settings)
    rows += _mlx_rows(settings)
    lines = [
        "The real console script in fresh processes (cold: no warm server, `RAG_K8S_NO_SOCKET=1`,",
        "template planner), the real `rag-k8s daemon` on its Unix socket (warm), the ONNX Runtime",
        "export of all-MiniLM-L6-v2 (float32, graph optimised once at build-index, 2 intra-op",
        "threads). Cold runs follow one unmeasured run of each, so the page cache is warm. A cold",
        "plain-words command has its query embedded and scored by a query worker process",
        "(`rag_k8s/embed_worker.py`) that loads on the other core while the CLI starts; its peak",
        "memory is its own row, not part of the command's.",
        "",
        *rows,
        "",
    ]
    return "\n".join(lines)
