"""JobSpec: one serialisable record of a job, without its secrets, with typed sections.

The client writes it (`kubetune.params.job.build_job_spec`, or a function job's builder); the
backends, the storage initializer and the runtime read it. Its JSON shape is the one every
kubetune version has written (`spec_version` 1), so specs written before these classes existed
still load. Reading a spec checks its structure (each field's type) and nothing more: the rules
on values (names, bounds, resources) ran once, when the job was submitted. Keys this version
does not know (written by a newer client) are left out with an `UnknownFieldsWarning`, so a
client and a worker image of different versions still work together.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar, Literal

from kubetune.contract import layout
from kubetune.contract.causal_lm import DataFormat, LossOn, TrainingMethod
from kubetune.contract.problems import InvalidJob, shown
from kubetune.contract.secrets import TRAINING_ARGUMENT_SECRETS
from kubetune.contract.uris import ModelSource, SourceKind, parse_model_uri

SPEC_VERSION = 1
DEFAULT_STORAGE_SIZE = "10Gi"
ACCESS_MODES = ("ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod")
AUTO = "auto"  # num_procs_per_worker: one process per GPU (or per core share)


class UnknownFieldsWarning(UserWarning):
    """A job spec held keys this kubetune does not know (from a newer client); they were left out."""


class TransformerType(StrEnum):
    """The model classes a job can fine-tune, by their transformers class name."""

    SEQUENCE_CLASSIFICATION = "AutoModelForSequenceClassification"
    TOKEN_CLASSIFICATION = "AutoModelForTokenClassification"
    QUESTION_ANSWERING = "AutoModelForQuestionAnswering"
    CAUSAL_LM = "AutoModelForCausalLM"
    MASKED_LM = "AutoModelForMaskedLM"
    IMAGE_CLASSIFICATION = "AutoModelForImageClassification"


# The types whose head predicts labels (num_labels applies to them only).
LABELLED_TYPES = frozenset(
    {
        TransformerType.SEQUENCE_CLASSIFICATION,
        TransformerType.TOKEN_CLASSIFICATION,
        TransformerType.IMAGE_CLASSIFICATION,
    }
)


def label_head_kwargs(names: list[str]) -> dict[str, Any]:
    """`from_pretrained` arguments for a classification head of the label `names` (num_labels,
    id2label, label2id), replacing a head of another size."""
    return {
        "num_labels": len(names),
        "id2label": dict(enumerate(names)),
        "label2id": {name: i for i, name in enumerate(names)},
        "ignore_mismatched_sizes": True,
    }


# --- sections ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """The model to fine-tune: its URI, the head to load, the labels of a classification head
    (None: inferred from the data) and the Hub revision given apart from the URI."""

    uri: str
    transformer_type: TransformerType
    num_labels: int | None = None
    revision: str | None = None

    @property
    def source(self) -> ModelSource:
        """Where the model comes from (the parsed `uri`).

        Raises:
            ValueError: the URI cannot be parsed.
        """
        return parse_model_uri(self.uri)

    @property
    def hub_revision(self) -> str | None:
        """The revision to fetch: `revision`, else the one in the URI ('org/name@rev')."""
        return self.revision or self.source.revision


@dataclass(frozen=True, kw_only=True)
class DatasetSplits:
    """The parts of a dataset to train and to evaluate on, as split expressions ('train',
    'train[:3000]', 'train[10%:]+test'; `split` None: the source's train split, or its only one;
    `eval_split` None: no evaluation)."""

    split: str | None = None
    eval_split: str | None = None


@dataclass(frozen=True, kw_only=True)
class HubDatasetSpec(DatasetSplits):
    """A dataset on the Hugging Face Hub (`name`: its configuration)."""

    kind: ClassVar[SourceKind] = SourceKind.HF
    repo_id: str
    name: str | None = None
    revision: str | None = None

    def describe(self) -> str:
        """How messages name it: 'dataset hf://imdb (name='plain_text')'."""
        config = f" (name={self.name!r})" if self.name else ""
        return f"dataset hf://{self.repo_id}{config}"


@dataclass(frozen=True, kw_only=True)
class S3DatasetSpec(DatasetSplits):
    """A dataset object (or prefix) in an S3-compatible bucket."""

    kind: ClassVar[SourceKind] = SourceKind.S3
    endpoint_url: str
    bucket_name: str
    file_key: str
    region_name: str | None = None

    @property
    def uri(self) -> str:
        """'s3://bucket/key'."""
        return f"s3://{self.bucket_name}/{self.file_key}"

    def describe(self) -> str:
        """How messages name it: 'dataset s3://bucket/key'."""
        return f"dataset {self.uri}"


@dataclass(frozen=True, kw_only=True)
class LocalDatasetSpec(DatasetSplits):
    """A dataset in a file or folder on the machine (or volume) of the storage initializer."""

    kind: ClassVar[SourceKind] = SourceKind.LOCAL
    path: str

    def describe(self) -> str:
        """How messages name it: 'dataset /data/train.csv'."""
        return f"dataset {self.path}"


DatasetSpec = HubDatasetSpec | S3DatasetSpec | LocalDatasetSpec
DATASET_SPECS: dict[SourceKind, type[HubDatasetSpec | S3DatasetSpec | LocalDatasetSpec]] = {
    SourceKind.HF: HubDatasetSpec,
    SourceKind.S3: S3DatasetSpec,
    SourceKind.LOCAL: LocalDatasetSpec,
}

# How a weighted mix ends (datasets' interleave_datasets): when the first dataset runs out (no
# sample repeats), or once every dataset was used whole (those that ran out start over).
STOPPING_STRATEGIES = ("first_exhausted", "all_exhausted")
MIX_KIND = "mix"


@dataclass(frozen=True, kw_only=True)
class MixPartSpec:
    """One dataset of a mix: its source, its weight (relative chance that a sample of a weighted
    mix comes from it) and the rows taken from it (None: all)."""

    source: DatasetSpec
    weight: float | None = None
    num_samples: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The part as JSON data: {"dataset": {kind, ...}, "weight": ..., "num_samples": ...}."""
        return {
            "dataset": _dataset_dict(self.source),
            "weight": self.weight,
            "num_samples": self.num_samples,
        }


