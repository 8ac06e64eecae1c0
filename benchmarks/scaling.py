"""Data-parallel scaling of local kubetune jobs on one machine.

Three layouts of the same job (same model, data, epochs and global batch size), each a whole
local job run by run_job.py (TrainingClient().train(..., wait=True)), interleaved round by round:

  1x1   1 worker x 1 process, per-device batch = global batch
  2x1   2 workers x 1 process (two torchrun agents, as two nodes would run), half each
  1x2   1 worker x 2 processes (one torchrun agent with two processes), half each

Reports training samples/s (samples / train_runtime) and the speed-up over 1x1. By default the
local backend shares this machine's cores among the processes (1x1 gets every core as
threads, the others one share each), so every layout uses the whole machine and the speed-up
shows what data parallelism gains over intra-op threading on the same cores; on a 2-core
machine expect little. --threads-per-process fixes the threads of every process instead (then
1x1 uses fewer cores than the others).

    python benchmarks/scaling.py --quick
    python benchmarks/scaling.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import benchlib as bl

LAYOUTS = {"1x1": (1, 1), "2x1": (2, 1), "1x2": (1, 2)}
LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": ["query", "value"]}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small model and data, 2 rounds")
    parser.add_argument("--samples", type=int, help="training samples")
    parser.add_argument("--global-batch", type=int, default=32, help="global batch size (32)")
    parser.add_argument("--rounds", type=int, help="rounds (default 2)")
    parser.add_argument(
        "--threads-per-process",
        type=int,
        help="OMP_NUM_THREADS of every training process (default: the backend's share of the cores)",
    )
    parser.add_argument("--output", type=Path, help="results JSON")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    rounds = args.rounds or 2
    samples = args.samples or (768 if args.quick else 1536)
    hidden, layers = (128, 2) if args.quick else (256, 4)
    max_length = 256
    output = args.output or bl.RESULTS / ("scaling-quick.json" if args.quick else "scaling.json")
    scratch = Path(tempfile.mkdtemp(prefix="kubetune-scaling-"))
    started = time.time()
    env = bl.bench_env(1)
    # The local backend decides the threads of the training processes unless asked otherwise.
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name)

    words = bl.filler_words(2000)
    model = bl.build_encoder(scratch / "encoder", words, hidden, layers)
    rows = bl.review_rows(samples, words, 6, max_length - 2, 40.0)
    dataset = bl.save_dataset(scratch / "reviews", rows)
    threads = args.threads_per_process
    description = (
        f"BERT-style encoder ({model.parameters / 1e6:.1f}M parameters, hidden {hidden}, "
        f"{layers} layers), LoRA r=8, {samples} reviews of 8..{max_length} tokens, global batch "
        f"{args.global_batch}, 1 epoch; threads per process: "
        + (str(threads) if threads else "the local backend's share of the cores")
    )
    print(description)

    runs: list[dict[str, Any]] = []
    for round_, layout in bl.interleaved(list(LAYOUTS), rounds):
        workers, procs = LAYOUTS[layout]
        name = f"scaling-{layout.replace('x', 'by')}-{round_}"
        request = scratch / f"{name}.request.json"
        result = scratch / f"{name}.result.json"
        request.write_text(
            json.dumps(
                {
                    "home": str(scratch / "home"),
                    "name": name,
                    "model": model.path,
                    "transformer_type": "AutoModelForSequenceClassification",
                    "dataset": str(dataset),
                    "training_arguments": {
                        "output_dir": name,
                        "per_device_train_batch_size": args.global_batch // (workers * procs),
                        "num_train_epochs": 1,
                        "learning_rate": 2e-4,
                        "logging_steps": 10,
                        "save_strategy": "no",
                        "eval_strategy": "no",
                        "report_to": "none",
                        "seed": bl.SEED,
                        "disable_tqdm": True,
                        "use_cpu": True,
                    },
                    "lora": LORA,
                    "max_length": max_length,
                    "num_workers": workers,
                    "num_procs_per_worker": procs,
                    "env_vars": {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
                    if threads
                    else {},
                    "timeout": 1800,
                    "result": str(result),
                }
            )
        )
        print(f"round {round_ + 1}/{rounds}: {layout} ...", end=" ", flush=True)
        command = [bl.PYTHON, str(bl.BENCHMARKS / "run_job.py"), str(request)]
        proc = bl.run_process(command, env, scratch / "logs" / f"{name}.log", 1800)
        summary = bl.read_metrics(result) or {}
        metrics = bl.read_metrics(
            Path(summary.get("output_dir") or "/nonexistent") / "metrics.json"
        )
        row: dict[str, Any] = {
            "config": layout,
            "round": round_,
            "returncode": proc.returncode,
            "wall_s": round(proc.wall_s, 2),
            "threads_per_process": threads or (summary.get("launch") or {}).get("threads"),
        }
        if proc.returncode == 0 and metrics and metrics.get("train_runtime"):
            runtime = float(metrics["train_runtime"])
            row.update(
                train_runtime_s=runtime,
                samples_per_s=samples / runtime,
                steps=metrics.get("global_step"),
                train_loss=metrics.get("train_loss"),
            )
            print(
                f"{runtime:.1f} s training, {samples / runtime:.1f} samples/s, {row['steps']} steps"
            )
        else:
            row["error"] = proc.tail(12)
            print(f"FAILED (exit {proc.returncode})\n{proc.tail(12)}")
        runs.append(row)

    configs = {}
    for layout in LAYOUTS:
        ok = [r for r in runs if r["config"] == layout and "error" not in r]
        speedups = bl.paired_ratios(runs, layout, "1x1", "samples_per_s")
        configs[layout] = {
            "workers": LAYOUTS[layout][0],
            "procs_per_worker": LAYOUTS[layout][1],
            "per_device_batch": args.global_batch // (LAYOUTS[layout][0] * LAYOUTS[layout][1]),
            "threads_per_process": ok[0]["threads_per_process"] if ok else None,
            "samples_per_s": bl.median(r["samples_per_s"] for r in ok),
            "train_runtime_s": bl.median(r["train_runtime_s"] for r in ok),
            "wall_s": bl.median(r["wall_s"] for r in ok),
            "train_loss": bl.median(r.get("train_loss") for r in ok),
            "speedup": bl.median(speedups),
            "speedup_per_round": [round(v, 3) for v in speedups],
        }
    results = {
        "command": " ".join(["python", "benchmarks/scaling.py", *sys.argv[1:]]),
        "quick": args.quick,
        "description": description,
        "machine": bl.machine(),
        "configs": configs,
        "runs": runs,
        "seconds": round(time.time() - started, 1),
    }
    return bl.finish(
        output,
        results,
        (
            "Data-parallel layouts, same global batch (median samples/s)",
            {"layout (workers x processes)": {k: c["samples_per_s"] for k, c in configs.items()}},
            "samples/s",
        ),
        scratch,
        args.keep,
        report(results),
    )


def report(results: dict[str, Any]) -> str:
    rows = [
        [
            layout,
            f"{c['workers']} x {c['procs_per_worker']}",
            str(c["per_device_batch"]),
            bl.fmt(c["threads_per_process"]),
            bl.fmt(c["samples_per_s"], ".1f"),
            bl.fmt(c["train_runtime_s"], ".1f"),
            bl.fmt(c["wall_s"], ".1f"),
            bl.fmt(c["train_loss"], ".3f"),
            bl.fmt(c["speedup"], ".2f") + ("x" if c["speedup"] is not None else ""),
        ]
        for layout, c in results["configs"].items()
    ]
    headers = [
        "layout",
        "workers x procs",
        "batch/device",
        "threads/proc",
        "samples/s",
        "train s",
        "job wall s",
        "train loss",
        "speed-up vs 1x1",
    ]
    return f"{results['description']}\n\n{bl.table(rows, headers)}\n"


if __name__ == "__main__":
    sys.exit(main())
