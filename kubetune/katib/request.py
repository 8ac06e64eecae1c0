"""`tune()`'s arguments checked and turned into an `ExperimentRequest`: what either backend
needs to create the experiment (its search space, objective, algorithm and budget, and the
trial template: the JobSpec of a trial with a value of each search space standing in).

Every problem with the arguments is reported in one ValueError before anything is created.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubetune.contract.problems import InvalidJob, Problems, shown
from kubetune.contract.spec import JobSpec
from kubetune.katib import algorithms, metrics
from kubetune.katib.constants import constants
from kubetune.katib.space import (
    FUNCTION_PARAMETERS,
    Parameter,
    combinations,
    duplicate_names,
    parameter_from_spec,
    take_spaces_from_trainer,
)
from kubetune.params import validation
from kubetune.params.validation import is_search_space

if TYPE_CHECKING:
    from kubetune.training.api.training_client import TrainingClient

TRAIN_FORM = "train"
FUNCTION_FORM = "function"
OBJECTIVE_TYPES = ("minimize", "maximize")
COLLECTOR_KINDS = ("StdOut", "Push")
# Katib's webhook rule for experiment names.
_EXPERIMENT_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_EXPERIMENT_NAME = 40
# Katib's metric names are reported as `name=value`: a name is a word (letters, digits, _, -).
_METRIC_NAME = re.compile(r"^[\w-]+$", re.ASCII)
# Katib's tune() defaults, recognised to apply kubetune's own instead.
KATIB_DEFAULT_STORAGE = {
    "size": constants.PVC_DEFAULT_SIZE,
    "storage_class": None,
    "access_modes": constants.PVC_DEFAULT_ACCESS_MODES,
}
MIXED_FORMS = (
    "Invalid configuration for creating a Katib Experiment for hyperparameter optimization. You "
    "should specify one of the following options:\n1. Use external models and datasets: specify "
    "`model_provider_parameters`, `dataset_provider_parameters` and `trainer_parameters`;\n2. Use "
    "custom objective function: specify `objective`, `base_image` and `parameters`."
)
# Environment variables kubetune sets in every trial (see kubetune.katib.trial).
RESERVED_PARAMETER_NAMES = ("kubetuneTrialName",)


@dataclass
class ExperimentRequest:
    """A checked experiment, as both backends create it (no secrets in it)."""

    name: str
    namespace: str
    form: str
    parameters: list[Parameter]
    objective_metric_name: str
    objective_type: str
    job: JobSpec
    additional_metric_names: list[str] = field(default_factory=list)
    objective_goal: float | None = None
    algorithm_name: str = "random"
    algorithm_settings: dict[str, str] = field(default_factory=dict)
    max_trial_count: int | None = None
    parallel_trial_count: int | None = None
    max_failed_trial_count: int | None = None
    early_stopping: dict[str, str] | None = None
    retain_trials: bool = False
    trial_active_deadline_seconds: int | None = None
    metrics_collector_kind: str = "StdOut"
    # The custom objective: {"name", "source", "parameters"} (its literal inputs; the searched
    # keys are the parameters of the search).
    function: dict[str, Any] | None = None
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def metric_names(self) -> list[str]:
        """The objective metric first, then the additional ones (Katib's order)."""
        return [self.objective_metric_name, *self.additional_metric_names]

    @property
    def strategy(self) -> str:
        """The metric strategy of the objective (Katib's default for its type)."""
        return metrics.default_strategy(self.objective_type)

    def to_dict(self) -> dict[str, Any]:
        """The request as JSON data (what the local controller reads)."""
        data = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in ("parameters", "job")
        }
        data["parameters"] = [p.to_dict() for p in self.parameters]
        data["job"] = self.job.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExperimentRequest:
        """The request from `to_dict`'s data."""
        values = dict(data)
        values["parameters"] = [Parameter.from_dict(p) for p in data["parameters"]]
        values["job"] = JobSpec.from_dict(data["job"])
        return cls(**values)

    def function_program(self, values: Mapping[str, Any]) -> str:
        """The custom objective's program, called with its literal inputs and `values` (the
        trial's, as text; or Katib's `${trialParameters.<name>}` placeholders)."""
        from kubetune.training.functions import program_text

        assert self.function is not None
        given = {**self.function["parameters"], **values}
        return program_text(self.function["source"], self.function["name"], given)

    def spec(self) -> dict[str, Any]:
        """The Experiment's `spec` without its trial template, in API form."""
        objective: dict[str, Any] = {
            "type": self.objective_type,
            "objectiveMetricName": self.objective_metric_name,
            "additionalMetricNames": list(self.additional_metric_names),
            "metricStrategies": [
                {"name": name, "value": self.strategy} for name in self.metric_names
            ],
        }
        if self.objective_goal is not None:
            objective["goal"] = self.objective_goal
        algorithm: dict[str, Any] = {"algorithmName": self.algorithm_name}
        if self.algorithm_settings:
            algorithm["algorithmSettings"] = [
                {"name": k, "value": v} for k, v in self.algorithm_settings.items()
            ]
        spec: dict[str, Any] = {
            "objective": objective,
            "algorithm": algorithm,
            "parameters": [p.to_api() for p in self.parameters],
            "resumePolicy": "Never",
        }
        for key, value in (
            ("maxTrialCount", self.max_trial_count),
            ("parallelTrialCount", self.parallel_trial_count),
            ("maxFailedTrialCount", self.max_failed_trial_count),
        ):
            if value is not None:
                spec[key] = value
        if self.early_stopping is not None:
            spec["earlyStopping"] = {
                "algorithmName": algorithms.EARLY_STOPPING_ALGORITHM,
                "algorithmSettings": [
                    {"name": k, "value": v} for k, v in self.early_stopping.items()
                ],
            }
        return spec


