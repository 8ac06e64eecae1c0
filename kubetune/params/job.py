"""train()'s arguments as a JobSpec: the job-level rules, and the one build.

`build_job_spec` checks every rule on a submission once (the params classes checked their own
fields when they were made) and turns the params into a `JobSpec` plus a mapping of secret
environment variables; the secrets travel separately (environment variables locally, a
Kubernetes Secret on a cluster; see `kubetune.contract.secrets`). Only the
`TrainingArguments`/`LoraConfig` fields that differ from their defaults are recorded (never a
credential); the runtime rebuilds equal objects from them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import re
import uuid
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kubetune import __version__
from kubetune.contract.causal_lm import DataFormat, LossOn, method_of, record_defaults
from kubetune.contract.problems import Problems, shown
from kubetune.contract.secrets import (
    DATASET_TOKEN_ENV,
    MODEL_TOKEN_ENV,
    S3_ACCESS_KEY_ENV,
    S3_SECRET_KEY_ENV,
    SECRET_ENV_VARS,
    TRAINING_ARGUMENT_SECRETS,
)
from kubetune.contract.spec import (
    ACCESS_MODES,
    DEFAULT_STORAGE_SIZE,
    DatasetMixSpec,
    DatasetSection,
    DatasetSpec,
    HubDatasetSpec,
    JobSpec,
    KubernetesExtras,
    LocalDatasetSpec,
    MixPartSpec,
    ModelSpec,
    S3DatasetSpec,
    StorageSpec,
    TrainerSpec,
    TransformerType,
)
from kubetune.params import validation

if TYPE_CHECKING:
    from kubetune.params.hugging_face import (
        HuggingFaceDatasetParams,
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )
    from kubetune.params.local import LocalDatasetParams
    from kubetune.params.mix import DatasetMix, MixedDataset
    from kubetune.params.s3 import S3DatasetParams

    DatasetParams = HuggingFaceDatasetParams | S3DatasetParams | LocalDatasetParams
    DatasetArgument = DatasetParams | DatasetMix | list[DatasetParams | MixedDataset]

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


def job_problems(
    *,
    name: Any,
    namespace: Any = "default",
    num_workers: Any = 1,
    num_procs_per_worker: Any = 1,
    resources_per_worker: Any = None,
    storage: Any = None,
    env: Any = None,
    init_env: Any = None,
    labels: Any = None,
    annotations: Any = None,
    max_restarts: Any = 3,
) -> list[str]:
    """Job-level validation messages (Kubernetes naming rules, bounded counts, resources, storage)."""
    messages = [
        validation.dns1035_label("name", name),
        validation.dns1123_label("namespace", namespace),
        validation.int_in_range("num_workers", num_workers, 1, validation.MAX_WORKERS),
        validation.int_in_range(
            "num_procs_per_worker",
            num_procs_per_worker,
            1,
            validation.MAX_PROCS_PER_WORKER,
            allowed_extra=("auto",),
        ),
        validation.int_in_range("max_restarts", max_restarts, 0, validation.MAX_RESTARTS),
        *validation.resources("resources_per_worker", resources_per_worker),
        *_storage_problems(storage or {}),
        *_string_map_problems("env_vars", env, _ENV_NAME, "environment variable names"),
        *_string_map_problems("init_env_vars", init_env, _ENV_NAME, "environment variable names"),
        *_string_map_problems("labels", labels, _LABEL_KEY, "label keys ('prefix/name')"),
        *_string_map_problems(
            "annotations", annotations, _LABEL_KEY, "annotation keys ('prefix/name')"
        ),
    ]
    for field, given in (("env_vars", env), ("init_env_vars", init_env)):
        leaked = sorted(set(given or {}) & set(SECRET_ENV_VARS)) if isinstance(given, dict) else []
        if leaked:
            messages.append(f"{field}: {leaked} are reserved for secrets taken from the params")
    return [m for m in messages if m]


def _storage_problems(storage: Any) -> list[str]:
    if not isinstance(storage, dict):
        return [
            f"storage_config={storage!r}: must be a mapping with size, storage_class, access_modes"
        ]
    messages: list[str | None] = []
    unknown = sorted(set(storage) - {"size", "storage_class", "access_modes"})
    if unknown:
        messages.append(
            f"storage_config: unknown keys {unknown}; allowed: size, storage_class, access_modes"
        )
    if "size" in storage:  # the default size is known to be good
        messages.append(
            validation.quantity_in_range(
                "storage_config['size']", storage["size"], validation.MAX_STORAGE, "bytes"
            )
        )
    storage_class = storage.get("storage_class")
    if storage_class is not None and not (isinstance(storage_class, str) and storage_class):
        messages.append(
            f"storage_config['storage_class']={storage_class!r}: must be a non-empty string or None"
        )
    modes = storage.get("access_modes")
    if modes is not None and (
        not isinstance(modes, list) or not modes or any(m not in ACCESS_MODES for m in modes)
    ):
        messages.append(
            f"storage_config['access_modes']={modes!r}: must be a non-empty list of {', '.join(ACCESS_MODES)}"
        )
    return [m for m in messages if m]


def _string_map_problems(
    field_name: str, value: Any, key_pattern: re.Pattern[str], what: str
) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, dict):
        return [f"{field_name}={value!r}: must be a mapping of strings to strings"]
    messages = []
    for key, item in value.items():
        if not isinstance(key, str) or not key_pattern.match(key):
            messages.append(f"{field_name}[{shown(key)}]: not valid; allowed: {what}")
        if not isinstance(item, str):
            # Values may be credentials: their type is named, never the value.
            messages.append(f"{field_name}[{key!r}]: must be a string, not {type(item).__name__}")
    return messages


# --- params -> spec ----------------------------------------------------------------------------


def build_job_spec(
    *,
    name: str,
    model_provider_parameters: HuggingFaceModelParams | None,
    dataset_provider_parameters: DatasetArgument | None,
    trainer_parameters: HuggingFaceTrainerParams | None,
    namespace: str = "default",
    num_workers: int = 1,
    num_procs_per_worker: int | str = 1,
    resources_per_worker: dict[str, Any] | None = None,
    storage_config: dict[str, Any] | None = None,
    env_vars: dict[str, str] | None = None,
    init_env_vars: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    queue_name: str | None = None,
    max_restarts: int = 3,
    kubernetes: KubernetesExtras | None = None,
    extra_problems: list[str] | None = None,
) -> tuple[JobSpec, dict[str, str]]:
    """Builds the JobSpec and the secret environment variables from `train()`'s arguments,
    checking every rule of a submission once.

    Args:
        extra_problems: problems the caller found (e.g. in argument forms), reported with the rest.

    Returns:
        The spec (with a new uid) and the secrets by environment variable name.

    Raises:
        InvalidJob: (a ValueError) listing every problem, before anything is created.
    """
    from kubetune.params.hugging_face import HuggingFaceModelParams, HuggingFaceTrainerParams
    from kubetune.params.mix import DatasetMix, as_mix, is_dataset_params, mix_problems

    problems = Problems(f"train(name={name!r})")
    problems.extend(extra_problems or [])
    problems.extend(
        job_problems(
            name=name,
            namespace=namespace,
            num_workers=num_workers,
            num_procs_per_worker=num_procs_per_worker,
            resources_per_worker=resources_per_worker,
            storage=storage_config,
            env=env_vars,
            init_env=init_env_vars,
            labels=labels,
            annotations=annotations,
            max_restarts=max_restarts,
        )
    )
    if not isinstance(model_provider_parameters, HuggingFaceModelParams):
        problems.add(
            f"model_provider_parameters={type(model_provider_parameters).__name__}: must be HuggingFaceModelParams"
        )
    dataset_provider_parameters = as_mix(dataset_provider_parameters)
    if isinstance(dataset_provider_parameters, list | tuple):
        problems.extend(
            mix_problems(dataset_provider_parameters, where="dataset_provider_parameters")
        )
    elif not isinstance(dataset_provider_parameters, DatasetMix) and not is_dataset_params(
        dataset_provider_parameters
    ):
        problems.add(
            f"dataset_provider_parameters={type(dataset_provider_parameters).__name__}: must be "
            "HuggingFaceDatasetParams, S3DatasetParams or LocalDatasetParams, or a list of them "
            "(a mix: see DatasetMix)"
        )
    else:
        problems.extend(dataset_secret_problems(dataset_provider_parameters))
    if not isinstance(trainer_parameters, HuggingFaceTrainerParams):
        problems.add(
            f"trainer_parameters={type(trainer_parameters).__name__}: must be HuggingFaceTrainerParams"
        )
    if queue_name is not None:
        problems.add(validation.dns1123_label("queue_name", queue_name))
    problems.extend(
        params_problems(
            dataset_provider_parameters,
            getattr(trainer_parameters, "training_parameters", None),
            model_provider_parameters,
            trainer_parameters,
        )
    )
    trainer: TrainerSpec | None = None
    if isinstance(trainer_parameters, HuggingFaceTrainerParams):
        try:
            trainer = trainer_spec(trainer_parameters)
        except ValueError as e:
            problems.add(str(e))
    problems.raise_if_any()
    assert isinstance(model_provider_parameters, HuggingFaceModelParams)
    assert isinstance(trainer_parameters, HuggingFaceTrainerParams) and trainer is not None
    assert isinstance(dataset_provider_parameters, DatasetMix) or is_dataset_params(
        dataset_provider_parameters
    )

    secrets: dict[str, str] = {}
    model = model_provider_parameters
    if model.access_token:
        secrets[MODEL_TOKEN_ENV] = model.access_token
    dataset, dataset_secrets = dataset_section(
        dataset_provider_parameters, data_seed(trainer_parameters.training_parameters)
    )
    secrets.update(dataset_secrets)
    secrets.update(training_secrets(trainer_parameters))

    storage = dict(storage_config or {})
    spec = JobSpec(
        name=name,
        namespace=namespace,
        num_workers=num_workers,
        num_procs_per_worker=num_procs_per_worker
        if isinstance(num_procs_per_worker, int)
        else "auto",
        resources_per_worker=dict(resources_per_worker or {}),
        model=ModelSpec(
            uri=model.model_uri,
            transformer_type=model.transformer_type_name,
            num_labels=model.num_labels,
            revision=model.revision,
        ),
        dataset=dataset,
        trainer=trainer,
        storage=StorageSpec(
            size=str(storage.get("size") or DEFAULT_STORAGE_SIZE),
            storage_class=storage.get("storage_class"),
            # Several pods on several nodes share the workspace volume, which needs ReadWriteMany.
            access_modes=list(
                storage.get("access_modes")
                or (["ReadWriteOnce"] if num_workers == 1 else ["ReadWriteMany"])
            ),
        ),
        env=dict(env_vars or {}),
        init_env=dict(init_env_vars or {}),
        labels=dict(labels or {}),
        annotations=dict(annotations or {}),
        queue_name=queue_name,
        max_restarts=max_restarts,
        uid=uuid.uuid4().hex,
        kubernetes=kubernetes or KubernetesExtras(),
        kubetune_version=__version__,
    )
    return spec, secrets


def dataset_section(
    params: DatasetParams | DatasetMix, seed: int
) -> tuple[DatasetSection, dict[str, str]]:
    """The dataset section of a JobSpec from dataset params or a DatasetMix (mixed with `seed`),
    and its secrets by variable name (the datasets of a mix share them: see
    `dataset_secret_problems`)."""
    from kubetune.params.mix import DatasetMix

    if not isinstance(params, DatasetMix):
        return dataset_spec(params)
    secrets: dict[str, str] = {}
    parts = []
    for part in params.parts:
        source, part_secrets = dataset_spec(part.dataset)
        secrets.update(part_secrets)
        parts.append(MixPartSpec(source=source, weight=part.weight, num_samples=part.num_samples))
    mix = DatasetMixSpec(parts=parts, stopping_strategy=params.stopping_strategy, seed=seed)
    return mix, secrets


def dataset_secret_problems(params: DatasetParams | DatasetMix) -> list[str]:
    """The datasets of a mix share one Hub token and one S3 key pair (each travels as one secret
    variable): a problem for every credential that differs from the first dataset's."""
    from kubetune.params.mix import DatasetMix

    if not isinstance(params, DatasetMix):
        return []
    problems = []
    first: dict[str, tuple[int, str]] = {}
    for i, part in enumerate(params.parts):
        for variable, value in dataset_spec(part.dataset)[1].items():
            if variable not in first:
                first[variable] = (i, value)
            elif first[variable][1] != value:
                name = _CREDENTIAL_FIELDS[variable]
                problems.append(
                    f"dataset_provider_parameters[{i}].{name}: differs from "
                    f"dataset_provider_parameters[{first[variable][0]}].{name} (values not "
                    f"shown); the datasets of a mix share one {name}"
                )
    return problems


