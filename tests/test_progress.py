"""The spinner: on a terminal it names the phase the process waits on; elsewhere it prints
nothing. Merged benchmark sections keep the others."""

from __future__ import annotations

import io
import threading

from rich.console import Console

from rag_k8s import progress
from rag_k8s.bench import merge_sections


def _wait_shown() -> None:
    done = threading.Event()
    for _ in range(500):
        active = progress._ACTIVE
        if active is not None and active.status is not None:
            return
        done.wait(0.01)
    raise AssertionError("the spinner never appeared")


def test_on_a_terminal_the_spinner_names_each_phase_then_clears() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=80)
    with progress.spinner("planning", console=console, delay=0.0):
        _wait_shown()
        with progress.phase("loading the embedding model"):
            assert progress._ACTIVE is not None
            assert progress._ACTIVE.text == "loading the embedding model"
        assert progress._ACTIVE.text == "planning"
    assert progress._ACTIVE is None
    assert "planning" in buf.getvalue()


def test_off_a_terminal_nothing_is_printed_and_phases_cost_nothing() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False)
    with progress.spinner("planning", console=console, delay=0.0):
        assert progress._ACTIVE is None
        with progress.phase("running kubectl", delay=1.0):
            pass
    assert buf.getvalue() == ""


def test_a_kubectl_phase_waits_its_delay_before_showing() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=80)
    with progress.spinner("planning", console=console, delay=3600):
        with progress.phase("running kubectl get pods", delay=0.0):
            _wait_shown()
            assert progress._ACTIVE.text == "running kubectl get pods"
            assert progress._ACTIVE.status.status == "running kubectl get pods"


def test_merge_sections_replaces_only_the_re_measured_section() -> None:
    old = "# rag-k8s benchmarks\n\n- Date: old\n\n## A\n\nold a\n\n## B\n\nold b\n"
    new = merge_sections(old, ["## B\n\nnew b\n"])
    assert new.startswith("# rag-k8s benchmarks\n\n- Date: old\n\n## A\n\nold a\n")
    assert "old b" not in new and "new b" in new and "Re-measured alone" in new