@dataclass
class TuneArguments:
    """`tune()`'s arguments (Katib's names), as the client received them."""

    name: Any
    model_provider_parameters: Any = None
    dataset_provider_parameters: Any = None
    trainer_parameters: Any = None
    storage_config: Any = None
    objective: Any = None
    base_image: Any = constants.BASE_IMAGE_PYTORCH
    parameters: Any = None
    namespace: Any = None
    env_per_trial: Any = None
    algorithm_name: Any = "random"
    algorithm_settings: Any = None
    objective_metric_name: Any = None
    additional_metric_names: Any = ()
    objective_type: Any = "maximize"
    objective_goal: Any = None
    max_trial_count: Any = None
    parallel_trial_count: Any = None
    max_failed_trial_count: Any = None
    resources_per_trial: Any = None
    retain_trials: Any = False
    packages_to_install: Any = None
    pip_index_urls: Any = ("https://pypi.org/simple",)
    metrics_collector_config: Any = None
    trial_active_deadline_seconds: Any = None
    early_stopping: Any = None
    # Search spaces given apart from the params (an experiment file's), with the params holding
    # a value of each.
    search_parameters: Sequence[Parameter] = ()


def build_request(
    arguments: TuneArguments, training_client: TrainingClient, kubernetes: bool
) -> tuple[ExperimentRequest, dict[str, str]]:
    """The checked experiment and the secrets of its trials; one ValueError listing every
    problem (the form mix-up alone, as Katib does, when both or neither form is given)."""
    a = arguments
    llm = (a.model_provider_parameters, a.dataset_provider_parameters, a.trainer_parameters)
    custom = (a.objective, a.parameters)
    if (any(p is not None for p in llm) and any(p is not None for p in custom)) or (
        all(p is None for p in llm) and all(p is None for p in custom)
    ):
        raise ValueError(MIXED_FORMS)
    form = FUNCTION_FORM if any(p is not None for p in custom) else TRAIN_FORM
    problems = Problems(f"tune(name={a.name!r})")
    if not a.name:
        raise ValueError("Please specify name for the Experiment.")
    if (
        not isinstance(a.name, str)
        or len(a.name) > MAX_EXPERIMENT_NAME
        or not _EXPERIMENT_NAME.match(a.name)
    ):
        problems.add(
            f"name={shown(a.name)}: an experiment name has at most "
            f"{MAX_EXPERIMENT_NAME} characters: lower-case letters, digits and '-', starting with a "
            "letter and ending with a letter or digit (Katib's rule)"
        )
    namespace = a.namespace or training_client.namespace
    problems.extend(_objective_problems(a))
    budget = _budget(a, problems)
    settings = _settings("algorithm_settings", a.algorithm_settings, problems)
    early = _early_stopping(a.early_stopping, problems)
    collector = _collector(a.metrics_collector_config, form, problems)
    workers, procs, resources = _resources(a.resources_per_trial, form, problems)
    if not isinstance(a.retain_trials, bool):
        problems.add(f"retain_trials={a.retain_trials!r}: must be True or False")
    if a.trial_active_deadline_seconds is not None:
        problems.add(
            validation.positive_int(
                "trial_active_deadline_seconds", a.trial_active_deadline_seconds
            )
        )
    parameters: list[Parameter] = list(a.search_parameters)
    function = None
    job_name = (
        a.name if isinstance(a.name, str) and _EXPERIMENT_NAME.match(a.name) else "experiment"
    )
    if form == TRAIN_FORM:
        trainer, found, wrong = take_spaces_from_trainer(a.trainer_parameters)
        problems.extend(wrong)
        parameters += found
        problems.extend(_train_form_problems(a))
        job, secrets = _train_job(
            a,
            training_client,
            job_name,
            namespace,
            trainer,
            workers,
            procs,
            resources,
            budget,
            problems,
        )
    else:
        parameters, function = _function_parameters(a, problems)
        job, secrets = _function_job(
            a,
            training_client,
            job_name,
            namespace,
            parameters,
            function,
            workers,
            procs,
            resources,
            problems,
        )
    problems.extend(duplicate_names(parameters))
    if not parameters:
        problems.add(
            "no search space: put katib.search.double/int/categorical where a value goes "
            "(a TrainingArguments or LoraConfig field, or a value of `parameters`)"
        )
    for parameter in parameters:
        if parameter.name in RESERVED_PARAMETER_NAMES:
            problems.add(f"{parameter.where}: the name {parameter.name!r} is kubetune's own")
        if parameter.log and parameter.step is not None:
            problems.add(f"{parameter.where}: a logUniform distribution takes no step")
    problems.extend(
        algorithms.algorithm_problems(a.algorithm_name, settings, parameters, kubernetes)
    )
    if a.algorithm_name == "grid" and not problems.messages and budget["max"] is not None:
        total = combinations(parameters)
        if budget["max"] > total:
            problems.add(
                f"max_trial_count={budget['max']}: more than all possible search combinations "
                f"of the grid ({total}); grid search tries each once"
            )
    problems.raise_if_any()
    assert job is not None
    request = ExperimentRequest(
        name=a.name,
        namespace=namespace,
        form=form,
        parameters=parameters,
        objective_metric_name=a.objective_metric_name,
        objective_type=a.objective_type,
        job=job,
        additional_metric_names=list(a.additional_metric_names or []),
        objective_goal=None if a.objective_goal is None else float(a.objective_goal),
        algorithm_name=a.algorithm_name,
        algorithm_settings=settings,
        max_trial_count=budget["max"],
        parallel_trial_count=budget["parallel"],
        max_failed_trial_count=budget["failed"],
        early_stopping=early,
        retain_trials=a.retain_trials,
        trial_active_deadline_seconds=a.trial_active_deadline_seconds,
        metrics_collector_kind=collector,
        function=function,
    )
    return request, secrets


