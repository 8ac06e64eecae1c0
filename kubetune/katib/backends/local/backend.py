"""LocalExperiments: hyperparameter searches on this machine, one folder each (store.py), each
run by a detached controller (controller.py) whose trials are local jobs.

Any process that uses the same KUBETUNE_HOME sees, follows and deletes the same experiments.
Reading never writes. An experiment whose controller is gone without recording an end (killed,
crashed, the machine rebooted) reads as Failed (reason ControllerLost), never as Running: its
trials that ended meanwhile read as they ended, and those still running are stopped (Killed),
as the local backend does with the processes of a job whose supervisor is lost.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubetune.contract import layout
from kubetune.contract.conditions import Condition
from kubetune.contract.secrets import without_secrets
from kubetune.katib.backends.base import ExperimentBackend, oldest_first
from kubetune.katib.backends.kubernetes import manifests
from kubetune.katib.backends.local import store
from kubetune.katib.backends.local.objects import experiment_object, trial_object
from kubetune.katib.backends.local.runners import (
    LocalJobRunner,
    delete_trial_job,
    trial_job_exists,
)
from kubetune.katib.backends.local.search import (
    Outcome,
    best_trial,
    close_trial,
)
from kubetune.katib.metrics import MetricLog
from kubetune.katib.request import ExperimentRequest
from kubetune.params import validation
from kubetune.training.backends.local import launch, logs, processes
from kubetune.training.backends.local.backend import LocalBackend
from kubetune.training.images import resolve_images

# How long create waits for the controller to record itself.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
CONTROLLER_MODULE = "kubetune.katib.backends.local.controller"


class LocalExperiments(ExperimentBackend):
    """Creates, reads and deletes local experiments in `home`/experiments/<namespace>/<name>/."""

    name = "local"

    def __init__(
        self, namespace: str | None = None, home: str | os.PathLike[str] | None = None
    ) -> None:
        self.jobs = LocalBackend(namespace=namespace, home=home)
        self.namespace, self.home = self.jobs.namespace, self.jobs.home

    def folder(self, name: str, namespace: str) -> store.ExperimentDir:
        """The experiment's folder (whether or not it exists)."""
        return store.experiment_dir(self.home, namespace, name)

    # --- create ----------------------------------------------------------------------------------

    def render_experiment(
        self, request: ExperimentRequest, secrets: dict[str, str]
    ) -> list[dict[str, Any]]:
        """The Experiment a local search records (the one kubetune would create on Kubernetes)."""
        images = resolve_images(gpu=request.job.requests_gpus)
        return [manifests.build_experiment(request, images, sorted(secrets))]

    def create_experiment(self, request: ExperimentRequest, secrets: dict[str, str]) -> None:
        """Writes the experiment's folder and starts its controller; returns once the controller
        runs. RuntimeError when an experiment of that name exists or the controller did not
        start (nothing is left behind then)."""
        folder = self.folder(request.name, request.namespace)
        if folder.path.exists():
            raise _already_exists(request)
        launch.plan_launch(  # a trial this machine can never run fails here, not in the controller
            request.job.num_workers,
            request.job.num_procs_per_worker,
            request.job.resources_per_worker,
        )
        experiment = self.render_experiment(request, secrets)[0]
        record = store.ExperimentRecord(
            name=request.name, namespace=request.namespace, uid=request.uid
        )
        record.set_condition(Condition.CREATED, "ExperimentCreated", "Experiment is created")
        staging = store.ExperimentDir(
            folder.path.with_name(f".{request.name}.creating-{uuid.uuid4().hex}")
        )
        try:
            staging.path.mkdir(parents=True)
            layout.write_json_atomic(staging.experiment_path, experiment)
            layout.write_json_atomic(staging.request_path, request.to_dict())
            (staging.path / "spec.json").write_text(request.job.to_json())
            staging.write_record(record)
        except OSError as e:
            shutil.rmtree(staging.path, ignore_errors=True)
            raise RuntimeError(
                f"experiment {request.namespace}/{request.name}: cannot write its folder: "
                f"{e.strerror or e}; nothing was created"
            ) from None
        try:
            os.rename(staging.path, folder.path)
        except OSError:
            shutil.rmtree(staging.path, ignore_errors=True)
            raise _already_exists(request) from None
        self._start_controller(folder, secrets)

    def _start_controller(self, folder: store.ExperimentDir, secrets: dict[str, str]) -> None:
        env = without_secrets(dict(os.environ))
        code, reason = processes.start_detached(
            CONTROLLER_MODULE, folder.path, env, secrets, START_TIMEOUT
        )
        if code != 0:
            self._stop_controller(folder)
            shutil.rmtree(folder.path, ignore_errors=True)
            raise RuntimeError(
                f"experiment {folder.namespace}/{folder.name}: its controller did not start "
                f"(exit code {code}): {reason or 'no reason given'}; nothing was created"
            )

    # --- read (never writes) -----------------------------------------------------------------

    def _load(
        self, name: str, namespace: str
    ) -> tuple[store.ExperimentDir, dict[str, Any], store.ExperimentRecord]:
        folder = self.folder(name, namespace)
        try:
            experiment = folder.read_experiment()
        except FileNotFoundError:
            raise RuntimeError(
                f"experiment {namespace}/{name} not found (NotFound) in "
                f"{store.namespace_dir(self.home, namespace)}"
            ) from None
        except (OSError, ValueError) as e:
            raise RuntimeError(
                f"experiment {namespace}/{name}: {folder.experiment_path} cannot be read: {e}"
            ) from None
        record = folder.read_record()
        if record is None:
            record = store.ExperimentRecord(name=name, namespace=namespace, uid="")
            record.set_condition(
                Condition.FAILED,
                "StatusUnreadable",
                f"{folder.status_path} is missing or damaged; `kubetune -n {namespace} delete {name}` removes the experiment",
            )
        return folder, experiment, self._checked(folder, record)

    def _checked(
        self, folder: store.ExperimentDir, record: store.ExperimentRecord
    ) -> store.ExperimentRecord:
        """The record, Failed when its controller is gone without a result (see the module
        docstring); the trials it left running are stopped."""
        if record.ended:
            return record
        controller = record.controller
        if controller is None:
            try:
                age = time.time() - folder.status_path.stat().st_mtime
            except OSError:
                age = START_TIMEOUT + 60
            if age < START_TIMEOUT + 10:
                return record  # being created
            message = "the experiment's controller never started"
        elif processes.is_alive(int(controller["pid"]), controller.get("create_time")):
            return record
        else:
            last = [line for line in logs.tail(folder.log_path)[-3:] if line]
            message = (
                f"the experiment's controller (pid {controller['pid']}) ended without a result"
                + (f"; its last words: {' | '.join(last)}" if last else "")
            )
        latest = folder.read_record()  # it may have written its end just before it ended
        if latest is not None and latest.ended:
            return latest
        request = ExperimentRequest.from_dict(folder.read_request())
        runner = LocalJobRunner(request, self.jobs)
        for trial in [t for t in record.trials if not t.ended]:
            outcome = runner.poll(trial)
            if outcome.state not in (
                store.TrialState.SUCCEEDED,
                store.TrialState.FAILED,
                store.TrialState.KILLED,
            ):
                runner.stop(trial)
                outcome = Outcome(
                    store.TrialState.KILLED,
                    runner.poll(trial).logs,
                    "TrialKilled",
                    "the experiment's controller ended while the trial ran; the trial was stopped",
                )
            close_trial(trial, outcome, request)
        best = best_trial(record, request.objective_type)
        record.best_trial = best.name if best is not None else None
        record.set_condition(Condition.FAILED, "ControllerLost", message)
        return record

    def create_experiment_object(self, experiment: dict[str, Any]) -> None:
        raise ValueError(
            "create_experiment: an Experiment object names container images, which run only "
            "on Kubernetes; use KatibClient(backend='kubernetes'), or tune() to search locally"
        )

    def get_experiment(
        self, name: str, namespace: str, timeout: float | None = None
    ) -> dict[str, Any]:
        _, experiment, record = self._load(name, namespace)
        return experiment_object(experiment, record)

    def list_experiments(
        self, namespace: str | None, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """The experiments of `namespace`, or of every namespace folder (None), oldest first."""
        found = []
        for ns in [namespace] if namespace is not None else self._namespaces():
            for folder in self._folders(ns):
                try:
                    found.append(self.get_experiment(folder.name, ns))
                except (RuntimeError, ValueError):  # damaged, or a folder name no name can be
                    continue
        return oldest_first(found)

    def _namespaces(self) -> list[str]:
        root = self.home / store.EXPERIMENTS_DIR
        if not root.is_dir():
            return []
        return sorted(
            p.name
            for p in root.iterdir()
            if p.is_dir() and validation.dns1123_label("namespace", p.name) is None
        )

    def _folders(self, namespace: str) -> list[store.ExperimentDir]:
        root = store.namespace_dir(self.home, namespace)
        if not root.is_dir():
            return []
        return [
            store.ExperimentDir(p)
            for p in sorted(root.iterdir())
            if p.is_dir() and not p.name.startswith(".")
        ]

    def list_trials(
        self, experiment_name: str | None, namespace: str, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        names = [experiment_name] if experiment_name else [f.name for f in self._folders(namespace)]
        found = []
        for name in names:
            try:
                _, experiment, record = self._load(name, namespace)
            except RuntimeError:
                if experiment_name:
                    raise
                continue
            obj = experiment_object(experiment, record)
            found += [trial_object(obj, record, t) for t in record.trials]
        return found

    def get_trial(self, name: str, namespace: str, timeout: float | None = None) -> dict[str, Any]:
        for trial in self.list_trials(self._experiment_of(name, namespace), namespace):
            if trial["metadata"]["name"] == name:
                return trial
        raise RuntimeError(f"trial {namespace}/{name} not found (NotFound)")

    def _experiment_of(self, trial: str, namespace: str) -> str:
        """The experiment a trial belongs to (trials are named `<experiment>-<suffix>`)."""
        for folder in self._folders(namespace):
            if trial.startswith(folder.name + "-"):
                record = folder.read_record()
                if record is not None and record.trial(trial) is not None:
                    return folder.name
        raise RuntimeError(f"trial {namespace}/{trial} not found (NotFound)")

    def metric_logs(self, trial: str, namespace: str) -> list[MetricLog]:
        """Every value the trial reported (an ended trial's as recorded; a running one's so far)."""
        name = self._experiment_of(trial, namespace)
        folder, _, record = self._load(name, namespace)
        recorded = folder.read_metric_logs(trial)
        if recorded:
            return [MetricLog(r["time"], r["name"], r["value"]) for r in recorded]
        found = record.trial(trial)
        assert found is not None
        request = ExperimentRequest.from_dict(folder.read_request())
        return LocalJobRunner(request, self.jobs).logs(found, found.output_dir)

    def trial_metric_logs(
        self, trial: str, namespace: str, db_manager_address: str, timeout: float
    ) -> Any:
        """As Katib's DB manager answers it (the address is not used: the values are here)."""
        from kubeflow.katib import katib_api_pb2

        logs = self.metric_logs(trial, namespace)
        return katib_api_pb2.ObservationLog(
            metric_logs=[
                katib_api_pb2.MetricLog(
                    time_stamp=log.time, metric=katib_api_pb2.Metric(name=log.name, value=log.value)
                )
                for log in logs
            ]
        ).metric_logs

    def trial_logs(
        self, experiment: str, trial: str, namespace: str, follow: bool
    ) -> Iterator[str]:
        """The lines of the trial's primary container (its job's first worker: the storage
        initializer's lines, then the training's)."""
        _, _, record = self._load(experiment, namespace)
        found = record.trial(trial)
        if found is None:
            raise RuntimeError(f"Trial {trial} not found or has no status")
        if not found.job_kept or not trial_job_exists(self.jobs, trial, namespace):
            raise RuntimeError(
                f"Trial {trial} or associated job not found: the job of a trial that is not the "
                "best is removed once it ends, unless the experiment retains its trials (retain_trials=True)"
            )
        from kubetune.training.backends.base import PodSelector

        master = PodSelector(is_master=True)
        return (entry.line for entry in self.jobs.get_job_logs(trial, namespace, follow, master))

    # --- change ----------------------------------------------------------------------------------

    def edit_experiment_budget(self, name: str, namespace: str, changes: dict[str, int]) -> None:
        """Changes the trial counts of a running experiment (its controller reads them again)."""
        folder, experiment, record = self._load(name, namespace)
        if record.ended:
            raise RuntimeError(
                f"experiment {namespace}/{name} has ended ({record.status}); a local experiment "
                "cannot be restarted: create a new one"
            )
        spec = dict(experiment["spec"])
        spec.update(changes)
        experiment["spec"] = spec
        layout.write_json_atomic(folder.experiment_path, experiment)

    def delete_experiment(
        self, name: str, namespace: str, delete_options: dict[str, Any] | None = None
    ) -> None:
        """Stops the experiment's controller and trials, deletes its trials' jobs and its folder
        (`delete_options` has no meaning here and is ignored)."""
        folder = self.folder(name, namespace)
        if not folder.path.is_dir():
            raise RuntimeError(f"experiment {namespace}/{name} not found (NotFound)")
        self._stop_controller(folder)
        record = folder.read_record()
        for trial in record.trials if record else []:
            delete_trial_job(self.jobs, trial.name, namespace)
        graveyard = folder.path.with_name(f".{name}.deleting-{uuid.uuid4().hex}")
        os.rename(folder.path, graveyard)
        shutil.rmtree(graveyard, ignore_errors=True)

    def _stop_controller(self, folder: store.ExperimentDir) -> None:
        record = folder.read_record()
        controller = record.controller if record else None
        if controller and processes.is_alive(int(controller["pid"]), controller.get("create_time")):
            os.kill(int(controller["pid"]), signal.SIGTERM)
            processes.wait_gone([int(controller["pid"])], STOP_TIMEOUT)
        left = processes.processes_in(folder.path)  # the controller (it runs there) if it is stuck
        if left:
            processes.stop(left, grace=5.0)

    def experiment_outputs(self, name: str, namespace: str) -> dict[str, Path]:
        """Where the experiment's results are: its folder, results.csv/json, objective.png,
        parameters.png."""
        folder = self.folder(name, namespace)
        return {
            "folder": folder.path,
            "results_csv": folder.results_csv,
            "results_json": folder.results_json,
            "objective_png": folder.objective_png,
            "parameters_png": folder.parameters_png,
        }


def _already_exists(request: ExperimentRequest) -> RuntimeError:
    return RuntimeError(
        f"A Katib Experiment with the name {request.namespace}/{request.name} already exists "
        "(AlreadyExists); delete it first (KatibClient().delete_experiment(name) or "
        f"`kubetune delete {request.name}`) or choose another name"
    )
