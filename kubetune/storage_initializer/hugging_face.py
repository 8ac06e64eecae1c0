"""The seed's import path of the Hugging Face parameter classes (they live in
`kubetune.params.hugging_face`); importing it loads none of the storage initializer's fetch code."""

from kubetune.params.hugging_face import (
    TRANSFORMER_TYPES,
    HuggingFaceDatasetParams,
    HuggingFaceModelParams,
    HuggingFaceTrainerParams,
)

__all__ = [
    "TRANSFORMER_TYPES",
    "HuggingFaceDatasetParams",
    "HuggingFaceModelParams",
    "HuggingFaceTrainerParams",
]
