"""Training throughput of kubetune's trainer, side by side with plain Hugging Face Trainer + PEFT.

Every configuration runs in its own process, on the same data, with the same hyper-parameters,
the same number of threads and one epoch each; configurations are interleaved round by round
(the order rotated each round) and ratios are taken within a round, then the median over
rounds, because shared machines are noisy.

Suites:
  classification  a BERT-style encoder with LoRA on variable-length reviews (8..256 tokens, most
                  short): kubetune, the dynamic-padding baseline, the pad-to-max_length baseline.
  causal-lm       a Llama-style decoder with LoRA on variable-length documents: kubetune packed,
                  kubetune unpacked, the dynamic-padding baseline (and pad-to-max_length in a
                  full run).
  gpu             only with a CUDA GPU (or --gpu): a ~0.5B-parameter decoder, bf16, full
                  fine-tuning, sequence length 1024: kubetune packed and unpacked against the
                  dynamic-padding baseline, with model FLOPs utilisation.

Per run: samples/s, non-padding tokens/s (the same token count for every configuration of a
suite), peak RSS of the process, and FLOPs utilisation: 6 x matmul parameters x tokens/s over a
measured matmul peak (CPU: float32 torch.matmul; GPU: the card's dense bf16 peak).

    python benchmarks/throughput.py --quick          # small models, 2 rounds, a few minutes
    python benchmarks/throughput.py                  # the full run (about 45 minutes on 2 cores)
    python benchmarks/throughput.py --gpu            # add the GPU suite (needs CUDA)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import benchlib as bl

SUITES = ("classification", "causal-lm", "gpu")
# Every training process runs under timed.py, which times Trainer.train in wall and CPU seconds.
TIMED = [bl.PYTHON, str(bl.BENCHMARKS / "timed.py")]
KUBETUNE = [*TIMED, "-m", "kubetune.runtime"]
# Dense bf16 peak FLOP/s by GPU name (vendor data sheets, without sparsity).
GPU_PEAK_BF16 = {
    "H200": 989e12,
    "H100": 989e12,
    "GH200": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "L4": 121e12,
    "A10": 125e12,
}


@dataclass
class Scale:
    """How big a run is."""

    rounds: int
    encoder: dict[str, int]
    decoder: dict[str, int]
    classification_samples: int
    lm_samples: int
    batch_size: int = 16
    max_length: int = 256
    median_words: float = 40.0
    vocabulary: int = 2000
    timeout: float = 900.0


QUICK = Scale(
    rounds=2,
    encoder={"hidden": 128, "layers": 2},
    decoder={"hidden": 128, "layers": 2},
    classification_samples=512,
    lm_samples=512,
    timeout=300.0,
)
FULL = Scale(
    rounds=3,
    encoder={"hidden": 256, "layers": 4},
    decoder={"hidden": 256, "layers": 4},
    classification_samples=1200,
    lm_samples=1000,
)


@dataclass
class Config:
    """One benchmarked configuration: the command that trains, and where it leaves its metrics."""

    name: str
    command: list[str]
    metrics_file: Path
    clean: Path | None = None  # folder removed before each run (kubetune's output directory)


@dataclass
class Ratio:
    """A ratio the suite reports, with its target (None: for information)."""

    label: str
    numerator: str
    denominator: str
    target: float | None
    metric: str = "tokens_per_s"


@dataclass
class Suite:
    name: str
    description: str
    model: bl.ModelInfo
    samples: int
    tokens: int
    configs: list[Config]
    ratios: list[Ratio]
    peak_flops: float
    peak_source: str
    env: dict[str, str]
    runs: list[dict[str, Any]] = field(default_factory=list)


def classification_ratios() -> list[Ratio]:
    return [
        Ratio("kubetune / HF dynamic padding", "kubetune", "hf-dynamic-padding", 1.0),
        Ratio("kubetune / HF pad to max_length", "kubetune", "hf-max-length", 1.5),
        Ratio(
            "kubetune random order / HF dynamic padding",
            "kubetune-random-order",
            "hf-dynamic-padding",
            None,
        ),
    ]


def causal_ratios(with_max_length: bool) -> list[Ratio]:
    """Packing's target is against unpacked batches in plain shuffled order; against kubetune's
    default length-grouped order, which already removes most padding, it is for information."""
    ratios = [
        Ratio(
            "packed / unpacked, random order (kubetune)",
            "kubetune-packed",
            "kubetune-unpacked-random-order",
            1.5,
        ),
        Ratio(
            "packed / unpacked, length-grouped (kubetune)",
            "kubetune-packed",
            "kubetune-unpacked",
            None,
        ),
        Ratio(
            "kubetune unpacked / HF dynamic padding", "kubetune-unpacked", "hf-dynamic-padding", 1.0
        ),
        Ratio(
            "kubetune packed / HF dynamic padding", "kubetune-packed", "hf-dynamic-padding", None
        ),
        Ratio(
            "kubetune unpacked random order / HF dynamic padding",
            "kubetune-unpacked-random-order",
            "hf-dynamic-padding",
            None,
        ),
    ]
    if with_max_length:
        ratios.append(
            Ratio(
                "kubetune unpacked / HF pad to max_length",
                "kubetune-unpacked",
                "hf-max-length",
                1.5,
            )
        )
    return ratios


def training_arguments(output_dir: str, scale: Scale, **extra: Any) -> dict[str, Any]:
    """The hyper-parameters every configuration of a suite shares (TrainingArguments keywords)."""
    return {
        "output_dir": output_dir,
        "per_device_train_batch_size": scale.batch_size,
        "num_train_epochs": 1,
        "learning_rate": 2e-4,
        "logging_steps": 10,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "seed": bl.SEED,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        **extra,
    }


def lora_settings(kind: str) -> dict[str, Any]:
    targets = ["query", "value"] if kind == "encoder" else ["q_proj", "v_proj"]
    return {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": targets}


def baseline_command(
    script: str,
    model: bl.ModelInfo,
    dataset: Path,
    task: str,
    max_length: int,
    args: dict[str, Any],
    lora: dict[str, Any] | None,
    metrics: Path,
) -> list[str]:
    return [
        *TIMED,
        str(bl.BASELINES / script),
        "--model",
        model.path,
        "--dataset",
        str(dataset),
        "--task",
        task,
        "--max-length",
        str(max_length),
        "--training-args",
        json.dumps(args),
        "--lora",
        json.dumps(lora),
        "--metrics-out",
        str(metrics),
    ]


def kubetune_config(
    name: str,
    root: Path,
    ws: Path,
    model: bl.ModelInfo,
    transformer_type: str,
    args: dict[str, Any],
    lora: dict[str, Any] | None,
    max_length: int,
    packing: bool,
    length_grouping: bool = True,
) -> Config:
    """The trainer run alone (`python -m kubetune.runtime`) on a pre-built workspace."""
    from kubetune.contract import layout

    spec = root / f"{name}.spec.json"
    spec.write_text(
        bl.job_spec_json(
            name=name,
            model_dir=model.path,
            transformer_type=transformer_type,
            dataset_path=ws / layout.DATASET_DIR,
            training_arguments={**args, "output_dir": name},
            lora=lora,
            max_length=max_length,
            packing=packing,
            length_grouping=length_grouping,
        )
    )
    out = layout.output_path(ws, name)
    command = [*KUBETUNE, "--spec", str(spec), "--workspace", str(ws), "--marker-timeout", "5"]
    return Config(name, command, out / "metrics.json", clean=out)


def classification_suite(root: Path, scale: Scale, threads: int, peak: float) -> Suite:
    """Encoder + LoRA on reviews of 8..256 tokens: kubetune vs both padding baselines."""
    words = bl.filler_words(scale.vocabulary)
    model = bl.build_encoder(root / "encoder", words, **scale.encoder)
    rows = bl.review_rows(
        scale.classification_samples, words, 6, scale.max_length - 2, scale.median_words
    )
    data = bl.save_dataset(root / "reviews", rows)
    ws = bl.make_workspace(root / "reviews-ws", model.path, rows)
    tokens = sum(bl.token_counts(model.path, rows["text"], scale.max_length, eos=False))
    args = training_arguments("", scale, use_cpu=True)
    lora = lora_settings("encoder")
    # kubetune groups samples of similar length by default; "random order" is kubetune with
    # the baselines' plain shuffle (length_grouping=False), to show what the grouping adds.
    configs = [
        kubetune_config(
            name,
            root,
            ws,
            model,
            "AutoModelForSequenceClassification",
            args,
            lora,
            scale.max_length,
            False,
            length_grouping=grouping,
        )
        for name, grouping in (("kubetune", True), ("kubetune-random-order", False))
    ]
    for name, script in (
        ("hf-dynamic-padding", "pad_dynamic.py"),
        ("hf-max-length", "pad_max_length.py"),
    ):
        metrics = root / f"{name}.metrics.json"
        configs.append(
            Config(
                name,
                baseline_command(
                    script,
                    model,
                    data,
                    "seq-cls",
                    scale.max_length,
                    {**args, "output_dir": str(root / name)},
                    lora,
                    metrics,
                ),
                metrics,
            )
        )
    return Suite(
        name="classification",
        description=f"BERT-style encoder ({model.parameters / 1e6:.1f}M parameters, hidden "
        f"{scale.encoder['hidden']}, {scale.encoder['layers']} layers), LoRA r=8, "
        f"{scale.classification_samples} reviews of 8..{scale.max_length} tokens "
        f"(mean {tokens / scale.classification_samples:.0f}), batch {scale.batch_size}, 1 epoch",
        model=model,
        samples=scale.classification_samples,
        tokens=tokens,
        configs=configs,
        ratios=classification_ratios(),
        peak_flops=peak,
        peak_source="measured float32 matmul",
        env=bl.bench_env(threads),
    )


def causal_suite(
    root: Path, scale: Scale, threads: int, peak: float, with_max_length: bool
) -> Suite:
    """Decoder + LoRA on documents of 8..256 tokens: kubetune packed and unpacked vs dynamic padding."""
    words = bl.filler_words(scale.vocabulary)
    model = bl.build_decoder(root / "decoder", words, **scale.decoder)
    rows = bl.document_rows(scale.lm_samples, words, 7, scale.max_length - 1, scale.median_words)
    data = bl.save_dataset(root / "documents", rows)
    ws = bl.make_workspace(root / "documents-ws", model.path, rows)
    tokens = sum(bl.token_counts(model.path, rows["text"], scale.max_length, eos=True))
    args = training_arguments("", scale, use_cpu=True)
    lora = lora_settings("decoder")
    configs = [
        kubetune_config(
            name,
            root,
            ws,
            model,
            "AutoModelForCausalLM",
            args,
            lora,
            scale.max_length,
            packing,
            length_grouping=grouping,
        )
        for name, packing, grouping in (
            ("kubetune-packed", True, True),
            ("kubetune-unpacked", False, True),
            ("kubetune-unpacked-random-order", False, False),
        )
    ]
    baselines = [("hf-dynamic-padding", "pad_dynamic.py")]
    if with_max_length:
        baselines.append(("hf-max-length", "pad_max_length.py"))
    for name, script in baselines:
        metrics = root / f"lm-{name}.metrics.json"
        configs.append(
            Config(
                name,
                baseline_command(
                    script,
                    model,
                    data,
                    "causal-lm",
                    scale.max_length,
                    {**args, "output_dir": str(root / f"lm-{name}")},
                    lora,
                    metrics,
                ),
                metrics,
            )
        )
    return Suite(
        name="causal-lm",
        description=f"Llama-style decoder ({model.parameters / 1e6:.1f}M parameters, hidden "
        f"{scale.decoder['hidden']}, {scale.decoder['layers']} layers), LoRA r=8, "
        f"{scale.lm_samples} documents of 8..{scale.max_length} tokens "
        f"(mean {tokens / scale.lm_samples:.0f}), max_length {scale.max_length}, "
        f"batch {scale.batch_size}, 1 epoch",
        model=model,
        samples=scale.lm_samples,
        tokens=tokens,
        configs=configs,
        ratios=causal_ratios(with_max_length),
        peak_flops=peak,
        peak_source="measured float32 matmul",
        env=bl.bench_env(threads),
    )


def gpu_peak() -> tuple[float, str]:
    """The GPU's dense bf16 peak FLOP/s from its data sheet, else a measured bf16 matmul."""
    import torch

    name = torch.cuda.get_device_name(0)
    for key, flops in GPU_PEAK_BF16.items():
        if key in name:
            return flops, f"{name} data sheet dense bf16 ({flops / 1e12:.0f} TFLOP/s)"
    measured = bl.matmul_peak_flops(1, size=8192, device="cuda", dtype="bfloat16")
    return measured, f"{name} measured bf16 matmul ({measured / 1e12:.0f} TFLOP/s)"


