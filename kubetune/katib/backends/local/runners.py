"""The trial runners of local experiments: each trial a local kubetune job, or a function call
in this process (the same search loop drives both).

`LocalJobRunner` creates each trial as a job of the local backend, named after the trial and
labelled with the experiment, so the local queue admits it as any job: a fine-tuning trial is the
experiment's JobSpec with the trial's values, its workspace linked to the experiment's shared one
(model, dataset and preprocessing cache fetched and made once); a custom objective's trial is a
function job (`create_job(train_func=...)`) calling the objective with the trial's values as
text, as Katib does. What a trial reported: for fine-tuning, its logged records (history.jsonl)
and final metrics (metrics.json); for a custom objective, its output lines as Katib's StdOut
collector reads them, or what it pushed with `report_metrics`.

`InProcessRunner` calls a custom objective in this process, one trial after another, reading its
printed metrics (or `report_metrics`) the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import itertools
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubetune.contract import conditions, layout
from kubetune.contract.conditions import Condition
from kubetune.contract.layout import OutputDir
from kubetune.contract.spec import JobSpec
from kubetune.katib import metrics
from kubetune.katib.backends.local.search import Outcome, TrialRunner
from kubetune.katib.backends.local.store import ExperimentRecord, TrialRecord, TrialState
from kubetune.katib.constants import constants
from kubetune.katib.metrics import MetricLog
from kubetune.katib.request import FUNCTION_FORM, ExperimentRequest
from kubetune.katib.space import set_values
from kubetune.training.backends.base import PodSelector
from kubetune.training.backends.local.backend import LocalBackend
from kubetune.training.backends.local.jobdir import job_dir, worker_source

PENDING = "Pending"
# The reason of a job whose supervisor was told to stop (SIGTERM).
STOPPED = "Stopped"
# Where a custom objective's report_metrics calls land, in its job's workspace.
PUSHED_METRICS_FILE = ".kubetune-katib-metrics.jsonl"


def trial_labels(request: ExperimentRequest, trial: str) -> dict[str, str]:
    """The labels of a trial's job: the experiment's and the trial's names, as Katib's."""
    return {constants.EXPERIMENT_LABEL: request.name, constants.TRIAL_LABEL: trial}


def parameter_texts(request: ExperimentRequest, values: dict[str, Any]) -> dict[str, str]:
    """The trial's values as Katib hands them to a custom objective: text."""
    return {p.name: p.text(values[p.name]) for p in request.parameters}


def pushed_logs(path: Path, names: list[str]) -> list[MetricLog]:
    """The values `report_metrics` appended to `path` (one JSON object a line)."""
    found = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        for name, value in (record.get("metrics") or {}).items():
            if name in names:
                found.append(
                    MetricLog(str(record.get("time") or metrics.ZERO_TIME), name, str(value))
                )
        # A line cut short by a crash is skipped.
    return found


class LocalJobRunner(TrialRunner):
    """Runs each trial as a local job (see the module docstring)."""

    def __init__(
        self,
        request: ExperimentRequest,
        backend: LocalBackend,
        secrets: dict[str, str] | None = None,
        shared_workspace: Path | None = None,
    ) -> None:
        self.request = request
        self.backend = backend
        self.secrets = dict(secrets or {})
        self.shared_workspace = shared_workspace

    @property
    def namespace(self) -> str:
        """The namespace of the experiment and its trials' jobs."""
        return self.request.namespace

    def trial_spec(self, trial: str, values: dict[str, Any]) -> JobSpec:
        """The JobSpec of a trial: the experiment's, named after the trial, with its values."""
        request, spec = self.request, self.request.job
        env = {**spec.env, constants.TRIAL_NAME_ENV: trial}
        if request.form == FUNCTION_FORM:
            assert spec.function is not None
            program = request.function_program(parameter_texts(request, values))
            env[constants.METRICS_FILE_ENV] = str(self.pushed_metrics_path(trial))
            parts: dict[str, Any] = {
                "function": dataclasses.replace(spec.function, program=program)
            }
        else:
            assert spec.trainer is not None
            parts = {"trainer": set_values(spec.trainer, request.parameters, values)}
        return dataclasses.replace(
            spec,
            name=trial,
            uid=uuid.uuid4().hex,
            labels={**spec.labels, **trial_labels(request, trial)},
            env=env,
            **parts,
        )

    def start(self, trial: TrialRecord, values: dict[str, Any]) -> None:
        spec = self.trial_spec(trial.name, values)
        if self.request.form == FUNCTION_FORM:
            self.backend.create_job(spec, self.secrets)
        else:
            self.backend.create_job(spec, self.secrets, shared_workspace=self.shared_workspace)

    def poll(self, trial: TrialRecord) -> Outcome:
        try:
            report = self.backend.get_job(trial.name, self.namespace)
        except (RuntimeError, ValueError) as e:
            return Outcome(
                TrialState.FAILED, reason="TrialJobLost", message=f"the trial's job is gone: {e}"
            )
        status = report.status
        if status in (Condition.SUCCEEDED, Condition.FAILED):
            state = TrialState.SUCCEEDED if status == Condition.SUCCEEDED else TrialState.FAILED
            latest = conditions.latest(report.conditions)
            reason = (
                f"Trial{state}"
                if state == TrialState.SUCCEEDED
                else (latest.reason if latest else "")
            )
            if reason == STOPPED:  # its supervisor was told to stop: Katib's Killed
                state, reason = TrialState.KILLED, "TrialKilled"
            return Outcome(
                state,
                self.logs(trial, report.output_dir),
                reason,
                report.message,
                report.output_dir,
            )
        if status == Condition.CREATED:
            return Outcome(PENDING, output_dir=report.output_dir)
        logs = (
            self.logs(trial, report.output_dir) if self.request.early_stopping is not None else []
        )
        return Outcome(TrialState.RUNNING, logs, output_dir=report.output_dir)

    def pushed_metrics_path(self, trial: str) -> Path:
        """Where a custom objective's report_metrics calls land: a file in its job's workspace."""
        return job_dir(self.backend.home, self.namespace, trial).workspace / PUSHED_METRICS_FILE

    def logs(self, trial: TrialRecord, output_dir: str | None) -> list[MetricLog]:
        """What the trial reported so far (see the module docstring)."""
        names = self.request.metric_names
        if self.request.form == FUNCTION_FORM:
            if self.request.metrics_collector_kind == "Push":
                return pushed_logs(self.pushed_metrics_path(trial.name), names)
            try:
                lines = self.backend.get_job_logs(
                    trial.name, self.namespace, False, PodSelector(is_master=True)
                )
                first_worker = [e.line for e in lines if e.source == worker_source(0)]
            except RuntimeError:
                return []
            return metrics.parse_lines(first_worker, names)
        try:
            history = self.backend.job_history(trial.name, self.namespace)
        except RuntimeError:
            history = []
        final = layout.read_json(OutputDir(Path(output_dir)).metrics) if output_dir else None
        return metrics.history_logs(history, final if isinstance(final, dict) else None, names)

    def stop(self, trial: TrialRecord) -> None:
        self.backend.stop_job(trial.name, self.namespace)

    def remove(self, trial: TrialRecord) -> None:
        delete_trial_job(self.backend, trial.name, self.namespace)


