"""Settings precedence (config.py), and the kubectl timeout's own layers: the request's
`constraints.timeout` (the CLI's --timeout) > RAG_K8S_TIMEOUT > config.yaml `timeout` > 15."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rag_k8s import tool
from rag_k8s.config import DEFAULT_TIMEOUT, Settings, effective_timeout
from rag_k8s.errors import ConfigError

GET = {"intent": "get", "resource": "pod", "namespace": "dev"}


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.yaml"
    monkeypatch.setenv("RAG_K8S_CONFIG", str(path))
    return path


def test_default_is_15(config_file: Path) -> None:
    assert Settings.resolve().timeout == DEFAULT_TIMEOUT == 15


def test_config_file_beats_the_default(config_file: Path) -> None:
    config_file.write_text("timeout: 40\n")
    assert Settings.resolve().timeout == 40


def test_environment_beats_the_config_file(config_file: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text("timeout: 40\n")
    monkeypatch.setenv("RAG_K8S_TIMEOUT", "25")
    assert Settings.resolve().timeout == 25


def test_keyword_beats_the_environment(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text("timeout: 40\n")
    monkeypatch.setenv("RAG_K8S_TIMEOUT", "25")
    assert Settings.resolve(timeout=7).timeout == 7


def test_request_timeout_beats_every_setting(config_file: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text("timeout: 40\n")
    monkeypatch.setenv("RAG_K8S_TIMEOUT", "25")
    settings = Settings.resolve(timeout=7)
    assert effective_timeout(3, settings) == 3
    assert effective_timeout(None, settings) == 7


@pytest.mark.parametrize(
    ("file", "env", "request_timeout", "expected"),
    [
        (None, None, None, 15),
        ("timeout: 40\n", None, None, 40),
        ("timeout: 40\n", "25", None, 25),
        ("timeout: 40\n", "25", 3, 3),
    ],
    ids=["default", "file", "env", "request"],
)
def test_the_timeout_that_reaches_the_executor(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, recording_kubectl: Any,
    file: str | None, env: str | None, request_timeout: int | None, expected: int,
) -> None:
    if file:
        config_file.write_text(file)
    if env:
        monkeypatch.setenv("RAG_K8S_TIMEOUT", env)
    seen: list[float] = []
    real_run = tool.execute.run

    def spy(argv: list[str], *, timeout: float, **kw: Any) -> Any:
        seen.append(timeout)
        return real_run(argv, timeout=timeout, **kw)

    monkeypatch.setattr(tool.execute, "run", spy)
    payload: dict[str, Any] = dict(GET)
    if request_timeout is not None:
        payload["constraints"] = {"timeout": request_timeout}
    result = tool.k8s_exec(payload)
    assert result["status"] == "executed"
    assert seen == [expected]
    from rag_k8s import audit

    [line] = list(audit.iter_entries(Settings.resolve().audit_log))
    assert line["request"]["constraints"]["timeout"] == expected  # the log says what applied


@pytest.mark.parametrize(("value", "where"), [("0", "env"), ("301", "env"), ("ten", "env"),
                                              ("timeout: 0\n", "file"),
                                              ("timeout: 500\n", "file")])
def test_out_of_range_timeout_settings_are_refused(config_file: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   value: str, where: str) -> None:
    if where == "env":
        monkeypatch.setenv("RAG_K8S_TIMEOUT", value)
    else:
        config_file.write_text(value)
    with pytest.raises(ConfigError, match="timeout"):
        Settings.resolve()
