"""Diagnosis: runbook cards gather evidence read-only; analyzers turn it into findings."""

from __future__ import annotations

from .analyzers import ANALYZERS, POD_ANALYZERS, Gathered, StepOutput, analyze, analyzer
from .findings import Finding, Suggestion
from .runbook import RunbookOutcome, plan_actions, plan_steps, run_runbook

__all__ = ["ANALYZERS", "POD_ANALYZERS", "Finding", "Gathered", "RunbookOutcome", "StepOutput",
           "Suggestion", "analyze", "analyzer", "plan_actions", "plan_steps", "run_runbook"]