def trial_job_exists(backend: LocalBackend, trial: str, namespace: str) -> bool:
    """Whether the trial's job is still there (it is removed once the trial ends, unless the
    experiment retains its trials or the trial is the best)."""
    try:
        backend.get_job(trial, namespace)
    except RuntimeError:
        return False
    return True


def delete_trial_job(backend: LocalBackend, trial: str, namespace: str) -> None:
    """Deletes the trial's job, if it is still there."""
    try:
        backend.delete_job(trial, namespace)
    except RuntimeError as e:
        if "NotFound" not in str(e):
            raise


class InProcessRunner(TrialRunner):
    """Calls a custom objective in this process for each trial (one at a time)."""

    def __init__(
        self, request: ExperimentRequest, objective: Callable[[dict[str, Any]], Any]
    ) -> None:
        self.request = request
        self.objective = objective
        self.outcomes: dict[str, Outcome] = {}

    def start(self, trial: TrialRecord, values: dict[str, Any]) -> None:
        literal = dict((self.request.function or {}).get("parameters") or {})
        given = {**literal, **parameter_texts(self.request, values)}
        names = self.request.metric_names
        out = io.StringIO()
        with tempfile.TemporaryDirectory() as folder:
            pushed = Path(folder) / PUSHED_METRICS_FILE
            saved = {
                key: os.environ.get(key)
                for key in (constants.TRIAL_NAME_ENV, constants.METRICS_FILE_ENV)
            }
            os.environ[constants.TRIAL_NAME_ENV], os.environ[constants.METRICS_FILE_ENV] = (
                trial.name,
                str(pushed),
            )
            try:
                with contextlib.redirect_stdout(out):
                    self.objective(given)
            except Exception as e:
                self.outcomes[trial.name] = Outcome(
                    TrialState.FAILED, reason="TrialFailed", message=f"{type(e).__name__}: {e}"
                )
                return
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
            if self.request.metrics_collector_kind == "Push":
                logs = pushed_logs(pushed, names)
            else:
                logs = metrics.parse_lines(out.getvalue().splitlines(), names)
        self.outcomes[trial.name] = Outcome(TrialState.SUCCEEDED, logs)

    def poll(self, trial: TrialRecord) -> Outcome:
        return self.outcomes[trial.name]

    def stop(self, trial: TrialRecord) -> None:
        return None

    def remove(self, trial: TrialRecord) -> None:
        return None


def run_in_process(
    request: ExperimentRequest, objective: Callable[[dict[str, Any]], Any]
) -> ExperimentRecord:
    """Runs a custom objective's search in this process, trial after trial, with the search loop
    of local experiments; returns the final record (nothing is written)."""
    from kubetune.katib.backends.local.search import SearchLoop

    record = ExperimentRecord(name=request.name, namespace=request.namespace, uid=request.uid)
    runner = InProcessRunner(request, objective)
    names = (f"{request.name}-{i:05d}" for i in itertools.count(1))
    loop = SearchLoop(request, runner, record, poll_interval=0, new_name=lambda: next(names))
    return loop.run()
