"""JobSpec: one serialisable record of a fine-tuning job, without its secrets.

`build_job_spec` turns the user's params into a `JobSpec` plus a mapping of secret
environment variables; the secrets travel separately (environment variables locally, a
Kubernetes Secret on a cluster). The names of those variables, and which process reads each
(the storage initializer or the trainer), are defined here and nowhere else. Only the
`TrainingArguments`/`LoraConfig` fields that differ from their defaults are recorded (never a
credential), and `training_arguments`/`lora_config` rebuild equal objects.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kubetune import __version__, validation

if TYPE_CHECKING:
    from peft import LoraConfig
    from transformers import TrainingArguments

SPEC_VERSION = 1

# Environment variables through which secrets reach the storage initializer.
MODEL_TOKEN_ENV = "KUBETUNE_HF_MODEL_TOKEN"
DATASET_TOKEN_ENV = "KUBETUNE_HF_DATASET_TOKEN"
S3_ACCESS_KEY_ENV = "KUBETUNE_S3_ACCESS_KEY"
S3_SECRET_KEY_ENV = "KUBETUNE_S3_SECRET_KEY"
INITIALIZER_SECRET_ENV_VARS = (
    MODEL_TOKEN_ENV,
    DATASET_TOKEN_ENV,
    S3_ACCESS_KEY_ENV,
    S3_SECRET_KEY_ENV,
)
# The credential fields of TrainingArguments (field -> environment variable): never in the spec,
# they reach the trainer (push_to_hub needs hub_token) as secrets.
TRAINING_ARGUMENT_SECRETS = {"hub_token": "KUBETUNE_HUB_TOKEN"}
TRAINER_SECRET_ENV_VARS = tuple(TRAINING_ARGUMENT_SECRETS.values())
SECRET_ENV_VARS = (*INITIALIZER_SECRET_ENV_VARS, *TRAINER_SECRET_ENV_VARS)

# The keys of JobSpec.kubernetes.
KUBERNETES_KEYS = ("env", "envFrom", "initEnv", "initEnvFrom", "resources")
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
DEFAULT_STORAGE_SIZE = "10Gi"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)


@dataclass
class JobSpec:
    """Everything needed to run a job, as plain JSON-able data (no secrets)."""

    name: str
    model: dict[str, Any]
    dataset: dict[str, Any]
    trainer: dict[str, Any]
    namespace: str = "default"
    num_workers: int = 1
    num_procs_per_worker: int | str = 1
    resources_per_worker: dict[str, Any] = field(default_factory=dict)
    storage: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    init_env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    queue_name: str | None = None
    max_restarts: int = 3
    # The job's identity, generated once by build_job_spec: its checkpoints carry it, so a run
    # resumes only from its own. None in specs written before it existed.
    uid: str | None = None
    # A job made by `create_job(train_func=...)`: its program, packages and image (see
    # kubetune.training.functions); None for a fine-tuning job made by `train()`.
    function: dict[str, Any] | None = None
    # Kubernetes-only pod settings in API form, as the user gave them: "env" and "envFrom" of the
    # training container, "initEnv" and "initEnvFrom" of the storage initializer, "resources".
    kubernetes: dict[str, Any] = field(default_factory=dict)
    spec_version: int = SPEC_VERSION
    kubetune_version: str = __version__

    def __post_init__(self) -> None:
        problems = validation.Problems(f"job {validation.shown(self.name)}")
        problems.extend(
            job_problems(
                name=self.name,
                namespace=self.namespace,
                num_workers=self.num_workers,
                num_procs_per_worker=self.num_procs_per_worker,
                resources_per_worker=self.resources_per_worker,
                storage=self.storage,
                env=self.env,
                init_env=self.init_env,
                labels=self.labels,
                annotations=self.annotations,
                max_restarts=self.max_restarts,
            )
        )
        if self.function is not None and not isinstance(self.function, dict):
            problems.add(f"function={self.function!r}: must be a mapping or None")
        unknown = (
            sorted(set(self.kubernetes) - set(KUBERNETES_KEYS))
            if isinstance(self.kubernetes, dict)
            else None
        )
        if unknown is None or unknown:
            problems.add(
                f"kubernetes={self.kubernetes!r}: must be a mapping with keys among {', '.join(KUBERNETES_KEYS)}"
            )
        arguments = (
            self.trainer.get("training_arguments") if isinstance(self.trainer, dict) else None
        )
        if isinstance(arguments, dict):
            problems.add(
                validation.output_dir("training_arguments.output_dir", arguments.get("output_dir"))
            )
            for secret in sorted(set(arguments) & set(TRAINING_ARGUMENT_SECRETS)):
                problems.add(
                    f"training_arguments.{secret}: a credential cannot be part of the job spec; "
                    "it travels as a secret"
                )
        problems.raise_if_any()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"JobSpec: unknown keys {unknown}; allowed: {sorted(known)}")
        if data.get("spec_version", SPEC_VERSION) > SPEC_VERSION:
            raise ValueError(
                f"JobSpec: spec_version={data['spec_version']} is newer than this kubetune understands "
                f"({SPEC_VERSION}); upgrade kubetune"
            )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        return cls.from_dict(json.loads(text))

    @property
    def transformer_type(self) -> str:
        return str(self.model["transformer_type"])

    def training_arguments(self, **overrides: Any) -> TrainingArguments:
        """The `TrainingArguments` the user gave, rebuilt (with optional overrides)."""
        from transformers import TrainingArguments

        return TrainingArguments(**{**self.trainer["training_arguments"], **overrides})

    def lora_config(self) -> LoraConfig | None:
        """The `LoraConfig` the user gave, rebuilt; None for full fine-tuning."""
        if self.trainer.get("lora_config") is None:
            return None
        from peft import LoraConfig

        return LoraConfig(**self.trainer["lora_config"])


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
    leaked = sorted(set(env or {}) & set(SECRET_ENV_VARS))
    if leaked:
        messages.append(f"env_vars: {leaked} are reserved for secrets taken from the params")
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
            messages.append(f"{field_name}[{validation.shown(key)}]: not valid; allowed: {what}")
        if not isinstance(item, str):
            # Values may be credentials: their type is named, never the value.
            messages.append(f"{field_name}[{key!r}]: must be a string, not {type(item).__name__}")
    return messages


# --- params -> spec ----------------------------------------------------------------------------


def build_job_spec(
    *,
    name: str,
    model_provider_parameters: Any,
    dataset_provider_parameters: Any,
    trainer_parameters: Any,
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
    kubernetes: dict[str, Any] | None = None,
    extra_problems: list[str] | None = None,
) -> tuple[JobSpec, dict[str, str]]:
    """Builds the JobSpec and the secret environment variables from `train()`'s arguments.

    Raises one ValueError listing every problem (`extra_problems`, found by the caller, included),
    before anything is created.
    """
    from kubetune.storage_initializer.hugging_face import (
        HuggingFaceDatasetParams,
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )
    from kubetune.storage_initializer.local import LocalDatasetParams
    from kubetune.storage_initializer.s3 import S3DatasetParams

    problems = validation.Problems(f"train(name={name!r})")
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
    if not isinstance(
        dataset_provider_parameters, HuggingFaceDatasetParams | S3DatasetParams | LocalDatasetParams
    ):
        problems.add(
            f"dataset_provider_parameters={type(dataset_provider_parameters).__name__}: must be "
            "HuggingFaceDatasetParams, S3DatasetParams or LocalDatasetParams"
        )
    if not isinstance(trainer_parameters, HuggingFaceTrainerParams):
        problems.add(
            f"trainer_parameters={type(trainer_parameters).__name__}: must be HuggingFaceTrainerParams"
        )
    if queue_name is not None:
        problems.add(validation.dns1123_label("queue_name", queue_name))
    problems.extend(
        params_problems(
            dataset_provider_parameters, getattr(trainer_parameters, "training_parameters", None)
        )
    )
    trainer: dict[str, Any] = {}
    if isinstance(trainer_parameters, HuggingFaceTrainerParams):
        try:
            trainer = trainer_spec(trainer_parameters)
        except ValueError as e:
            problems.add(str(e))
    problems.raise_if_any()

    secrets: dict[str, str] = {}
    model = model_provider_parameters
    if model.access_token:
        secrets[MODEL_TOKEN_ENV] = model.access_token
    dataset_spec, dataset_secrets = _dataset_spec(dataset_provider_parameters)
    secrets.update(dataset_secrets)
    secrets.update(training_secrets(trainer_parameters))

    storage = dict(storage_config or {})
    storage.setdefault("size", DEFAULT_STORAGE_SIZE)
    storage.setdefault("storage_class", None)
    # Several pods on several nodes share the workspace volume, which needs ReadWriteMany.
    storage.setdefault("access_modes", ["ReadWriteOnce"] if num_workers == 1 else ["ReadWriteMany"])

    spec = JobSpec(
        name=name,
        namespace=namespace,
        num_workers=num_workers,
        num_procs_per_worker=num_procs_per_worker,
        resources_per_worker=dict(resources_per_worker or {}),
        model={
            "uri": model.model_uri,
            "transformer_type": model.transformer_type_name,
            "num_labels": model.num_labels,
            "revision": model.revision,
        },
        dataset=dataset_spec,
        trainer=trainer,
        storage=storage,
        env=dict(env_vars or {}),
        init_env=dict(init_env_vars or {}),
        labels=dict(labels or {}),
        annotations=dict(annotations or {}),
        queue_name=queue_name,
        max_restarts=max_restarts,
        uid=uuid.uuid4().hex,
        kubernetes=dict(kubernetes or {}),
    )
    return spec, secrets


def _dataset_spec(params: Any) -> tuple[dict[str, Any], dict[str, str]]:
    from kubetune.storage_initializer.hugging_face import HuggingFaceDatasetParams
    from kubetune.storage_initializer.s3 import S3DatasetParams

    secrets: dict[str, str] = {}
    if isinstance(params, HuggingFaceDatasetParams):
        if params.access_token:
            secrets[DATASET_TOKEN_ENV] = params.access_token
        public = {k: v for k, v in dataclasses.asdict(params).items() if k != "access_token"}
        return {"kind": "hf", **public}, secrets
    if isinstance(params, S3DatasetParams):
        if params.access_key and params.secret_key:
            secrets[S3_ACCESS_KEY_ENV] = params.access_key
            secrets[S3_SECRET_KEY_ENV] = params.secret_key
        public = {
            k: v
            for k, v in dataclasses.asdict(params).items()
            if k not in ("access_key", "secret_key")
        }
        return {"kind": "s3", **public}, secrets
    return {"kind": "local", **dataclasses.asdict(params)}, secrets


def params_problems(dataset_params: Any, training_arguments: Any) -> list[str]:
    """Problems that show only when the dataset params and the TrainingArguments meet.

    An evaluation strategy needs an evaluation split: the storage initializer saves one only
    when the dataset params name an `eval_split`.
    """
    strategy = getattr(training_arguments, "eval_strategy", "no")
    strategy = getattr(strategy, "value", strategy)
    if strategy in (None, "no") or dataset_params is None:
        return []
    if getattr(dataset_params, "eval_split", None):
        return []
    return [
        f"training_parameters.eval_strategy={strategy!r}: needs an eval split, and "
        f"{type(dataset_params).__name__} has no eval_split; give the dataset an eval_split "
        "(e.g. eval_split='test' or 'train[90%:]') or set eval_strategy='no'"
    ]


def training_secrets(params: Any) -> dict[str, str]:
    """The credential fields set on the params' TrainingArguments, by secret environment variable."""
    arguments = getattr(params, "training_parameters", None)
    secrets = {}
    for name, env in TRAINING_ARGUMENT_SECRETS.items():
        value = getattr(arguments, name, None)
        if isinstance(value, str) and value:
            secrets[env] = value
    return secrets


