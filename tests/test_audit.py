"""rag_k8s.audit: line contents, concurrent writers, torn lines and tamper detection."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from rag_k8s import audit
from rag_k8s.audit import GENESIS_HASH, VerifyReport, canonical_json, entry_hash

REPO = Path(__file__).resolve().parent.parent


def executed_result(i: int = 0, stdout: str = "deployment.apps/api restarted\n",
                    stderr: str = "") -> dict[str, Any]:
    return {
        "operation_id": f"op-{i}",
        "status": "executed",
        "plan": {
            "card_id": "restart-deployment",
            "command": "kubectl rollout restart deployment/api -n prod",
            "argv": ["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"],
            "risk_level": "low",
            "planner": "template",
            "sources": [{"card_id": "restart-deployment", "score": 0.83}],
            "rationale": "restart the api deployment",
        },
        "decision": {"allowed": True, "requires_confirmation": False, "reasons": [],
                     "suggestion": None},
        "execution": {"exit_code": 0, "stdout": stdout, "stderr": stderr, "duration": 0.412,
                      "truncated": False, "timed_out": False, "dry_run": False},
    }


REQUEST = {"intent": "restart", "resource": "deployment", "namespace": "prod", "name": "api",
           "constraints": {"confirm": False, "dryRun": False, "timeout": 15}}


def write_lines(path: Path, count: int) -> list[dict[str, Any]]:
    return [audit.write_operation(path, result=executed_result(i), request=REQUEST)
            for i in range(count)]


def raw_lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_executed_operation_line_has_every_field_and_output_digest_only(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "nested" / "agent.log"  # parent dirs are created
    stdout = "deployment.apps/api restarted\n"
    entry = audit.write_operation(log, result=executed_result(7, stdout=stdout, stderr="warn\n"),
                                  request=REQUEST)

    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["timestamp"])
    output = (stdout + "warn\n").encode()
    assert {k: v for k, v in entry.items() if k not in ("timestamp", "hash")} == {
        "level": "INFO",
        "operation_id": "op-7",
        "status": "executed",
        "intent": "restart",
        "namespace": "prod",
        "resource": "deployment",
        "name": "api",
        "command": "kubectl rollout restart deployment/api -n prod",
        "argv": ["kubectl", "rollout", "restart", "deployment/api", "-n", "prod"],
        "card_id": "restart-deployment",
        "planner": "template",
        "risk": "low",
        "reasons": [],
        "suggestion": None,
        "exit_code": 0,
        "duration": 0.412,
        "timed_out": False,
        "truncated": False,
        "dry_run": False,
        "output_sha256": hashlib.sha256(output).hexdigest(),
        "output_bytes": len(output),
        "request": REQUEST,
        "prev_hash": GENESIS_HASH,
    }
    # The documented hash contract: sha256 of the canonical JSON without `hash`.
    body = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert entry["hash"] == hashlib.sha256(canonical.encode()).hexdigest()
    text = log.read_text()
    assert text == canonical_json(entry).decode() + "\n"
    assert stdout not in text  # never the raw output


@pytest.mark.parametrize(
    ("status", "level"),
    [("executed", "INFO"), ("planned", "INFO"), ("denied", "WARNING"),
     ("needs_confirmation", "WARNING"), ("invalid", "WARNING"), ("no_match", "WARNING"),
     ("failed", "ERROR"), ("timeout", "ERROR")],
)
def test_level_follows_status(tmp_path: Path, status: str, level: str) -> None:
    result = {"operation_id": "x", "status": status, "plan": None,
              "decision": {"reasons": ["because"], "suggestion": None}, "execution": None}
    entry = audit.write_operation(tmp_path / "agent.log", result=result, request=None)
    assert (entry["level"], entry["status"], entry["reasons"]) == (level, status, ["because"])
    assert (entry["exit_code"], entry["output_sha256"], entry["output_bytes"]) == (None, None, None)


def test_denied_command_is_logged_with_reasons_suggestion_and_credentials_hidden(
    tmp_path: Path,
) -> None:
    result = {
        "operation_id": "d1", "status": "denied",
        "plan": {"card_id": "delete-pod",
                 "command": "kubectl delete pod api-7d9f8b6c5-x2x9z -n prod --token=abc123",
                 "argv": ["kubectl", "delete", "pod", "api-7d9f8b6c5-x2x9z", "-n", "prod",
                          "--token", "abc123"],
                 "risk_level": "high", "planner": "mlx"},
        "decision": {"allowed": False, "requires_confirmation": False,
                     "reasons": ["deleting a pod is refused"],
                     "suggestion": "kubectl rollout restart deployment/api -n prod"},
        "execution": None,
    }
    entry = audit.write_operation(tmp_path / "agent.log", result=result,
                                  request={"intent": "delete", "namespace": "prod"})
    assert entry["command"] == "kubectl delete pod api-7d9f8b6c5-x2x9z -n prod --token=[REDACTED]"
    assert entry["argv"] == ["kubectl", "delete", "pod", "api-7d9f8b6c5-x2x9z", "-n", "prod",
                             "--token", "[REDACTED]"]
    assert (entry["level"], entry["risk"], entry["planner"]) == ("WARNING", "high", "mlx")
    assert entry["reasons"] == ["deleting a pod is refused"]
    assert entry["suggestion"] == "kubectl rollout restart deployment/api -n prod"
    assert "abc123" not in (tmp_path / "agent.log").read_text()


@pytest.mark.parametrize(
    ("raw_request", "expected_request", "expected_intent"),
    [
        ({"intent": "restart", "bogus": 1}, {"intent": "restart", "bogus": 1}, "restart"),
        ({"intent": 5, "query": "x" * 3000},
         '{"intent":5,"query":"' + "x" * (2000 - 21) + "... [truncated 1023 chars]", None),
        ("not json at all" * 200, ("not json at all" * 200)[:2000], None),
    ],
    ids=["unknown-key", "oversized-payload", "raw-string"],
)
def test_invalid_request_is_logged_with_raw_payload_cut_to_2000_chars(
    tmp_path: Path, raw_request: Any, expected_request: Any, expected_intent: str | None,
) -> None:
    result = {"operation_id": "i1", "status": "invalid", "plan": None,
              "decision": {"allowed": False, "requires_confirmation": False,
                           "reasons": ["bogus: unknown field"], "suggestion": None},
              "execution": None}
    entry = audit.write_operation(tmp_path / "agent.log", result=result, request=raw_request)
    assert entry["request"] == expected_request
    assert entry["intent"] == expected_intent
    assert audit.verify(tmp_path / "agent.log").ok


WORKER = """
import os, sys, time
from pathlib import Path
from rag_k8s import audit