def gpu_suite(root: Path, threads: int, smoke: bool, documents: int) -> Suite:
    """A ~0.5B decoder, bf16, full fine-tuning, sequence length 1024 (CUDA).

    `smoke` runs the same steps with a tiny model on the CPU in float32, to check the plumbing.
    """
    max_length = 1024
    words = bl.filler_words(2000)
    if smoke:
        shape: dict[str, Any] = {"hidden": 64, "layers": 2}
        documents = min(documents, 64)
        precision: dict[str, Any] = {"use_cpu": True}
        peak = bl.matmul_peak_flops(threads)
        peak_source = "measured float32 matmul (CPU smoke run)"
    else:
        # hidden 1024, 24 layers, MLP 4608, 32k vocabulary: about 0.47B parameters.
        shape = {"hidden": 1024, "layers": 24, "intermediate": 4608, "vocab_size": 32000}
        precision = {"bf16": True}
        peak, peak_source = gpu_peak()
    model = bl.build_decoder(root / "gpu-decoder", words, max_positions=max_length, **shape)
    rows = bl.document_rows(documents, words, 32, max_length - 1, 300.0)
    data = bl.save_dataset(root / "gpu-documents", rows)
    ws = bl.make_workspace(root / "gpu-documents-ws", model.path, rows)
    tokens = sum(bl.token_counts(model.path, rows["text"], max_length, eos=True))
    scale = Scale(
        rounds=0, encoder={}, decoder={}, classification_samples=0, lm_samples=0, batch_size=8
    )
    args = training_arguments("", scale, learning_rate=5e-5, **precision)
    configs = [
        kubetune_config(
            name, root, ws, model, "AutoModelForCausalLM", args, None, max_length, packing
        )
        for name, packing in (("kubetune-packed", True), ("kubetune-unpacked", False))
    ]
    metrics = root / "gpu-hf-dynamic-padding.metrics.json"
    configs.append(
        Config(
            "hf-dynamic-padding",
            baseline_command(
                "pad_dynamic.py",
                model,
                data,
                "causal-lm",
                max_length,
                {**args, "output_dir": str(root / "gpu-hf")},
                None,
                metrics,
            ),
            metrics,
        )
    )
    return Suite(
        name="gpu",
        description=f"{'SMOKE RUN on CPU, tiny model: ' if smoke else ''}Llama-style decoder "
        f"({model.parameters / 1e9:.2f}B parameters), full fine-tuning, "
        f"{'float32' if smoke else 'bf16'}, {documents} documents of 32..{max_length} tokens "
        f"(mean {tokens / documents:.0f}), max_length {max_length}, batch 8, 1 epoch",
        model=model,
        samples=documents,
        tokens=tokens,
        configs=configs,
        # The GPU suite has no random-order configuration.
        ratios=[
            r
            for r in causal_ratios(with_max_length=False)
            if "random-order" not in r.numerator + r.denominator
        ],
        peak_flops=peak,
        peak_source=peak_source,
        env=bl.bench_env(threads),
    )


