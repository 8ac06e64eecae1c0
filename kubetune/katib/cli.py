"""The experiment commands of `kubetune` (kubetune.cli registers them):

    kubetune tune EXPERIMENT.yaml [--follow]    create a search from an experiment file
    kubetune trials NAME [--json]               an experiment's trials: values, status, objective

and the experiment side of `list`, `status`, `delete` and `render`. While following, one line
per trial that ended (its values, objective, the best so far), then the experiment's end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

from kubetune.contract import conditions
from kubetune.contract.conditions import Condition
from kubetune.katib.constants import constants

if TYPE_CHECKING:
    from kubetune.katib.report import ExperimentReport, TrialReport

FOLLOW_INTERVAL = 2.0
EXIT_FAILED = 1


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Adds `tune` and `trials` to the `kubetune` parser."""
    tune = command("tune", help="create a hyperparameter search from an experiment YAML file")
    tune.add_argument("experiment_file", metavar="EXPERIMENT.yaml")
    tune.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="print a line per trial as it ends, until the experiment ends",
    )
    tune.set_defaults(run=cmd_tune)
    trials = command("trials", help="list an experiment's trials: values, status, objective")
    trials.add_argument("name")
    trials.add_argument("--json", action="store_true", help="print JSON")
    trials.set_defaults(run=cmd_trials)


def client(namespace: str | None) -> Any:
    """The KatibClient of the command's namespace (its backend chosen as TrainingClient's)."""
    from kubetune.katib.api.katib_client import KatibClient

    return KatibClient(namespace=namespace)


def load(experiment_file: str) -> dict[str, Any]:
    """tune()'s arguments from an experiment file, saying on stderr that checking them takes seconds."""
    from kubetune.katib.experiment_file import load_experiment_file

    def say() -> None:
        print(
            f"kubetune: checking {experiment_file} (loading transformers and peft) ...",
            file=sys.stderr,
            flush=True,
        )

    return load_experiment_file(experiment_file, on_read=say)


def cmd_tune(args: argparse.Namespace) -> int:
    """`kubetune tune EXPERIMENT.yaml [--follow]`."""
    kwargs = load(args.experiment_file)
    if args.namespace:
        kwargs["namespace"] = args.namespace
    katib = client(args.namespace)
    namespace = kwargs.get("namespace") or katib.namespace
    katib.tune(**kwargs)
    name = kwargs["name"]
    print(f"experiment {namespace}/{name} created ({katib.backend.name} backend)")
    if not args.follow:
        print(f"see its trials with: kubetune -n {namespace} trials {name}")
        return 0
    return follow(katib, name, namespace)


def cmd_trials(args: argparse.Namespace) -> int:
    """`kubetune trials NAME [--json]`."""
    report = client(args.namespace).get_experiment_report(args.name)
    if args.json:
        print(json.dumps([t.to_dict() for t in report.trials], indent=2))
        return 0
    print_trials(report)
    return 0


def print_trials(report: ExperimentReport, out: IO[str] | None = None) -> None:
    """The trials table: values, status, objective; the best marked."""
    out = out or sys.stdout
    if not report.trials:
        print(f"experiment {report.namespace}/{report.name} has no trials yet", file=out)
        return
    parameters = [p["name"] for p in report.parameters]
    rows = [("TRIAL", "STATUS", *parameters, report.objective_metric_name.upper(), "")]
    for trial in report.trials:
        rows.append(
            (
                trial.name,
                trial.status,
                *(trial.values.get(p, "-") for p in parameters),
                _number(trial.objective),
                "best" if trial.name == report.best_trial else "",
            )
        )
    _table(rows, out)


def experiment_exists(katib: Any, name: str) -> bool:
    """Whether the namespace has an experiment of that name."""
    try:
        katib.get_experiment_report(name)
    except (RuntimeError, ValueError):  # none of that name, an invalid name, or no Katib there
        return False
    return True


def print_experiments(katib: Any, out: IO[str] | None = None) -> None:
    """The experiments table of `kubetune list` (nothing when there are none)."""
    out = out or sys.stdout
    try:
        reports = katib.list_experiment_reports()
    except RuntimeError as e:
        if "CRD is not installed" not in str(e):  # a cluster without Katib has no experiments
            print(f"kubetune: warning: cannot list experiments: {e}", file=sys.stderr)
        return
    if not reports:
        return
    rows = [("EXPERIMENT", "STATUS", "TRIALS", "BEST", "CREATED")]
    for report in reports:
        ended = sum(1 for t in report.trials if t.completion_time)
        best = report.best
        shown = f"{_number(best.objective)} ({best.name})" if best else "-"
        total = report.max_trial_count or "?"
        rows.append(
            (report.name, report.status, f"{ended}/{total}", shown, report.creation_time or "-")
        )
    print(file=out)
    _table(rows, out)


