"""A finished job's model loaded with plain transformers (and PEFT for an adapter) as a
transformers pipeline: `pipeline_for_job(name)`.

| transformer type | pipeline | call it with |
| --- | --- | --- |
| AutoModelForSequenceClassification | text-classification | texts; `top_k=None` for every label |
| AutoModelForTokenClassification | token-classification (entities grouped) | texts |
| AutoModelForQuestionAnswering | `QuestionAnsweringPipeline` | `question=..., context=...` |
| AutoModelForCausalLM | text-generation | prompts, or chats (lists of messages) |
| AutoModelForMaskedLM | fill-mask | texts holding the tokenizer's mask token |
| AutoModelForImageClassification | image-classification | image paths, URLs or PIL images |
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubetune.contract.spec import LABELLED_TYPES, TransformerType, label_head_kwargs
from kubetune.inference.final_model import FinalModel, ModelNotAvailable, final_model_of

if TYPE_CHECKING:
    from transformers import Pipeline

    from kubetune.training.api.training_client import TrainingClient

PIPELINE_TASKS = {
    TransformerType.SEQUENCE_CLASSIFICATION: "text-classification",
    TransformerType.TOKEN_CLASSIFICATION: "token-classification",
    TransformerType.QUESTION_ANSWERING: "question-answering",
    TransformerType.CAUSAL_LM: "text-generation",
    TransformerType.MASKED_LM: "fill-mask",
    TransformerType.IMAGE_CLASSIFICATION: "image-classification",
}


def pipeline_for_job(
    name: str,
    namespace: str | None = None,
    *,
    client: TrainingClient | None = None,
    base_model: str | None = None,
    device: Any = None,
    **pipeline_kwargs: Any,
) -> Pipeline:
    """A transformers pipeline of a finished job's final model, ready to call (`name` may also be
    the path of a run's output directory, e.g. kept outputs of a job whose output_dir was absolute).

    The model is the merged model when the job saved one, else the LoRA adapter applied to the
    base model it records (the model the job was given; `base_model` loads another copy of it,
    e.g. a local folder where the Hub cannot be reached), else the fully fine-tuned model. A job
    deleted with `keep_outputs=True` is found by its name in the kept outputs. The pipeline's
    task follows the job's transformer type (see kubetune/inference/pipelines.py); question
    answering gets kubetune's `QuestionAnsweringPipeline`.

    Args:
        namespace: the job's namespace (default: the client's).
        client: the TrainingClient whose backend knows the job (default: `TrainingClient()`).
        device: passed to the pipeline (e.g. 'cuda:0'; default: transformers' choice).
        pipeline_kwargs: passed to `transformers.pipeline` (e.g. `top_k`).

    Returns:
        The pipeline; for a causal LM, `pipe.model` and `pipe.tokenizer` also serve `generate`.

    Raises:
        ModelNotAvailable: (a RuntimeError) the job is not found and nothing was kept, has not
            succeeded, or saved no model; naming the job and its state.
        OSError: the model (or an adapter's base model) cannot be loaded.
    """
    if client is None:
        from kubetune.training import TrainingClient

        client = TrainingClient()
    final = final_model_of(client.backend, name, namespace or client.namespace)
    return load_pipeline(final, base_model=base_model, device=device, **pipeline_kwargs)


def load_pipeline(
    final: FinalModel, *, base_model: str | None = None, device: Any = None, **kwargs: Any
) -> Pipeline:
    """The pipeline of a final model (see `pipeline_for_job`)."""
    import transformers

    model = load_model(final, base_model)
    task = PIPELINE_TASKS[final.transformer_type]
    processing: dict[str, Any] = {}
    if final.transformer_type == TransformerType.IMAGE_CLASSIFICATION:
        processing["image_processor"] = transformers.AutoImageProcessor.from_pretrained(
            final.folder
        )
    else:
        processing["tokenizer"] = transformers.AutoTokenizer.from_pretrained(final.folder)
    if task == PIPELINE_TASKS[TransformerType.QUESTION_ANSWERING]:
        from kubetune.inference.question_answering import QuestionAnsweringPipeline

        return QuestionAnsweringPipeline(
            model=model, task=task, device=device, **processing, **kwargs
        )
    if final.transformer_type == TransformerType.TOKEN_CLASSIFICATION:
        kwargs.setdefault("aggregation_strategy", "simple")
    make: Any = transformers.pipeline  # (its overloads want the task as a literal)
    return make(task, model=model, device=device, **processing, **kwargs)


def load_model(final: FinalModel, base_model: str | None = None) -> Any:
    """The final model as a plain transformers model (an adapter merged into its base).

    Raises:
        ModelNotAvailable: an adapter whose base model is not recorded or lies in S3.
        OSError: a model folder (or the base model) cannot be loaded.
    """
    import transformers

    auto = getattr(transformers, str(final.transformer_type))
    if not final.adapter:
        return auto.from_pretrained(final.folder).eval()
    from peft import PeftModel

    base = base_model or final.base_model
    if not base:
        raise ModelNotAvailable(
            f"{final.origin}: its adapter ({final.folder}) records no base model; give one "
            "(base_model=..., --base-model)"
        )
    if base.startswith("s3://"):
        raise ModelNotAvailable(
            f"{final.origin}: its adapter's base model is in S3 ({base}), which transformers "
            "cannot load; download it to a folder and give that (base_model=..., --base-model)"
        )
    settings: dict[str, Any] = {}
    if final.labels and final.transformer_type in LABELLED_TYPES:
        settings = label_head_kwargs(final.labels)
    if base_model is None and final.base_revision:
        settings["revision"] = final.base_revision
    try:
        model = auto.from_pretrained(base, **settings)
    except OSError as error:
        raise OSError(
            f"{final.origin}: cannot load the base model of its adapter, {base}: "
            f"{str(error).splitlines()[0] if str(error) else type(error).__name__}; give a copy "
            "of it (base_model=..., --base-model)"
        ) from error
    return PeftModel.from_pretrained(model, final.folder).merge_and_unload().eval()
