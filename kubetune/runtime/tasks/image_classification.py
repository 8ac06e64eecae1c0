"""Image classification: an image column and a label, through the model's AutoImageProcessor."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from kubetune.contract.spec import TransformerType
from kubetune.runtime.tasks import metrics
from kubetune.runtime.tasks.base import MapCache, Prepared
from kubetune.runtime.tasks.labels import LabelledTask

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import EvalPrediction, PreTrainedModel


class ImageClassification(LabelledTask):
    transformer_type = TransformerType.IMAGE_CLASSIFICATION
    # PEFT has no task type for images: the classifier is trained fully through modules_to_save.
    head_modules = ("classifier", "score", "head", "fc")
    column_conventions: ClassVar[Mapping[str, tuple[str, ...]]] = {
        "image": ("image", "img", "picture", "photo"),
        "label": ("label", "labels", "fine_label", "class"),
    }
    required_roles = ("image", "label")

    def load_processor(self, model_dir: Path) -> Any:
        from transformers import AutoImageProcessor

        return AutoImageProcessor.from_pretrained(model_dir)

    def prepare(
        self,
        train: Dataset,
        eval: Dataset | None,
        processor: Any,
        model: PreTrainedModel,
        cache: MapCache,
    ) -> Prepared:
        image, label = self.column("image"), self.column("label")
        ids = self.labels.ids

        def transform(batch: dict[str, list[Any]]) -> dict[str, Any]:
            pixels = processor([as_rgb(x) for x in batch[image]], return_tensors="pt")[
                "pixel_values"
            ]
            return {"pixel_values": pixels, "labels": [ids[v] for v in batch[label]]}

        # Images are transformed on the fly (no cache of pixel arrays); each batch only.
        return Prepared(
            train=train.with_transform(transform),
            eval=eval.with_transform(transform) if eval is not None else None,
            collator=collate_images,
            compute_metrics=accuracy_metrics,
        )


def as_rgb(value: Any) -> Any:
    """A PIL RGB image from a PIL image, a path, or a datasets Image dict."""
    from PIL import Image

    if isinstance(value, str | Path):
        value = Image.open(value)
    elif isinstance(value, dict) and value.get("bytes") is not None:
        import io

        value = Image.open(io.BytesIO(value["bytes"]))
    elif isinstance(value, dict) and value.get("path"):
        value = Image.open(value["path"])
    return value.convert("RGB")


def collate_images(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """A batch of pixel values and labels as tensors."""
    return {
        "pixel_values": torch.stack([torch.as_tensor(f["pixel_values"]) for f in features]),
        "labels": torch.tensor([int(f["labels"]) for f in features], dtype=torch.long),
    }


def accuracy_metrics(prediction: EvalPrediction) -> dict[str, float]:
    """{'accuracy': ...} of the predicted classes against the labels."""
    import numpy as np

    logits = (
        prediction.predictions[0]
        if isinstance(prediction.predictions, tuple)
        else prediction.predictions
    )
    predicted = np.asarray(logits).argmax(-1).tolist()
    return {"accuracy": metrics.accuracy(predicted, np.asarray(prediction.label_ids).tolist())}
