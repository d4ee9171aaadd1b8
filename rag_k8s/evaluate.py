"""The public evaluation: plan every case of `eval/cases.jsonl` and score status and command.

A case's expected status is what `k8s_exec` would return without running kubectl: `planned` stands
for "allowed, would run", and an allowed medium/high-risk plan without `confirm` (and not a dry-run)
counts as `needs_confirmation`. Commands are compared by meaning (kubectl_argv.parse_argv): verb,
canonical kind, names, namespace, extra positionals and the flag set, so `deploy/api` matches
`deployment api`, `-n` matches `--namespace`, and flag order and `=` spelling do not matter.
"""

from __future__ import annotations

import json
import math
import shlex
import statistics
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import Settings
from .errors import ConfigError, RagK8sError

if TYPE_CHECKING:
    from rich.console import Console

Group = Literal["structured", "free_text", "refused", "confirmation", "supported", "must_refuse"]
GROUPS: tuple[str, ...] = ("structured", "free_text", "refused", "confirmation", "supported",
                           "must_refuse")
Status = Literal["planned", "denied", "needs_confirmation", "invalid", "no_match"]
# Statuses under which nothing would run: what a must-refuse case may get.
REFUSALS = frozenset({"denied", "invalid", "no_match"})


class Expect(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Status
    command: str | None = None
    # For a refusal: words the reason must contain (the part refused, the verb never run).
    reason: str | None = None


class EvalCase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=80)
    group: Group
    request: dict[str, Any]
    expect: Expect
    # Where the case comes from (eval/kubectl-help.jsonl: the kubectl help page it rewrites).
    source: str | None = None
    intent: str | None = None  # the intent the words ask for (supported cases)
    # "card" or "slot": the case needs a card or slot not in this checkout yet (reported apart).
    needs: Literal["card", "slot"] | None = None


def default_cases() -> Path:
    """`eval/cases.jsonl` of the source checkout the package runs from."""
    path = Path(__file__).resolve().parent.parent / "eval" / "cases.jsonl"
    if not path.is_file():
        raise ConfigError("No eval/cases.jsonl beside the package; pass --cases PATH.")
    return path


