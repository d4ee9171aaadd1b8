"""Stopping rag-k8s while kubectl runs, through every door that owns a process: the CLI (SIGINT,
SIGTERM), `rag-k8s serve` shutting down with a call in flight, and `rag-k8s mcp` whose client
closes stdin. Each time: kubectl and the child it forked (in or out of its group) are killed, one
audit line says `interrupted`, and `rag-k8s audit verify` passes.

kubectl is the StubbornKubectl stand-in (tests/fakes/stubborn_kubectl.py): it ignores SIGTERM and
forks a sleeping child that ignores it too.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from rag_k8s.config import Settings
from tests.conftest import StubbornKubectl, gone

BIN = Path(sys.executable).parent
DESCRIBE = ["--intent", "describe", "--resource", "pod", "-n", "dev", "--name", "stall-demo",
            "--timeout", "120"]
DESCRIBE_REQUEST = {"intent": "describe", "resource": "pod", "namespace": "dev",
                    "name": "stall-demo", "constraints": {"timeout": 120}}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["RAG_K8S_PLANNER"] = "template"
    return env


def _audit_lines() -> list[dict[str, Any]]:
    log = Settings.resolve().audit_log
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def assert_stopped_and_audited(stubborn: StubbornKubectl) -> None:
    leader, child = stubborn.wait_started()
    end = time.monotonic() + 5
    while not (gone(leader) and gone(child)) and time.monotonic() < end:
        time.sleep(0.02)
    assert gone(leader), f"kubectl {leader} survived"
    assert gone(child), f"kubectl's child {child} survived"
    [line] = _audit_lines()
    assert (line["status"], line["exit_code"], line["command"]) == (
        "interrupted", 130, "kubectl describe pod/stall-demo -n dev")
    verify = subprocess.run([str(BIN / "rag-k8s"), "audit", "verify"], capture_output=True,
                            text=True, env=_env(), timeout=60, check=False)
    assert verify.returncode == 0, verify.stderr
    assert verify.stderr.startswith("OK: ")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("setsid", [False, True], ids=["child-in-group", "child-setsid"])
def test_cli_stopped_while_kubectl_runs(stubborn_kubectl: StubbornKubectl, sig: signal.Signals,
                                        setsid: bool) -> None:
    stubborn_kubectl.mode("hang", setsid=setsid)
    proc = subprocess.Popen([str(BIN / "rag-k8s"), "exec", *DESCRIBE, "--json"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())
    stubborn_kubectl.wait_started()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    body = json.loads(out)
    assert (body["status"], body["execution"]["exit_code"]) == ("interrupted", 130)
    assert body["execution"]["stderr"].endswith(
        ": rag-k8s was interrupted; it and every process it started were killed\n")
    assert_stopped_and_audited(stubborn_kubectl)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_server_shutdown_with_a_call_in_flight(stubborn_kubectl: StubbornKubectl) -> None:
    stubborn_kubectl.mode("hang", setsid=True)
    port = _free_port()
    server = subprocess.Popen([str(BIN / "rag-k8s"), "serve", "--port", str(port)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=_env())
    try:
        base = f"http://127.0.0.1:{port}"
        end = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < end and server.poll() is None, "the server never started"
            time.sleep(0.1)
        answers: list[httpx.Response] = []
        call = threading.Thread(target=lambda: answers.append(
            httpx.post(f"{base}/k8s-exec", json=DESCRIBE_REQUEST, timeout=120)))
        call.start()
        stubborn_kubectl.wait_started()
        server.send_signal(signal.SIGTERM)
        call.join(60)
        server.wait(60)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    [answer] = answers
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "interrupted"
    assert body["execution"]["stderr"].endswith(
        ": the server is shutting down (SIGTERM); it and every process it started were killed\n")
    assert_stopped_and_audited(stubborn_kubectl)


def _rpc(proc: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert proc.stdin is not None
    proc.stdin.write((json.dumps(message) + "\n").encode())
    proc.stdin.flush()


def test_mcp_stdio_closed_with_a_call_in_flight(stubborn_kubectl: StubbornKubectl) -> None:
    stubborn_kubectl.mode("hang", setsid=True)
    proc = subprocess.Popen([str(BIN / "rag-k8s"), "mcp"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env())
    try:
        _rpc(proc, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"}}})
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["id"] == 1
        _rpc(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        _rpc(proc, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                    "params": {"name": "k8s_exec", "arguments": DESCRIBE_REQUEST}})
        stubborn_kubectl.wait_started()
        assert proc.stdin is not None
        proc.stdin.close()  # the client goes away
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert_stopped_and_audited(stubborn_kubectl)


def test_cli_ctrl_c_through_the_warm_server_socket(stubborn_kubectl: StubbornKubectl) -> None:
    """The CLI sends its request to `rag-k8s daemon` (the warm socket); Ctrl-C in the CLI
    half-closes the connection and the daemon stops the kubectl it runs for it."""
    from rag_k8s.daemon import socket_path

    stubborn_kubectl.mode("hang", setsid=True)
    env = _env()
    env.pop("RAG_K8S_NO_SOCKET", None)
    daemon = subprocess.Popen([str(BIN / "rag-k8s"), "daemon", "--no-preload"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        path = socket_path(Settings.resolve())
        end = time.monotonic() + 90
        while not path.exists():
            assert time.monotonic() < end and daemon.poll() is None, "the daemon never listened"
            time.sleep(0.1)
        cli = subprocess.Popen([str(BIN / "rag-k8s"), "exec", *DESCRIBE, "--json"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
        leader, _ = stubborn_kubectl.wait_started()
        assert psutil.Process(leader).parent().pid == daemon.pid  # kubectl runs in the daemon
        cli.send_signal(signal.SIGINT)
        out, err = cli.communicate(timeout=60)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    assert cli.returncode == 130, err
    body = json.loads(out)
    assert (body["status"], body["execution"]["exit_code"]) == ("interrupted", 130)
    assert_stopped_and_audited(stubborn_kubectl)