@dataclass(frozen=True, kw_only=True)
class DatasetMixSpec:
    """Several datasets trained on as one: concatenated, or interleaved by weight (when the parts
    have weights) with `seed` and a stopping strategy (one of STOPPING_STRATEGIES). The train
    split is the mix; the eval split is the parts' eval splits concatenated."""

    kind: ClassVar[str] = MIX_KIND
    parts: list[MixPartSpec]
    stopping_strategy: str = STOPPING_STRATEGIES[0]
    seed: int = 42

    @property
    def weighted(self) -> bool:
        """Whether the parts are interleaved by weight (else concatenated)."""
        return any(part.weight is not None for part in self.parts)

    @property
    def sources(self) -> list[DatasetSpec]:
        """The parts' datasets, in order."""
        return [part.source for part in self.parts]

    def describe(self) -> str:
        """How messages name it: 'dataset mix of 2 (dataset /a.csv, dataset hf://imdb)'."""
        return f"dataset mix of {len(self.parts)} ({', '.join(s.describe() for s in self.sources)})"

    def to_dict(self) -> dict[str, Any]:
        """The mix as JSON data (kind 'mix', its parts, strategy and seed)."""
        return {
            "kind": MIX_KIND,
            "parts": [part.to_dict() for part in self.parts],
            "stopping_strategy": self.stopping_strategy,
            "seed": self.seed,
        }


DatasetSection = DatasetSpec | DatasetMixSpec


