"""Job YAML files: one fine-tuning job as `TrainingClient.train()`'s keyword arguments.

```yaml
name: fine-tune-bert
num_workers: 2
resources_per_worker: {cpu: 1, memory: 4G}
model_provider_parameters: {model_uri: ./models/bert, transformer_type: AutoModelForSequenceClassification}
dataset_provider_parameters: {local: {path: data/train.csv}}      # or hf: {...} or s3: {...}
# or a mix: a list of them, each with an optional weight or num_samples
#   dataset_provider_parameters: [{local: {path: a.jsonl}, weight: 3}, {hf: {repo_id: x}, weight: 1}]
# or {mix: {datasets: [...], stopping_strategy: all_exhausted}}
trainer_parameters:
  training_parameters: {output_dir: out, num_train_epochs: 1}     # TrainingArguments fields
  lora_config: {r: 8, lora_alpha: 8}                              # LoraConfig fields; null: full fine-tuning
```

A causal LM may name a TRL method next to `training_parameters` (`method: sft`, `dpo`,
`orpo` or `kto`): `training_parameters` are then the fields of that method's config
(`trl.SFTConfig`, ...), built with `bf16: false` unless the file sets it.

Top-level keys are `train()`'s arguments; `transformer_type` is the class name; relative paths
in `local: {path: ...}` and a `model_uri` starting with ./ or ../ are relative to the YAML file's
folder. Every problem in the file is reported at once, each with its key path; the job's rules
run once, in `kubetune.params.job.build_job_spec`, which also makes the job's spec.

The file must be UTF-8 YAML of at most 1 MiB; a key may appear once per mapping; anchors and
aliases may expand to at most 100,000 values and nesting may go 32 levels deep. A file that
breaks these rules is refused with the file name and the line.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubetune.contract import causal_lm
from kubetune.contract.problems import InvalidJob, shown
from kubetune.contract.spec import MIX_KIND, STOPPING_STRATEGIES, JobSpec
from kubetune.contract.uris import SourceKind

PARAMS_KEYS = ("model_provider_parameters", "dataset_provider_parameters", "trainer_parameters")
PLAIN_KEYS = (
    "name",
    "namespace",
    "num_workers",
    "num_procs_per_worker",
    "resources_per_worker",
    "storage_config",
    "init_env_vars",
    "env_vars",
    "labels",
    "annotations",
    "queue_name",
    "max_restarts",
)
TOP_LEVEL_KEYS = (*PLAIN_KEYS, *PARAMS_KEYS)
REQUIRED_KEYS = ("name", *PARAMS_KEYS)
DATASET_KINDS = tuple(str(kind) for kind in SourceKind)
# A dataset's share of a mix, beside its kind key in a list of datasets.
SHARE_KEYS = ("weight", "num_samples")

MAX_FILE_BYTES = 2**20
MAX_DEPTH = 32
MAX_VALUES = 100_000
MAX_NUMBER_DIGITS = 100


class JobFileError(ValueError):
    """A job file that cannot become a job; the message lists every problem with its key path."""


@dataclass
class JobFile:
    """A checked job file: `train()`'s keyword arguments, and the job's spec and secrets."""

    kwargs: dict[str, Any]
    spec: JobSpec
    secrets: dict[str, str]


def load_job_file(
    path: str | os.PathLike[str], on_read: Callable[[], None] | None = None
) -> dict[str, Any]:
    """The `train()` keyword arguments that the job YAML at `path` describes (see `read_job_file`).

    Raises:
        JobFileError: listing everything wrong, each with its key path.
    """
    return read_job_file(path, on_read=on_read).kwargs


def read_job_file(
    path: str | os.PathLike[str],
    namespace: str | None = None,
    default_namespace: str = "default",
    on_read: Callable[[], None] | None = None,
) -> JobFile:
    """The job that the job YAML at `path` describes, checked as `train()` checks it.

    Args:
        namespace: overrides the file's namespace (`kubetune -n`).
        default_namespace: the namespace when neither `namespace` nor the file gives one.
        on_read: called once the YAML is read, before the values are checked (which imports
            transformers and peft: seconds).

    Raises:
        JobFileError: listing everything wrong (YAML syntax, unknown or missing keys, bad
            values), each with its key path.
    """
    path = Path(path)
    data = read_yaml(path)
    if on_read is not None:
        on_read()
    return job_from_data(
        data,
        base_dir=path.resolve().parent,
        source=str(path),
        namespace=namespace,
        default_namespace=default_namespace,
    )


def read_yaml(path: Path) -> Any:
    """The YAML document in `path`; JobFileError naming the file and the line when it cannot be
    read safely (not UTF-8, too big, duplicate keys, aliases that expand without bound, nesting
    too deep, invalid YAML)."""
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise JobFileError(f"{path}: cannot read the job file: {e.strerror or e}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise JobFileError(
            f"{path}: more than {MAX_FILE_BYTES // 2**20} MiB; a job file is a few lines of YAML"
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        column = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise JobFileError(
            f"{path}:{line}:{column}: not UTF-8 text (byte 0x{raw[e.start]:02x}); save the file as UTF-8"
        ) from None
    try:
        _check_depth(text, path)
        loader = _JobFileLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_size(node, path)
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as e:
        raise JobFileError(_yaml_problem(path, e)) from None
    except yaml.reader.ReaderError as e:
        line = text[: e.position].count("\n") + 1
        raise JobFileError(
            f"{path}:{line}: not valid YAML: the character #x{ord(str(e.character)[:1] or ' '):04x} "
            "is not allowed in YAML text"
        ) from None
    except yaml.YAMLError as e:
        raise JobFileError(f"{path}: not valid YAML: {e}") from None
    if loader.duplicates:
        listing = "; ".join(
            f"{path}:{line}: duplicate key {key!r} (first at line {first})"
            for key, line, first in loader.duplicates
        )
        raise JobFileError(f"{listing}; each key may appear once in a mapping")
    return data


class _JobFileLoader(yaml.SafeLoader):
    """A SafeLoader that records duplicate keys and refuses numbers too long to be meant."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[Any, int, int]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicates.append((key, line, seen[key]))
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(node.value)
        if len(text) > MAX_NUMBER_DIGITS:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"a number of {len(text)} digits; numbers in a job file have at most {MAX_NUMBER_DIGITS}",
                node.start_mark,
            )
        return super().construct_yaml_int(node)