# --- the parts -----------------------------------------------------------------------------------


def _objective_problems(a: TuneArguments) -> list[str]:
    problems = []
    if not isinstance(a.objective_metric_name, str) or not _METRIC_NAME.match(
        a.objective_metric_name
    ):
        problems.append(
            f"objective_metric_name={a.objective_metric_name!r}: name the metric to optimise, "
            "e.g. 'train_loss', 'eval_loss', 'eval_accuracy' (letters, digits, '_' and '-')"
        )
    extra = a.additional_metric_names
    if not isinstance(extra, list | tuple) or not all(
        isinstance(m, str) and _METRIC_NAME.match(m) for m in extra
    ):
        problems.append(
            f"additional_metric_names={extra!r}: must be a list of metric names (letters, digits, '_' and '-')"
        )
    elif a.objective_metric_name in extra:
        problems.append(
            f"additional_metric_names: {a.objective_metric_name!r} is the objective metric already"
        )
    if a.objective_type not in OBJECTIVE_TYPES:
        problems.append(f"objective_type={a.objective_type!r}: allowed: minimize, maximize")
    goal = a.objective_goal
    if goal is not None and (isinstance(goal, bool) or not isinstance(goal, int | float)):
        problems.append(f"objective_goal={goal!r}: must be a number or None")
    return problems