def print_status(report: ExperimentReport, as_json: bool, out: IO[str] | None = None) -> None:
    """`kubetune status NAME` of an experiment (or its report as JSON)."""
    out = out or sys.stdout
    if as_json:
        print(json.dumps(report.to_dict(), indent=2), file=out)
        return
    goal = "" if report.objective_goal is None else f", goal {report.objective_goal}"
    print(f"experiment:  {report.namespace}/{report.name} ({report.backend})", file=out)
    print(
        f"status:      {report.status}" + (f": {report.message}" if report.message else ""),
        file=out,
    )
    print(f"objective:   {report.objective_type} {report.objective_metric_name}{goal}", file=out)
    print(f"algorithm:   {report.algorithm_name}", file=out)
    print(
        f"trials:      {len(report.trials)} of {report.max_trial_count or 'unlimited'}, "
        f"{report.parallel_trial_count or constants.DEFAULT_PARALLEL_TRIAL_COUNT} at once",
        file=out,
    )
    best = report.best
    if best is not None:
        values = " ".join(f"{k}={v}" for k, v in best.values.items())
        print(f"best trial:  {best.name}: {values} -> {_number(best.objective)}", file=out)
        if best.output_dir:
            print(f"best model:  {best.output_dir}", file=out)
    for key, label in (
        ("results_csv", "results:"),
        ("objective_png", "objective:"),
        ("parameters_png", "parameters:"),
    ):
        if key in report.outputs:
            print(f"{label:<12} {report.outputs[key]}", file=out)
    print("conditions:", file=out)
    for c in report.conditions:
        print(
            f"  {c.get('type', ''):<11} {c.get('status', ''):<5} {c.get('lastTransitionTime') or '':<20} "
            f"{c.get('reason', '')}: {c.get('message', '')}",
            file=out,
        )


def trial_line(
    report: ExperimentReport, trial: TrialReport, index: int, best: TrialReport | None
) -> str:
    """One followed trial: `trial 3/8 NAME Succeeded: lr=3e-05 r=12 -> train_loss=0.6931 (best 0.6930: NAME)`."""
    values = " ".join(f"{k}={v}" for k, v in trial.values.items())
    total = report.max_trial_count or "?"
    result = f"{report.objective_metric_name}={_number(trial.objective)}"
    best_text = f"best {_number(best.objective)}: {best.name}" if best else "no best yet"
    message = "" if trial.status == constants.TRIAL_CONDITION_SUCCEEDED else f" [{trial.message}]"
    return f"trial {index}/{total} {trial.name} {trial.status}: {values} -> {result} ({best_text}){message}"


def follow(
    katib: Any,
    name: str,
    namespace: str,
    out: IO[str] | None = None,
    interval: float = FOLLOW_INTERVAL,
) -> int:
    """Prints a line per trial as it ends, then how the experiment ended; 0 when it succeeded."""
    out = out or sys.stdout
    shown: set[str] = set()
    started = time.monotonic()
    try:
        while True:
            report = katib.get_experiment_report(name, namespace)
            ended = [
                (index, trial)
                for index, trial in enumerate(report.trials, 1)
                if trial.completion_time and trial.name not in shown
            ]
            # In the order they ended, so that "best so far" is true of each line.
            for index, trial in sorted(ended, key=lambda pair: pair[1].completion_time or ""):
                shown.add(trial.name)
                print(
                    trial_line(report, trial, index, _best_among(report, shown)),
                    file=out,
                    flush=True,
                )
            if report.status in conditions.TERMINAL:
                break
            time.sleep(interval)
    except KeyboardInterrupt:
        print(
            f"\nstopped following; the experiment keeps running. `kubetune -n {namespace} trials "
            f"{name}` shows its trials, `kubetune -n {namespace} delete {name}` stops it.",
            file=sys.stderr,
        )
        return 130
    took = int(time.monotonic() - started)
    print(
        f"experiment {namespace}/{name} {report.status} after {took // 60}:{took % 60:02d}: {report.message}",
        file=out,
    )
    best = report.best
    if best is not None:
        values = " ".join(f"{k}={v}" for k, v in best.values.items())
        print(
            f"best trial: {best.name}: {values} -> {report.objective_metric_name}={_number(best.objective)}",
            file=out,
        )
        if best.output_dir:
            print(f"best model: {best.output_dir}", file=out)
    if "results_csv" in report.outputs:
        print(f"results: {report.outputs['results_csv']}", file=out)
    return 0 if report.status == Condition.SUCCEEDED else EXIT_FAILED


def _best_among(report: ExperimentReport, names: set[str]) -> TrialReport | None:
    from kubetune.katib.metrics import is_better

    best = None
    for trial in report.trials:
        if (
            trial.name not in names
            or trial.status != constants.TRIAL_CONDITION_SUCCEEDED
            or trial.objective is None
        ):
            continue
        if best is None or is_better(trial.objective, best.objective, report.objective_type):
            best = trial
    return best


def _number(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.6g}"
    return "-"


def _table(rows: list[tuple[Any, ...]], out: IO[str]) -> None:
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out
        )