_CREDENTIAL_FIELDS = {
    DATASET_TOKEN_ENV: "access_token",
    S3_ACCESS_KEY_ENV: "access_key",
    S3_SECRET_KEY_ENV: "secret_key",
}


def data_seed(training_arguments: Any) -> int:
    """The seed a mix is drawn with: `TrainingArguments.data_seed`, else `seed` (42 by default)."""
    seed = getattr(training_arguments, "data_seed", None)
    if seed is None:
        seed = getattr(training_arguments, "seed", 42)
    return int(seed or 0)


def dataset_spec(params: DatasetParams) -> tuple[DatasetSpec, dict[str, str]]:
    """The dataset section of a JobSpec from dataset params, and its secrets by variable name."""
    from kubetune.params.hugging_face import HuggingFaceDatasetParams
    from kubetune.params.s3 import S3DatasetParams

    secrets: dict[str, str] = {}
    spec_class: type[HubDatasetSpec | S3DatasetSpec | LocalDatasetSpec] = LocalDatasetSpec
    if isinstance(params, HuggingFaceDatasetParams):
        spec_class = HubDatasetSpec
        if params.access_token:
            secrets[DATASET_TOKEN_ENV] = params.access_token
    elif isinstance(params, S3DatasetParams):
        spec_class = S3DatasetSpec
        if params.access_key and params.secret_key:
            secrets[S3_ACCESS_KEY_ENV] = params.access_key
            secrets[S3_SECRET_KEY_ENV] = params.secret_key
    # The spec holds the params' fields but the credentials (which it has no field for).
    fields = {f.name: getattr(params, f.name) for f in dataclasses.fields(spec_class)}
    return spec_class(**fields), secrets


