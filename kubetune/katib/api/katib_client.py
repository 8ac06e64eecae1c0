"""KatibClient: Katib 0.19's `KatibClient`, over a local or Kubernetes backend.

The public methods of Katib's client that tune and follow experiments are here with their
parameters, defaults, positional order and return types (Katib's `V1beta1*` models). The backend
is chosen as TrainingClient's: on this machine unless `backend='kubernetes'`, $KUBETUNE_BACKEND,
a Kubernetes config argument or a service-account token (inside a pod) says otherwise. Locally an
experiment is a folder beside the jobs, run by a detached controller whose trials are local jobs;
on Kubernetes it is a Katib Experiment. kubetune's extras are keyword-only (`early_stopping`,
`dry_run` of `tune`) or methods of their own (`get_experiment_report`, `list_experiment_reports`,
`get_experiment_outputs`, `export_results`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

from kubetune.katib.backends.base import ExperimentBackend
from kubetune.katib.constants import constants
from kubetune.katib.report import ExperimentReport, experiment_report
from kubetune.katib.request import KATIB_DEFAULT_STORAGE, TuneArguments, build_request

logger = logging.getLogger(__name__)

DEFAULT_STORAGE_CONFIG = MappingProxyType(dict(KATIB_DEFAULT_STORAGE))
DEFAULT_PIP_INDEX_URLS = ("https://pypi.org/simple",)
DEFAULT_METRICS_COLLECTOR = MappingProxyType({"kind": "StdOut"})


def _has(conditions: Sequence[Any], condition_type: str) -> bool:
    return any(
        c.type == condition_type and c.status == constants.CONDITION_STATUS_TRUE for c in conditions
    )


def to_model(data: Any, klass: str) -> Any:
    """API data as Katib's model class `klass` (e.g. 'V1beta1Experiment'). Katib's own
    deserializer cannot build the Kubernetes client's models of the client version kubetune
    uses, so this is kubetune's (kubetune.training.api.objects)."""
    from kubetune.training.api.objects import from_api

    return from_api(data, klass)


