"""The seed's four "Example Usage" blocks run unchanged once `kubeflow.` becomes `kubetune.`.

The blocks are copied verbatim from shared/seed/fine-tuning-api.md (kept here so the test runs
where shared/ is absent); a second test checks the copies still match the seed when it is there.
"""

from __future__ import annotations

import re

import pytest

SEED_BLOCKS = {
    "HuggingFaceModelParams": """
from transformers import AutoModelForSequenceClassification
from kubeflow.storage_initializer.hugging_face import HuggingFaceModelParams

params = HuggingFaceModelParams(
    model_uri="bert-base-uncased",
    transformer_type=AutoModelForSequenceClassification,
    access_token="huggingface_access_token",
    num_labels=2  # For binary classification
)
""",
    "HuggingFaceDatasetParams": """
from kubeflow.storage_initializer.hugging_face import HuggingFaceDatasetParams

dataset_params = HuggingFaceDatasetParams(
    repo_id="imdb",            # Public dataset repository ID on Hugging Face
    split="train",             # Dataset split to load
    access_token=None          # Not needed for public datasets
)
""",
    "HuggingFaceTrainerParams": """
from transformers import TrainingArguments
from peft import LoraConfig
from kubeflow.storage_initializer.hugging_face import HuggingFaceTrainerParams

trainer_params = HuggingFaceTrainerParams(
    training_parameters=TrainingArguments(
        output_dir="results",
        learning_rate=2e-5,
        num_train_epochs=3,
        per_device_train_batch_size=8,
    ),
    lora_config=LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.1,
        bias="none",
    ),
)
""",
    "S3DatasetParams": """
from kubeflow.storage_initializer.s3 import S3DatasetParams

s3_params = S3DatasetParams(
    endpoint_url="https://s3.amazonaws.com",
    bucket_name="my-dataset-bucket",
    file_key="datasets/train.csv",
    region_name="us-west-2",
    access_key="YOUR_ACCESS_KEY",
    secret_key="YOUR_SECRET_KEY"
)
""",
}


def _kubetune(block: str) -> str:
    return block.replace("kubeflow.", "kubetune.")


@pytest.mark.parametrize("name", sorted(SEED_BLOCKS))
def test_seed_block_runs_with_kubetune_prefix(name: str) -> None:
    namespace: dict = {}
    exec(compile(_kubetune(SEED_BLOCKS[name]), f"<seed {name}>", "exec"), namespace)
    built = [v for v in namespace.values() if type(v).__name__ == name]
    assert len(built) == 1, f"the {name} block built no {name}"


def test_seed_blocks_match_the_seed(shared_dir) -> None:
    seed = (shared_dir / "seed" / "fine-tuning-api.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", seed, flags=re.S)
    for name, block in SEED_BLOCKS.items():
        assert any(block.strip() == b.strip() for b in blocks), (
            f"the copy of the {name} block differs from the seed"
        )


def test_seed_train_example_builds_a_job_spec() -> None:
    """The seed's full train() example, up to the point where a backend takes over."""
    import transformers
    from peft import LoraConfig

    from kubetune.params.job import build_job_spec
    from kubetune.storage_initializer.hugging_face import (
        HuggingFaceDatasetParams,
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )

    spec, secrets = build_job_spec(
        name="fine-tune-bert",
        model_provider_parameters=HuggingFaceModelParams(
            model_uri="hf://google-bert/bert-base-cased",
            transformer_type=transformers.AutoModelForSequenceClassification,
        ),
        dataset_provider_parameters=HuggingFaceDatasetParams(
            repo_id="yelp_review_full", split="train[:3000]"
        ),
        trainer_parameters=HuggingFaceTrainerParams(
            training_parameters=transformers.TrainingArguments(
                output_dir="test_trainer",
                save_strategy="no",
                eval_strategy="no",
                do_eval=False,
                disable_tqdm=True,
                log_level="info",
            ),
            lora_config=LoraConfig(r=8, lora_alpha=8, lora_dropout=0.1, bias="none"),
        ),
        num_workers=4,
        num_procs_per_worker=2,
        resources_per_worker={"gpu": 2, "cpu": 5, "memory": "10G"},
    )
    assert secrets == {}
    assert spec.model.uri == "hf://google-bert/bert-base-cased"
    assert spec.to_dict()["dataset"] == {
        "kind": "hf",
        "repo_id": "yelp_review_full",
        "split": "train[:3000]",
        "name": None,
        "revision": None,
        "eval_split": None,
    }
    assert spec.trainer.training_arguments["save_strategy"] == "no"
    assert spec.storage.access_modes == ["ReadWriteMany"]
