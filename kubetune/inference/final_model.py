"""Which folder holds a finished job's final model, what kind of model it is, and its base.

A run leaves its output directory (`layout.OutputDir`): `merged_model/` (a LoRA adapter merged
into its base: a plain transformers model), `model/` (the adapter, or the full model of full
fine-tuning) and `metrics.json` (which names the transformer type and the label names). The
merged model is preferred: it loads without PEFT and without the base model. An adapter's base is
the model the user named (`adapter_config.json`'s `base_model_name_or_path`, and `revision`).

The outputs are found through the Backend interface: the job's output directory while the job
exists, else the newest outputs `delete_job(keep_outputs=True)` kept of a job of that name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kubetune.contract import layout
from kubetune.contract.conditions import Condition
from kubetune.contract.layout import OutputDir
from kubetune.contract.spec import TransformerType
from kubetune.training.backends.base import Backend


class ModelNotAvailable(RuntimeError):
    """A job has no final model to load: not found, not finished, failed, or nothing saved."""


@dataclass(frozen=True)
class FinalModel:
    """A finished job's model as saved: the folder to load (`folder`), its transformer type,
    whether it is a LoRA adapter (then `base_model`/`base_revision` name what it adapts), the
    label names of a classifier, and `origin` (which job, where its outputs were found)."""

    folder: Path
    transformer_type: TransformerType
    adapter: bool
    origin: str
    base_model: str | None = None
    base_revision: str | None = None
    labels: list[str] | None = None


def final_model_in(
    outputs: OutputDir, origin: str, transformer_type: TransformerType | None = None
) -> FinalModel:
    """The final model in a run's output directory (`origin` names the job in messages; the
    transformer type is read from metrics.json, else `transformer_type`).

    Raises:
        ModelNotAvailable: no model was saved there, or its type is unknown.
    """
    metrics = layout.read_json(outputs.metrics)
    metrics = metrics if isinstance(metrics, dict) else {}
    named = metrics.get("transformer_type") or transformer_type
    try:
        kind = TransformerType(str(named))
    except ValueError:
        raise ModelNotAvailable(
            f"{origin}: {outputs.metrics} does not name the model's transformer type "
            f"(got {named!r}); was it written by a kubetune run?"
        ) from None
    labels = metrics.get("labels") if isinstance(metrics.get("labels"), list) else None
    if (outputs.merged_model / "config.json").is_file():
        return FinalModel(outputs.merged_model, kind, False, origin, labels=labels)
    adapter_config = layout.read_json(outputs.model / layout.ADAPTER_CONFIG_FILE)
    if isinstance(adapter_config, dict):
        saved_labels = layout.read_json(outputs.model / layout.LABELS_FILE)
        return FinalModel(
            outputs.model,
            kind,
            True,
            origin,
            base_model=adapter_config.get("base_model_name_or_path"),
            base_revision=adapter_config.get("revision"),
            labels=saved_labels if isinstance(saved_labels, list) else labels,
        )
    if (outputs.model / "config.json").is_file():
        return FinalModel(outputs.model, kind, False, origin, labels=labels)
    raise ModelNotAvailable(
        f"{origin}: no model saved in {outputs.root} (neither {layout.OUTPUT_MERGED_MODEL_DIR}/ "
        f"nor {layout.OUTPUT_MODEL_DIR}/ holds one)"
    )


def find_final_model(backend: Backend, name: str, namespace: str) -> FinalModel:
    """The final model of job `namespace/name`: in its outputs while it exists (it must have
    succeeded, and its outputs lie on this machine), else in the newest outputs kept when a job
    of that name was deleted with `keep_outputs=True`.

    Raises:
        ModelNotAvailable: naming the job and its state: not found (and nothing kept), still
            running, failed, a function job, outputs in a cluster volume, or no model saved.
    """
    job = f"job {namespace}/{name}"
    try:
        report = backend.get_job(name, namespace)
    except RuntimeError as error:
        kept = backend.kept_outputs(name, namespace)
        if not kept:
            raise ModelNotAvailable(
                f"{error}; and no outputs of a job of that name were kept "
                "(`kubetune delete --keep-outputs` keeps them)"
            ) from None
        return final_model_in(kept[0], f"{job} (deleted; its outputs kept in {kept[0].root})")
    status = report.status
    if status == Condition.FAILED:
        raise ModelNotAvailable(f"{job} Failed ({report.message}): it saved no final model")
    if status != Condition.SUCCEEDED:
        progress = report.progress_record
        step = f", step {progress.step}/{progress.total_steps or '?'}" if progress else ""
        raise ModelNotAvailable(
            f"{job} is {status}{step}: its final model is saved when it succeeds; wait for it "
            f"(kubetune -n {namespace} logs -f {name})"
        )
    spec = backend.get_job_spec(name, namespace)
    if spec is not None and spec.function is not None:
        raise ModelNotAvailable(
            f"{job} ran a function (create_job(train_func=...)): kubetune knows of no model it saved"
        )
    outputs = backend.local_outputs(name, namespace)
    if outputs is None:
        raise ModelNotAvailable(
            f"{job} ran on the {backend.name} backend: its outputs ({report.output_dir}) are in "
            "the job's volume, not on this machine; copy the output directory here and give "
            "its path instead of the job name"
        )
    transformer_type = spec.transformer_type if spec is not None and spec.model else None
    return final_model_in(outputs, job, transformer_type)


def final_model_of(backend: Backend, name_or_path: str, namespace: str) -> FinalModel:
    """`find_final_model` for a job name; for a path (it holds a '/', which no job name does)
    the final model in that output directory.

    Raises:
        ModelNotAvailable: see `find_final_model`; for a path, no model saved there.
    """
    if "/" not in name_or_path:
        return find_final_model(backend, name_or_path, namespace)
    folder = Path(name_or_path).expanduser().resolve()
    if not folder.is_dir():
        raise ModelNotAvailable(f"{name_or_path}: no such output directory")
    return final_model_in(OutputDir(folder), f"outputs {folder}")