class KatibClient:
    """Creates hyperparameter searches and follows them, as Katib's `KatibClient`.

    `namespace` defaults to 'default' locally, on Kubernetes to the kubeconfig context's (inside
    a pod: the pod's). `home`: the local backend's state directory (default $KUBETUNE_HOME or
    ~/.kubetune).
    """

    def __init__(
        self,
        config_file: str | None = None,
        context: str | None = None,
        client_configuration: Any = None,
        namespace: str | None = None,
        *,
        backend: str | None = None,
        home: str | os.PathLike[str] | None = None,
    ) -> None:
        from kubetune.training.api.training_client import TrainingClient, choose_backend

        chosen = choose_backend(backend, config_file, context, client_configuration)
        self._training = TrainingClient(
            config_file, context, client_configuration, namespace, backend=chosen, home=home
        )
        self.backend: ExperimentBackend
        if chosen == "kubernetes":
            from kubetune.katib.backends.kubernetes.backend import KubernetesExperiments

            self.backend = KubernetesExperiments(
                namespace=self._training.namespace,
                config_file=config_file,
                context=context,
                client_configuration=client_configuration,
            )
        else:
            from kubetune.katib.backends.local.backend import LocalExperiments

            self.backend = LocalExperiments(namespace=self._training.namespace, home=home)
        self.namespace = self.backend.namespace

    def _ns(self, namespace: str | None) -> str:
        return namespace or self.namespace

    # --- create --------------------------------------------------------------------------------

    def create_experiment(self, experiment: Any, namespace: str | None = None) -> None:
        """Creates a Katib Experiment given as a `V1beta1Experiment` or a dict (Kubernetes only:
        a hand-written Experiment names container images)."""
        from kubetune.training.api.objects import to_api

        data = experiment if isinstance(experiment, dict) else to_api(experiment)
        metadata = data.get("metadata") or {}
        if not (metadata.get("name") or metadata.get("generateName")):
            raise ValueError("Experiment must have a name or generateName")
        data = {**data, "metadata": {**metadata, "namespace": self._ns(namespace)}}
        self.backend.create_experiment_object(data)

    def tune(
        self,
        name: str,
        model_provider_parameters: Any = None,
        dataset_provider_parameters: Any = None,
        trainer_parameters: Any = None,
        storage_config: Mapping[str, Any] | None = DEFAULT_STORAGE_CONFIG,
        objective: Callable[..., Any] | None = None,
        base_image: str = constants.BASE_IMAGE_PYTORCH,
        parameters: dict[str, Any] | None = None,
        namespace: str | None = None,
        env_per_trial: Any = None,
        algorithm_name: str = "random",
        algorithm_settings: Any = None,
        objective_metric_name: str | None = None,
        additional_metric_names: Sequence[str] = (),
        objective_type: str = "maximize",
        objective_goal: float | None = None,
        max_trial_count: int | None = None,
        parallel_trial_count: int | None = None,
        max_failed_trial_count: int | None = None,
        resources_per_trial: Any = None,
        retain_trials: bool = False,
        packages_to_install: list[str] | None = None,
        pip_index_urls: Sequence[str] | None = DEFAULT_PIP_INDEX_URLS,
        metrics_collector_config: Mapping[str, Any] = DEFAULT_METRICS_COLLECTOR,
        trial_active_deadline_seconds: int | None = None,
        *,
        early_stopping: Any = None,
        dry_run: bool = False,
        search_parameters: Sequence[Any] = (),
    ) -> Any:
        """Creates an experiment and returns None without waiting, as Katib's `tune` does.

        Two forms. Fine-tuning: `model_provider_parameters`, `dataset_provider_parameters` and
        `trainer_parameters` as `TrainingClient.train()` takes them, with search spaces
        (`kubetune.katib.search.double/int/categorical`) in `TrainingArguments` and `LoraConfig`
        fields; each trial is a fine-tuning job, and the objective metric is one the trainer
        reports (train_loss, eval_loss, eval_accuracy, ...). Custom objective: `objective`, a
        function called with `parameters` (search spaces among its values, which reach it as
        text), printing `name=value` lines (or calling `report_metrics` with
        `metrics_collector_config={'kind': 'Push'}`); each trial is a function job
        (`create_job(train_func=...)`).

        `resources_per_trial`: a `TrainerResources(num_workers, num_procs_per_worker,
        resources_per_worker)`, or the resources of one worker (a dict or V1ResourceRequirements).
        `algorithm_name`: random, grid, tpe, multivariate-tpe, cmaes, bayesianoptimization,
        sobol (hyperband and pbt on Kubernetes), with Katib's `algorithm_settings`.
        `max_trial_count`, `parallel_trial_count` (default 3), `max_failed_trial_count` and
        `objective_goal` end the search as in Katib. kubetune's options: `early_stopping`
        ('medianstop', or a dict of its settings min_trials_required and start_step);
        `dry_run=True` returns the objects that would be created without creating them;
        `search_parameters`: search spaces given apart from the params (`kubetune.katib.space.
        Parameter`s, what an experiment file's `{double: ...}` become), the params holding a
        value of each. Every problem with the arguments is reported in one ValueError before
        anything is created.
        """
        arguments = TuneArguments(
            name=name,
            model_provider_parameters=model_provider_parameters,
            dataset_provider_parameters=dataset_provider_parameters,
            trainer_parameters=trainer_parameters,
            storage_config=None if storage_config is None else dict(storage_config),
            objective=objective,
            base_image=base_image,
            parameters=parameters,
            namespace=namespace,
            env_per_trial=env_per_trial,
            algorithm_name=algorithm_name,
            algorithm_settings=algorithm_settings,
            objective_metric_name=objective_metric_name,
            additional_metric_names=list(additional_metric_names or []),
            objective_type=objective_type,
            objective_goal=objective_goal,
            max_trial_count=max_trial_count,
            parallel_trial_count=parallel_trial_count,
            max_failed_trial_count=max_failed_trial_count,
            resources_per_trial=resources_per_trial,
            retain_trials=retain_trials,
            packages_to_install=packages_to_install,
            pip_index_urls=list(pip_index_urls or DEFAULT_PIP_INDEX_URLS),
            metrics_collector_config=None
            if metrics_collector_config is None
            else dict(metrics_collector_config),
            trial_active_deadline_seconds=trial_active_deadline_seconds,
            early_stopping=early_stopping,
            search_parameters=list(search_parameters),
        )
        request, secrets = build_request(
            arguments, self._training, kubernetes=self.backend.name == "kubernetes"
        )
        if dry_run:
            return self.backend.render_experiment(request, secrets)
        self.backend.create_experiment(request, secrets)
        return None

    # --- experiments ---------------------------------------------------------------------------

    def _experiment_data(self, name: str, namespace: str, timeout: int) -> dict[str, Any]:
        return self.backend.get_experiment(name, namespace, timeout)

    def get_experiment(
        self, name: str, namespace: str | None = None, timeout: int = constants.DEFAULT_TIMEOUT
    ) -> Any:
        """The experiment as a `V1beta1Experiment` (spec and status). RuntimeError when it does
        not exist; TimeoutError when the API server does not answer in time."""
        return to_model(
            self._experiment_data(name, self._ns(namespace), timeout), "V1beta1Experiment"
        )

    def list_experiments(
        self, namespace: str | None = None, timeout: int = constants.DEFAULT_TIMEOUT
    ) -> list[Any]:
        """Every experiment of the namespace ([] when none)."""
        found = self.backend.list_experiments(self._ns(namespace), timeout)
        return [to_model(e, "V1beta1Experiment") for e in found]

    def get_experiment_conditions(
        self,
        name: str,
        namespace: str | None = None,
        experiment: Any = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> list[Any]:
        """The experiment's conditions (`V1beta1ExperimentCondition`); [] before it has any."""
        if experiment is None:
            experiment = self.get_experiment(name, namespace, timeout)
        if experiment.status and experiment.status.conditions:
            return list(experiment.status.conditions)
        return []

    def is_experiment_created(
        self,
        name: str,
        namespace: str | None = None,
        experiment: Any = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the experiment has a true Created condition."""
        return self._holds(
            constants.EXPERIMENT_CONDITION_CREATED, name, namespace, experiment, timeout
        )

    def is_experiment_running(
        self,
        name: str,
        namespace: str | None = None,
        experiment: Any = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the experiment has a true Running condition."""
        return self._holds(
            constants.EXPERIMENT_CONDITION_RUNNING, name, namespace, experiment, timeout
        )

    def is_experiment_restarting(
        self,
        name: str,
        namespace: str | None = None,
        experiment: Any = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the experiment has a true Restarting condition."""
        return self._holds(
            constants.EXPERIMENT_CONDITION_RESTARTING, name, namespace, experiment, timeout
        )

    def is_experiment_succeeded(
        self,
        name: str,
        namespace: str | None = None,
        experiment: Any = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the experiment has a true Succeeded condition."""
        return self._holds(
            constants.EXPERIMENT_CONDITION_SUCCEEDED, name, namespace, experiment, timeout
        )

    def is_experiment_failed(
        self,
        name: str,
        namespace: str | None = None,
        experiment: Any = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> bool:
        """Whether the experiment has a true Failed condition."""
        return self._holds(
            constants.EXPERIMENT_CONDITION_FAILED, name, namespace, experiment, timeout
        )

    def _holds(
        self, condition_type: str, name: str, namespace: str | None, experiment: Any, timeout: int
    ) -> bool:
        found = self.get_experiment_conditions(name, namespace, experiment, timeout)
        return _has(found, condition_type)

    def wait_for_experiment_condition(
        self,
        name: str,
        namespace: str | None = None,
        expected_condition: str = constants.EXPERIMENT_CONDITION_SUCCEEDED,
        timeout: int = 600,
        polling_interval: int = 15,
        apiserver_timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> Any:
        """Polls the experiment every `polling_interval` seconds until it has
        `expected_condition` and returns it, printing its trial counts, current optimal trial
        and conditions at each poll, as Katib does. RuntimeError as soon as it fails (unless
        Failed is expected); TimeoutError after `timeout` seconds; ValueError for a condition
        that is not one of Katib's."""
        namespace = self._ns(namespace)
        if expected_condition not in constants.EXPERIMENT_CONDITIONS:
            raise ValueError(
                f"expected_condition={expected_condition!r}: allowed: {', '.join(constants.EXPERIMENT_CONDITIONS)}"
            )
        deadline = time.monotonic() + timeout
        while True:
            experiment = self.get_experiment(name, namespace, apiserver_timeout)
            conditions = self.get_experiment_conditions(name, experiment=experiment)
            failed = _has(conditions, constants.EXPERIMENT_CONDITION_FAILED)
            if expected_condition == constants.EXPERIMENT_CONDITION_FAILED and failed:
                print_experiment_status(experiment)
                return experiment
            if failed:
                raise RuntimeError(
                    f"Experiment: {namespace}/{name} is Failed. Experiment conditions: {experiment.status.conditions}"
                )
            if _has(conditions, expected_condition):
                print_experiment_status(experiment)
                return experiment
            print_experiment_status(experiment)
            logger.debug(
                "waiting for experiment: %s/%s to reach %s condition",
                namespace,
                name,
                expected_condition,
            )
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"Timeout waiting for Experiment: {namespace}/{name} to reach {expected_condition} state"
                )
            time.sleep(max(0.0, min(polling_interval, deadline - time.monotonic())))

    def edit_experiment_budget(
        self,
        name: str,
        namespace: str | None = None,
        max_trial_count: int | None = None,
        parallel_trial_count: int | None = None,
        max_failed_trial_count: int | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> None:
        """Changes a running experiment's trial counts (locally: while it runs)."""
        if (
            max_trial_count is None
            and parallel_trial_count is None
            and max_failed_trial_count is None
        ):
            raise ValueError(
                "Invalid input arguments. You have to set max_trial_count, parallel_trial_count, "
                "or max_failed_trial_count to modify Experiment Trial budget."
            )
        changes = {}
        for key, value, low in (
            ("maxTrialCount", max_trial_count, 1),
            ("parallelTrialCount", parallel_trial_count, 1),
            ("maxFailedTrialCount", max_failed_trial_count, 0),
        ):
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{key}={value!r}: must be an integer >= {low}")
            changes[key] = value
        self.backend.edit_experiment_budget(name, self._ns(namespace), changes)

    def delete_experiment(
        self, name: str, namespace: str | None = None, delete_options: Any = None
    ) -> None:
        """Deletes the experiment with its trials (locally: stops its controller and trials and
        removes their jobs and its folder; on Kubernetes `delete_options`, a V1DeleteOptions, is
        the request's body)."""
        from kubetune.training.api.objects import to_api

        options = None if delete_options is None else to_api(delete_options)
        self.backend.delete_experiment(name, self._ns(namespace), options)

    def get_trial(
        self, name: str, namespace: str | None = None, timeout: int = constants.DEFAULT_TIMEOUT
    ) -> Any:
        """The trial as a `V1beta1Trial`."""
        data = self.backend.get_trial(name, self._ns(namespace), timeout)
        return to_model(data, "V1beta1Trial")

    def _trial_data(
        self, experiment_name: str | None, namespace: str, timeout: int
    ) -> list[dict[str, Any]]:
        return self.backend.list_trials(experiment_name, namespace, timeout)

    def list_trials(
        self,
        experiment_name: str | None = None,
        namespace: str | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> list[Any]:
        """The trials (`V1beta1Trial`) of one experiment, or of all in the namespace."""
        data = self._trial_data(experiment_name, self._ns(namespace), timeout)
        return [to_model(t, "V1beta1Trial") for t in data]

    def get_success_trial_details(
        self,
        experiment_name: str | None = None,
        namespace: str | None = None,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> list[dict[str, Any]]:
        """The succeeded trials as {'name', 'parameter_assignments', 'metrics'} dicts (Katib's
        V1beta1ParameterAssignment and V1beta1Metric lists)."""
        details = []
        for trial in self.list_trials(experiment_name, namespace, timeout):
            conditions = (trial.status.conditions or []) if trial.status else []
            if not _has(conditions, constants.TRIAL_CONDITION_SUCCEEDED):
                continue
            observation = trial.status.observation
            details.append(
                {
                    "name": trial.metadata.name,
                    "parameter_assignments": trial.spec.parameter_assignments,
                    "metrics": observation.metrics if observation else None,
                }
            )
        return details

    def get_optimal_hyperparameters(
        self, name: str, namespace: str | None = None, timeout: int = constants.DEFAULT_TIMEOUT
    ) -> Any:
        """The best trial so far as a `V1beta1OptimalTrial` (its name, parameter assignments and
        observation); None before a trial has succeeded with its metrics."""
        experiment = self.get_experiment(name, namespace, timeout)
        optimal = experiment.status.current_optimal_trial if experiment.status else None
        if optimal is None or optimal.observation is None or not optimal.observation.metrics:
            return None
        return optimal

    def get_trial_metrics(
        self,
        name: str,
        namespace: str | None = None,
        db_manager_address: str = constants.DEFAULT_DB_MANAGER_ADDRESS,
        timeout: int = constants.DEFAULT_TIMEOUT,
    ) -> Any:
        """Every value the trial reported, as Katib's `MetricLog` protobufs (time_stamp,
        metric.name, metric.value). On Kubernetes from Katib's DB manager at
        `db_manager_address` (outside the cluster: `kubectl port-forward
        svc/katib-db-manager -n kubeflow 6789`)."""
        return self.backend.trial_metric_logs(
            name, self._ns(namespace), db_manager_address, timeout
        )

    def get_job_logs(
        self,
        name: str,
        trial_name: str,
        follow: bool | None = False,
        namespace: str | None = None,
    ) -> Iterator[str]:
        """The log lines of a trial's primary container (locally: its job's first worker,
        storage initializer first); with `follow`, as they are written, until the trial ends."""
        if not name:
            raise ValueError("Experiment name is required")
        if not trial_name:
            raise ValueError("Trial name is required")
        return iter(self.backend.trial_logs(name, trial_name, self._ns(namespace), bool(follow)))

    # --- kubetune's own view -------------------------------------------------------------------

    def get_experiment_report(self, name: str, namespace: str | None = None) -> ExperimentReport:
        """kubetune's report of an experiment: status, objective, search space, every trial's
        values, status and metrics, the best trial, and (locally) where its results are."""
        namespace = self._ns(namespace)
        experiment = self._experiment_data(name, namespace, constants.DEFAULT_TIMEOUT)
        trials = self._trial_data(name, namespace, constants.DEFAULT_TIMEOUT)
        outputs = self.get_experiment_outputs(name, namespace)
        return experiment_report(experiment, trials, self.backend.name, outputs)

    def list_experiment_reports(self, namespace: str | None = None) -> list[ExperimentReport]:
        """The reports of the namespace's experiments, oldest first."""
        namespace = self._ns(namespace)
        reports = []
        for experiment in self.list_experiments(namespace):
            try:
                reports.append(self.get_experiment_report(experiment.metadata.name, namespace))
            except RuntimeError:
                continue
        return reports

    def get_experiment_outputs(self, name: str, namespace: str | None = None) -> dict[str, Path]:
        """Where a local experiment's results are: folder, results_csv, results_json,
        objective_png, parameters_png ({} on Kubernetes: see `export_results`)."""
        return self.backend.experiment_outputs(name, self._ns(namespace))

    def export_results(
        self, name: str, folder: str | os.PathLike[str], namespace: str | None = None
    ) -> dict[str, Path]:
        """Writes the experiment's results table (results.csv, results.json) and plots
        (objective.png, parameters.png) into `folder`, from its trials as they are now."""
        from kubetune.katib import results

        namespace = self._ns(namespace)
        experiment = self._experiment_data(name, namespace, constants.DEFAULT_TIMEOUT)
        trials = self._trial_data(name, namespace, constants.DEFAULT_TIMEOUT)
        target = Path(folder)
        paths = {
            "results_csv": target / "results.csv",
            "results_json": target / "results.json",
            "objective_png": target / "objective.png",
            "parameters_png": target / "parameters.png",
        }
        results.write(experiment, trials, *paths.values())
        return paths


def print_experiment_status(experiment: Any) -> None:
    """Prints the experiment's trial counts, current optimal trial and conditions, as Katib does."""
    status = experiment.status
    if not status:
        return
    print(
        f"Experiment Trials status: {status.trials or 0} Trials, {status.trials_pending or 0} "
        f"Pending Trials, {status.trials_running or 0} Running Trials, "
        f"{status.trials_succeeded or 0} Succeeded Trials, {status.trials_failed or 0} Failed "
        f"Trials, {status.trials_early_stopped or 0} EarlyStopped Trials, "
        f"{status.trial_metrics_unavailable or 0} MetricsUnavailable Trials"
    )
    print(f"Current Optimal Trial:\n {status.current_optimal_trial}")
    print(f"Experiment conditions:\n {status.conditions}")