log, go, worker = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
while not go.exists():  # start together, so the writers really contend
    time.sleep(0.002)
for i in range(200):
    audit.write_operation(log, request={"intent": "get", "namespace": "dev"}, result={
        "operation_id": f"{worker}-{i}", "status": "executed",
        "plan": {"command": "kubectl get pods -n dev",
                 "argv": ["kubectl", "get", "pods", "-n", "dev"]},
        "decision": {"reasons": []},
        "execution": {"exit_code": 0, "stdout": "x" * 5000, "stderr": "", "duration": 0.1},
    })
"""


def test_four_processes_writing_200_operations_each_give_800_whole_chained_lines(
    tmp_path: Path,
) -> None:
    log, go = tmp_path / "agent.log", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, str(log), str(go), f"w{n}"], env=env)
        for n in range(4)
    ]
    time.sleep(0.3)
    go.touch()
    assert [w.wait(timeout=60) for w in workers] == [0, 0, 0, 0]

    lines = raw_lines(log)
    assert len(lines) == 800
    entries = [json.loads(line) for line in lines]
    assert all(line.endswith(b"\n") for line in lines)
    assert sorted(e["operation_id"] for e in entries) == sorted(
        f"w{n}-{i}" for n in range(4) for i in range(200))
    assert audit.verify(log) == VerifyReport(True, 800, 800, None, None, False)


def test_torn_last_line_leaves_earlier_lines_readable_and_next_write_recovers(
    tmp_path: Path,
) -> None:
    log = tmp_path / "agent.log"
    written = write_lines(log, 5)
    whole = canonical_json(dict(written[-1], operation_id="crashed")) + b"\n"
    with log.open("ab") as f:
        f.write(whole[: len(whole) // 2])  # a crash mid-write

    assert [e["operation_id"] for e in audit.tail(log, 20)] == [f"op-{i}" for i in range(5)]
    assert audit.verify(log) == VerifyReport(
        True, 6, 5, None, "line 6 is incomplete (a write was interrupted); the 5 lines before it "
        "verify", True)

    recovered = audit.write_operation(log, result=executed_result(99), request=REQUEST)
    assert recovered["recovered_after_torn_line"] is True
    assert recovered["prev_hash"] == written[-1]["hash"]
    assert audit.verify(log) == VerifyReport(True, 7, 6, None, None, False)
    assert [e["operation_id"] for e in audit.tail(log, 2)] == ["op-4", "op-99"]
    after = audit.write_operation(log, result=executed_result(100), request=REQUEST)
    assert "recovered_after_torn_line" not in after
    assert after["prev_hash"] == recovered["hash"]
    assert audit.verify(log).ok


def _rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize(
    ("line", "field", "value"),
    [(1, "status", "denied"), (3, "exit_code", 1), (3, "namespace", "dev"),
     (4, "output_sha256", "0" * 64), (6, "prev_hash", "f" * 64), (6, "hash", "e" * 64),
     (2, "argv", ["kubectl", "delete", "ns", "prod"]),
     (5, "timestamp", "2020-01-01T00:00:00.000Z")],
)
def test_editing_any_field_of_a_line_is_caught_at_that_line(
    tmp_path: Path, line: int, field: str, value: Any
) -> None:
    log = tmp_path / "agent.log"
    write_lines(log, 6)
    lines = raw_lines(log)
    entry = json.loads(lines[line - 1])
    entry[field] = value
    lines[line - 1] = canonical_json(entry) + b"\n"
    _rewrite(log, lines)

    report = audit.verify(log)
    assert (report.ok, report.first_bad_line, report.valid_lines, report.lines) == (
        False, line, line - 1, 6)


def test_edit_with_recomputed_hash_is_caught_at_the_next_line(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    write_lines(log, 6)
    lines = raw_lines(log)
    entry = json.loads(lines[2])
    entry["status"] = "denied"
    entry["hash"] = entry_hash(entry)
    lines[2] = canonical_json(entry) + b"\n"
    _rewrite(log, lines)

    assert audit.verify(log) == VerifyReport(
        False, 6, 3, 4, "line 4 does not follow line 3: its prev_hash does not match; a line was "
        "deleted, inserted or reordered", False)


@pytest.mark.parametrize(
    ("tamper", "first_bad", "problem"),
    [
        (lambda ls: ls[:2] + ls[3:], 3, "line 3 does not follow line 2"),
        (lambda ls: ls[1:], 1, "line 1 does not follow the start of the log"),
        (lambda ls: ls[:3] + [ls[4], ls[3]] + ls[5:], 4, "line 4 does not follow line 3"),
        (lambda ls: ls[:2] + [ls[1]] + ls[2:], 3, "line 3 does not follow line 2"),
        (lambda ls: ls[:4] + [b"not json\n"] + ls[5:], 5,
         "line 5 is not a valid JSON audit entry"),
        (lambda ls: ls[:5] + [b"{}\n"], 6, "line 6 has no hash or prev_hash field"),
    ],
    ids=["delete-middle-line", "delete-first-line", "swap-lines-4-5", "duplicate-line-2",
         "garbage-line", "entry-without-hash"],
)
def test_deleted_reordered_or_forged_lines_are_caught(
    tmp_path: Path, tamper: Any, first_bad: int, problem: str
) -> None:
    log = tmp_path / "agent.log"
    write_lines(log, 6)
    _rewrite(log, tamper(raw_lines(log)))

    report = audit.verify(log)
    assert (report.ok, report.first_bad_line, report.torn_tail) == (False, first_bad, False)
    assert report.problem is not None and report.problem.startswith(problem)


def test_missing_log_verifies_empty_and_tails_nothing(tmp_path: Path) -> None:
    log = tmp_path / "absent.log"
    assert audit.verify(log) == VerifyReport(True, 0, 0, None, None, False)
    assert audit.tail(log) == []
    assert list(audit.iter_entries(log)) == []


def test_tail_returns_last_n_entries_oldest_first(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    write_lines(log, 30)
    assert [e["operation_id"] for e in audit.tail(log, 3)] == ["op-27", "op-28", "op-29"]
    assert len(audit.tail(log)) == 20
    assert audit.tail(log, 0) == []


def test_render_tail_table_shows_one_row_per_entry(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    write_lines(log, 2)
    denied = {"operation_id": "d", "status": "invalid", "plan": None, "execution": None,
              "decision": {"reasons": ["[bold]name[/]: must be DNS-1123 [REDACTED]"]}}
    audit.write_operation(log, result=denied, request=None)
    table = audit.render_tail_table(audit.tail(log))
    assert table.row_count == 3
    assert [c.header for c in table.columns] == [
        "time", "status", "intent", "namespace", "exit", "duration", "operation", "undo",
        "command"]
    console = Console(record=True, width=240)
    console.print(table)
    text = console.export_text()
    assert "kubectl rollout restart deployment/api -n prod" in text
    assert "0.412s" in text
    assert "[bold]name[/]: must be DNS-1123 [REDACTED]" in text  # shown as text, not markup


def test_logging_yaml_tails_the_audit_log_with_a_json_parser() -> None:
    config = yaml.safe_load((REPO / "logging.yaml").read_text())
    (tail_input,) = config["pipeline"]["inputs"]
    assert (tail_input["name"], tail_input["path"]) == ("tail", "logs/agent.log")
    parsers = {p["name"]: p for p in config["parsers"]}
    assert parsers[tail_input["parser"]]["format"] == "json"
    assert parsers[tail_input["parser"]]["time_key"] == "timestamp"
    assert config["pipeline"]["outputs"], "an example output is configured"


def test_audit_module_import_stays_light() -> None:
    code = textwrap.dedent("""
        import sys
        import rag_k8s.audit, rag_k8s.execute, rag_k8s.redact
        heavy = {"torch", "sentence_transformers", "faiss", "mlx", "rich"} & set(sys.modules)
        print(sorted(heavy))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    assert out.stdout == "[]\n"