def initializer_secrets(secrets: Mapping[str, str]) -> dict[str, str]:
    """The secrets the storage initializer reads (model and dataset credentials)."""
    return {k: v for k, v in secrets.items() if k in INITIALIZER_SECRET_ENV_VARS}


def trainer_secrets(secrets: Mapping[str, str]) -> dict[str, str]:
    """The secrets the trainer reads (the credential fields of TrainingArguments)."""
    return {k: v for k, v in secrets.items() if k in TRAINER_SECRET_ENV_VARS}


def training_argument_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """The trainer's side: credential fields of TrainingArguments from their secret variables,
    to pass to `JobSpec.training_arguments(**...)`."""
    return {
        name: environ[env] for name, env in TRAINING_ARGUMENT_SECRETS.items() if environ.get(env)
    }


def trainer_spec(params: Any) -> dict[str, Any]:
    """The trainer part of a JobSpec from HuggingFaceTrainerParams (credentials left out)."""
    return {
        "training_arguments": set_fields(
            params.training_parameters,
            "training_parameters",
            leave_out=tuple(TRAINING_ARGUMENT_SECRETS),
        ),
        "lora_config": None
        if params.lora_config is None
        else set_fields(params.lora_config, "lora_config"),
        "max_length": params.max_length,
        "columns": dict(params.columns) if params.columns else None,
        "packing": params.packing,
        "merge_adapter": params.merge_adapter,
        "evaluate_before_training": params.evaluate_before_training,
        "length_grouping": params.length_grouping,
    }


def set_fields(obj: Any, what: str, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """The init fields of a dataclass instance whose values differ from a default instance, as
    JSON data; fields named in `leave_out` (credentials) are never recorded."""
    cls = type(obj)
    default = cls(output_dir=obj.output_dir) if what == "training_parameters" else cls()
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
    # Drop fields that __post_init__ derives from others (do_eval from eval_strategy, ...).
    for name in [n for n in recorded if n != "output_dir"]:
        rest = {k: v for k, v in recorded.items() if k != name}
        try:
            if cls(**rest, **kept_out) == obj:
                recorded = rest
        except (ValueError, TypeError):
            continue
    return recorded


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
