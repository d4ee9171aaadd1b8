"""Execution: run the kubectl binary as an argv list, with a timeout, truncation and redaction."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str
    duration: float
    truncated: bool = False
    timed_out: bool = False
    dry_run: bool = False

    def to_dict(self) -> dict[str, Any]:
        """CONTRACT §2's `execution` object."""
        return asdict(self)
