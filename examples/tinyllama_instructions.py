"""Kubeflow's TinyLlama example shape: LoRA on a causal LM with instruction data.

Hub version (a machine that reaches the Hugging Face Hub):
    model_uri="hf://TinyLlama/TinyLlama-1.1B-Chat-v1.0", transformer_type=AutoModelForCausalLM
    dataset: HuggingFaceDatasetParams(repo_id="tatsu-lab/alpaca", split="train[:1000]")

Offline stand-ins used here: a randomly initialised 4-layer Llama (examples/prepare_models.py)
and examples/data/instructions.jsonl (Alpaca format: instruction, input, output). The loss is
computed on the answers only; samples are packed into full sequences.

    python examples/prepare_models.py && python examples/tinyllama_instructions.py
"""

from pathlib import Path

import transformers
from peft import LoraConfig

from kubetune import (
    HuggingFaceModelParams,
    HuggingFaceTrainerParams,
    LocalDatasetParams,
    TrainingClient,
)

EXAMPLES = Path(__file__).resolve().parent

client = TrainingClient()
client.train(
    name="tinyllama-instructions",
    model_provider_parameters=HuggingFaceModelParams(
        model_uri=str(
            EXAMPLES / "models" / "tiny-llama"
        ),  # hub: "hf://TinyLlama/TinyLlama-1.1B-Chat-v1.0"
        transformer_type=transformers.AutoModelForCausalLM,
    ),
    dataset_provider_parameters=LocalDatasetParams(
        path=str(EXAMPLES / "data" / "instructions.jsonl"),
        split="train[:320]",
        eval_split="train[320:]",
    ),
    trainer_parameters=HuggingFaceTrainerParams(
        training_parameters=transformers.TrainingArguments(
            output_dir="tinyllama",
            num_train_epochs=2,
            per_device_train_batch_size=8,
            learning_rate=2e-3,
            logging_steps=0.1,
            eval_strategy="epoch",
            save_strategy="no",
            disable_tqdm=True,
            report_to="none",
        ),
        lora_config=LoraConfig(
            r=16, lora_alpha=32, lora_dropout=0.05, target_modules=["q_proj", "v_proj"]
        ),
        max_length=128,
        packing=True,
    ),
    num_workers=1,
    num_procs_per_worker=2,
    wait=True,
    wait_timeout=1800,
)

job = client.get_job_report("tinyllama-instructions")
print(f"{job.name}: {job.status}; adapter in {job.output_dir}/model")
client.delete_job("tinyllama-instructions", keep_outputs=True)