def run_suite(suite: Suite, rounds: int, logs: Path, timeout: float) -> None:
    """Runs every configuration `rounds` times, interleaved, and records one row per run."""
    names = [c.name for c in suite.configs]
    by_name = {c.name: c for c in suite.configs}
    for round_, name in bl.interleaved(names, rounds):
        config = by_name[name]
        if config.clean is not None:
            shutil.rmtree(config.clean, ignore_errors=True)
        config.metrics_file.unlink(missing_ok=True)
        log = logs / f"{suite.name}-{name}-r{round_}.log"
        timing_file = log.with_suffix(".timing.json")
        env = {**suite.env, "KUBETUNE_BENCH_TIMING": str(timing_file)}
        print(f"[{suite.name}] round {round_ + 1}/{rounds}: {name} ...", end=" ", flush=True)
        proc = bl.run_process(config.command, env, log, timeout)
        timing = bl.read_metrics(timing_file) or {}
        row: dict[str, Any] = {
            "config": name,
            "round": round_,
            "returncode": proc.returncode,
            "wall_s": round(proc.wall_s, 2),
            "max_rss_mb": round(proc.max_rss_mb, 1),
        }
        metrics = bl.read_metrics(config.metrics_file) if proc.returncode == 0 else None
        if metrics and metrics.get("train_runtime"):
            runtime = float(metrics["train_runtime"])
            tokens_per_s = suite.tokens / runtime
            row.update(
                train_runtime_s=runtime,
                steps=metrics.get("global_step"),
                train_loss=metrics.get("train_loss"),
                samples_per_s=suite.samples / runtime,
                tokens_per_s=tokens_per_s,
                reported_tokens_per_s=metrics.get("train_tokens_per_second"),
                train_cpu_s=timing.get("cpu_s"),
                tokens_per_cpu_s=suite.tokens / timing["cpu_s"] if timing.get("cpu_s") else None,
                flops_utilisation=6
                * suite.model.matmul_parameters
                * tokens_per_s
                / suite.peak_flops,
            )
            print(
                f"{runtime:.1f} s training ({timing.get('cpu_s', 0):.1f} CPU s), "
                f"{tokens_per_s:,.0f} tokens/s, {proc.wall_s:.0f} s in all"
            )
        else:
            row["error"] = proc.tail(12)
            print(f"FAILED (exit {proc.returncode}); log: {log}\n{proc.tail(12)}")
        suite.runs.append(row)