_JobFileLoader.add_constructor("tag:yaml.org,2002:int", _JobFileLoader.construct_yaml_int)


def _check_depth(text: str, path: Path) -> None:
    """Refuses nesting deeper than MAX_DEPTH before anything recursive reads the document."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1 if event.start_mark else "?"
                raise JobFileError(
                    f"{path}:{line}: nested more than {MAX_DEPTH} levels deep; "
                    "a job file needs only a few"
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _check_size(root: yaml.Node, path: Path) -> None:
    """Refuses a document whose aliases expand to more than MAX_VALUES values (an alias bomb)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if id(node) in open_nodes:
            raise JobFileError(
                f"{path}:{node.start_mark.line + 1}: an alias refers to the collection that contains it"
            )
        open_nodes.add(id(node))
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(key) + size(value) for key, value in node.value)
        open_nodes.discard(id(node))
        if total > MAX_VALUES:
            raise JobFileError(
                f"{path}:{node.start_mark.line + 1}: the aliases here expand to more than "
                f"{MAX_VALUES} values; a job file needs far fewer"
            )
        sizes[id(node)] = total
        return total

    size(root)


def _yaml_problem(path: Path, error: yaml.MarkedYAMLError) -> str:
    """A YAML error as 'file:line:column: problem', without the file's text (it may hold a secret)."""
    mark = error.problem_mark or error.context_mark
    place = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
    problem = error.problem or error.context or "cannot parse"
    context = ""
    if error.context and error.problem and error.context_mark is not None:
        context = f" ({error.context} at line {error.context_mark.line + 1})"
    return f"{place}: not valid YAML: {problem}{context}"


def job_kwargs(data: Any, base_dir: Path, source: str = "job file") -> dict[str, Any]:
    """`train()` keyword arguments from parsed job YAML (see `job_from_data`).

    Raises:
        JobFileError: listing every problem with its key path.
    """
    return job_from_data(data, base_dir, source).kwargs


