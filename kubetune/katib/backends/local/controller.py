"""The detached process that runs one local experiment:
`python -m kubetune.katib.backends.local.controller EXPERIMENT_DIR`.

It records itself in the experiment's status.json, fetches the model and dataset once into the
experiment's shared workspace (a fine-tuning search: the storage initializer, with the
experiment's secrets), then runs the search (search.SearchLoop) with each trial a local job
(runners.LocalJobRunner), writing the record, each ended trial's reported values and the results
table and plots as it goes. Budget changes in experiment.json (edit_experiment_budget) take
effect at its next round.

Secrets reach it as JSON on its standard input and go only to the storage initializer and the
trials' supervisors, as a job's do. SIGTERM (delete_experiment) stops the running trials and ends
the experiment Failed (ExperimentStopped). A controller that dies otherwise (SIGKILL, a crash)
leaves no record of its end: readers then report the experiment Failed (ControllerLost) and stop
the trials it left running (see backend.LocalExperiments). The command forks once, as the local
job supervisor does: the parent returns as soon as the controller has recorded itself.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import psutil

from kubetune.contract.conditions import Condition
from kubetune.katib.backends.local import store
from kubetune.katib.backends.local.objects import experiment_object, trial_object
from kubetune.katib.backends.local.runners import LocalJobRunner
from kubetune.katib.backends.local.search import Budget, SearchLoop
from kubetune.katib.metrics import MetricLog
from kubetune.katib.request import FUNCTION_FORM, ExperimentRequest
from kubetune.training.backends.local import launch, logs, processes
from kubetune.training.backends.local.backend import LocalBackend
from kubetune.training.backends.local.supervisor import read_secrets

logger = logging.getLogger("kubetune.katib.controller")
POLL_INTERVAL = 0.5
SPEC_FILE = "spec.json"
INITIALIZER_LOG = "initializer.log"


class Controller:
    """Runs the experiment in `folder` to its end."""

    def __init__(self, folder: store.ExperimentDir, secrets: dict[str, str]) -> None:
        self.folder = folder
        self.secrets = secrets
        self.request = ExperimentRequest.from_dict(folder.read_request())
        record = folder.read_record()
        if record is None:
            raise RuntimeError(f"{folder.status_path} is missing or damaged")
        self.record = record
        self.jobs = LocalBackend(namespace=self.request.namespace, home=folder.home)
        self.stop_signal: int | None = None
        self.child: subprocess.Popen[bytes] | None = None

    def run(self, ready: Any = None) -> int:
        """Runs the experiment to its end (`ready()` once recorded); returns the exit code."""
        processes.become_subreaper()
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        me = psutil.Process()
        self.record.controller = {"pid": me.pid, "create_time": me.create_time()}
        self.save(self.record)
        if ready is not None:
            ready()
        try:
            if self.request.form == FUNCTION_FORM or self.initialize():
                loop = SearchLoop(
                    self.request,
                    LocalJobRunner(
                        self.request, self.jobs, self.secrets, self.folder.shared_workspace
                    ),
                    self.record,
                    save=self.save,
                    budget=self.budget,
                    trial_ended=self.trial_ended,
                    poll_interval=POLL_INTERVAL,
                )
                loop.run(stopping=lambda: self.stop_signal is not None)
        except Exception as e:
            logger.exception("the experiment's controller failed")
            self.record.set_condition(
                Condition.FAILED,
                "ExperimentFailed",
                f"the experiment's controller failed: {type(e).__name__}: {e}",
            )
        finally:
            self.stop_child()
            self.save(self.record)
        logger.info("experiment %s ended: %s", self.request.name, self.record.status)
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stop_signal = signum

    # --- the record ------------------------------------------------------------------------------

    def save(self, record: store.ExperimentRecord) -> None:
        """Writes the results table (and, once the experiment has ended, the plots), then the
        record: a reader that sees the end finds the results complete."""
        try:
            from kubetune.katib import results

            experiment = experiment_object(self.folder.read_experiment(), record)
            trials = [trial_object(experiment, record, t) for t in record.trials]
            folder = self.folder
            results.write(
                experiment,
                trials,
                folder.results_csv,
                folder.results_json,
                folder.objective_png if record.ended else None,
                folder.parameters_png if record.ended else None,
            )
        except Exception:  # the results are a view: the record stands without them
            logger.exception("could not write the results")
        self.folder.write_record(record)

    def trial_ended(self, trial: store.TrialRecord, found: list[MetricLog]) -> None:
        """Keeps every value an ended trial reported (its job may be removed)."""
        from kubetune.contract import layout

        layout.write_json_atomic(
            self.folder.metric_log_path(trial.name), [log.to_dict() for log in found]
        )

    def budget(self) -> Budget:
        """The trial counts as experiment.json has them now (edits take effect here)."""
        try:
            spec = self.folder.read_experiment()["spec"]
        except (OSError, ValueError, KeyError):
            return Budget.of(self.request)
        return Budget(
            spec.get("maxTrialCount"),
            spec.get("parallelTrialCount"),
            spec.get("maxFailedTrialCount"),
        )

    # --- the shared workspace --------------------------------------------------------------------

    def initialize(self) -> bool:
        """Fetches the model and dataset once into the shared workspace (the storage
        initializer); False (experiment Failed) when it fails or the controller is stopped."""
        spec_path = self.folder.path / SPEC_FILE
        shared = self.folder.shared_workspace
        shared.mkdir(parents=True, exist_ok=True)
        log_path = self.folder.path / INITIALIZER_LOG
        env = launch.initializer_env(
            dict(os.environ), self.request.job.init_env, self.secrets, threads=launch.usable_cores()
        )
        with log_path.open("ab") as log:
            self.child = processes.start_child(
                launch.initializer_command(spec_path, shared), log, env, self.folder.path
            )
            while self.child.poll() is None:
                if self.stop_signal is not None:
                    self.stop_child()
                    self.record.set_condition(
                        Condition.FAILED,
                        "ExperimentStopped",
                        "Experiment was stopped before it ended",
                    )
                    return False
                time.sleep(0.2)
        code = self.child.returncode
        self.child = None
        if code != 0:
            self.record.set_condition(
                Condition.FAILED,
                "ExperimentFailed",
                f"the storage initializer exited with code {code}: {logs.failure_reason(log_path)}",
            )
            return False
        return True

    def stop_child(self) -> None:
        """Stops the storage initializer if it still runs."""
        if self.child is not None and self.child.poll() is None:
            processes.stop([psutil.Process(self.child.pid)], grace=5.0)
            self.child.wait()


def main(argv: list[str] | None = None) -> int:
    """Forks; the parent exits 0 once the child (the controller) has recorded itself, else 1
    with the reason on its standard output."""
    parser = argparse.ArgumentParser(prog="python -m kubetune.katib.backends.local.controller")
    parser.add_argument("folder", type=Path, help="the experiment's folder")
    args = parser.parse_args(argv)
    folder = store.ExperimentDir(args.folder.resolve())
    secrets = read_secrets(sys.stdin.buffer)

    def start(answer: Callable[[str], None]) -> int:
        try:
            controller = Controller(folder, secrets)
        except Exception as e:
            logger.exception("the controller could not start")
            answer(f"{type(e).__name__}: {e}")
            return 1
        return controller.run(ready=lambda: answer("ready"))

    return processes.run_detached("controller", folder.log_path, start, new_session=True)


if __name__ == "__main__":
    sys.exit(main())