def dataset_sources(section: DatasetSection) -> list[DatasetSpec]:
    """The datasets a dataset section names: the one, or every part of a mix."""
    return section.sources if isinstance(section, DatasetMixSpec) else [section]


@dataclass(frozen=True)
class TrainerSpec:
    """How to train: the `TrainingArguments` (or TRL config of `method`) and `LoraConfig` fields
    the user set (JSON data; the runtime rebuilds the objects), and kubetune's extras (see
    HuggingFaceTrainerParams)."""

    training_arguments: dict[str, Any]
    lora_config: dict[str, Any] | None = None
    # The TRL method whose config `training_arguments` holds (None: TrainingArguments).
    method: TrainingMethod | None = None
    # How samples are made of the data.
    columns: dict[str, str] | None = None
    max_length: int | None = None
    packing: bool = False
    # Causal LMs: the samples' format (None: detected), a chat template replacing the
    # tokenizer's, which tokens the loss covers (None: the format's default).
    data_format: DataFormat | None = None
    chat_template: str | None = None
    loss_on: LossOn | None = None
    # Written only when set: a spec without them reads (and is written) as before they existed.
    WRITTEN_WHEN_SET: ClassVar[frozenset[str]] = frozenset(
        {"method", "data_format", "chat_template", "loss_on"}
    )
    # How training runs, and what it saves besides the model.
    length_grouping: bool = True
    evaluate_before_training: bool = False
    merge_adapter: bool = False

    @property
    def output_dir(self) -> str | None:
        """`TrainingArguments.output_dir` as given (see `layout.output_path` for where it lies)."""
        value = self.training_arguments.get("output_dir")
        return None if value is None else str(value)

    @property
    def resume_from_checkpoint(self) -> str | bool | None:
        """`TrainingArguments.resume_from_checkpoint` as given (a path, True, or None)."""
        value = self.training_arguments.get("resume_from_checkpoint")
        return value if isinstance(value, str | bool) else None

    @property
    def eval_strategy(self) -> str:
        """`TrainingArguments.eval_strategy` ('no' when not set)."""
        return str(self.training_arguments.get("eval_strategy", "no"))

    @property
    def uses_lora(self) -> bool:
        """Whether the job trains LoRA adapters (False: full fine-tuning)."""
        return self.lora_config is not None

    def sets(self, argument: str) -> bool:
        """Whether the user set the TrainingArguments field `argument`."""
        return argument in self.training_arguments


@dataclass(frozen=True)
class FunctionSpec:
    """A job of `create_job(train_func=...)`: the program every worker process runs (the
    function's source and its call; None: the image's own command), how it is started
    ('torchrun' or 'python -u'), the pip packages it needs and the image on Kubernetes."""

    name: str | None
    program: str | None
    entrypoint: str
    packages: list[str] = field(default_factory=list)
    pip_index_url: str = "https://pypi.org/simple"
    base_image: str | None = None


@dataclass(frozen=True)
class StorageSpec:
    """The workspace volume on Kubernetes (size, storage class, access modes)."""

    size: str = DEFAULT_STORAGE_SIZE
    storage_class: str | None = None
    access_modes: list[str] = field(default_factory=lambda: ["ReadWriteOnce"])