def summarise(suite: Suite) -> dict[str, Any]:
    """Medians per configuration and paired ratios, as JSON data."""
    configs = {}
    for config in suite.configs:
        runs = [r for r in suite.runs if r["config"] == config.name and "tokens_per_s" in r]
        configs[config.name] = {
            key: bl.median(r.get(key) for r in runs)
            for key in (
                "samples_per_s",
                "tokens_per_s",
                "tokens_per_cpu_s",
                "train_runtime_s",
                "train_cpu_s",
                "wall_s",
                "max_rss_mb",
                "flops_utilisation",
                "steps",
            )
        } | {"runs": len(runs)}
    return {
        "description": suite.description,
        "model": suite.model,
        "samples": suite.samples,
        "non_padding_tokens": suite.tokens,
        "peak_flops": suite.peak_flops,
        "peak_source": suite.peak_source,
        "configs": configs,
        "ratios": score(suite.runs, suite.ratios),
        "runs": suite.runs,
    }


def score(runs: list[dict[str, Any]], ratios: list[Ratio]) -> list[dict[str, Any]]:
    """Each ratio paired within rounds (wall clock and per CPU-second), its median and target."""
    scored = []
    for ratio in ratios:
        values = bl.paired_ratios(runs, ratio.numerator, ratio.denominator, ratio.metric)
        value = bl.median(values)
        cpu_values = bl.paired_ratios(runs, ratio.numerator, ratio.denominator, "tokens_per_cpu_s")
        scored.append(
            {
                "label": ratio.label,
                "metric": ratio.metric,
                "median": value,
                "per_round": [round(v, 3) for v in values],
                "cpu_time_median": bl.median(cpu_values),
                "cpu_time_per_round": [round(v, 3) for v in cpu_values],
                "target": ratio.target,
                "met": None if ratio.target is None or value is None else value >= ratio.target,
            }
        )
    return scored


