"""Benchmark of the doors: HTTP overhead over plain kubectl, /plan throughput, cold CLI start.

What runs: the real kubectl binary (RAG_K8S_KUBECTL, else the one on PATH or beside Python) with a
throw-away kubeconfig whose server is a closed loopback port, so every call does kubectl's full
start-up, config loading and one refused connection, the same work in both columns, and no
cluster is touched. The server is the real app on a real uvicorn socket on a free port.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..config import Settings

NAME = "interfaces"
TITLE = "Interfaces: HTTP overhead, /plan throughput, cold CLI start"

REQUEST = {"intent": "restart", "resource": "deployment", "namespace": "prod", "name": "api"}
FREE_TEXT = "restart the api deployment in prod"
KUBECONFIG = """apiVersion: v1
kind: Config
current-context: bench
clusters: [{name: closed, cluster: {server: "https://127.0.0.1:%d"}}]
users: [{name: bench, user: {token: not-a-secret}}]
contexts: [{name: bench, context: {cluster: closed, user: bench}}]
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _kubectl(settings: Settings) -> str:
    found = settings.kubectl_path() or shutil.which("kubectl")
    if found is None:
        beside = Path(sys.executable).parent / "kubectl"
        if beside.exists():
            found = str(beside)
    if found is None:
        from ..errors import ConfigError

        raise ConfigError("The interfaces benchmark needs kubectl: set RAG_K8S_KUBECTL.")
    return found


def _before_read(argv: list[str]) -> list[str]:
    """The read-only call undo makes before a change (`kubectl get X/Y -o json ...`)."""
    from ..kubectl_argv import parse_argv
    from ..undo import Target, strategy_of

    strategy = strategy_of(parse_argv(argv).verb)
    assert strategy is not None
    target = strategy.target(parse_argv(argv))
    assert isinstance(target, Target)
    return target.read_argv()


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.1f}"


def run(settings: Settings) -> str:
    """Measure and return a Markdown section."""
    import httpx
    import uvicorn

    from ..index import build_index
    from ..server import create_app

    build_index(settings, progress=False)  # a stale index would be rebuilt inside a timed call
    with tempfile.TemporaryDirectory(prefix="rag-k8s-bench-") as tmp:
        tmpdir = Path(tmp)
        kubeconfig = tmpdir / "kubeconfig"
        kubeconfig.write_text(KUBECONFIG % _free_port())
        kubectl = _kubectl(settings)
        bench_settings = settings.with_(kubectl=kubectl, planner="template",
                                        audit_log=tmpdir / "agent.log")
        saved = {k: os.environ.get(k) for k in ("KUBECONFIG", "HOME")}
        # kubectl reads KUBECONFIG and caches discovery under HOME: keep both in the temp dir.
        os.environ["KUBECONFIG"] = str(kubeconfig)
        os.environ["HOME"] = str(tmpdir)
        try:
            port = _free_port()
            server = uvicorn.Server(uvicorn.Config(create_app(bench_settings), host="127.0.0.1",
                                                   port=port, log_level="warning"))
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            while not server.started:
                time.sleep(0.02)
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=60) as client:
                for _ in range(3):  # warm: embedder, index, corpus, kubectl page cache
                    client.post("/k8s-exec", json=REQUEST)
                exec_times: list[float] = []
                direct_times: list[float] = []
                single_times: list[float] = []
                argv = client.post("/plan", json=REQUEST).json()["plan"]["argv"]
                # Since undo, a change first reads the object it changes (one more kubectl
                # call; the read after it is skipped here, the command failing): the floor
                # runs the same two calls.
                calls = [_before_read(argv), argv]
                for _ in range(20):  # interleaved, so load from other processes hits both alike
                    t0 = time.perf_counter()
                    client.post("/k8s-exec", json=REQUEST).json()
                    exec_times.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    for call in calls:
                        subprocess.run([kubectl, *call[1:]], capture_output=True, check=False,
                                       timeout=60)
                    direct_times.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    subprocess.run([kubectl, *argv[1:]], capture_output=True, check=False,
                                   timeout=60)
                    single_times.append(time.perf_counter() - t0)
                plan_times: list[float] = []
                t_all = time.perf_counter()
                for _ in range(100):
                    t0 = time.perf_counter()
                    client.post("/plan", json=REQUEST)
                    plan_times.append(time.perf_counter() - t0)
                rps = 100 / (time.perf_counter() - t_all)
            server.should_exit = True
            thread.join(timeout=10)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

        cli = str(Path(sys.executable).parent / "rag-k8s")
        env = {**os.environ, "RAG_K8S_PLANNER": "template", "HF_HUB_OFFLINE": "1",
               "RAG_K8S_HOME": str(settings.home), "RAG_K8S_CARDS_DIR": str(settings.cards_dir),
               "RAG_K8S_ORG_DIR": str(settings.org_dir)}
        cold: dict[str, list[float]] = {}
        for label, args in (
            ("structured", ["--intent", "restart", "--resource", "deployment", "-n", "prod",
                            "--name", "api"]),
            ("free text", [FREE_TEXT]),
        ):
            cold[label] = []
            for _ in range(2):
                t0 = time.perf_counter()
                subprocess.run([cli, "plan", *args, "--json"], capture_output=True, env=env,
                               check=False, timeout=300)
                cold[label].append(time.perf_counter() - t0)

    ratio = statistics.median(exec_times) / statistics.median(direct_times)
    return "\n".join([
        "Real kubectl against a closed loopback port (every call does kubectl's full start-up "
        "and one refused connection; no cluster is touched), real uvicorn on loopback, template "
        "planner, 20 warm calls each.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| warm `POST /k8s-exec` p50 | {_ms(exec_times)} ms |",
        f"| the same kubectl calls run directly (the before-state read, the command), p50 | "
        f"{_ms(direct_times)} ms |",
        f"| overhead ratio (/k8s-exec ÷ direct) | {ratio:.2f} (aim ≤ 1.2) |",
        f"| the command alone run directly, p50 | {_ms(single_times)} ms |",
        f"| `POST /plan` p50 (template planner) | {_ms(plan_times)} ms |",
        f"| `POST /plan` sequential throughput | {rps:.0f} requests/s |",
        f"| cold `rag-k8s plan` (structured), best of 2 | {min(cold['structured']):.2f} s |",
        f"| cold `rag-k8s plan` (free text), best of 2 | {min(cold['free text']):.2f} s |",
        "",
        f"argv: `{' '.join(argv)}`",
        "",
    ])
