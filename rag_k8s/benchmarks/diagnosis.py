"""Benchmark of a pod diagnosis: the diagnose-pod runbook through k8s_exec against the local API
stand-in, next to the kubectl floor of the same steps in the same run.

What runs: the real kubectl (RAG_K8S_KUBECTL, else beside Python) against tests/apiserver with
the failure drills (a LOCAL PRACTICE API, NOT A CLUSTER; it needs a source checkout). The
diagnosis is `k8s_exec` of {intent: diagnose, resource: pod} for the crash-looping pod: planning,
policy for every step, the steps, the analyzers, the suggested action's plan and the audit line.
The floor runs the very argvs that diagnosis ran, with plain subprocess, scheduled the same way
(independent steps at once on MAX_PARALLEL_STEPS threads, a dependent one after its step).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ..config import Settings

NAME = "diagnosis"
TITLE = "Diagnosis: a pod runbook against the API stand-in, with the kubectl floor"
ROUNDS = 12
TARGET_SECONDS = 2.0
TARGET_RATIO = 1.3


def _standin() -> Any:
    root = Path(__file__).resolve().parents[2]
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        from tests.apiserver import StandIn
        from tests.apiserver.drills import drill_fixtures
    except ImportError as e:
        from ..errors import ConfigError

        raise ConfigError("The diagnosis benchmark needs the API stand-in of a source checkout "
                          f"(tests/apiserver): {e}") from None
    return StandIn, drill_fixtures


def _kubectl(settings: Settings) -> str:
    found = settings.kubectl_path()
    if found is None:
        beside = Path(sys.executable).parent / "kubectl"
        if beside.exists():
            found = str(beside)
    if found is None:
        from ..errors import ConfigError

        raise ConfigError("The diagnosis benchmark needs kubectl: set RAG_K8S_KUBECTL.")
    return found


def _floor(kubectl: str, plan: list[tuple[str, list[str], str | None]], parallel: int) -> float:
    """Wall time of the same argvs with plain subprocess, scheduled as the runner schedules them:
    independent steps at once, a dependent one when its `after` step is done."""
    from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

    def one(argv: list[str]) -> None:
        subprocess.run([kubectl, *argv[1:]], stdin=subprocess.DEVNULL, capture_output=True,
                       check=False, env={**os.environ, "KUBERC": "off"})

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        running: dict[Future[None], str] = {pool.submit(one, argv): sid
                                            for sid, argv, after in plan if after is None}
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                finished = running.pop(fut)
                for sid, argv, after in plan:
                    if after == finished:
                        running[pool.submit(one, argv)] = sid
    return time.perf_counter() - started


def _schedule(card: Any, steps: list[dict[str, Any]]) -> list[tuple[str, list[str], str | None]]:
    """(step id, the argv the diagnosis ran, the step it waited for) of every step that ran."""
    ran = {s["id"]: s["argv"] for s in steps if s.get("argv") and s.get("exit_code") is not None}
    return [(s.id, ran[s.id], s.after) for s in card.steps if s.id in ran]


def _stats(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return (f"{statistics.median(values) * 1000:.0f} | {p90 * 1000:.0f} | "
            f"{max(values) * 1000:.0f}")


def run(settings: Settings) -> str:
    """Measure and return a Markdown section."""
    from ..cards import cached_corpus
    from ..diagnose.runbook import MAX_PARALLEL_STEPS
    from ..tool import k8s_exec

    StandIn, drill_fixtures = _standin()
    kubectl = _kubectl(settings)
    saved = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="rag-k8s-bench-diagnosis-") as tmp:
        work = Path(tmp)
        standin = StandIn.start(drill_fixtures(), work / "standin")
        try:
            os.environ.update(KUBECONFIG=str(standin.kubeconfig_path), HOME=str(work),
                              RAG_K8S_KUBECTL=kubectl, RAG_K8S_PLANNER="template",
                              RAG_K8S_AUDIT_LOG=str(work / "audit.log"))
            cfg = Settings.resolve()
            listing = subprocess.run(
                [kubectl, "get", "pods", "-n", "staging", "-l", "app=billing", "-o",
                 "jsonpath={.items[0].metadata.name}"], capture_output=True, text=True,
                check=True, env={**os.environ, "KUBERC": "off"})
            request = {"intent": "diagnose", "resource": "pod", "namespace": "staging",
                       "name": listing.stdout.strip()}
            warm = k8s_exec(request, settings=cfg)  # corpus, policy, kubectl discovery cache
            assert warm["status"] == "executed", warm
            card = cached_corpus(cfg.cards_dir).get("diagnose-pod")
            schedule = _schedule(card, warm["execution"]["steps"])
            ours: list[float] = []
            floor: list[float] = []
            for i in range(ROUNDS):
                # Alternate which goes first so neither always meets a warmer machine.
                order = (0, 1) if i % 2 == 0 else (1, 0)
                for which in order:
                    if which == 0:
                        started = time.perf_counter()
                        result = k8s_exec(request, settings=cfg)
                        ours.append(time.perf_counter() - started)
                        assert result["findings"][0]["reason"] == "CrashLoopBackOff", result
                    else:
                        floor.append(_floor(kubectl, schedule, MAX_PARALLEL_STEPS))
        finally:
            standin.stop()
            os.environ.clear()
            os.environ.update(saved)
    ratio = statistics.median(ours) / statistics.median(floor)
    waiting = sum(1 for _, _, after in schedule if after is not None)
    verdict_time = "met" if statistics.median(ours) < TARGET_SECONDS else "NOT met"
    verdict_ratio = "met" if ratio <= TARGET_RATIO else "NOT met"
    return "\n".join([
        f"The crash-looping drill pod (`diagnose-pod`: {len(schedule)} kubectl steps, "
        f"{len(schedule) - waiting} at once, then {waiting} waiting for the pod's JSON; up to "
        f"{MAX_PARALLEL_STEPS} threads), {ROUNDS} rounds, the two columns alternating. The "
        "floor runs the same argvs with plain subprocess, scheduled the same way.",
        "",
        "| | median ms | p90 ms | max ms |",
        "|---|---|---|---|",
        f"| rag-k8s diagnosis (k8s_exec, findings, audit) | {_stats(ours)} |",
        f"| kubectl floor (same steps, same schedule) | {_stats(floor)} |",
        "",
        f"Ratio of medians: **{ratio:.2f}** (target <= {TARGET_RATIO}: {verdict_ratio}); "
        f"median diagnosis {statistics.median(ours):.2f} s (target < {TARGET_SECONDS:g} s: "
        f"{verdict_time}).",
        "",
        f"Load average during the run: {os.getloadavg()[0]:.1f} (a machine shared with other "
        "work: the absolute figures move with it, the ratio much less).",
    ])