def params_problems(
    dataset_params: Any,
    training_arguments: Any,
    model_params: Any = None,
    trainer_params: Any = None,
) -> list[str]:
    """Problems that show only when the params meet (any of them may be None: not known).

    An evaluation strategy needs an evaluation split: the storage initializer saves one only
    when the dataset params name an `eval_split`. TRL's methods and kubetune's causal-LM
    options (data format, chat template, loss mask) train causal LMs only.
    """
    from kubetune.params.mix import DatasetMix, as_mix

    messages = causal_lm_problems(model_params, training_arguments, trainer_params)
    strategy = getattr(training_arguments, "eval_strategy", "no")
    strategy = getattr(strategy, "value", strategy)
    if strategy in (None, "no") or dataset_params is None:
        return messages
    dataset_params = as_mix(dataset_params)
    if isinstance(dataset_params, DatasetMix):
        if any(part.dataset.eval_split for part in dataset_params.parts):
            return messages
        return [
            *messages,
            f"training_parameters.eval_strategy={strategy!r}: needs an eval split, and no "
            "dataset of the mix has an eval_split; give one or more of them an eval_split "
            "(their eval splits are evaluated on together) or set eval_strategy='no'",
        ]
    if getattr(dataset_params, "eval_split", None) or isinstance(dataset_params, list | tuple):
        return messages
    return [
        *messages,
        f"training_parameters.eval_strategy={strategy!r}: needs an eval split, and "
        f"{type(dataset_params).__name__} has no eval_split; give the dataset an eval_split "
        "(e.g. eval_split='test' or 'train[90%:]') or set eval_strategy='no'",
    ]


