"""The e2e tests' handles on the API they run against (see conftest.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.apiserver import StandIn
from tests.apiserver.kubectl import KubectlRun, run_kubectl


@dataclass
class Cluster:
    """The API the e2e tests run against: the stand-in, or a real cluster."""

    kubeconfig: Path
    dev_kubeconfig: Path | None
    standin: StandIn | None

    @property
    def real(self) -> bool:
        return self.standin is None

    def need_standin(self) -> StandIn:
        if self.standin is None:
            pytest.skip("needs the local API stand-in (request log, stall or fixtures)")
        return self.standin

    def need_dev_user(self) -> Path:
        if self.dev_kubeconfig is None:
            pytest.skip("set RAG_K8S_E2E_DEV_KUBECONFIG for the namespace-scoped user checks")
        return self.dev_kubeconfig


@dataclass
class E2E:
    """Per-test handle: the cluster, this test's HOME, and kubectl as the checks' own eyes."""

    cluster: Cluster
    home: Path
    monkeypatch: pytest.MonkeyPatch

    def kubectl(self, *args: str, user: str = "admin") -> KubectlRun:
        config = self.cluster.kubeconfig if user == "admin" else self.cluster.need_dev_user()
        return run_kubectl(*args, kubeconfig=config, home=self.home)

    def json(self, *args: str) -> Any:
        run = self.kubectl(*args, "-o", "json")
        assert run.exit_code == 0, run.stderr
        return json.loads(run.stdout)

    def as_dev_user(self) -> None:
        """Point rag-k8s's kubectl at the namespace-scoped user (rag-k8s refuses --context)."""
        self.monkeypatch.setenv("KUBECONFIG", str(self.cluster.need_dev_user()))

    def requests(self) -> list[Any]:
        return self.cluster.need_standin().requests()