# --- strict JSON whatever the payload (issue 11) ---------------------------------------------


class _Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _strict(raw: bytes) -> dict[str, Any]:
    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in an audit line")

    return json.loads(raw.decode("utf-8"), parse_constant=refuse)  # type: ignore[no-any-return]


def _deep(levels: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(levels):
        node["a"] = {}
        node = node["a"]
    return root


HOSTILE_REQUESTS: list[tuple[str, Any]] = [
    ("nan", {"intent": "scale", "params": {"replicas": float("nan")}}),
    ("infinity", {"intent": "get", "x": float("inf"), "y": -float("inf")}),
    ("lone-surrogate", {"intent": "restart", "query": "\ud800 and \udfff"}),
    ("surrogate-key", {"\ud800": 1}),
    ("non-string-keys", {1: "a", None: "b", ("t",): "c", 2.5: "d"}),
    ("5000-deep", _deep(5000)),
    ("5000-digit-int", {"params": {"replicas": 10**5000}}),
    ("set-bytes-object", {"a": {1, 2}, "b": b"\xff", "c": _Unprintable(), "d": object()}),
    ("list-payload", [float("nan"), "\ud800", _deep(100)]),
    ("string-payload", "kubectl get pods \ud800 password=hunter2"),
]


@pytest.mark.parametrize("request_", [r for _, r in HOSTILE_REQUESTS],
                         ids=[i for i, _ in HOSTILE_REQUESTS])
def test_any_request_gives_one_strict_json_line_that_verifies(tmp_path: Path,
                                                              request_: Any) -> None:
    log = tmp_path / "agent.log"
    result = {"operation_id": "op-x", "status": "invalid", "plan": None,
              "decision": {"allowed": False, "requires_confirmation": False,
                           "reasons": ["request: bad"], "suggestion": None}, "execution": None}
    audit.write_operation(log, result=result, request=request_)
    [raw] = raw_lines(log)
    entry = _strict(raw)
    assert entry["status"] == "invalid" and "audit_error" not in entry
    assert "hunter2" not in raw.decode()
    assert audit.verify(log).ok


def test_nan_and_surrogates_in_the_result_itself_are_made_safe(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    result = executed_result(stdout="caf\udce9 ok\n")
    result["execution"]["duration"] = float("nan")
    result["plan"]["rationale"] = "\ud800"
    audit.write_operation(log, result=result, request={**REQUEST, "query": "\ud800"})
    entry = _strict(raw_lines(log)[0])
    assert entry["duration"] == "nan"
    assert entry["request"]["query"] == "\\ud800"
    assert entry["output_bytes"] == len("caf\\udce9 ok\n")
    assert audit.verify(log).ok


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_a_result_that_cannot_be_read_still_leaves_a_line(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    broken = {"operation_id": "op-9", "status": "executed", "plan": "not an object",
              "decision": None, "execution": None}
    audit.write_operation(log, result=broken, request=REQUEST)
    entry = _strict(raw_lines(log)[0])
    assert (entry["operation_id"], entry["status"], entry["level"]) == ("op-9", "executed", "INFO")
    assert entry["audit_error"] == "AttributeError: 'str' object has no attribute 'get'"
    assert audit.verify(log).ok


def test_the_request_query_reasons_and_suggestion_are_redacted(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    result = {"operation_id": "op-1", "status": "invalid", "plan": None,
              "decision": {"allowed": False, "requires_confirmation": False,
                           "reasons": ["name: 'token=abc123' is not allowed here"],
                           "suggestion": "kubectl get pods --token s3cr3t"},
              "execution": None}
    request = {"query": "restart api, db password=hunter2 and Bearer eyJhbGciOiJI.eyJzdWIiOiIx.c2ln",
               "params": {"api_key": "k-123"}}
    entry = audit.write_operation(log, result=result, request=request)
    text = log.read_text()
    for secret in ("hunter2", "eyJhbGciOiJI", "k-123", "abc123", "s3cr3t"):
        assert secret not in text
    assert entry["request"]["query"] == "restart api, db password=[REDACTED] and Bearer [REDACTED]"
    assert entry["request"]["params"] == {"api_key": "[REDACTED]"}
    assert entry["reasons"] == ["name: 'token=[REDACTED]' is not allowed here"]
    assert entry["suggestion"] == "kubectl get pods --token [REDACTED]"


def test_extra_fields_such_as_undo_are_added_safe_and_redacted(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    entry = audit.write_operation(
        log, result=executed_result(), request=REQUEST,
        extra={"undo": {"argv": ["kubectl", "rollout", "undo", "deployment/api", "-n", "prod"],
                        "note": "token=abc", "score": float("inf")}})
    assert entry["undo"] == {"argv": ["kubectl", "rollout", "undo", "deployment/api", "-n", "prod"],
                             "note": "token=[REDACTED]", "score": "inf"}
    assert _strict(raw_lines(log)[0])["undo"] == entry["undo"]
    assert audit.verify(log).ok


def test_verify_reports_a_legacy_nan_line_instead_of_crashing(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    write_lines(log, 1)
    with log.open("a") as f:
        f.write('{"duration":NaN,"hash":"x","prev_hash":"y"}\n')
    report = audit.verify(log)
    assert (report.ok, report.first_bad_line) == (False, 2)
