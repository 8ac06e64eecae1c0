"""What a whole local kubetune job costs on top of the training it runs.

Side by side, interleaved round by round, on the same model, data and hyper-parameters:

  kubetune job   a Python script calling TrainingClient().train(..., wait=True) on the local
                 backend with a LocalDatasetParams dataset and a local model folder: job
                 directory, detached supervisor, storage initializer, one torchrun agent, the
                 trainer, status polling, until the job is Succeeded.
  bare torchrun  `torchrun --standalone --nproc-per-node=1 -m kubetune.runtime` on a workspace
                 built beforehand (model folder linked, dataset saved, marker written).

Both are timed from process start to process exit. Reports the median wall times, the ratio
job / bare (target: under 1.2x for a job of about 60 seconds) and the seconds kubetune adds,
with where they go (storage initializer, the rest).

    python benchmarks/overhead.py            # a job of about 60 s, 3 rounds
    python benchmarks/overhead.py --quick    # a job of about 30 s, 2 rounds
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib as bl


def training_arguments(output_dir: str, batch_size: int) -> dict[str, Any]:
    return {
        "output_dir": output_dir,
        "per_device_train_batch_size": batch_size,
        "num_train_epochs": 1,
        "learning_rate": 2e-4,
        "logging_steps": 10,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "seed": bl.SEED,
        "disable_tqdm": True,
        "use_cpu": True,
    }


LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["query", "value"]}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a job of about 30 s, 2 rounds")
    parser.add_argument("--samples", type=int, help="training samples (sets the job's length)")
    parser.add_argument("--rounds", type=int, help="rounds (default 2 quick, 3 full)")
    parser.add_argument(
        "--threads",
        type=int,
        help="threads of the training process (default: 1 with --quick, else all cores)",
    )
    parser.add_argument("--output", type=Path, help="results JSON")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    return parser.parse_args()


def main() -> int:
    args = parse_args()

    threads = args.threads or (1 if args.quick else len(os.sched_getaffinity(0)))
    rounds = args.rounds or (2 if args.quick else 3)
    samples = args.samples or (400 if args.quick else 1800)
    hidden, layers = 128, 2
    max_length, batch_size = 256, 16
    output = args.output or bl.RESULTS / ("overhead-quick.json" if args.quick else "overhead.json")
    scratch = Path(tempfile.mkdtemp(prefix="kubetune-overhead-"))
    started = time.time()
    env = bl.bench_env(threads)

    words = bl.filler_words(2000)
    model = bl.build_encoder(scratch / "encoder", words, hidden, layers)
    rows = bl.review_rows(samples, words, 6, max_length - 2, 40.0)
    dataset = bl.save_dataset(scratch / "reviews", rows)
    ws = bl.make_workspace(scratch / "bare-ws", model.path, rows)
    description = (
        f"BERT-style encoder ({model.parameters / 1e6:.1f}M parameters, hidden {hidden}, "
        f"{layers} layers), LoRA r=8, {samples} reviews, batch {batch_size}, 1 epoch, "
        f"1 worker x 1 process, {threads} thread(s)"
    )
    print(description)

    runs: list[dict[str, Any]] = []
    timeout = 1800.0
    for round_, name in bl.interleaved(["kubetune-job", "bare-torchrun"], rounds):
        print(f"round {round_ + 1}/{rounds}: {name} ...", end=" ", flush=True)
        row: dict[str, Any] = {"config": name, "round": round_}
        if name == "kubetune-job":
            job_name = f"overhead-{round_}"
            request = scratch / f"{job_name}.request.json"
            result = scratch / f"{job_name}.result.json"
            request.write_text(
                json.dumps(
                    {
                        "home": str(scratch / "home"),
                        "name": job_name,
                        "model": model.path,
                        "dataset": str(dataset),
                        "training_arguments": training_arguments(job_name, batch_size),
                        "transformer_type": "AutoModelForSequenceClassification",
                        "lora": LORA,
                        "max_length": max_length,
                        "env_vars": {
                            "OMP_NUM_THREADS": str(threads),
                            "MKL_NUM_THREADS": str(threads),
                        },
                        "timeout": timeout,
                        "result": str(result),
                    }
                )
            )
            command = [bl.PYTHON, str(bl.BENCHMARKS / "run_job.py"), str(request)]
            proc = bl.run_process(command, env, scratch / "logs" / f"{job_name}.log", timeout)
            summary = bl.read_metrics(result) or {}
            metrics_file = Path(summary.get("output_dir") or "/nonexistent") / "metrics.json"
            row["initializer_s"] = summary.get("initializer_s")
            row["import_s"] = summary.get("import_s")
            row["phases"] = summary.get("phases")
        else:
            out_name = f"bare-{round_}"
            spec = scratch / f"{out_name}.spec.json"
            spec.write_text(
                bl.job_spec_json(
                    name=out_name,
                    model_dir=model.path,
                    transformer_type="AutoModelForSequenceClassification",
                    dataset_path=dataset,
                    training_arguments=training_arguments(out_name, batch_size),
                    lora=LORA,
                    max_length=max_length,
                )
            )
            command = [
                *(bl.PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=1"),
                *("-m", "kubetune.runtime", "--spec", str(spec), "--workspace", str(ws)),
            ]
            proc = bl.run_process(command, env, scratch / "logs" / f"{out_name}.log", timeout)
            metrics_file = ws / "outputs" / out_name / "metrics.json"
        metrics = bl.read_metrics(metrics_file) if proc.returncode == 0 else None
        row.update(wall_s=round(proc.wall_s, 2), returncode=proc.returncode)
        if metrics:
            row["train_runtime_s"] = metrics.get("train_runtime")
            print(f"{proc.wall_s:.1f} s ({row['train_runtime_s']:.1f} s training)")
        else:
            row["error"] = proc.tail(12)
            print(f"FAILED (exit {proc.returncode})\n{proc.tail(12)}")
        runs.append(row)

    ratios = bl.paired_ratios(runs, "kubetune-job", "bare-torchrun", "wall_s")
    added = [
        a["wall_s"] - b["wall_s"]
        for a in runs
        for b in runs
        if a["config"] == "kubetune-job"
        and b["config"] == "bare-torchrun"
        and a["round"] == b["round"]
        and "error" not in a
        and "error" not in b
    ]
    configs = {
        name: {
            key: bl.median(r.get(key) for r in runs if r["config"] == name and "error" not in r)
            for key in ("wall_s", "train_runtime_s", "initializer_s")
        }
        for name in ("kubetune-job", "bare-torchrun")
    }
    ratio = bl.median(ratios)
    results = {
        "command": " ".join(["python", "benchmarks/overhead.py", *sys.argv[1:]]),
        "quick": args.quick,
        "description": description,
        "machine": bl.machine(),
        "configs": configs,
        "ratio": {
            "median": ratio,
            "per_round": [round(v, 3) for v in ratios],
            "target": 1.2,
            "met": None if ratio is None else ratio < 1.2,
        },
        "job_phases": {
            key: bl.median(
                (r.get("phases") or {}).get(key)
                for r in runs
                if r["config"] == "kubetune-job" and "error" not in r
            )
            for key in (
                "until_initializer_s",
                "initializer_s",
                "workers_s",
                "after_workers_s",
            )
        }
        | {
            "import_s": bl.median(
                r.get("import_s")
                for r in runs
                if r["config"] == "kubetune-job" and "error" not in r
            )
        },
        "added_seconds": {"median": bl.median(added), "per_round": [round(v, 2) for v in added]},
        "runs": runs,
        "seconds": round(time.time() - started, 1),
    }
    return bl.finish(
        output,
        results,
        (
            "Whole local job against bare torchrun (median wall seconds)",
            {"same training work": {k: c["wall_s"] for k, c in configs.items()}},
            "seconds",
        ),
        scratch,
        args.keep,
        report(results),
    )


def report(results: dict[str, Any]) -> str:
    """The result as Markdown tables."""
    rows = [
        [
            name,
            bl.fmt(c["wall_s"], ".1f"),
            bl.fmt(c["train_runtime_s"], ".1f"),
            bl.fmt(c["initializer_s"], ".1f"),
        ]
        for name, c in results["configs"].items()
    ]
    first = bl.table(rows, ["configuration", "wall s", "of which training s", "initializer s"])
    r, added = results["ratio"], results["added_seconds"]
    second = bl.table(
        [
            [
                "kubetune job / bare torchrun (wall)",
                bl.fmt(r["median"], ".2f") + "x",
                ", ".join(f"{v:.2f}" for v in r["per_round"]),
                bl.fmt(added["median"], ".1f"),
                "< 1.2x",
                {True: "met", False: "NOT met", None: "-"}[r["met"]],
            ]
        ],
        ["ratio", "median", "per round", "seconds added", "target", ""],
    )
    phases = results.get("job_phases") or {}
    third = ""
    if phases.get("workers_s") is not None:
        third = (
            "\n"
            + bl.table(
                [
                    [
                        bl.fmt(phases.get("import_s"), ".1f"),
                        bl.fmt(phases.get("until_initializer_s"), ".1f"),
                        bl.fmt(phases.get("initializer_s"), ".1f"),
                        bl.fmt(phases.get("workers_s"), ".1f"),
                        bl.fmt(phases.get("after_workers_s"), ".1f"),
                        bl.fmt(results["configs"]["bare-torchrun"]["wall_s"], ".1f"),
                    ]
                ],
                [
                    "job: script imports s",
                    "train() to initializer s",
                    "initializer s",
                    "torchrun agents s",
                    "agents to Succeeded s",
                    "bare torchrun s",
                ],
            )
            + "\n\nPhases are medians from the job's status times (whole seconds).\n"
        )
    return f"{results['description']}\n\n{first}\n\n{second}\n{third}"


if __name__ == "__main__":
    sys.exit(main())
