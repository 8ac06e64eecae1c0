"""What a hyperparameter search costs on this machine, against the training it runs and against
the same trials as separate jobs.

Three runs on the same model, data and 8 configurations (learning_rate and LoRA r):

  experiment, 1 at once   KatibClient().tune(..., max_trial_count=8, parallel_trial_count=1)
  experiment, 2 at once   the same with parallel_trial_count=2 (each trial 1 CPU core)
  8 separate jobs         the 8 configurations of the first run as 8 TrainingClient().train(...,
                          wait=True) calls, one after another

Each trial or job trains `--max-steps` steps on a dataset of `--samples` synthetic reviews, with
1 CPU core. Prints the wall times, the sum of the trials' train_runtime (the Trainer's own
training time), wall / sum, the speed-up of the experiment over the separate jobs, and where each
trial's other seconds go (from the jobs' status times, whole seconds): the storage initializer,
the worker process before and after training (start, imports, model load, preprocessing,
saving), the gap between trials. Targets: wall / sum of train_runtime <= 1.5 with one trial at
once; the experiment >= 1.5x faster than the separate jobs.

    python benchmarks/tune.py                 # ~30 min on 2 cores
    python benchmarks/tune.py --quick         # smaller data and trials, ~6 min
"""

from __future__ import annotations

import argparse
import csv
import itertools
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import benchlib as bl

TRIALS = 8
NAME = "bench-tune"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller data and trials")
    parser.add_argument(
        "--samples", type=int, help="rows of the dataset (default 250000; quick 60000)"
    )
    parser.add_argument(
        "--max-steps", type=int, help="training steps per trial (default 800; quick 40)"
    )
    parser.add_argument("--output", type=Path, help="results JSON")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    return parser.parse_args()


def trainer_parameters(max_steps: int, learning_rate: Any, r: Any) -> Any:
    from peft import LoraConfig
    from transformers import TrainingArguments

    from kubetune.storage_initializer.hugging_face import HuggingFaceTrainerParams

    return HuggingFaceTrainerParams(
        training_parameters=TrainingArguments(
            output_dir="out",
            per_device_train_batch_size=16,
            max_steps=max_steps,
            learning_rate=learning_rate,
            logging_steps=20,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=bl.SEED,
        ),
        lora_config=LoraConfig(
            r=r, lora_alpha=16, lora_dropout=0.0, target_modules=["query", "value"]
        ),
        max_length=256,
    )


def params(model: str, data: Path) -> dict[str, Any]:
    from transformers import AutoModelForSequenceClassification

    from kubetune.storage_initializer.hugging_face import HuggingFaceModelParams
    from kubetune.storage_initializer.local import LocalDatasetParams

    return {
        "model_provider_parameters": HuggingFaceModelParams(
            model_uri=model, transformer_type=AutoModelForSequenceClassification
        ),
        "dataset_provider_parameters": LocalDatasetParams(path=str(data)),
    }


