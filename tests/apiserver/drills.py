"""The stand-in's failure drills: fixtures.yaml with fixtures_diagnose.yaml on top.

Test infrastructure (a LOCAL PRACTICE API, NOT A CLUSTER): the diagnosis e2e tests and the
diagnosis benchmark start a stand-in with `drill_fixtures()`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .server import DEFAULT_FIXTURES

DRILL_FIXTURES = Path(__file__).resolve().parent / "fixtures_diagnose.yaml"


def drill_fixtures() -> dict[str, Any]:
    """The base fixtures with the drills' objects, logs and pod states appended."""
    base = yaml.safe_load(DEFAULT_FIXTURES.read_text(encoding="utf-8"))
    extra = yaml.safe_load(DRILL_FIXTURES.read_text(encoding="utf-8"))
    for key in ("objects", "logs", "pod_states"):
        base[key] = list(base.get(key) or []) + list(extra.get(key) or [])
    return base