def job_from_data(
    data: Any,
    base_dir: Path,
    source: str = "job file",
    namespace: str | None = None,
    default_namespace: str = "default",
) -> JobFile:
    """The job that parsed job YAML describes; relative paths resolve against `base_dir`.

    Every rule runs once: in `build_job_spec` when the params could be made, else (to report
    every problem at once) the job-level rules beside the params' problems.

    Raises:
        JobFileError: listing every problem with its key path.
    """
    problems: list[str] = []
    if not isinstance(data, dict):
        raise JobFileError(
            f"{source}: the job file must be a mapping of train() arguments "
            f"({', '.join(TOP_LEVEL_KEYS)}), not {type(data).__name__}"
        )
    for key in data:
        if key not in TOP_LEVEL_KEYS:
            problems.append(_unknown(str(key), key, TOP_LEVEL_KEYS))
    for key in REQUIRED_KEYS:
        if key not in data:
            problems.append(f"{key}: missing (required)")

    kwargs: dict[str, Any] = {k: data[k] for k in PLAIN_KEYS if k in data}
    if namespace:
        kwargs["namespace"] = namespace
    if "model_provider_parameters" in data:
        kwargs["model_provider_parameters"] = _model_params(
            data["model_provider_parameters"], base_dir, problems
        )
    if "dataset_provider_parameters" in data:
        kwargs["dataset_provider_parameters"] = _dataset_params(
            data["dataset_provider_parameters"], base_dir, problems
        )
    arguments = None
    if "trainer_parameters" in data:
        kwargs["trainer_parameters"], arguments = _trainer_params(
            data["trainer_parameters"], problems
        )

    from kubetune.params.job import build_job_spec, job_problems, params_problems

    built = {**kwargs, "namespace": kwargs.get("namespace") or default_namespace}
    if "name" in kwargs and all(kwargs.get(key) is not None for key in PARAMS_KEYS):
        try:
            spec, secrets = build_job_spec(**built, extra_problems=problems)
        except InvalidJob as e:
            raise JobFileError(_listing(source, e.problems)) from None
        return JobFile(kwargs, spec, secrets)

    if arguments is not None:
        problems.extend(
            f"trainer_parameters.{p}"
            for p in params_problems(
                kwargs.get("dataset_provider_parameters"),
                arguments,
                kwargs.get("model_provider_parameters"),
            )
        )
    if "name" in kwargs:
        problems.extend(
            job_problems(
                name=built["name"],
                namespace=built["namespace"],
                num_workers=built.get("num_workers", 1),
                num_procs_per_worker=built.get("num_procs_per_worker", 1),
                resources_per_worker=built.get("resources_per_worker"),
                storage=built.get("storage_config"),
                env=built.get("env_vars"),
                init_env=built.get("init_env_vars"),
                labels=built.get("labels"),
                annotations=built.get("annotations"),
                max_restarts=built.get("max_restarts", 3),
            )
        )
    raise JobFileError(_listing(source, problems))


def _listing(source: str, problems: list[str]) -> str:
    listing = "\n".join(f"  - {p}" for p in problems)
    return f"{source}: {len(problems)} problem(s):\n{listing}"


def _model_params(value: Any, base_dir: Path, problems: list[str]) -> Any:
    from kubetune.params.hugging_face import HuggingFaceModelParams

    where = "model_provider_parameters"
    fields = _mapping(value, where, problems)
    if fields is None:
        return None
    uri = fields.get("model_uri")
    if isinstance(uri, str) and (uri.startswith("./") or uri.startswith("../")):
        fields["model_uri"] = os.path.normpath(base_dir / uri)
        if not Path(fields["model_uri"]).is_dir():
            problems.append(
                f"{where}.model_uri={uri!r}: {fields['model_uri']} (relative to the job file) is not a folder"
            )
    return _build(HuggingFaceModelParams, fields, where, problems)


def _dataset_params(value: Any, base_dir: Path, problems: list[str]) -> Any:
    """One dataset's params, or a DatasetMix (a list of datasets, or {mix: {datasets: [...]}})."""
    where = "dataset_provider_parameters"
    if isinstance(value, list):
        return _dataset_mix(value, STOPPING_STRATEGIES[0], base_dir, problems, where, "-")
    if isinstance(value, dict) and list(value) == [MIX_KIND]:
        where = f"{where}.{MIX_KIND}"
        fields = _mapping(value[MIX_KIND], where, problems)
        if fields is None:
            return None
        allowed = ("datasets", "stopping_strategy")
        problems.extend(_unknown(f"{where}.{k}", k, allowed) for k in fields if k not in allowed)
        if "datasets" not in fields:
            problems.append(f"{where}.datasets: missing (required: a list of datasets)")
            return None
        strategy = fields.get("stopping_strategy", STOPPING_STRATEGIES[0])
        return _dataset_mix(
            fields["datasets"],
            strategy,
            base_dir,
            problems,
            f"{where}.datasets",
            f"{where}.stopping_strategy",
        )
    return _one_dataset(value, base_dir, problems, where)


