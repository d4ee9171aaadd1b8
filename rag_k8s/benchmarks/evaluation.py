"""The public evaluation (`eval/cases.jsonl`) with both planners: accuracy per group and latency.

The MLX run uses the same local model as the planner benchmark (`make smollm2`); it plans every
case with the model, structured ones included, so it measures the model rather than the template
fast path `auto` would take. Takes about 10 minutes on 2 CPU cores.
"""

from __future__ import annotations

from ..config import Settings

NAME = "evaluation"
TITLE = "Evaluation: eval/cases.jsonl with the template and the MLX planner"


def _table(report: object) -> list[str]:
    from ..evaluate import EvalReport

    assert isinstance(report, EvalReport)
    lat = report.latency()
    rows = ["| group | passed / total | accuracy |", "|---|---|---|"]
    for group, g in report.groups().items():
        rows.append(f"| {group} | {g['passed']} / {g['total']} | {g['accuracy']:.1%} |")
    rows.append(f"| **all** | {sum(o.passed for o in report.outcomes)} / {len(report.outcomes)} | "
                f"{report.accuracy():.1%} |")
    rows += ["", f"Latency per plan: p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, "
                 f"max {lat['max']:.0f} ms. Planners used: "
             + ", ".join(f"{k} {v}" for k, v in sorted(report.planner_counts().items())) + "."]
    fails = report.failures
    if fails:
        rows += ["", f"Failures ({len(fails)}, first 12):", ""]
        rows += [f"- `{o.id}`: expected {o.expected_status} `{o.expected_command or '-'}`, got "
                 f"{o.got_status} `{o.got_command or '-'}`" for o in fails[:12]]
    return rows


def run(settings: Settings) -> str:
    """Measure and return a Markdown section."""
    from ..evaluate import default_cases, run_eval
    from .planner import _model_dir

    cases = default_cases()
    lines = [f"Cases: `{cases.name}`.", "", "### Template planner", ""]
    lines += _table(run_eval(cases, planner="template", settings=settings))
    model_dir = _model_dir(settings)
    lines += ["", "### MLX planner", ""]
    if model_dir is None:
        lines.append("No local MLX model: run `make smollm2` for these figures.")
    else:
        lines.append(f"Model: `{model_dir.name}` (every case planned by the model).")
        lines.append("")
        lines += _table(run_eval(cases, planner="mlx",
                                 settings=settings.with_(model=str(model_dir))))
    return "\n".join(lines) + "\n"
