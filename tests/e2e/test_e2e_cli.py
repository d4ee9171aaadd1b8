"""The `rag-k8s` command line end to end (`python -m rag_k8s`, a real subprocess), and
`audit verify` over the log those runs wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rag_k8s import k8s_exec
from tests.e2e.support import E2E


def rag_k8s(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """The CLI with this test's environment (KUBECONFIG, HOME, RAG_K8S_*), no shell."""
    return subprocess.run([sys.executable, "-m", "rag_k8s", *args], capture_output=True,
                          text=True, env=dict(os.environ), timeout=timeout, check=False)


def test_cli_exec_restart_runs_kubectl_and_prints_the_result_json(e2e: E2E) -> None:
    before = {rs["metadata"]["name"] for rs in
              e2e.json("get", "rs", "-n", "prod", "-l", "app=api")["items"]}
    proc = rag_k8s("exec", "--intent", "restart", "--resource", "deployment", "-n", "prod",
                   "--name", "api", "--yes", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == "executed"
    assert result["plan"]["command"] == "kubectl rollout restart deployment/api -n prod"
    assert result["execution"]["stdout"] == "deployment.apps/api restarted\n"
    after = {rs["metadata"]["name"] for rs in
             e2e.json("get", "rs", "-n", "prod", "-l", "app=api")["items"]}
    assert len(after - before) == 1


def test_cli_denied_exits_3_and_nothing_reaches_the_server(e2e: E2E) -> None:
    e2e.cluster.need_standin().clear_requests()
    proc = rag_k8s("exec", "--intent", "scale", "--resource", "deployment", "-n", "prod",
                   "--name", "api", "--param", "replicas=5", "--yes", "--json")
    assert proc.returncode == 3
    assert json.loads(proc.stdout)["status"] == "denied"
    assert e2e.requests() == []


def test_cli_scale_without_confirmation_exits_4(e2e: E2E) -> None:
    proc = rag_k8s("exec", "--intent", "scale", "--resource", "deployment", "-n", "staging",
                   "--name", "api", "--param", "replicas=3", "--no-prompt", "--json")
    assert proc.returncode == 4
    assert json.loads(proc.stdout)["status"] == "needs_confirmation"


def test_cli_kubectl_failure_exits_5_with_kubectls_message(e2e: E2E) -> None:
    e2e.as_dev_user()
    proc = rag_k8s("exec", "--intent", "get", "--resource", "pod", "-n", "prod", "--json")
    assert proc.returncode == 5
    result = json.loads(proc.stdout)
    assert (result["status"], result["execution"]["stderr"]) == (
        "failed", 'Error from server (Forbidden): pods is forbidden: User "dev-user" cannot '
                  'list resource "pods" in API group "" in the namespace "prod"\n')


def test_audit_verify_over_the_log_the_runs_wrote(e2e: E2E) -> None:
    log = Path(os.environ["RAG_K8S_AUDIT_LOG"])
    statuses = [k8s_exec(p)["status"] for p in (
        {"intent": "get", "resource": "deployment", "namespace": "prod"},
        {"intent": "restart", "resource": "deployment", "namespace": "prod", "name": "web"},
        {"intent": "scale", "resource": "deployment", "namespace": "prod", "name": "api",
         "params": {"replicas": 2}, "constraints": {"confirm": True}},
    )]
    assert statuses == ["executed", "executed", "denied"]
    lines = log.read_text().splitlines()
    assert len(lines) == 3
    proc = rag_k8s("audit", "verify")
    assert proc.returncode == 0, proc.stderr
    assert "3 lines, chain intact" in proc.stderr
    # Rewriting history breaks the chain at that line.
    entry = json.loads(lines[1])
    tampered = json.dumps(entry).replace("executed", "denied", 1)
    log.write_text("\n".join([lines[0], tampered, lines[2]]) + "\n")
    proc = rag_k8s("audit", "verify")
    assert proc.returncode == 1
    assert "BROKEN" in proc.stderr and "line 2" in proc.stderr