def _dataset_mix(
    entries: Any,
    strategy: Any,
    base_dir: Path,
    problems: list[str],
    where: str,
    strategy_field: str,
) -> Any:
    """A DatasetMix from a list of datasets, each `{<kind>: {...}, weight: W, num_samples: N}`
    (problems named under `where`, the stopping strategy's as `strategy_field`)."""
    from kubetune.params.mix import (
        DatasetMix,
        MixedDataset,
        layout_problems,
        mix_problems,
        share_problems,
    )

    if not isinstance(entries, list) or not entries:
        problems.extend(mix_problems(entries, where=where, strategy_field=strategy_field))
        return None
    parts: list[Any] = []
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            problems.append(
                f"{at}: must be a mapping such as {{local: {{path: data/a.jsonl}}, weight: 1}}, "
                f"not {type(entry).__name__}"
            )
            continue
        share = {k: entry[k] for k in SHARE_KEYS if k in entry}
        wrong = share_problems(share.get("weight"), share.get("num_samples"), f"{at}.")
        problems.extend(wrong)
        params = _one_dataset(
            {k: v for k, v in entry.items() if k not in SHARE_KEYS}, base_dir, problems, at
        )
        if params is not None and not wrong:
            parts.append(MixedDataset(params, **share))
    if len(parts) < len(entries):
        # The mix as a whole is still checked, its weights read from the entries' own keys.
        weighted = {
            i: entry.get("weight") is not None
            for i, entry in enumerate(entries)
            if isinstance(entry, dict)
        }
        problems.extend(layout_problems(len(entries), weighted, strategy, where, strategy_field))
        return None
    found = mix_problems(parts, strategy, where=where, strategy_field=strategy_field)
    if found:
        problems.extend(found)
        return None
    return DatasetMix(datasets=parts, stopping_strategy=strategy)


def _one_dataset(value: Any, base_dir: Path, problems: list[str], where: str) -> Any:
    from kubetune.params.hugging_face import HuggingFaceDatasetParams
    from kubetune.params.local import LocalDatasetParams
    from kubetune.params.s3 import S3DatasetParams

    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in DATASET_KINDS:
        given = list(value) if isinstance(value, dict) else type(value).__name__
        problems.append(
            f"{where}: must be a mapping with exactly one key naming the kind ({', '.join(DATASET_KINDS)}), "
            f"e.g. {{local: {{path: data/train.csv}}}}, or a list of them (a mix; see "
            f"docs/data-formats.md); got {given}"
        )
        return None
    kind, inner = next(iter(value.items()))
    where = f"{where}.{kind}"
    fields = _mapping(inner, where, problems)
    if fields is None:
        return None
    classes: dict[str, type] = {
        SourceKind.HF: HuggingFaceDatasetParams,
        SourceKind.S3: S3DatasetParams,
        SourceKind.LOCAL: LocalDatasetParams,
    }
    if kind == SourceKind.LOCAL and isinstance(fields.get("path"), str):
        given = fields["path"]
        fields["path"] = os.path.normpath(base_dir / os.path.expanduser(given))
        if not os.path.exists(fields["path"]):
            problems.append(
                f"{where}.path={given!r}: {fields['path']}"
                f"{'' if os.path.isabs(given) else ' (relative to the job file)'} does not exist"
            )
    return _build(classes[kind], fields, where, problems)