def causal_lm_problems(
    model_params: Any, training_arguments: Any, trainer_params: Any
) -> list[str]:
    """A TRL config, or a causal-LM option of the trainer params, for a model that is no causal LM."""
    transformer_type = getattr(model_params, "transformer_type_name", None)
    if transformer_type in (None, TransformerType.CAUSAL_LM):
        return []
    messages = []
    method = method_of(training_arguments)
    if method is not None:
        messages.append(
            f"training_parameters={type(training_arguments).__name__}: TRL's {method.value.upper()} "
            f"trains causal LMs only, and transformer_type={transformer_type}; allowed: "
            f"transformers.TrainingArguments, or transformer_type={TransformerType.CAUSAL_LM}"
        )
    for option in ("data_format", "chat_template", "loss_on"):
        value = getattr(trainer_params, option, None)
        if value is not None:
            messages.append(
                f"{option}={shown(str(value))}: applies to {TransformerType.CAUSAL_LM} only, and "
                f"transformer_type={transformer_type}; allowed: None"
            )
    return messages


def training_secrets(params: Any) -> dict[str, str]:
    """The credential fields set on the params' TrainingArguments, by secret environment variable."""
    arguments = getattr(params, "training_parameters", None)
    secrets = {}
    for name, env in TRAINING_ARGUMENT_SECRETS.items():
        value = getattr(arguments, name, None)
        if isinstance(value, str) and value:
            secrets[env] = value
    return secrets