@dataclass(frozen=True)
class KubernetesExtras:
    """Kubernetes-only pod settings in API form, as the user gave them: env entries reading a
    Secret or ConfigMap (`valueFrom`) and `envFrom` sources of the training container (`env`,
    `env_from`) and of the storage initializer (`init_env`, `init_env_from`), and a
    `V1ResourceRequirements` (`resources`)."""

    env: list[dict[str, Any]] = field(default_factory=list)
    env_from: list[dict[str, Any]] = field(default_factory=list)
    init_env: list[dict[str, Any]] = field(default_factory=list)
    init_env_from: list[dict[str, Any]] = field(default_factory=list)
    resources: dict[str, Any] | None = None

    # Field -> JSON key (the API's camelCase, as the spec has always written them).
    KEYS: ClassVar[dict[str, str]] = {
        "env": "env",
        "env_from": "envFrom",
        "init_env": "initEnv",
        "init_env_from": "initEnvFrom",
        "resources": "resources",
    }

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON data; empty entries are left out."""
        return {key: getattr(self, name) for name, key in self.KEYS.items() if getattr(self, name)}


# --- the job -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to run a job, as typed, JSON-able data (no secrets).

    A fine-tuning job (`train()`) has `model`, `dataset` and `trainer`; a job of
    `create_job(train_func=...)` has `function` instead. `uid` is the job's identity, generated
    once when it is built (its checkpoints carry it, so a run resumes only from its own; None in
    specs written before it existed).
    """

    name: str
    model: ModelSpec | None = None
    dataset: DatasetSection | None = None
    trainer: TrainerSpec | None = None
    namespace: str = "default"
    num_workers: int = 1
    num_procs_per_worker: int | Literal["auto"] = 1
    resources_per_worker: dict[str, str | int | float] = field(default_factory=dict)
    storage: StorageSpec | None = None
    env: dict[str, str] = field(default_factory=dict)
    init_env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    queue_name: str | None = None
    max_restarts: int = 3
    uid: str | None = None
    function: FunctionSpec | None = None
    kubernetes: KubernetesExtras = field(default_factory=KubernetesExtras)
    spec_version: int = SPEC_VERSION
    kubetune_version: str | None = None

    # --- what readers ask ---------------------------------------------------------------------

    @property
    def transformer_type(self) -> TransformerType:
        """The model class to fine-tune.

        Raises:
            ValueError: the job is a function job (it has no model).
        """
        return self.fine_tuning[0].transformer_type

    @property
    def fine_tuning(self) -> tuple[ModelSpec, DatasetSection, TrainerSpec]:
        """(model, dataset, trainer) of a fine-tuning job.

        Raises:
            ValueError: the job is a function job (it has none).
        """
        if self.model is None or self.dataset is None or self.trainer is None:
            raise ValueError(f"job {self.name}: a function job has no model, dataset or trainer")
        return self.model, self.dataset, self.trainer

    @property
    def output_dir(self) -> str | None:
        """The output directory the user gave (`TrainingArguments.output_dir`); None for a
        function job or when none was given."""
        return self.trainer.output_dir if self.trainer is not None else None

    def output_path(self, workspace: str | os.PathLike[str]) -> Path:
        """Where the job's outputs lie for a workspace at `workspace`: for a fine-tuning job
        `layout.output_path` of its output_dir; a function job's outputs are what it writes in
        its working directory, the workspace itself."""
        if self.function is not None:
            return Path(workspace)
        return layout.output_path(workspace, self.output_dir)

    @property
    def requests_gpus(self) -> bool:
        """Whether a worker asks for GPUs."""
        from kubetune.contract.quantities import gpu_key

        return gpu_key(self.resources_per_worker) is not None

    # --- JSON ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON data, in the shape every kubetune version writes (a function job's
        model, dataset and trainer are {})."""
        return {
            "name": self.name,
            "namespace": self.namespace,
            "num_workers": self.num_workers,
            "num_procs_per_worker": self.num_procs_per_worker,
            "resources_per_worker": dict(self.resources_per_worker),
            "model": _asdict(self.model),
            "dataset": _dataset_dict(self.dataset),
            "trainer": _asdict(self.trainer),
            "storage": _asdict(self.storage),
            "env": dict(self.env),
            "init_env": dict(self.init_env),
            "labels": dict(self.labels),
            "annotations": dict(self.annotations),
            "queue_name": self.queue_name,
            "max_restarts": self.max_restarts,
            "uid": self.uid,
            "function": None if self.function is None else _asdict(self.function),
            "kubernetes": self.kubernetes.to_dict(),
            "spec_version": self.spec_version,
            "kubetune_version": self.kubetune_version,
        }

    def to_json(self) -> str:
        """`to_dict()` as indented JSON text with sorted keys."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobSpec:
        """The spec that JSON data describes, its structure checked (the type of every field).

        Keys this version does not know are left out with an UnknownFieldsWarning.

        Raises:
            InvalidJob: (a ValueError) naming every field of the wrong type, a spec_version newer
                than this kubetune reads, or a credential among the TrainingArguments.
        """
        reader = _Reader(data, "")
        version = reader.take("spec_version", _is_int, "an integer", SPEC_VERSION)
        if isinstance(version, int) and version > SPEC_VERSION:
            raise InvalidJob(
                "job spec",
                [
                    f"spec_version={version} is newer than this kubetune understands "
                    f"({SPEC_VERSION}); upgrade kubetune"
                ],
            )
        spec = cls(
            name=reader.take("name", _is_str, "a string"),
            namespace=reader.take("namespace", _is_str, "a string", "default"),
            num_workers=reader.take("num_workers", _is_int, "an integer", 1),
            num_procs_per_worker=reader.take(
                "num_procs_per_worker", _is_procs, f"an integer or {AUTO!r}", 1
            ),
            resources_per_worker=reader.take(
                "resources_per_worker", _is_resources, "a mapping of quantities", {}
            ),
            model=reader.section("model", _model),
            dataset=reader.section("dataset", _dataset),
            trainer=reader.section("trainer", _trainer),
            storage=reader.section("storage", _storage),
            env=reader.take("env", _is_str_map, "a mapping of strings", {}),
            init_env=reader.take("init_env", _is_str_map, "a mapping of strings", {}),
            labels=reader.take("labels", _is_str_map, "a mapping of strings", {}),
            annotations=reader.take("annotations", _is_str_map, "a mapping of strings", {}),
            queue_name=reader.take("queue_name", _is_opt_str, "a string or null", None),
            max_restarts=reader.take("max_restarts", _is_int, "an integer", 3),
            uid=reader.take("uid", _is_opt_str, "a string or null", None),
            function=reader.section("function", _function),
            kubernetes=reader.section("kubernetes", _kubernetes) or KubernetesExtras(),
            spec_version=SPEC_VERSION,
            kubetune_version=reader.take("kubetune_version", _is_opt_str, "a string", None),
        )
        if spec.function is None:
            reader.problems.extend(
                f"{key}: missing (a job without a function fine-tunes a model)"
                for key in ("model", "dataset", "trainer")
                if data.get(key) in ({}, None)
            )
        reader.finish()
        return spec

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        """The spec in JSON `text` (see `from_dict`).

        Raises:
            InvalidJob: the text is not JSON of a job spec.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidJob("job spec", [f"not JSON: {e}"]) from None
        if not isinstance(data, dict):
            raise InvalidJob("job spec", [f"must be a JSON object, not {type(data).__name__}"])
        return cls.from_dict(data)


def _dataset_dict(section: DatasetSection | None) -> dict[str, Any]:
    if section is None:
        return {}
    if isinstance(section, DatasetMixSpec):
        return section.to_dict()
    return {"kind": str(section.kind), **_asdict(section)}


def _asdict(section: Any) -> dict[str, Any]:
    """A section's fields as JSON data ({} for an absent section)."""
    if section is None:
        return {}
    optional: frozenset[str] = getattr(section, "WRITTEN_WHEN_SET", frozenset())
    return {
        f.name: _plain(getattr(section, f.name))
        for f in dataclasses.fields(section)
        if not (f.name in optional and getattr(section, f.name) is None)
    }


