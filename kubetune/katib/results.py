"""An experiment's results: one row per trial (values, status, objective, metrics) as CSV and
JSON, and two plots as PNG: the objective per trial (with the best so far), and each
hyperparameter against the objective. Made from the Experiment and its Trials in API form, so
they are the same for both backends.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kubetune.contract import layout
from kubetune.katib import metrics
from kubetune.katib.constants import constants


def objective_of(experiment: Mapping[str, Any]) -> tuple[str, str, str]:
    """(objective metric name, objective type, metric strategy) of an Experiment (API form)."""
    objective = experiment["spec"]["objective"]
    name = objective["objectiveMetricName"]
    kind = objective.get("type", "maximize")
    strategy = next(
        (s["value"] for s in objective.get("metricStrategies") or [] if s.get("name") == name),
        metrics.default_strategy(kind),
    )
    return name, kind, strategy


def trial_status(trial: Mapping[str, Any]) -> str:
    """The trial's latest true condition (Created when none)."""
    true = [
        c for c in (trial.get("status") or {}).get("conditions") or [] if c.get("status") == "True"
    ]
    return str(true[-1]["type"]) if true else constants.TRIAL_CONDITION_CREATED


def rows(
    experiment: Mapping[str, Any], trials: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """One row per trial, in creation order: trial, status, each parameter's value, objective
    (the figure Katib optimises: the metric strategy's), then each metric's latest value."""
    name, _, strategy = objective_of(experiment)
    parameters = [p["name"] for p in experiment["spec"].get("parameters") or []]
    found = []
    for trial in trials:
        assignments = {
            a["name"]: _typed(a.get("value"))
            for a in trial["spec"].get("parameterAssignments") or []
        }
        observed = ((trial.get("status") or {}).get("observation") or {}).get("metrics") or []
        row: dict[str, Any] = {"trial": trial["metadata"]["name"], "status": trial_status(trial)}
        row.update({p: assignments.get(p) for p in parameters})
        row["objective"] = metrics.objective_value(observed, name, strategy)
        for metric in observed:
            row[metric["name"]] = _typed(metric.get("latest"))
        found.append(row)
    return found


def best_row(
    experiment: Mapping[str, Any], table: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The succeeded row with the best objective (the first of equals), or None."""
    _, kind, _ = objective_of(experiment)
    best = None
    for row in table:
        if row["status"] != constants.TRIAL_CONDITION_SUCCEEDED or row["objective"] is None:
            continue
        if best is None or metrics.is_better(row["objective"], best["objective"], kind):
            best = row
    return dict(best) if best is not None else None


def _typed(text: Any) -> Any:
    """A value as text becomes a number where it is one (parameter values, metrics)."""
    if not isinstance(text, str):
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    if not math.isfinite(number):
        return text
    return (
        int(number)
        if number.is_integer() and "." not in text and "e" not in text.lower()
        else number
    )


def to_csv(table: Sequence[Mapping[str, Any]]) -> str:
    """The rows as CSV text, a column per key (empty cells for None)."""
    columns: list[str] = []
    for row in table:
        columns += [key for key in row if key not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns or ["trial"], lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return out.getvalue()


def write(
    experiment: Mapping[str, Any],
    trials: Sequence[Mapping[str, Any]],
    csv_path: Path,
    json_path: Path,
    objective_png: Path | None = None,
    parameters_png: Path | None = None,
) -> list[dict[str, Any]]:
    """Writes the results table (CSV, JSON) and, when paths are given, the plots; returns the rows."""
    table = rows(experiment, trials)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    tmp.write_text(to_csv(table))
    tmp.replace(csv_path)
    best = best_row(experiment, table)
    layout.write_json_atomic(
        json_path, {"best": best, "trials": table, "objective": objective_of(experiment)[0]}
    )
    if objective_png is not None and parameters_png is not None:
        plot(experiment, table, objective_png, parameters_png)
    return table


def plot(
    experiment: Mapping[str, Any],
    table: Sequence[Mapping[str, Any]],
    objective_png: Path,
    parameters_png: Path,
) -> bool:
    """The objective per trial (with the best so far) and each parameter against the objective,
    as PNG; False when no trial has an objective yet."""
    name, kind, _ = objective_of(experiment)
    scored = [(i + 1, row) for i, row in enumerate(table) if row["objective"] is not None]
    if not scored:
        return False
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    xs = [i for i, _ in scored]
    ys = [row["objective"] for _, row in scored]
    ax.plot(xs, ys, "o", label=f"{name} of the trial")
    best_so_far = []
    best: float | None = None
    for value in ys:
        best = value if best is None or metrics.is_better(value, best, kind) else best
        best_so_far.append(best)
    ax.step(xs, best_so_far, where="post", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(name)
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_title(f"{experiment['metadata']['name']}: {name} ({kind})")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    _save(fig, objective_png)
    plt.close(fig)

    parameters = [p["name"] for p in experiment["spec"].get("parameters") or []]
    fig, axes = plt.subplots(
        1, max(1, len(parameters)), figsize=(4 * max(1, len(parameters)), 3.6), squeeze=False
    )
    for ax, parameter in zip(axes[0], parameters, strict=False):
        values = [row.get(parameter) for _, row in scored]
        if all(isinstance(v, int | float) for v in values):
            ax.plot(values, ys, "o")
            spec = next(p for p in experiment["spec"]["parameters"] if p["name"] == parameter)
            if (spec.get("feasibleSpace") or {}).get("distribution") == "logUniform":
                ax.set_xscale("log")
        else:
            labels = sorted({str(v) for v in values})
            ax.plot([labels.index(str(v)) for v in values], ys, "o")
            ax.set_xticks(range(len(labels)), labels)
        ax.set_xlabel(parameter)
        ax.set_ylabel(name)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    _save(fig, parameters_png)
    plt.close(fig)
    return True


def _save(fig: Any, path: Path) -> None:
    """Saves the figure as PNG atomically: a reader sees the old plot or the new, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=100, format="png")
    tmp.replace(path)


def as_json(table: Sequence[Mapping[str, Any]]) -> str:
    """The rows as JSON text."""
    return json.dumps(list(table), indent=2)
