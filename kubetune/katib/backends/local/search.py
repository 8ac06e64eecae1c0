"""The search of a local experiment: Optuna suggests, a runner runs each trial, the record says
where it stands.

`SearchLoop.run` asks Optuna (the sampler of the experiment's algorithm) for each new trial's
values, hands them to a `TrialRunner` (local jobs, or an in-process function: the same loop),
at most `parallel_trial_count` at once, and reads back how each trial ended and what it
reported. It ends the experiment as Katib does:

- Succeeded, `ExperimentGoalReached`, as soon as the best objective meets `objective_goal`
  (trials still running are stopped: Killed);
- Failed, `ExperimentMaxFailedTrialsReached`, once more than `max_failed_trial_count` trials
  failed (a trial that never reported its objective metric counts as failed);
- Succeeded, `ExperimentMaxTrialsReached`, once `max_trial_count` trials have ended;
- Succeeded, `ExperimentSuggestionEndReached`, once a grid has been tried point by point.

With early stopping (medianstop), each running trial's reported objective values go to
Optuna's MedianPruner, which may stop it (EarlyStopped). A trial running longer than
`trial_active_deadline_seconds` is stopped and Failed (DeadlineExceeded). The best trial's job is
kept; the jobs of the other succeeded trials are removed unless the experiment retains them.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubetune.contract.conditions import Condition
from kubetune.katib import algorithms, metrics
from kubetune.katib.backends.local.store import ExperimentRecord, TrialRecord, TrialState
from kubetune.katib.constants import constants
from kubetune.katib.metrics import MetricLog
from kubetune.katib.request import ExperimentRequest
from kubetune.katib.space import combinations
from kubetune.training.backends.local.jobdir import now_iso

logger = logging.getLogger("kubetune.katib.search")

TRIAL_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
TRIAL_SUFFIX_LENGTH = 8


@dataclass
class Outcome:
    """Where a trial stands: Pending (waiting to run), Running, Succeeded or Failed, with what it
    reported so far (every reported value of the experiment's metrics, in order)."""

    state: str
    logs: list[MetricLog] = field(default_factory=list)
    reason: str = ""
    message: str = ""
    output_dir: str | None = None


class TrialRunner(Protocol):
    """Runs trials: local jobs (runners.LocalJobRunner) or a function in this process."""

    def start(self, trial: TrialRecord, values: dict[str, Any]) -> None:
        """Starts `trial` with `values` (typed, by parameter name); RuntimeError when it cannot."""

    def poll(self, trial: TrialRecord) -> Outcome:
        """Where `trial` stands now."""

    def stop(self, trial: TrialRecord) -> None:
        """Stops `trial` if it still runs (its reports so far stay readable)."""

    def remove(self, trial: TrialRecord) -> None:
        """Removes what `trial` left (its job), keeping nothing of it but the record."""


@dataclass
class Budget:
    """The trial counts of the experiment (edit_experiment_budget may change them meanwhile)."""

    max_trial_count: int | None
    parallel_trial_count: int | None
    max_failed_trial_count: int | None

    @classmethod
    def of(cls, request: ExperimentRequest) -> Budget:
        """The counts the experiment was created with."""
        return cls(
            request.max_trial_count, request.parallel_trial_count, request.max_failed_trial_count
        )

    @property
    def parallel(self) -> int:
        """How many trials may run at once (Katib's default: 3)."""
        return self.parallel_trial_count or constants.DEFAULT_PARALLEL_TRIAL_COUNT


class SearchLoop:
    """Runs one experiment's search to its end (see the module docstring)."""

    def __init__(
        self,
        request: ExperimentRequest,
        runner: TrialRunner,
        record: ExperimentRecord,
        save: Callable[[ExperimentRecord], None] = lambda record: None,
        budget: Callable[[], Budget] | None = None,
        trial_ended: Callable[[TrialRecord, list[MetricLog]], None] = lambda trial, logs: None,
        poll_interval: float = 0.5,
        new_name: Callable[[], str] | None = None,
    ) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.request = request
        self.runner = runner
        self.record = record
        self.save = save
        self.budget = budget or (lambda: Budget.of(request))
        self.trial_ended = trial_ended
        self.poll_interval = poll_interval
        self.new_name = new_name or self._random_name
        self.study = optuna.create_study(
            direction="minimize" if request.objective_type == "minimize" else "maximize",
            sampler=algorithms.sampler(
                request.algorithm_name, request.algorithm_settings, request.parameters
            ),
            pruner=(
                algorithms.pruner(request.early_stopping)
                if request.early_stopping is not None
                else optuna.pruners.NopPruner()
            ),
        )
        self.distributions = {p.name: algorithms.distribution(p) for p in request.parameters}
        self.grid_size = (
            combinations(request.parameters) if request.algorithm_name == "grid" else None
        )
        self.asked: dict[str, Any] = {}
        self.reported: dict[str, int] = {}
        self.started_at: dict[str, float] = {}
        self._rng = random.Random()

    # --- the loop --------------------------------------------------------------------------------

    def run(self, stopping: Callable[[], bool] = lambda: False) -> ExperimentRecord:
        """Runs the search until it ends (or `stopping()` says so: trials Killed, experiment
        Failed with reason `ExperimentStopped`); returns the final record."""
        record = self.record
        if record.start_time is None:
            record.start_time = now_iso()
        if not any(c.type == Condition.CREATED for c in record.conditions):
            record.set_condition(Condition.CREATED, "ExperimentCreated", "Experiment is created")
        record.set_condition(Condition.RUNNING, "ExperimentRunning", "Experiment is running")
        self.save(record)
        while True:
            if stopping():
                self.stop_running("the experiment was stopped")
                record.set_condition(
                    Condition.FAILED,
                    "ExperimentStopped",
                    "Experiment was stopped before it ended",
                )
                self.save(record)
                return record
            budget = self.budget()
            changed = self.poll_running()
            if self.finish_if_done(budget):
                self.save(record)
                return record
            changed = self.start_new(budget) or changed
            if changed:
                self.save(record)
            if self.poll_interval:
                time.sleep(self.poll_interval)

    # --- trials ----------------------------------------------------------------------------------

    def active(self) -> list[TrialRecord]:
        """The trials that have not ended."""
        return [t for t in self.record.trials if not t.ended]

    def start_new(self, budget: Budget) -> bool:
        """Starts trials while there is room; True when any was started."""
        started = False
        while len(self.active()) < budget.parallel and self.can_ask(budget):
            self.start_one()
            started = True
        return started

    def can_ask(self, budget: Budget) -> bool:
        """Whether the budget and the search space leave room for another trial."""
        if budget.max_trial_count is not None and len(self.record.trials) >= budget.max_trial_count:
            return False
        return self.grid_size is None or len(self.asked) < self.grid_size

    def start_one(self) -> None:
        """Asks Optuna for a trial's values and starts it (Failed at once when it cannot start)."""
        suggestion = self.study.ask(self.distributions)
        values = dict(suggestion.params)
        parameters = {p.name: p for p in self.request.parameters}
        trial = TrialRecord(
            name=self.new_name(),
            index=len(self.record.trials) + 1,
            assignments={name: parameters[name].text(value) for name, value in values.items()},
        )
        self.record.trials.append(trial)
        self.save(self.record)  # before its job exists: delete_experiment deletes those it names
        self.asked[trial.name] = suggestion
        self.started_at[trial.name] = time.monotonic()
        logger.info("trial %s: %s", trial.name, trial.assignments)
        try:
            self.runner.start(trial, values)
        except (RuntimeError, ValueError, OSError) as e:
            self.end_trial(
                trial, Outcome(TrialState.FAILED, reason="TrialNotCreated", message=str(e))
            )

    def poll_running(self) -> bool:
        """Reads each active trial's state; True when any changed."""
        changed = False
        deadline = self.request.trial_active_deadline_seconds
        for trial in self.active():
            outcome = self.runner.poll(trial)
            if outcome.state == TrialState.RUNNING and trial.status == TrialState.CREATED:
                trial.status, trial.reason, trial.start_time = (
                    TrialState.RUNNING,
                    "TrialRunning",
                    now_iso(),
                )
                trial.message = "Trial is running"
                changed = True
            if outcome.state in (TrialState.SUCCEEDED, TrialState.FAILED, TrialState.KILLED):
                self.end_trial(trial, outcome)
                changed = True
            elif outcome.state == TrialState.RUNNING and self.should_stop_early(trial, outcome):
                self.runner.stop(trial)
                self.end_trial(
                    trial,
                    Outcome(
                        TrialState.EARLY_STOPPED,
                        logs=self.runner.poll(trial).logs or outcome.logs,
                        reason="TrialEarlyStopped",
                        message="Trial is early stopped (medianstop)",
                    ),
                )
                changed = True
            elif (
                deadline is not None
                and time.monotonic() - self.started_at.get(trial.name, time.monotonic()) > deadline
            ):
                self.runner.stop(trial)
                self.end_trial(
                    trial,
                    Outcome(
                        TrialState.FAILED,
                        logs=outcome.logs,
                        reason="DeadlineExceeded",
                        message=f"Trial ran longer than trial_active_deadline_seconds={deadline}",
                    ),
                )
                changed = True
        return changed

    def should_stop_early(self, trial: TrialRecord, outcome: Outcome) -> bool:
        """Reports the trial's new objective values to Optuna; True when the pruner stops it."""
        if self.request.early_stopping is None:
            return False
        suggestion = self.asked.get(trial.name)
        if suggestion is None:
            return False
        values = [
            float(log.value)
            for log in outcome.logs
            if log.name == self.request.objective_metric_name
        ]
        done = self.reported.get(trial.name, 0)
        for step in range(done, len(values)):
            suggestion.report(values[step], step)
        self.reported[trial.name] = len(values)
        return len(values) > done and bool(suggestion.should_prune())

    def end_trial(self, trial: TrialRecord, outcome: Outcome) -> None:
        """Records how `trial` ended, tells Optuna, keeps or removes its job."""
        import optuna

        state = close_trial(trial, outcome, self.request)
        suggestion = self.asked.get(trial.name)
        if suggestion is not None:
            if state == TrialState.SUCCEEDED:
                self.study.tell(suggestion, trial.objective)
            elif state == TrialState.EARLY_STOPPED:
                self.study.tell(suggestion, state=optuna.trial.TrialState.PRUNED)
            else:
                self.study.tell(suggestion, state=optuna.trial.TrialState.FAIL)
        logger.info("trial %s %s: objective %s", trial.name, state, trial.objective)
        self.trial_ended(trial, outcome.logs)
        self.keep_best(trial)

    def keep_best(self, trial: TrialRecord) -> None:
        """Updates the best trial; removes the job of a succeeded trial that is not (or no longer)
        the best, unless the experiment retains its trials."""
        if trial.status != TrialState.SUCCEEDED or trial.objective is None:
            return
        best = self.record.trial(self.record.best_trial) if self.record.best_trial else None
        loser = trial
        if best is None or metrics.is_better(
            trial.objective, best.objective, self.request.objective_type
        ):
            self.record.best_trial = trial.name
            loser = best  # type: ignore[assignment]
        if loser is not None and not self.request.retain_trials and loser.job_kept:
            try:
                self.runner.remove(loser)
                loser.job_kept = False
            except (RuntimeError, OSError) as e:
                logger.warning("could not remove the job of trial %s: %s", loser.name, e)

    def stop_running(self, why: str) -> None:
        """Stops every trial still running; they end Killed, for the reason `why`."""
        for trial in self.active():
            self.runner.stop(trial)
            outcome = self.runner.poll(trial)
            message = f"Trial was stopped: {why}"
            self.end_trial(
                trial,
                Outcome(
                    TrialState.KILLED, logs=outcome.logs, reason="TrialKilled", message=message
                ),
            )

    # --- the end ---------------------------------------------------------------------------------

    def finish_if_done(self, budget: Budget) -> bool:
        """Ends the experiment when it is done (see the module docstring); True then."""
        record, request = self.record, self.request
        best = record.trial(record.best_trial) if record.best_trial else None
        failed = [
            t
            for t in record.trials
            if t.status in (TrialState.FAILED, TrialState.METRICS_UNAVAILABLE)
        ]
        ended = [t for t in record.trials if t.ended]
        if best is not None and metrics.goal_reached(
            best.objective, request.objective_goal, request.objective_type
        ):
            self.stop_running("the objective goal was reached")
            self.succeed(
                "ExperimentGoalReached",
                f"Experiment has succeeded because Objective goal has reached: {best.name} has "
                f"{request.objective_metric_name}={best.objective}",
            )
            return True
        limit = budget.max_failed_trial_count
        if limit is not None and len(failed) > limit:
            self.stop_running("too many trials failed")
            record.set_condition(
                Condition.FAILED,
                "ExperimentMaxFailedTrialsReached",
                f"Experiment has failed because max failed count has reached: {len(failed)} "
                f"trial(s) failed, max_failed_trial_count={limit}",
            )
            return True
        if self.active():
            return False
        if budget.max_trial_count is not None and len(ended) >= budget.max_trial_count:
            self.succeed(
                "ExperimentMaxTrialsReached",
                "Experiment has succeeded because max trial count has reached",
            )
            return True
        if self.grid_size is not None and len(self.asked) >= self.grid_size:
            self.succeed(
                "ExperimentSuggestionEndReached",
                "Experiment has succeeded because suggestion service has reached the end",
            )
            return True
        return False

    def succeed(self, reason: str, message: str) -> None:
        """Ends the experiment Succeeded with Katib's `reason` and `message`."""
        self.record.set_condition(Condition.SUCCEEDED, reason, message)

    def _random_name(self) -> str:
        taken = {t.name for t in self.record.trials}
        while True:
            suffix = "".join(
                self._rng.choice(TRIAL_SUFFIX_ALPHABET) for _ in range(TRIAL_SUFFIX_LENGTH)
            )
            name = f"{self.request.name}-{suffix}"
            if name not in taken:
                return name


def close_trial(trial: TrialRecord, outcome: Outcome, request: ExperimentRequest) -> TrialState:
    """Records in `trial` how it ended (state, metrics, objective, times); returns the state. A
    trial that succeeded without reporting its objective metric is MetricsUnavailable."""
    trial.metrics = metrics.observation(outcome.logs, request.metric_names)
    trial.objective = metrics.objective_value(
        trial.metrics, request.objective_metric_name, request.strategy
    )
    trial.output_dir = outcome.output_dir or trial.output_dir
    trial.completion_time = now_iso()
    trial.start_time = trial.start_time or trial.completion_time
    state, reason, message = TrialState(outcome.state), outcome.reason, outcome.message
    if state == TrialState.SUCCEEDED and trial.objective is None:
        state, reason = TrialState.METRICS_UNAVAILABLE, "MetricsUnavailable"
        message = (
            f"Metrics are not available: the trial reported no {request.objective_metric_name}"
        )
    trial.status = state
    trial.reason = reason or f"Trial{state}"
    trial.message = message or f"Trial has {state.lower()}"
    return state


def best_trial(record: ExperimentRecord, objective_type: str) -> TrialRecord | None:
    """The succeeded trial with the best objective (the first of equals)."""
    best = None
    for trial in record.trials:
        if trial.status != TrialState.SUCCEEDED or trial.objective is None:
            continue
        if best is None or metrics.is_better(trial.objective, best.objective, objective_type):
            best = trial
    return best