def load_cases(path: Path) -> list[EvalCase]:
    """Read and validate a cases file; raises ConfigError naming the line and the problem."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read: {e.strerror}") from None
    cases: list[EvalCase] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            case = EvalCase.model_validate(json.loads(line))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}:{n}: not valid JSON: {e.msg}") from None
        except ValidationError as e:
            err = e.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            raise ConfigError(f"{path}:{n}: {loc}: {err['msg']}") from None
        if case.id in seen:
            raise ConfigError(f"{path}:{n}: id {case.id!r} is used twice")
        seen.add(case.id)
        cases.append(case)
    if not cases:
        raise ConfigError(f"{path}: no cases found")
    return cases


def command_key(command: str | list[str]) -> tuple[Any, ...]:
    """What a command means, for comparison; an unparseable command compares as its tokens."""
    from .kubectl_argv import parse_argv

    argv = shlex.split(command) if isinstance(command, str) else list(command)
    try:
        p = parse_argv(argv)
    except RagK8sError:
        return ("unparsed", tuple(argv))
    flags = frozenset((k, tuple(v)) for k, v in p.flags.items() if k != "namespace")
    return (p.verb, p.kind or p.resource, tuple(p.names), p.namespace, tuple(p.extra), flags,
            tuple(p.trailing))


def same_command(expected: str, got: str | list[str] | None) -> bool:
    return got is not None and command_key(expected) == command_key(got)


def effective_status(result: dict[str, Any], request: dict[str, Any]) -> str:
    """The status `k8s_exec` would give without running kubectl (see the module docstring)."""
    status = str(result["status"])
    constraints = request.get("constraints") or {}
    if (status == "planned" and result["decision"]["requires_confirmation"]
            and not constraints.get("confirm") and not constraints.get("dryRun")):
        return "needs_confirmation"
    return status


@dataclass(frozen=True)
class CaseOutcome:
    id: str
    group: str
    passed: bool
    expected_status: str
    expected_command: str | None
    got_status: str
    got_command: str | None
    planner: str | None
    latency_ms: float
    reason: str = ""
    # An allowed plan whose action or values differ from what the case expects (or any allowed
    # plan for a must-refuse case); `changes_cluster` when that plan would change the cluster.
    unfaithful: bool = False
    changes_cluster: bool = False
    needs: str | None = None


@dataclass
class EvalReport:
    planner: str
    cases_path: str
    outcomes: list[CaseOutcome] = field(default_factory=list)

    def groups(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for group in GROUPS:
            rows = [o for o in self.outcomes if o.group == group]
            if rows:
                passed = sum(o.passed for o in rows)
                out[group] = {"total": len(rows), "passed": passed,
                              "accuracy": round(passed / len(rows), 4)}
        return out

    def accuracy(self, group: str | None = None) -> float:
        if group == "supported_now":  # supported cases whose cards and slots exist here
            rows = [o for o in self.outcomes if o.group == "supported" and o.needs is None]
        else:
            rows = [o for o in self.outcomes if group is None or o.group == group]
        return sum(o.passed for o in rows) / len(rows) if rows else 0.0

    def unfaithful(self) -> dict[str, int]:
        """Allowed plans that do something else than asked; those that change the cluster."""
        rows = [o for o in self.outcomes if o.unfaithful]
        return {"total": len(rows), "changing": sum(o.changes_cluster for o in rows),
                "must_refuse_allowed": sum(o.group == "must_refuse" for o in rows)}

    def needs_counts(self) -> dict[str, dict[str, int]]:
        """Supported cases that need a card or slot not here yet: how many, how many passed."""
        out: dict[str, dict[str, int]] = {}
        for o in self.outcomes:
            if o.needs:
                row = out.setdefault(o.needs, {"total": 0, "passed": 0})
                row["total"] += 1
                row["passed"] += o.passed
        return out

    @property
    def failures(self) -> list[CaseOutcome]:
        return [o for o in self.outcomes if not o.passed]

    def latency(self) -> dict[str, float]:
        """Milliseconds per plan: p50, p95 (nearest rank), mean and max."""
        ms = sorted(o.latency_ms for o in self.outcomes)
        if not ms:
            return {"p50": 0.0, "p95": 0.0, "mean": 0.0, "max": 0.0}
        return {
            "p50": round(statistics.median(ms), 2),
            "p95": round(ms[max(0, math.ceil(0.95 * len(ms)) - 1)], 2),
            "mean": round(statistics.fmean(ms), 2),
            "max": round(ms[-1], 2),
        }

    def planner_counts(self) -> dict[str, int]:
        return dict(Counter(o.planner or "none" for o in self.outcomes))

    def to_dict(self) -> dict[str, Any]:
        return {
            "planner": self.planner,
            "cases": self.cases_path,
            "total": len(self.outcomes),
            "passed": sum(o.passed for o in self.outcomes),
            "accuracy": round(self.accuracy(), 4),
            "groups": self.groups(),
            "unfaithful": self.unfaithful(),
            "needs": self.needs_counts(),
            "latency_ms": self.latency(),
            "planners": self.planner_counts(),
            "failures": [asdict(o) for o in self.failures],
        }


def parse_thresholds(items: list[str]) -> dict[str, float]:
    """`GROUP=FRACTION` strings (`all` for every case) as a dict; InvalidRequest naming `--min`."""
    from .errors import InvalidRequest

    out: dict[str, float] = {}
    for item in items:
        group, _, value = item.partition("=")
        if group not in (*GROUPS, "all", "supported_now"):
            raise InvalidRequest("--min", f"{group!r} is not a group: {', '.join(GROUPS)}, "
                                          "supported_now or all")
        try:
            fraction = float(value)
        except ValueError:
            fraction = -1.0
        if not 0.0 <= fraction <= 1.0:
            raise InvalidRequest("--min", f"{item!r}: give GROUP=FRACTION with 0 <= FRACTION <= 1")
        out[group] = fraction
    return out


def below_thresholds(report: EvalReport, thresholds: dict[str, float]) -> list[str]:
    """One line per group whose accuracy is under its threshold. A set with must-refuse cases
    also fails on any unfaithful plan that changes the cluster, and any allowed must-refuse."""
    lines = [f"{group}: {report.accuracy(None if group == 'all' else group):.1%} < {t:.1%}"
             for group, t in thresholds.items()
             if report.accuracy(None if group == "all" else group) < t]
    if any(o.group == "must_refuse" for o in report.outcomes):
        u = report.unfaithful()
        if u["changing"]:
            lines.append(f"{u['changing']} unfaithful plan(s) would change the cluster")
        if u["must_refuse_allowed"]:
            lines.append(f"{u['must_refuse_allowed']} must-refuse case(s) got an allowed plan")
    return lines


def run_case(case: EvalCase, settings: Settings) -> CaseOutcome:
    """Plan one case (kubectl never runs) and compare it with its expectation."""
    from .tool import plan

    start = time.perf_counter()
    try:
        result = plan(case.request, settings=settings)
    except RagK8sError as e:  # one broken case (say, a model that cannot load) is a failure
        return CaseOutcome(
            id=case.id, group=case.group, passed=False, expected_status=case.expect.status,
            expected_command=case.expect.command, got_status="error", got_command=None,
            planner=None, latency_ms=round((time.perf_counter() - start) * 1000, 3),
            reason=f"{type(e).__name__}: {e}",
        )
    latency = (time.perf_counter() - start) * 1000
    status = effective_status(result, case.request)
    plan_ = result.get("plan") or {}
    got_command = plan_.get("command")
    reasons = result["decision"]["reasons"]
    expected = case.expect
    passed, reason = True, ""
    allowed = status in ("planned", "needs_confirmation")
    if case.group == "must_refuse" and status in REFUSALS and expected.status in REFUSALS:
        # invalid vs no_match is a wording choice; what matters is that nothing would run and
        # the reason names the part refused.
        text = "; ".join(reasons)
        if expected.reason and expected.reason.lower() not in text.lower():
            passed, reason = False, f"refused, but the reason does not name {expected.reason!r}: " \
                                    f"{text[:200]}"
    elif status != expected.status:
        passed, reason = False, "; ".join(reasons) or f"status {status}"
    elif expected.command is not None and not same_command(expected.command, plan_.get("argv")):
        passed, reason = False, "the command differs in meaning"
    elif expected.reason and expected.reason.lower() not in "; ".join(reasons).lower():
        passed, reason = False, f"the reason does not name {expected.reason!r}"
    unfaithful = allowed and (case.group == "must_refuse" or (
        expected.command is not None and not same_command(expected.command, plan_.get("argv"))))
    changes = False
    if unfaithful:
        from .policy import is_mutating

        changes = bool(plan_.get("argv")) and is_mutating(plan_["argv"])
    return CaseOutcome(
        id=case.id, group=case.group, passed=passed, expected_status=expected.status,
        expected_command=expected.command, got_status=status, got_command=got_command,
        planner=plan_.get("planner"), latency_ms=round(latency, 3), reason=reason,
        unfaithful=unfaithful, changes_cluster=changes, needs=case.needs,
    )


def run_eval(cases_path: Path, *, planner: str, settings: Settings) -> EvalReport:
    """Plan every case with `planner` (template, mlx or auto) and score it.

    Args:
        cases_path: a JSONL file of cases (`eval/cases.jsonl` in the repository).
        planner: which planner to force for the run.
        settings: the base settings; only the planner choice is overridden.
    """
    if planner not in ("auto", "template", "mlx"):
        raise ConfigError(f"planner {planner!r} is not one of auto, template, mlx")
    cases = load_cases(cases_path)
    run_settings = settings.with_(planner=planner)
    report = EvalReport(planner=planner, cases_path=str(cases_path))
    for case in cases:
        report.outcomes.append(run_case(case, run_settings))
    return report


def render_report(report: EvalReport, console: Console) -> None:
    """Accuracy per group, latency, planners used and the failures, as Rich tables."""
    from rich.table import Table

    summary = Table(title=f"rag-k8s eval: planner {report.planner}")
    for col in ("group", "passed", "total", "accuracy"):
        summary.add_column(col, justify="left" if col == "group" else "right")
    for group, g in report.groups().items():
        summary.add_row(group, str(g["passed"]), str(g["total"]), f"{g['accuracy']:.1%}")
    summary.add_row("all", str(sum(o.passed for o in report.outcomes)),
                    str(len(report.outcomes)), f"{report.accuracy():.1%}", style="bold")
    console.print(summary)
    if any(o.group in ("supported", "must_refuse") for o in report.outcomes):
        u = report.unfaithful()
        console.print(f"unfaithful plans (allowed, but not what the words ask): {u['total']}, "
                      f"of which change the cluster: {u['changing']}; allowed must-refuse: "
                      f"{u['must_refuse_allowed']}")
        now = [o for o in report.outcomes if o.group == "supported" and o.needs is None]
        if now:
            console.print(f"supported with cards and slots here: {sum(o.passed for o in now)}/"
                          f"{len(now)} ({report.accuracy('supported_now'):.1%})")
        for needs, n in report.needs_counts().items():
            console.print(f"supported but needing a new {needs}: {n['passed']}/{n['total']} right")

    lat = report.latency()
    console.print(
        f"latency per plan: p50 {lat['p50']:.1f} ms, p95 {lat['p95']:.1f} ms, "
        f"mean {lat['mean']:.1f} ms, max {lat['max']:.1f} ms"
    )
    console.print("planners used: " + ", ".join(
        f"{name} {n}" for name, n in sorted(report.planner_counts().items())))

    if report.failures:
        failures = Table(title=f"failures ({len(report.failures)})")
        for col in ("id", "group", "expected", "got", "why"):
            failures.add_column(col, overflow="fold")
        for o in report.failures:
            failures.add_row(
                o.id, o.group, f"{o.expected_status}: {o.expected_command or '-'}",
                f"{o.got_status}: {o.got_command or '-'}", o.reason,
            )
        console.print(failures)
    else:
        console.print("no failures")
