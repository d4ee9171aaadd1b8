"""Shared fixtures: an isolated RAG_K8S_HOME per session, a per-test audit log, RecordingKubectl."""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psutil
import pytest

REPO = Path(__file__).resolve().parent.parent
FAKES = Path(__file__).resolve().parent / "fakes"


@pytest.fixture(scope="session")
def rag_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One RAG_K8S_HOME for the session, so the index is built once and shared."""
    return tmp_path_factory.mktemp("rag-home")


@pytest.fixture(autouse=True)
def _isolated_env(
    rag_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Point every setting at test-owned places; nothing reads the developer's own state."""
    for var in list(os.environ):
        if var.startswith("RAG_K8S_") and var != "RAG_K8S_E2E_KUBECONFIG":
            monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RAG_K8S_HOME", str(rag_home))
    monkeypatch.setenv("RAG_K8S_CARDS_DIR", str(REPO / "cards"))
    monkeypatch.setenv("RAG_K8S_ORG_DIR", str(REPO / "org"))
    monkeypatch.setenv("RAG_K8S_AUDIT_LOG", str(tmp_path / "agent.log"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(rag_home / "hf-cache"))
    # No kubectl unless a test asks for one: a stray call fails loudly instead of hitting a cluster.
    monkeypatch.setenv("RAG_K8S_KUBECTL", str(tmp_path / "no-kubectl-configured"))
    yield


@dataclass
class RecordingKubectl:
    """Handle on the RecordingKubectl stand-in binary (tests/fakes/recording_kubectl.py)."""

    path: Path
    log: Path
    monkeypatch: pytest.MonkeyPatch

    @property
    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines() if line]

    @property
    def commands(self) -> list[list[str]]:
        """`calls` without undo's capture reads (`get KIND/NAME [-n NS] -o json
        --ignore-not-found`, rag_k8s.undo), which come before and after every changing command."""
        return [c for c in self.calls if not _is_capture_read(c)]

    def respond(self, stdout: str = "", stderr: str = "", exit_code: int = 0,
                sleep: float = 0) -> None:
        self.monkeypatch.setenv("RECORDING_KUBECTL_STDOUT", stdout)
        self.monkeypatch.setenv("RECORDING_KUBECTL_STDERR", stderr)
        self.monkeypatch.setenv("RECORDING_KUBECTL_EXIT", str(exit_code))
        self.monkeypatch.setenv("RECORDING_KUBECTL_SLEEP", str(sleep))


def _is_capture_read(argv: list[str]) -> bool:
    return (len(argv) in (5, 7) and argv[0] == "get" and "/" in argv[1]
            and argv[-3:] == ["-o", "json", "--ignore-not-found"]
            and (len(argv) == 5 or argv[2] == "-n"))


@pytest.fixture
def recording_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RecordingKubectl:
    """RAG_K8S_KUBECTL pointed at the recording stand-in; `.calls` lists the argv it received."""
    wrapper = tmp_path / "kubectl"
    wrapper.write_text(
        f"#!/bin/sh\nexec {sys.executable} {FAKES / 'recording_kubectl.py'} \"$@\"\n"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    log = tmp_path / "kubectl-calls.jsonl"
    monkeypatch.setenv("RAG_K8S_KUBECTL", str(wrapper))
    monkeypatch.setenv("RECORDING_KUBECTL_LOG", str(log))
    rk = RecordingKubectl(wrapper, log, monkeypatch)
    rk.respond()
    return rk


# ---------------------------------------------------------------- no process outlives rag-k8s


@pytest.fixture(scope="session", autouse=True)
def _pytest_adopts_orphans() -> None:
    """Make the test process a child subreaper (Linux): a process that escapes a rag-k8s process
    tree is re-parented here rather than to init, so the fixture below sees it."""
    from rag_k8s.execute import become_subreaper

    become_subreaper()


def _new_descendants(me: psutil.Process, before: set[int]) -> list[psutil.Process]:
    out = []
    for p in me.children(recursive=True):
        try:
            if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out


@pytest.fixture(autouse=True)
def no_process_outlives_the_test() -> Iterator[None]:
    """Fail the test when a process it started (kubectl, a stand-in, a grandchild) still runs
    after it: rag-k8s must own and end its whole process tree."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    survivors = _new_descendants(me, before)
    end = time.monotonic() + 5  # processes that are exiting get a moment to finish
    while survivors and time.monotonic() < end:
        time.sleep(0.05)
        survivors = _new_descendants(me, before)
    for p in me.children():  # reap zombies adopted during the test
        if p.pid not in before:
            try:
                os.waitpid(p.pid, os.WNOHANG)
            except ChildProcessError:
                pass
    if survivors:
        described = [f"{p.pid} {' '.join(_cmdline(p))[:120]}" for p in survivors]
        for p in survivors:
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        pytest.fail("processes outlived the test: " + "; ".join(described), pytrace=False)


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ["?"]


@dataclass
class StubbornKubectl:
    """Handle on the StubbornKubectl stand-in (tests/fakes/stubborn_kubectl.py)."""

    path: Path
    pidfile: Path
    monkeypatch: pytest.MonkeyPatch

    def mode(self, mode: str = "hang", setsid: bool = False) -> None:
        self.monkeypatch.setenv("STUBBORN_KUBECTL_MODE", mode)
        self.monkeypatch.setenv("STUBBORN_KUBECTL_SETSID", "1" if setsid else "0")

    def wait_started(self, timeout: float = 60) -> tuple[int, int]:
        """(kubectl's pid, its child's pid) once the stand-in runs."""
        end = time.monotonic() + timeout
        while not self.pidfile.exists():
            if time.monotonic() > end:
                raise AssertionError("the stubborn kubectl stand-in never started")
            time.sleep(0.02)
        leader, child = self.pidfile.read_text().split()
        return int(leader), int(child)


@pytest.fixture
def stubborn_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StubbornKubectl:
    """RAG_K8S_KUBECTL pointed at the StubbornKubectl stand-in (ignores SIGTERM, forks a child)."""
    wrapper = tmp_path / "stubborn-kubectl"
    wrapper.write_text(
        f"#!/bin/sh\nexec {sys.executable} {FAKES / 'stubborn_kubectl.py'} \"$@\"\n"
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    pidfile = tmp_path / "stubborn-kubectl.pids"
    monkeypatch.setenv("RAG_K8S_KUBECTL", str(wrapper))
    monkeypatch.setenv("STUBBORN_KUBECTL_PIDFILE", str(pidfile))
    sk = StubbornKubectl(wrapper, pidfile, monkeypatch)
    sk.mode()
    return sk


def gone(pid: int) -> bool:
    """True when `pid` no longer runs (a zombie awaiting its reaping counts as gone)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True