def trainer_spec(params: HuggingFaceTrainerParams) -> TrainerSpec:
    """The trainer section of a JobSpec from HuggingFaceTrainerParams (credentials left out).

    Raises:
        ValueError: a set field holds a value that JSON cannot record (naming the field).
    """
    arguments = params.training_parameters
    method = params.method
    return TrainerSpec(
        training_arguments=set_fields(
            arguments,
            "training_parameters",
            leave_out=tuple(TRAINING_ARGUMENT_SECRETS),
            base={"output_dir": arguments.output_dir, **record_defaults(method)},
        ),
        lora_config=None
        if params.lora_config is None
        else set_fields(params.lora_config, "lora_config"),
        method=method,
        max_length=params.max_length,
        columns=dict(params.columns) if params.columns else None,
        packing=params.packing,
        data_format=DataFormat(params.data_format) if params.data_format else None,
        chat_template=params.chat_template,
        loss_on=LossOn(params.loss_on) if params.loss_on else None,
        merge_adapter=params.merge_adapter,
        evaluate_before_training=params.evaluate_before_training,
        length_grouping=params.length_grouping,
    )


def set_fields(
    obj: Any, what: str, leave_out: tuple[str, ...] = (), base: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The init fields of a dataclass instance whose values differ from a default instance
    (`cls(**base)`), as JSON data; `cls(**base, **recorded)` rebuilds an equal instance. Fields
    named in `leave_out` (credentials) are never recorded; `output_dir` always is."""
    cls = type(obj)
    base = dict(base or {})
    with _quietly():
        default = cls(**base)
    recorded: dict[str, Any] = {}
    kept_out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        if not f.init or f.name.startswith("_"):
            continue
        value = getattr(obj, f.name)
        if _same(value, getattr(default, f.name)) and f.name != "output_dir":
            continue
        if f.name in leave_out:
            kept_out[f.name] = value
            continue
        recorded[f.name] = to_json_value(value, f"{what}.{f.name}")
    # Drop fields that __post_init__ derives from others (do_eval from eval_strategy, ...),
    # deprecated aliases first (gradient_checkpointing from activation_checkpointing).
    names = [n for n in recorded if n != "output_dir"]
    for name in sorted(names, key=lambda n: n not in _DEPRECATED_ALIASES):
        rest = {k: v for k, v in recorded.items() if k != name}
        try:
            with _quietly():
                if cls(**{**base, **rest, **kept_out}) == obj:
                    recorded = rest
        except (ValueError, TypeError):
            continue
    return recorded


@contextlib.contextmanager
def _quietly() -> Iterator[None]:
    """Keeps the deprecation warnings of the instances built here only to compare with (TRL's
    configs default to the deprecated gradient_checkpointing) from reaching the user."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


# TrainingArguments fields that only repeat another one (and warn when given).
_DEPRECATED_ALIASES = ("gradient_checkpointing", "gradient_checkpointing_kwargs")


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return False


def to_json_value(value: Any, where: str) -> Any:
    """Converts enums, sets and tuples to JSON data; raises ValueError naming `where` otherwise."""
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, set | frozenset):
        return sorted(to_json_value(v, where) for v in value)
    if isinstance(value, list | tuple):
        return [to_json_value(v, where) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_value(v, f"{where}[{k!r}]") for k, v in value.items()}
    raise ValueError(
        f"{where}={value!r}: a {type(value).__name__} cannot be recorded in the job spec; "
        "use plain values (numbers, strings, lists, mappings)"
    )