def _epoch(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def job_phases(job: Path) -> dict[str, float | None]:
    """A finished job's phases from its status and metrics.json."""
    from kubetune.contract import layout
    from kubetune.contract.layout import OutputDir
    from kubetune.training.backends.local.jobdir import JobDir

    status = JobDir(job).read_status()
    assert status is not None, f"{job}: no status"
    metrics = layout.read_json(OutputDir(Path(status.output_dir)).metrics)
    assert isinstance(metrics, dict), f"{job}: no metrics.json"
    created, started, done = (
        _epoch(stamp) for stamp in (status.creation_time, status.start_time, status.completion_time)
    )
    attempt = status.attempts[0]
    worker_start, worker_end = _epoch(attempt.start_time), _epoch(attempt.end_time)
    runtime = float(metrics["train_runtime"])
    return {
        "created": created,
        "completed": done,
        "job_s": None if created is None or done is None else done - created,
        "queue_and_initializer_s": None
        if created is None or worker_start is None
        else worker_start - created,
        "worker_s": None
        if worker_start is None or worker_end is None
        else worker_end - worker_start,
        "train_runtime_s": runtime,
        "worker_besides_training_s": None
        if worker_start is None or worker_end is None
        else worker_end - worker_start - runtime,
        "train_loss": metrics.get("train_loss"),
        "admitted_s": None if created is None or started is None else started - created,
    }


def run_experiment(
    scratch: Path, parallel: int, base: dict[str, Any], max_steps: int
) -> dict[str, Any]:
    from kubetune.katib import KatibClient, TrainerResources, search

    home = scratch / f"home-experiment-{parallel}"
    client = KatibClient(home=home)
    started = time.monotonic()
    client.tune(
        name=NAME,
        **base,
        trainer_parameters=trainer_parameters(
            max_steps, search.double(min=1e-4, max=1e-3), search.int(min=4, max=16)
        ),
        objective_metric_name="train_loss",
        objective_type="minimize",
        algorithm_name="random",
        algorithm_settings={"random_state": bl.SEED},
        max_trial_count=TRIALS,
        parallel_trial_count=parallel,
        resources_per_trial=TrainerResources(
            num_workers=1, num_procs_per_worker=1, resources_per_worker={"cpu": 1}
        ),
        retain_trials=True,
    )
    while client.get_experiment_report(NAME).status not in ("Succeeded", "Failed"):
        time.sleep(0.5)
    wall = time.monotonic() - started
    report = client.get_experiment_report(NAME)
    trials = []
    for trial in report.trials:
        phases = job_phases(home / "jobs" / "default" / trial.name)
        trials.append(
            {"name": trial.name, "status": trial.status, "values": trial.values, **phases}
        )
    with open(Path(report.outputs["results_csv"])) as f:
        table = list(csv.DictReader(f))
    return {
        "config": f"experiment, {parallel} at once",
        "status": report.status,
        "wall_s": wall,
        "trials": trials,
        "results": table,
        "initializer_log": (
            home / "experiments" / "default" / NAME / "initializer.log"
        ).read_text()[-400:],
    }


def run_separate(
    scratch: Path, base: dict[str, Any], max_steps: int, values: list[dict[str, str]]
) -> dict[str, Any]:
    from kubetune.training import TrainingClient

    home = scratch / "home-separate"
    client = TrainingClient(backend="local", home=home)
    started = time.monotonic()
    trials = []
    for i, given in enumerate(values):
        name = f"{NAME}-job-{i}"
        client.train(
            name=name,
            **base,
            trainer_parameters=trainer_parameters(
                max_steps, float(given["learning_rate"]), int(given["r"])
            ),
            resources_per_worker={"cpu": 1},
            wait=True,
            wait_timeout=3600,
        )
        trials.append(
            {"name": name, "values": given, **job_phases(home / "jobs" / "default" / name)}
        )
    return {
        "config": f"{len(values)} separate jobs",
        "wall_s": time.monotonic() - started,
        "trials": trials,
    }


def summary(run: dict[str, Any]) -> dict[str, Any]:
    trials = run["trials"]
    train = sum(t["train_runtime_s"] for t in trials)
    # Between one trial's end and the next one's start: meaningful one trial at a time.
    sequential = "1 at once" in run["config"] or "separate" in run["config"]
    gaps = [
        b["created"] - a["completed"]
        for a, b in itertools.pairwise(trials)
        if sequential and a["completed"] is not None and b["created"] is not None
    ]

    def mean(key: str) -> float | None:
        values = [t[key] for t in trials if t.get(key) is not None]
        return statistics.mean(values) if values else None

    return {
        "config": run["config"],
        "wall_s": run["wall_s"],
        "train_runtime_sum_s": train,
        "wall_over_train": run["wall_s"] / train,
        "per_trial": {
            "job_s": mean("job_s"),
            "queue_and_initializer_s": mean("queue_and_initializer_s"),
            "worker_s": mean("worker_s"),
            "train_runtime_s": mean("train_runtime_s"),
            "worker_besides_training_s": mean("worker_besides_training_s"),
            "gap_between_trials_s": statistics.mean(gaps) if gaps else None,
        },
    }


def report(results: dict[str, Any]) -> str:
    rows = []
    for s in results["summaries"]:
        p = s["per_trial"]
        rows.append(
            [
                s["config"],
                bl.fmt(s["wall_s"], ".1f"),
                bl.fmt(s["train_runtime_sum_s"], ".1f"),
                bl.fmt(s["wall_over_train"], ".2f"),
                bl.fmt(p["job_s"], ".1f"),
                bl.fmt(p["queue_and_initializer_s"], ".1f"),
                bl.fmt(p["worker_besides_training_s"], ".1f"),
                bl.fmt(p["train_runtime_s"], ".1f"),
                bl.fmt(p["gap_between_trials_s"], ".1f"),
            ]
        )
    text = results["description"] + "\n\n"
    text += bl.table(
        rows,
        [
            "configuration",
            "wall s",
            "sum of train_runtime s",
            "wall / train",
            "per trial: job s",
            "queue + initializer s",
            "worker besides training s",
            "train_runtime s",
            "gap between trials s",
        ],
    )
    first, _, separate = results["summaries"]
    speedup = separate["wall_s"] / first["wall_s"]
    parallel = results["summaries"][1]
    text += "\n\n" + bl.table(
        [
            [
                "experiment (1 at once) wall / sum of train_runtime",
                f"{first['wall_over_train']:.2f}",
                "<= 1.5",
                "met" if first["wall_over_train"] <= 1.5 else "not met",
            ],
            [
                "8 separate jobs / experiment (1 at once), wall",
                f"{speedup:.2f}x",
                ">= 1.5x",
                "met" if speedup >= 1.5 else "not met",
            ],
            [
                "8 separate jobs / experiment (2 at once), wall",
                f"{separate['wall_s'] / parallel['wall_s']:.2f}x",
                "",
                "",
            ],
        ],
        ["ratio", "value", "target", ""],
    )
    return text + "\n"


def main() -> int:
    args = parse_args()
    samples = args.samples or (60000 if args.quick else 250000)
    max_steps = args.max_steps or (40 if args.quick else 800)
    output = args.output or bl.RESULTS / ("tune-quick.json" if args.quick else "tune.json")
    scratch = Path(tempfile.mkdtemp(prefix="kubetune-tune-"))
    words = bl.filler_words(2000)
    model = bl.build_encoder(scratch / "encoder", words, hidden=128, layers=2)
    rows = bl.review_rows(samples, words, 6, 254, 40.0)
    data = bl.write_csv(scratch / "reviews.csv", rows)
    description = (
        f"BERT-style encoder ({model.parameters / 1e6:.1f}M parameters, hidden 128, 2 layers), "
        f"LoRA on query/value, {samples} synthetic reviews (CSV, {data.stat().st_size / 2**20:.0f} MiB), "
        f"{TRIALS} trials of {max_steps} steps of batch 16, 1 CPU core each; search: learning_rate "
        "in [1e-4, 1e-3], r in [4, 16], random"
    )
    print(description, flush=True)
    base = params(model.path, data)
    runs = []
    for parallel in (1, 2):
        print(f"experiment, {parallel} at once ...", flush=True)
        runs.append(run_experiment(scratch, parallel, base, max_steps))
        print(f"  {runs[-1]['status']} in {runs[-1]['wall_s']:.1f} s", flush=True)
    values = [t["values"] for t in runs[0]["trials"]]
    print(f"{len(values)} separate jobs ...", flush=True)
    runs.append(run_separate(scratch, base, max_steps, values))
    print(f"  done in {runs[-1]['wall_s']:.1f} s", flush=True)
    results = {
        "command": " ".join(["python", "benchmarks/tune.py", *sys.argv[1:]]),
        "quick": args.quick,
        "description": description,
        "machine": bl.machine(),
        "samples": samples,
        "max_steps": max_steps,
        "summaries": [summary(r) for r in runs],
        "runs": runs,
    }
    bl.write_json(output, results)
    if not args.keep:
        import shutil

        shutil.rmtree(scratch, ignore_errors=True)
    else:
        print(f"kept {scratch}")
    print("\n" + report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
