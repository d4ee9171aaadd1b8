"""The CLI in a real pseudo-terminal (pexpect), as a person uses it: the confirmation prompt, the
declined summary, Ctrl-C at the prompt and while kubectl runs, and `audit tail` at 80 columns.

Output is read as the terminal gets it (CRLF line ends, ANSI colours, which are stripped)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pexpect
import pytest

from rag_k8s import audit
from rag_k8s.config import Settings
from tests.conftest import StubbornKubectl, gone

RAG_K8S = str(Path(sys.executable).parent / "rag-k8s")
SCALE = ["exec", "--intent", "scale", "--resource", "deployment", "-n", "staging", "--name",
         "api", "-p", "replicas=3"]
SCALE_ARGV = ["scale", "deployment/api", "--replicas=3", "-n", "staging"]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
PROMPT_LINES = [
    "About to run: kubectl scale deployment/api --replicas=3 -n staging",
    "risk: medium",
    "  - scale is medium risk: it runs only when confirmed (--yes)",
]


_SPAWNED: list[pexpect.spawn] = []


@pytest.fixture(autouse=True)
def _close_terminals() -> Any:
    """A test that fails half-way still ends the rag-k8s it started in a terminal."""
    yield
    while _SPAWNED:
        child = _SPAWNED.pop()
        if child.isalive():
            child.close(force=True)


def spawn(args: list[str], columns: int = 80) -> pexpect.spawn:
    env = dict(os.environ)
    env.update(RAG_K8S_PLANNER="template", TERM="xterm-256color", COLUMNS=str(columns))
    child = pexpect.spawn(RAG_K8S, args, env=env, dimensions=(24, columns), encoding="utf-8",
                          timeout=120)
    _SPAWNED.append(child)
    return child


_CONTROL = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])|\r|\n|[^\x1b\r\n]+|\x1b")


def screen_lines(text: str) -> list[str]:
    """The lines as a terminal shows them: a tiny emulator of what rag-k8s sends (CR, LF,
    cursor up, erase line; colours dropped), so the transient spinner's frames, which Rich
    erases, leave nothing behind."""
    lines: list[str] = [""]
    row = col = 0
    for m in _CONTROL.finditer(text):
        token = m.group(0)
        if token == "\r":
            col = 0
        elif token == "\n":
            row += 1
            if row == len(lines):
                lines.append("")
        elif m.group(2) == "A":  # cursor up
            row = max(0, row - int(m.group(1) or 1))
        elif m.group(2) == "K":  # erase the line
            lines[row] = ""
            col = 0 if m.group(1) == "2" else col
        elif token.startswith("\x1b"):
            continue  # colours, cursor show/hide
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + token + line[col + len(token):]
            col += len(token)
    return lines


def finish(child: pexpect.spawn) -> tuple[list[str], int]:
    """Read to the end; (the lines printed, the exit status)."""
    child.expect(pexpect.EOF)
    rest = child.before
    child.close()
    return screen_lines(rest), child.exitstatus


def audit_lines() -> list[dict[str, Any]]:
    log = Settings.resolve().audit_log
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def expect_prompt(child: pexpect.spawn) -> None:
    child.expect_exact("Run it? [y/N]: ")
    assert [line for line in screen_lines(child.before) if line] == PROMPT_LINES


def test_yes_at_the_prompt_runs_the_shown_command(recording_kubectl: Any) -> None:
    recording_kubectl.respond(stdout="deployment.apps/api scaled\n")
    child = spawn(SCALE)
    expect_prompt(child)
    child.sendline("y")
    lines, code = finish(child)
    assert code == 0
    assert lines[0] == "y"  # the terminal echoes the answer
    assert "decision: allowed (confirmed)" in lines
    assert "  - scale is medium risk: confirmed (--yes)" in lines
    assert "deployment.apps/api scaled" in lines
    assert recording_kubectl.commands == [SCALE_ARGV]


def test_no_at_the_prompt_is_reported_as_declined(recording_kubectl: Any) -> None:
    child = spawn(SCALE)
    expect_prompt(child)
    child.sendline("n")
    lines, code = finish(child)
    assert code == 4
    assert [line for line in lines if line] == [
        "n",
        "status: aborted: you declined at the prompt, so nothing ran",
        "command: kubectl scale deployment/api --replicas=3 -n staging (not run)",
    ]
    assert recording_kubectl.calls == []
    assert [e["status"] for e in audit_lines()] == ["needs_confirmation"]


def test_ctrl_c_at_the_prompt_runs_nothing(recording_kubectl: Any) -> None:
    child = spawn(SCALE)
    expect_prompt(child)
    child.sendintr()
    lines, code = finish(child)
    assert code == 130
    assert [line for line in lines if line and line != "^C"] == [
        "Interrupted at the prompt; nothing ran."]
    assert recording_kubectl.calls == []
    assert [e["status"] for e in audit_lines()] == ["needs_confirmation"]


@pytest.mark.parametrize("setsid", [False, True], ids=["child-in-group", "child-setsid"])
def test_ctrl_c_while_kubectl_runs_stops_its_tree_and_audits_it(
    stubborn_kubectl: StubbornKubectl, setsid: bool
) -> None:
    stubborn_kubectl.mode("hang", setsid=setsid)
    child = spawn(["exec", "--intent", "describe", "--resource", "pod", "-n", "dev", "--name",
                   "stall-demo", "--timeout", "120"])
    leader, forked = stubborn_kubectl.wait_started()
    child.sendintr()
    lines, code = finish(child)
    assert code == 130
    assert "status: interrupted" in lines
    assert "started" in lines  # what kubectl printed before it was stopped
    assert any(line.startswith("kubectl was stopped after ") and line.endswith(
        ": rag-k8s was interrupted; it and every process it started were killed")
        for line in lines), lines
    assert gone(leader) and gone(forked)
    [entry] = audit_lines()
    assert (entry["status"], entry["exit_code"]) == ("interrupted", 130)
    verify = subprocess.run([RAG_K8S, "audit", "verify"], capture_output=True, text=True,
                            timeout=60, check=False)
    assert verify.returncode == 0, verify.stderr


def _seed_audit_log() -> None:
    log = Settings.resolve().audit_log
    common = {"level": "INFO", "intent": "scale", "namespace": "staging", "resource": "deployment",
              "name": "api", "reasons": [], "planner": "template", "risk": "medium"}
    audit.append_entry(log, {
        **common, "timestamp": "2026-12-02T20:19:36.123Z", "status": "executed",
        "operation_id": "8490649f-1111-4111-8111-111111111111", "exit_code": 0, "duration": 0.42,
        "command": "kubectl scale deployment/api-with-a-rather-long-name --replicas=3 -n staging"})
    audit.append_entry(log, {
        **common, "timestamp": "2026-12-02T20:20:01.500Z", "status": "needs_confirmation",
        "level": "WARNING", "operation_id": "1c2d3e4f-2222-4222-8222-222222222222",
        "exit_code": None, "duration": None,
        "command": "kubectl scale deployment/api --replicas=3 -n staging"})
    audit.append_entry(log, {
        **common, "timestamp": "2026-12-02T20:21:12.000Z", "status": "invalid", "level": "WARNING",
        "operation_id": "77aa88bb-3333-4333-8333-333333333333", "exit_code": None,
        "duration": None, "command": None, "reasons": ["params.replica: unknown field"]})


def test_audit_tail_fits_80_columns_and_keeps_the_command() -> None:
    _seed_audit_log()
    lines, code = finish(spawn(["audit", "tail"], columns=80))
    assert code == 0
    rendered = [line.rstrip() for line in lines if line.strip()]
    # The wide status drops INTENT (the command names it); the command folds, never vanishes.
    assert rendered == [
        "TIME            STATUS              NAMESPACE  EXIT  COMMAND",
        "12-02 20:19:36  executed            staging    0     kubectl scale",
        "                                                     deployment/api-with-a-rathe",
        "                                                     r-long-name --replicas=3 -n",
        "                                                     staging",
        "12-02 20:20:01  needs_confirmation  staging          kubectl scale",
        "                                                     deployment/api --replicas=3",
        "                                                     -n staging",
        "12-02 20:21:12  invalid             staging          params.replica: unknown",
        "                                                     field",
    ]
    assert all(len(line) <= 80 for line in lines)


def test_audit_tail_shows_more_columns_when_there_is_room() -> None:
    _seed_audit_log()
    lines, code = finish(spawn(["audit", "tail", "-n", "1"], columns=160))
    assert code == 0
    # Room for INTENT and OPERATION; EXIT and DURATION have nothing to show for this entry.
    assert [line.rstrip() for line in lines if line.strip()] == [
        "TIME            STATUS   NAMESPACE  INTENT  OPERATION  COMMAND",
        "12-02 20:21:12  invalid  staging    scale   77aa88bb   params.replica: unknown field",
    ]