def rescore(path: Path) -> int:
    """Recomputes the ratios of a results file from its runs with this script's definitions."""
    results = json.loads(path.read_text())
    definitions = {
        "classification": classification_ratios(),
        "causal-lm": causal_ratios(with_max_length=not results["quick"]),
    }
    for name, summary in results["suites"].items():
        if name in definitions and "runs" in summary:
            summary["ratios"] = score(summary["runs"], definitions[name])
            print(report(name, summary))
    results["rescored_by"] = " ".join(["python", "benchmarks/throughput.py", *sys.argv[1:]])
    bl.write_json(path, results)
    return 0


def report(name: str, summary: dict[str, Any]) -> str:
    """The suite's two tables (configurations, ratios) as Markdown."""
    util = "GPU MFU" if name == "gpu" else "CPU FLOPs util."
    rows = [
        [
            config,
            bl.fmt(c["samples_per_s"], ",.1f"),
            bl.fmt(c["tokens_per_s"]),
            bl.fmt(c.get("tokens_per_cpu_s")),
            bl.fmt(c["train_runtime_s"], ".1f"),
            bl.fmt(c["max_rss_mb"]),
            bl.fmt(None if c["flops_utilisation"] is None else 100 * c["flops_utilisation"], ".1f")
            + ("%" if c["flops_utilisation"] is not None else ""),
            str(c["runs"]),
        ]
        for config, c in summary["configs"].items()
    ]
    configs = bl.table(
        rows,
        [
            "configuration",
            "samples/s",
            "tokens/s",
            "tokens/CPU-s",
            "train s",
            "peak RSS MiB",
            util,
            "runs",
        ],
    )
    ratio_rows = [
        [
            r["label"],
            bl.fmt(r["median"], ".2f") + ("x" if r["median"] is not None else ""),
            ", ".join(f"{v:.2f}" for v in r["per_round"]) or "-",
            bl.fmt(r.get("cpu_time_median"), ".2f")
            + ("x" if r.get("cpu_time_median") is not None else ""),
            "-" if r["target"] is None else f">= {r['target']:.1f}x",
            {True: "met", False: "NOT met", None: "-"}[r["met"]],
        ]
        for r in summary["ratios"]
    ]
    ratios = bl.table(
        ratio_rows,
        ["ratio (tokens/s)", "median", "per round", "per CPU-second", "target", ""],
    )
    return f"### {name}\n\n{summary['description']}\n\n{configs}\n\n{ratios}\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small models and data, 2 rounds")
    parser.add_argument(
        "--output",
        type=Path,
        help="results JSON (default benchmarks/results/throughput[-quick].json)",
    )
    parser.add_argument(
        "--suites",
        nargs="+",
        choices=SUITES,
        help="which suites (default: classification, causal-lm, and gpu when CUDA is present)",
    )
    parser.add_argument("--gpu", action="store_true", help="add the GPU suite (needs CUDA)")
    parser.add_argument(
        "--gpu-smoke",
        action="store_true",
        help="run the GPU suite's steps on the CPU with a tiny model (plumbing check)",
    )
    parser.add_argument(
        "--gpu-documents",
        type=int,
        default=12000,
        help="documents in the GPU suite (default 12000)",
    )
    parser.add_argument("--rounds", type=int, help="rounds per suite (default 2 quick, 3 full)")
    parser.add_argument(
        "--threads",
        type=int,
        help="threads of every process (default: 1 with --quick, which stays fair when others "
        "load the machine; else all cores)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch folder (models, workspaces, logs)"
    )
    parser.add_argument(
        "--rescore",
        type=Path,
        metavar="RESULTS",
        help="run nothing: recompute the ratios of a results JSON from its runs",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.rescore:
        return rescore(args.rescore)
    import torch

    scale = QUICK if args.quick else FULL
    threads = args.threads or (1 if args.quick else len(os.sched_getaffinity(0)))
    rounds = args.rounds or scale.rounds
    suites = list(args.suites or ["classification", "causal-lm"])
    cuda = torch.cuda.is_available()
    if (args.gpu or args.gpu_smoke or cuda) and "gpu" not in suites and not args.suites:
        suites.append("gpu")
    output = args.output or bl.RESULTS / (
        "throughput-quick.json" if args.quick else "throughput.json"
    )
    scratch = Path(tempfile.mkdtemp(prefix="kubetune-bench-"))
    started = time.time()
    print(f"scratch folder: {scratch}")
    cpu_peak = max(bl.matmul_peak_flops(threads) for _ in range(2))
    print(f"CPU float32 matmul peak with {threads} threads: {cpu_peak / 1e9:.1f} GFLOP/s")
    results: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/throughput.py", *sys.argv[1:]]),
        "quick": args.quick,
        "rounds": rounds,
        "threads": threads,
        "machine": bl.machine(),
        "cpu_matmul_peak_flops": cpu_peak,
        "suites": {},
    }
    text = []
    try:
        for name in suites:
            if name == "gpu" and not cuda and not args.gpu_smoke:
                note = "no CUDA GPU on this machine: the GPU suite did not run"
                print(note)
                results["suites"]["gpu"] = {"skipped": note}
                continue
            print(f"\n== {name}: building models and data in {scratch}")
            if name == "classification":
                suite = classification_suite(scratch, scale, threads, cpu_peak)
            elif name == "causal-lm":
                suite = causal_suite(scratch, scale, threads, cpu_peak, not args.quick)
            else:
                suite = gpu_suite(scratch, threads, args.gpu_smoke or not cuda, args.gpu_documents)
            print(suite.description)
            run_suite(suite, rounds, scratch / "logs", scale.timeout)
            summary = summarise(suite)
            results["suites"][name] = summary
            text.append(report(name, summary))
            print("\n" + text[-1])
    finally:
        results["seconds"] = round(time.time() - started, 1)
        bl.write_json(output, results)
        if args.keep:
            print(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    plot(results, output.with_suffix(".png"))
    print("\n" + "\n".join(text))
    print(f"finished in {results['seconds'] / 60:.1f} min")
    failed = [r for s in results["suites"].values() for r in s.get("runs", []) if "error" in r]
    return 1 if failed else 0


def plot(results: dict[str, Any], path: Path) -> None:
    groups = {
        name: {config: c["tokens_per_s"] for config, c in s["configs"].items()}
        for name, s in results["suites"].items()
        if "configs" in s
    }
    if groups:
        bl.bar_chart(
            path, "Training throughput (non-padding tokens/s, median of rounds)", groups, "tokens/s"
        )


if __name__ == "__main__":
    sys.exit(main())