def _trainer_params(value: Any, problems: list[str]) -> tuple[Any, Any]:
    """The HuggingFaceTrainerParams (None when anything is wrong) and its TrainingArguments or
    TRL config (a stand-in of the same class when they are wrong, so that the rules on the
    params together still run); every problem is recorded, even when a part fails."""
    from peft import LoraConfig

    from kubetune.contract.secrets import TRAINING_ARGUMENT_SECRETS
    from kubetune.params.hugging_face import HuggingFaceTrainerParams

    where = "trainer_parameters"
    fields = _mapping(value, where, problems)
    if fields is None:
        return None, None
    extra_keys = [
        f.name
        for f in dataclasses.fields(HuggingFaceTrainerParams)
        if f.name not in ("training_parameters", "lora_config")
    ]
    allowed = ("training_parameters", "method", "lora_config", *extra_keys)
    for key in fields:
        if key not in allowed:
            problems.append(_unknown(f"{where}.{key}", key, allowed))
    method = _method(fields.get("method"), f"{where}.method", problems)
    config_class = causal_lm.config_class(method)
    if "training_parameters" not in fields:
        problems.append(
            f"{where}.training_parameters: missing (required: {config_class.__name__} fields)"
        )
        return None, None
    kwargs: dict[str, Any] = {k: fields[k] for k in extra_keys if k in fields}
    training = _mapping(fields["training_parameters"], f"{where}.training_parameters", problems)
    if training is None:
        return None, None
    kwargs["training_parameters"] = _build(
        config_class,
        {**causal_lm.record_defaults(method), **training},
        f"{where}.training_parameters",
        problems,
        typed=True,
        secret_fields=tuple(TRAINING_ARGUMENT_SECRETS),
    )
    arguments = kwargs["training_parameters"]
    ok = arguments is not None
    if fields.get("lora_config") is not None:
        lora_fields = _mapping(fields["lora_config"], f"{where}.lora_config", problems)
        kwargs["lora_config"] = (
            None
            if lora_fields is None
            else _build(LoraConfig, lora_fields, f"{where}.lora_config", problems, typed=True)
        )
        ok = ok and kwargs["lora_config"] is not None
    elif "lora_config" in fields:
        kwargs["lora_config"] = None  # null: full fine-tuning
    if ok:
        return _build(
            HuggingFaceTrainerParams, kwargs, where, problems, check_fields=False
        ), arguments
    # Stand-ins for the parts that failed, so the other fields' problems are reported too.
    if arguments is None:
        given = training.get("output_dir")
        kwargs["training_parameters"] = config_class(
            output_dir=given if isinstance(given, str) and given.strip() else "out",
            **causal_lm.record_defaults(method),
        )
    if fields.get("lora_config") is not None and kwargs["lora_config"] is None:
        kwargs["lora_config"] = LoraConfig()
    _build(HuggingFaceTrainerParams, kwargs, where, problems, check_fields=False)
    return None, kwargs["training_parameters"]


def _method(value: Any, where: str, problems: list[str]) -> causal_lm.TrainingMethod | None:
    """The TRL method a job file names (None: none named, or a wrong name, recorded)."""
    if value is None:
        return None
    names = [str(m) for m in causal_lm.TrainingMethod]
    if value not in names:
        problems.append(
            f"{where}={shown(value)}: not a training method; allowed: {', '.join(names)} "
            "(or no method: transformers.TrainingArguments)"
        )
        return None
    return causal_lm.TrainingMethod(value)


def _mapping(value: Any, where: str, problems: list[str]) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        problems.append(f"{where}: must be a mapping of fields, not {type(value).__name__}")
        return None
    return dict(value)


def _build(
    cls: type,
    fields: dict[str, Any],
    where: str,
    problems: list[str],
    check_fields: bool = True,
    typed: bool = False,
    secret_fields: tuple[str, ...] = (),
) -> Any:
    """`cls(**fields)`, or None with the problems (unknown fields, rejected values) recorded.

    With `typed`, values are first checked against the field annotations (for classes whose
    own checks give raw errors, or none: TrainingArguments, LoraConfig).
    """
    wrong: list[str] = []
    if check_fields:
        allowed = [f.name for f in dataclasses.fields(cls) if f.init and not f.name.startswith("_")]
        unknown = [k for k in fields if k not in allowed]
        for key in unknown:
            wrong.append(_unknown(f"{where}.{key}", key, allowed, what=cls.__name__))
    if typed:
        from kubetune.params import validation

        fields, mistyped = validation.typed_fields(cls, fields, where, secret_fields=secret_fields)
        wrong.extend(mistyped)
    if wrong:
        problems.extend(wrong)
        return None
    try:
        return cls(**fields)
    except (ValueError, TypeError) as e:
        message = str(e).replace("\n", "\n    ")
        problems.append(f"{where}: {message}")
        return None


def _unknown(path: str, key: Any, allowed: tuple[str, ...] | list[str], what: str = "") -> str:
    close = difflib.get_close_matches(str(key), list(allowed), n=3)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    listing = "" if len(allowed) > 20 else f"; allowed: {', '.join(allowed)}"
    owner = f" of {what}" if what else ""
    return f"{path}: unknown key{owner}{hint}{listing}"
