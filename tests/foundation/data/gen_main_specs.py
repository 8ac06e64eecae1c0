"""Writes job specs with the code before the typed contract (main at 5b96571), for
test_spec.py: `PYTHONPATH=<that checkout> python gen_main_specs.py tests/foundation/data`."""

import sys
from pathlib import Path

import transformers
from kubetune.training.spec import build_job_spec
from peft import LoraConfig

from kubetune.storage_initializer.hugging_face import (
    HuggingFaceDatasetParams,
    HuggingFaceModelParams,
    HuggingFaceTrainerParams,
)
from kubetune.storage_initializer.local import LocalDatasetParams
from kubetune.storage_initializer.s3 import S3DatasetParams
from kubetune.training.functions import function_job_spec

out = Path(sys.argv[1])
specs = {}
for kind, dataset in {
    "hf": HuggingFaceDatasetParams(
        "yelp_review_full", split="train[:100]", eval_split="test[:20]", access_token="hf_x" * 3
    ),
    "s3": S3DatasetParams(
        endpoint_url="http://127.0.0.1:9000",
        bucket_name="data-bucket",
        file_key="train.csv",
        region_name="eu-west-1",
        access_key="AK" * 5,
        secret_key="SK" * 10,
        split="train[:90%]",
        eval_split="train[90%:]",
    ),
    "local": LocalDatasetParams("/data/train.csv", eval_split="train[:10]"),
}.items():
    spec, _ = build_job_spec(
        name=f"main-{kind}",
        namespace="team-a",
        num_workers=2,
        num_procs_per_worker="auto" if kind == "local" else 2,
        resources_per_worker={"cpu": 2, "memory": "4Gi", "gpu": 1},
        model_provider_parameters=HuggingFaceModelParams(
            "hf://org/model@v1", "AutoModelForSequenceClassification", num_labels=5
        ),
        dataset_provider_parameters=dataset,
        trainer_parameters=HuggingFaceTrainerParams(
            transformers.TrainingArguments(
                output_dir="out",
                learning_rate=3e-5,
                eval_strategy="steps",
                eval_steps=5,
                logging_steps=0.1,
                report_to=[],
                resume_from_checkpoint="checkpoint-5",
            ),
            LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"]),
            max_length=128,
            columns={"text": "review"},
            merge_adapter=True,
            length_grouping=False,
        ),
        storage_config={"size": "20Gi", "storage_class": "fast"},
        env_vars={"A": "1"},
        init_env_vars={"B": "2"},
        labels={"team": "a"},
        annotations={"note": "x"},
        queue_name="q",
        max_restarts=5,
        kubernetes={
            "env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            "resources": {"limits": {"cpu": "2"}},
        },
    )
    specs[kind] = spec


def train(parameters):
    print(parameters)


specs["function"] = function_job_spec(
    name="main-function",
    namespace="default",
    train_func=train,
    parameters={"lr": 0.1},
    base_image=None,
    num_workers=2,
    num_procs_per_worker=None,
    resources_per_worker={"cpu": 1},
    packages_to_install=["packaging"],
    pip_index_url="https://pypi.org/simple",
    env_vars={"X": "y"},
    kubernetes={},
    labels=None,
    annotations=None,
)
for kind, spec in specs.items():
    (out / f"main-spec-{kind}.json").write_text(spec.to_json() + "\n")
print("ok", sorted(specs))