def _budget(a: TuneArguments, problems: Problems) -> dict[str, int | None]:
    budget: dict[str, int | None] = {}
    for key, field_name, low in (
        ("max", "max_trial_count", 1),
        ("parallel", "parallel_trial_count", 1),
        ("failed", "max_failed_trial_count", 0),
    ):
        value = getattr(a, field_name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < low
        ):
            problems.add(f"{field_name}={shown(value)}: must be an integer >= {low} or None")
            value = None
        budget[key] = value
    if budget["max"] is not None:
        for key, field_name in (
            ("parallel", "parallel_trial_count"),
            ("failed", "max_failed_trial_count"),
        ):
            if budget[key] is not None and budget[key] > budget["max"]:  # type: ignore[operator]
                problems.add(
                    f"{field_name}={budget[key]}: cannot exceed max_trial_count={budget['max']}"
                )
    return budget


def _settings(where: str, value: Any, problems: Problems) -> dict[str, str]:
    """Katib's algorithm settings (a dict, or a list of V1beta1AlgorithmSetting) as text."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        settings = {}
        for item in value:
            name, text = getattr(item, "name", None), getattr(item, "value", None)
            if isinstance(item, dict):
                name, text = item.get("name"), item.get("value")
            if not isinstance(name, str):
                problems.add(f"{where}: {item!r} is not a V1beta1AlgorithmSetting(name=, value=)")
                continue
            settings[name] = str(text)
        return settings
    problems.add(f"{where}={value!r}: must be a dict or a list of V1beta1AlgorithmSetting")
    return {}


def _early_stopping(value: Any, problems: Problems) -> dict[str, str] | None:
    """kubetune's `early_stopping`: None (off), 'medianstop', a dict of medianstop settings, or
    a Katib V1beta1EarlyStoppingSpec."""
    if value is None:
        return None
    if value == algorithms.EARLY_STOPPING_ALGORITHM:
        return {}
    if hasattr(value, "algorithm_name") and hasattr(value, "algorithm_settings"):
        if value.algorithm_name != algorithms.EARLY_STOPPING_ALGORITHM:
            problems.add(
                f"early_stopping.algorithm_name={value.algorithm_name!r}: allowed: medianstop"
            )
            return None
        value = value.algorithm_settings or []
    settings = _settings("early_stopping", value, problems)
    problems.extend(
        algorithms.settings_problems(
            "early_stopping (medianstop)", settings, algorithms.EARLY_STOPPING_SETTINGS
        )
    )
    return settings


def _collector(value: Any, form: str, problems: Problems) -> str:
    if value is None:
        return "StdOut"
    kind = value.get("kind") if isinstance(value, dict) else None
    allowed = COLLECTOR_KINDS if form == FUNCTION_FORM else ("StdOut",)
    if kind not in allowed:
        problems.add(
            f"metrics_collector_config={value!r}: {{'kind': ...}} with kind one of "
            f"{', '.join(allowed)}"
            + (
                ""
                if form == FUNCTION_FORM
                else " (a fine-tuning trial reports on its standard output)"
            )
        )
        return "StdOut"
    return str(kind)


def _resources(value: Any, form: str, problems: Problems) -> tuple[int, int | None, Any]:
    """(num_workers, num_procs_per_worker or None, resources_per_worker) of each trial."""
    if value is None or isinstance(value, dict) or hasattr(value, "model_dump"):
        return 1, None, value
    fields = ("num_workers", "num_procs_per_worker", "resources_per_worker")
    if not all(hasattr(value, f) for f in fields):
        problems.add(
            f"resources_per_trial={type(value).__name__}: must be a TrainerResources, a dict of "
            "resources or a V1ResourceRequirements"
        )
        return 1, None, None
    where = "resources_per_trial"
    limits = (
        ("num_workers", validation.MAX_WORKERS),
        ("num_procs_per_worker", validation.MAX_PROCS_PER_WORKER),
    )
    for key, high in limits:
        problems.add(validation.int_in_range(f"{where}.{key}", getattr(value, key), 1, high))
    return value.num_workers, value.num_procs_per_worker, value.resources_per_worker


def _train_form_problems(a: TuneArguments) -> list[str]:
    problems = []
    for key in ("model_provider_parameters", "dataset_provider_parameters", "trainer_parameters"):
        if getattr(a, key) is None:
            problems.append(f"{key}: missing (the fine-tuning form needs all three params)")
    if a.packages_to_install:
        problems.append(
            "packages_to_install: applies to a custom objective; a fine-tuning trial runs kubetune's trainer"
        )
    return problems


def _storage(a: TuneArguments, workers: int, budget: dict[str, int | None]) -> Any:
    """The storage of the workspace volume all trials share (Kubernetes). Katib's default
    (RWO+ROX) becomes kubetune's: ReadWriteMany when trials or workers may run on several
    nodes at once, else ReadWriteOnce."""
    if a.storage_config is None or a.storage_config == KATIB_DEFAULT_STORAGE:
        several = workers > 1 or (budget["parallel"] or constants.DEFAULT_PARALLEL_TRIAL_COUNT) > 1
        return {
            "size": constants.PVC_DEFAULT_SIZE,
            "access_modes": ["ReadWriteMany" if several else "ReadWriteOnce"],
        }
    return a.storage_config


def _train_job(
    a: TuneArguments,
    training_client: TrainingClient,
    name: str,
    namespace: str,
    trainer: Any,
    workers: int,
    procs: int | None,
    resources: Any,
    budget: dict[str, int | None],
    problems: Problems,
) -> tuple[JobSpec | None, dict[str, str]]:
    try:
        return training_client.job_spec(
            name,
            namespace,
            num_workers=workers,
            num_procs_per_worker=procs or 1,
            resources_per_worker=resources,
            model_provider_parameters=a.model_provider_parameters,
            dataset_provider_parameters=a.dataset_provider_parameters,
            trainer_parameters=trainer,
            env_vars=a.env_per_trial,
            storage_config=_storage(a, workers, budget),
        )
    except ValueError as e:
        problems.extend(_inner_problems(e))
        return None, {}


def _function_parameters(
    a: TuneArguments, problems: Problems
) -> tuple[list[Parameter], dict[str, Any] | None]:
    if not a.objective or not a.parameters:
        problems.add("objective and parameters: both are required for a custom objective")
        return [], None
    if not isinstance(a.parameters, dict):
        problems.add(f"parameters={type(a.parameters).__name__}: must be a dict")
        return [], None
    found = []
    literal = {}
    for key, value in a.parameters.items():
        if is_search_space(value):
            parameter, wrong = parameter_from_spec(str(key), value, FUNCTION_PARAMETERS, str(key))
            problems.extend(wrong)
            if parameter is not None:
                found.append(parameter)
        else:
            literal[key] = value
    return found, {"parameters": literal}


def _function_job(
    a: TuneArguments,
    training_client: TrainingClient,
    name: str,
    namespace: str,
    parameters: list[Parameter],
    function: dict[str, Any] | None,
    workers: int,
    procs: int | None,
    resources: Any,
    problems: Problems,
) -> tuple[JobSpec | None, dict[str, str]]:
    from kubetune.training.api import arguments
    from kubetune.training.functions import function_job_spec, function_source

    if function is None:
        return None, {}
    if not callable(a.objective):
        problems.add(f"objective={a.objective!r}: Objective function must be callable")
        return None, {}
    urls = a.pip_index_urls
    if not isinstance(urls, list | tuple) or not urls:
        problems.add(f"pip_index_urls={urls!r}: must be a list of one package index URL")
        urls = ["https://pypi.org/simple"]
    elif len(urls) > 1:
        problems.add(
            f"pip_index_urls={list(urls)!r}: kubetune installs from one index; give one URL"
        )
    env = arguments.env_argument("env_per_trial", a.env_per_trial)
    resources, api_resources = arguments.resources_argument(resources)
    settings = arguments.kubernetes_settings(env, None, api_resources)
    env_problems = [*env.problems, *training_client.backend.unsupported_settings(settings)]
    samples = {**function["parameters"], **{p.name: str(p.sample()) for p in parameters}}
    try:
        job = function_job_spec(
            name=name,
            namespace=namespace,
            train_func=a.objective,
            parameters=samples,
            base_image=a.base_image,
            num_workers=workers,
            num_procs_per_worker=procs if (procs or 1) > 1 else None,
            resources_per_worker=resources,
            packages_to_install=a.packages_to_install,
            pip_index_url=urls[0],
            env_vars=env.plain,
            kubernetes=settings,
            extra_problems=env_problems,
        )
    except ValueError as e:
        # Its messages name create_job's argument; tune() calls the function `objective`.
        problems.extend(p.replace("train_func", "objective") for p in _inner_problems(e))
        return None, {}
    function.update(name=a.objective.__name__, source=function_source(a.objective))
    return job, {}


def _inner_problems(error: ValueError) -> list[str]:
    """The problems a ValueError of the job builders lists (InvalidJob's), else its text."""
    if isinstance(error, InvalidJob):
        return list(error.problems)
    return [str(error)]