def _plain(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return str(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return list(value)
    return value


# --- reading JSON data -------------------------------------------------------------------------

_MISSING: Any = object()


class _Reader:
    """Takes typed fields out of one mapping of JSON data, collecting what is wrong."""

    def __init__(self, data: Mapping[str, Any], where: str, problems: list[str] | None = None):
        self.data = data
        self.where = where
        self.problems: list[str] = [] if problems is None else problems
        self.taken: set[str] = set()

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def take(
        self, key: str, check: Callable[[Any], bool], what: str, default: Any = _MISSING
    ) -> Any:
        self.taken.add(key)
        if key not in self.data:
            if default is _MISSING:
                self.problems.append(f"{self.path(key)}: missing (required)")
            return None if default is _MISSING else default
        value = self.data[key]
        if not check(value):
            self.problems.append(f"{self.path(key)}={shown(value)}: must be {what}")
            return None if default is _MISSING else default
        return value

    def section(self, key: str, read: Callable[[_Reader], Any]) -> Any:
        """A nested section ({} and null: absent) read by `read`."""
        self.taken.add(key)
        value = self.data.get(key)
        if value is None or value == {}:
            return None
        if not isinstance(value, dict):
            self.problems.append(f"{self.path(key)}={shown(value)}: must be a mapping")
            return None
        inner = _Reader(value, self.path(key), self.problems)
        result = read(inner)
        inner.warn_unknown()
        return result

    def warn_unknown(self) -> None:
        unknown = sorted(str(k) for k in set(self.data) - self.taken)
        if unknown:
            warnings.warn(
                f"job spec: {', '.join(self.path(k) for k in unknown)}: unknown to kubetune "
                "(written by a newer version?); left out",
                UnknownFieldsWarning,
                stacklevel=4,
            )

    def finish(self) -> None:
        self.warn_unknown()
        if self.problems:
            raise InvalidJob("job spec", self.problems)


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_opt_int(value: Any) -> bool:
    return value is None or _is_int(value)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_procs(value: Any) -> bool:
    return _is_int(value) or value == AUTO


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _is_opt_str_map(value: Any) -> bool:
    return value is None or _is_str_map(value)


def _is_resources(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str | int | float) and not isinstance(v, bool)
        for k, v in value.items()
    )


def _is_map(value: Any) -> bool:
    return isinstance(value, dict)


def _is_opt_map(value: Any) -> bool:
    return value is None or isinstance(value, dict)


def _is_list_of_maps(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_transformer_type(value: Any) -> bool:
    return value in {t.value for t in TransformerType}


def _model(r: _Reader) -> ModelSpec:
    transformer_type = r.take(
        "transformer_type", _is_transformer_type, f"one of {', '.join(TransformerType)}"
    )
    return ModelSpec(
        uri=r.take("uri", _is_str, "a string"),
        # (a stand-in where the type is wrong: the reader raises once every field is read)
        transformer_type=TransformerType(transformer_type or TransformerType.CAUSAL_LM),
        num_labels=r.take("num_labels", _is_opt_int, "an integer or null", None),
        revision=r.take("revision", _is_opt_str, "a string or null", None),
    )


def _dataset(r: _Reader) -> DatasetSection | None:
    if r.data.get("kind") == MIX_KIND:
        return _dataset_mix(r)
    return _dataset_source(r)


def _dataset_source(r: _Reader) -> DatasetSpec | None:
    kind = r.take("kind", lambda v: v in {k.value for k in SourceKind}, "one of hf, s3, local")
    if kind is None:
        return None
    optional = {"split", "eval_split", "name", "revision", "region_name"}
    cls = DATASET_SPECS[SourceKind(kind)]
    values = {}
    for name in (f.name for f in dataclasses.fields(cls)):
        if name in optional:
            values[name] = r.take(name, _is_opt_str, "a string or null", None)
        else:
            values[name] = r.take(name, _is_str, "a string")
    return cls(**values)


def _dataset_mix(r: _Reader) -> DatasetMixSpec | None:
    r.take("kind", _is_str, "a string")
    parts = []
    for i, data in enumerate(r.take("parts", _is_list_of_maps, "a list of mappings", [])):
        part = _Reader(data, f"{r.path('parts')}[{i}]", r.problems)
        if data.get("dataset") in (None, {}):
            r.problems.append(f"{part.path('dataset')}: missing (required)")
        source = part.section("dataset", _dataset_source)
        weight = part.take("weight", _is_opt_number, "a number or null", None)
        num_samples = part.take("num_samples", _is_opt_int, "an integer or null", None)
        part.warn_unknown()
        if source is not None:
            parts.append(MixPartSpec(source=source, weight=weight, num_samples=num_samples))
    if not parts and not r.problems:
        r.problems.append(f"{r.path('parts')}: a mix needs at least one dataset")
    return DatasetMixSpec(
        parts=parts,
        stopping_strategy=r.take(
            "stopping_strategy",
            lambda v: v in STOPPING_STRATEGIES,
            f"one of {', '.join(STOPPING_STRATEGIES)}",
            STOPPING_STRATEGIES[0],
        ),
        seed=r.take("seed", _is_int, "an integer", 42),
    )


def _is_opt_number(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _trainer(r: _Reader) -> TrainerSpec:
    arguments = r.take("training_arguments", _is_map, "a mapping of TrainingArguments fields", {})
    for secret in sorted(set(arguments) & set(TRAINING_ARGUMENT_SECRETS)):
        r.problems.append(
            f"trainer.training_arguments.{secret}: a credential cannot be part of the job spec; "
            "it travels as a secret"
        )
    return TrainerSpec(
        training_arguments=arguments,
        lora_config=r.take(
            "lora_config", _is_opt_map, "a mapping of LoraConfig fields or null", None
        ),
        max_length=r.take("max_length", _is_opt_int, "an integer or null", None),
        columns=r.take("columns", _is_opt_str_map, "a mapping of strings or null", None),
        packing=r.take("packing", _is_bool, "true or false", False),
        method=_optional_enum(r, "method", TrainingMethod),
        data_format=_optional_enum(r, "data_format", DataFormat),
        chat_template=r.take("chat_template", _is_opt_str, "a string or null", None),
        loss_on=_optional_enum(r, "loss_on", LossOn),
        merge_adapter=r.take("merge_adapter", _is_bool, "true or false", False),
        evaluate_before_training=r.take(
            "evaluate_before_training", _is_bool, "true or false", False
        ),
        length_grouping=r.take("length_grouping", _is_bool, "true or false", True),
    )


def _optional_enum(r: _Reader, key: str, enum: type[StrEnum]) -> Any:
    values = [str(member) for member in enum]
    value = r.take(
        key, lambda v: v is None or v in values, f"null or one of {', '.join(values)}", None
    )
    return None if value is None else enum(value)


def _storage(r: _Reader) -> StorageSpec:
    return StorageSpec(
        size=r.take("size", _is_str, "a quantity", DEFAULT_STORAGE_SIZE),
        storage_class=r.take("storage_class", _is_opt_str, "a string or null", None),
        access_modes=r.take(
            "access_modes", _is_str_list, "a list of access modes", ["ReadWriteOnce"]
        ),
    )


def _function(r: _Reader) -> FunctionSpec:
    return FunctionSpec(
        name=r.take("name", _is_opt_str, "a string or null", None),
        program=r.take("program", _is_opt_str, "a string or null", None),
        entrypoint=r.take("entrypoint", _is_str, "a string"),
        packages=r.take("packages", _is_str_list, "a list of strings", []),
        pip_index_url=r.take("pip_index_url", _is_str, "a URL", "https://pypi.org/simple"),
        base_image=r.take("base_image", _is_opt_str, "a string or null", None),
    )


def _kubernetes(r: _Reader) -> KubernetesExtras:
    values = {}
    for name, key in KubernetesExtras.KEYS.items():
        if name == "resources":
            values[name] = r.take(key, _is_opt_map, "a mapping or null", None)
        else:
            values[name] = r.take(key, _is_list_of_maps, "a list of mappings", [])
    return KubernetesExtras(**values)
