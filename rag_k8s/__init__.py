"""rag-k8s: a local Kubernetes command agent with curated cards, a constrained planner and guardrails."""

from __future__ import annotations

from typing import Any

__all__ = ["k8s_exec", "plan"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy, so `import rag_k8s.cards` (and the CLI's start) does not pay for the whole pipeline.
    if name in __all__:
        from . import tool

        return getattr(tool, name)
    raise AttributeError(f"module 'rag_k8s' has no attribute {name!r}")
