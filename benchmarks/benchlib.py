"""Helpers shared by the benchmark scripts.

Small randomly initialised models and synthetic data built offline, kubetune workspaces and job
specs, timed subprocesses with their peak RSS, interleaved rounds, tables, plots and the
description of the machine. The scripts in this folder import it as `benchlib`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
RESULTS = BENCHMARKS / "results"
BASELINES = BENCHMARKS / "baselines"
PYTHON = sys.executable
SEED = 42

# --- synthetic text ----------------------------------------------------------------------------

POSITIVE = ["good", "great", "excellent", "wonderful", "loved", "superb", "brilliant", "enjoyable"]
NEGATIVE = ["bad", "awful", "terrible", "poor", "hated", "boring", "dull", "disappointing"]
ENCODER_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
DECODER_SPECIAL = ["<pad>", "<unk>", "<s>", "</s>"]
_ONSETS = ["b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z"]
_NUCLEI = ["a", "e", "i", "o", "u", "ai", "ou", "ea"]


def filler_words(count: int, seed: int = SEED) -> list[str]:
    """`count` distinct pronounceable pseudo-words (the neutral vocabulary of the synthetic texts)."""
    rng = random.Random(seed)
    words: list[str] = []
    seen = set(POSITIVE) | set(NEGATIVE)
    while len(words) < count:
        word = "".join(rng.choice(_ONSETS) + rng.choice(_NUCLEI) for _ in range(rng.randint(1, 3)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def review_lengths(n: int, rng: random.Random, low: int, high: int, median: float) -> list[int]:
    """Word counts drawn from a log-normal (most texts short, a long tail), clipped to [low, high]."""
    return [min(high, max(low, round(rng.lognormvariate(math.log(median), 0.8)))) for _ in range(n)]


def zipf_sampler(words: Sequence[str], rng: random.Random) -> Callable[[int], list[str]]:
    """A function returning k words drawn with Zipf-like frequencies (rank r has weight 1/r)."""
    weights = [1.0 / (rank + 1) for rank in range(len(words))]
    cumulative = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    return lambda k: rng.choices(words, cum_weights=cumulative, k=k)


def review_rows(
    n: int, words: Sequence[str], low: int, high: int, median: float, seed: int = SEED
) -> dict[str, list[Any]]:
    """Columns 'text' and 'label' of `n` synthetic reviews: lengths spread widely, most short.

    Each text carries a few sentiment words of its label among Zipf-distributed filler words, so
    the labels are learnable.
    """
    rng = random.Random(seed)
    draw = zipf_sampler(words, rng)
    texts, labels = [], []
    for length in review_lengths(n, rng, low, high, median):
        label = rng.randint(0, 1)
        body = draw(length)
        for _ in range(max(1, length // 12)):
            body[rng.randrange(length)] = rng.choice(POSITIVE if label else NEGATIVE)
        texts.append(" ".join(body))
        labels.append(label)
    return {"text": texts, "label": labels}


def write_csv(path: Path, columns: dict[str, list[Any]]) -> Path:
    """Writes equal-length `columns` as a CSV file with a header row; returns `path`."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(list(columns))
        writer.writerows(zip(*columns.values(), strict=True))
    return path


def document_rows(
    n: int, words: Sequence[str], low: int, high: int, median: float, seed: int = SEED
) -> dict[str, list[Any]]:
    """Column 'text' of `n` synthetic documents for causal-LM training, lengths as for reviews."""
    rng = random.Random(seed + 1)
    draw = zipf_sampler(words, rng)
    return {"text": [" ".join(draw(k)) for k in review_lengths(n, rng, low, high, median)]}


# --- models --------------------------------------------------------------------------------------


@dataclass
class ModelInfo:
    """What the benchmark tables say about a model."""

    kind: str
    path: str
    parameters: int
    # Parameters that take part in matrix multiplications per token (the 6·N·tokens FLOPs rule):
    # all but the input embeddings; a tied output projection counts once.
    matmul_parameters: int
    config: dict[str, Any] = field(default_factory=dict)


def _matmul_parameters(model: Any) -> int:
    total = 0
    for name, p in model.named_parameters():
        if "embeddings" in name or "embed_tokens" in name:
            continue
        total += p.numel()
    output = model.get_output_embeddings()
    if output is not None and output.weight is model.get_input_embeddings().weight:
        total += output.weight.numel()
    return total


def build_encoder(
    path: Path, words: Sequence[str], hidden: int, layers: int, max_positions: int = 512
) -> ModelInfo:
    """A randomly initialised BERT-style classifier (2 labels) with a word-level tokenizer, saved in `path`."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    torch.manual_seed(SEED)
    vocab = ENCODER_SPECIAL + POSITIVE + NEGATIVE + list(words)
    tokenizer = BertTokenizer(
        vocab={w: i for i, w in enumerate(vocab)},
        do_lower_case=False,
        model_max_length=max_positions,
    )
    settings = {
        "vocab_size": len(vocab),
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": max(2, hidden // 64),
        "intermediate_size": 4 * hidden,
        "max_position_embeddings": max_positions,
        "num_labels": 2,
    }
    model = BertForSequenceClassification(BertConfig(**settings))
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return ModelInfo(
        kind="encoder",
        path=str(path),
        parameters=sum(p.numel() for p in model.parameters()),
        matmul_parameters=_matmul_parameters(model),
        config=settings,
    )


def build_decoder(
    path: Path,
    words: Sequence[str],
    hidden: int,
    layers: int,
    intermediate: int | None = None,
    vocab_size: int | None = None,
    max_positions: int = 1024,
) -> ModelInfo:
    """A randomly initialised Llama-style causal LM with a word-level tokenizer, saved in `path`.

    `vocab_size` larger than the tokenizer's vocabulary gives the output layer a realistic width.
    """
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(SEED)
    vocab = DECODER_SPECIAL + list(words)
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=max_positions,
    )
    heads = max(2, hidden // 64)
    settings = {
        "vocab_size": max(len(vocab), vocab_size or 0),
        "hidden_size": hidden,
        "intermediate_size": intermediate or int(hidden * 8 / 3 / 16 + 1) * 16,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": heads,
        "max_position_embeddings": max_positions,
        "tie_word_embeddings": True,
        "pad_token_id": 0,
        "bos_token_id": 2,
        "eos_token_id": 3,
    }
    model = LlamaForCausalLM(LlamaConfig(**settings))
    path.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(path)
    model.save_pretrained(path)
    return ModelInfo(
        kind="decoder",
        path=str(path),
        parameters=sum(p.numel() for p in model.parameters()),
        matmul_parameters=_matmul_parameters(model),
        config=settings,
    )


def token_counts(
    model_dir: str | Path, texts: Iterable[str], max_length: int, eos: bool
) -> list[int]:
    """Tokens per text as kubetune's tasks feed them: special tokens, an appended EOS, truncation."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    encoded = tokenizer(list(texts), truncation=not eos, max_length=None if eos else max_length)
    extra = 1 if eos else 0
    return [min(max_length, len(ids) + extra) for ids in encoded["input_ids"]]


# --- kubetune workspaces and specs ------------------------------------------------------------


def make_workspace(root: Path, model_dir: str | Path, columns: dict[str, list[Any]]) -> Path:
    """A workspace as the storage initializer leaves it: the model used in place, the dataset, the marker."""
    from datasets import Dataset, DatasetDict

    from kubetune.contract import layout

    root.mkdir(parents=True, exist_ok=True)
    (root / layout.MODEL_LINK_FILE).write_text(f"{model_dir}\n")
    DatasetDict({layout.TRAIN_SPLIT: Dataset.from_dict(columns)}).save_to_disk(
        str(root / layout.DATASET_DIR)
    )
    layout.write_json_atomic(root / layout.MARKER_FILE, {"written_by": "benchmarks"})
    return root


def save_dataset(path: Path, columns: dict[str, list[Any]]) -> Path:
    """A DatasetDict with a 'train' split saved with save_to_disk (what the baselines read)."""
    from datasets import Dataset, DatasetDict

    DatasetDict({"train": Dataset.from_dict(columns)}).save_to_disk(str(path))
    return path


def job_spec_json(
    name: str,
    model_dir: str | Path,
    transformer_type: str,
    dataset_path: str | Path,
    training_arguments: dict[str, Any],
    lora: dict[str, Any] | None,
    max_length: int,
    packing: bool = False,
    length_grouping: bool = True,
) -> str:
    """The JSON job spec kubetune's trainer reads, built through the public params classes."""
    from peft import LoraConfig
    from transformers import TrainingArguments

    from kubetune.params.job import build_job_spec
    from kubetune.storage_initializer.hugging_face import (
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )
    from kubetune.storage_initializer.local import LocalDatasetParams

    spec, _ = build_job_spec(
        name=name,
        model_provider_parameters=HuggingFaceModelParams(
            model_uri=str(model_dir), transformer_type=transformer_type
        ),
        dataset_provider_parameters=LocalDatasetParams(path=str(dataset_path)),
        trainer_parameters=HuggingFaceTrainerParams(
            training_parameters=TrainingArguments(**training_arguments),
            lora_config=LoraConfig(**lora) if lora is not None else None,
            max_length=max_length,
            packing=packing,
            length_grouping=length_grouping,
        ),
    )
    return spec.to_json()


# --- processes -----------------------------------------------------------------------------------


def bench_env(threads: int, **extra: str) -> dict[str, str]:
    """The environment of every benchmarked process: offline, the same thread count, quiet."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        TOKENIZERS_PARALLELISM="false",
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


@dataclass
class ProcessResult:
    """How one benchmarked process ended."""

    returncode: int
    wall_s: float
    max_rss_mb: float
    log: str

    def tail(self, lines: int = 25) -> str:
        text = Path(self.log).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def run_process(
    cmd: Sequence[str], env: dict[str, str], log: Path, timeout: float, cwd: Path = REPO
) -> ProcessResult:
    """Runs `cmd` to completion with output to `log`; wall time and the peak RSS of its process tree.

    The peak RSS comes from wait4(): the largest resident set of the process or of any
    descendant it waited for (torchrun waits for its workers), in MiB.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                out.write(f"\n[benchmarks] killed after {timeout:g} s\n")
                break
            time.sleep(0.05)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ProcessResult(proc.returncode, wall, usage.ru_maxrss / 1024.0, str(log))


def interleaved(names: Sequence[str], rounds: int) -> list[tuple[int, str]]:
    """(round, name) pairs: every configuration once per round, the order rotated each round."""
    order = []
    for r in range(rounds):
        shift = r % len(names)
        order.extend((r, n) for n in [*names[shift:], *names[:shift]])
    return order


def median(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def paired_ratios(
    runs: list[dict[str, Any]], numerator: str, denominator: str, metric: str
) -> list[float]:
    """metric(numerator) / metric(denominator) for each round in which both ran."""
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for run in runs:
        by_round.setdefault(run["round"], {})[run["config"]] = run
    ratios = []
    for configs in by_round.values():
        a, b = configs.get(numerator), configs.get(denominator)
        if a and b and a.get(metric) and b.get(metric):
            ratios.append(a[metric] / b[metric])
    return ratios


# --- measurement of the hardware ---------------------------------------------------------------


def matmul_peak_flops(
    threads: int, size: int = 2048, repeats: int = 5, device: str = "cpu", dtype: str = "float32"
) -> float:
    """The best FLOP/s of a square `size` matmul on `device` over `repeats` timings."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch_dtype = getattr(torch, dtype)
        a = torch.randn(size, size, device=device, dtype=torch_dtype)
        b = torch.randn(size, size, device=device, dtype=torch_dtype)
        sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
        torch.matmul(a, b)
        sync()
        inner = 10 if device.startswith("cuda") else 1
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(inner):
                torch.matmul(a, b)
            sync()
            best = min(best, (time.perf_counter() - start) / inner)
        return 2.0 * size**3 / best
    finally:
        torch.set_num_threads(previous)


def machine() -> dict[str, Any]:
    """The machine the figures come from: cores, CPU model, memory, GPU, library versions, commit."""
    import peft
    import torch
    import transformers

    cpu_model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_model": cpu_model,
        "memory_gib": memory_gib,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "commit": commit,
    }


# --- output ---------------------------------------------------------------------------------------


def fmt(value: Any, spec: str = ",.0f") -> str:
    """A table cell: numbers formatted with `spec`, None as '-'."""
    if value is None:
        return "-"
    if isinstance(value, float | int) and not isinstance(value, bool):
        return format(value, spec)
    return str(value)


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """A Markdown table (which also reads well in a terminal)."""
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=_jsonable) + "\n")
    print(f"results: {path}")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def bar_chart(
    path: Path,
    title: str,
    groups: dict[str, dict[str, float | None]],
    ylabel: str,
) -> None:
    """A grouped bar chart (one group per suite, one bar per configuration) saved as a small PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(groups), figsize=(max(6.0, 4.2 * len(groups)), 3.4), squeeze=False
    )
    for ax, (group, bars) in zip(axes[0], groups.items(), strict=True):
        names = list(bars)
        values = [bars[n] or 0.0 for n in names]
        colours = ["#2b6cb0" if n.startswith("kubetune") else "#a0aec0" for n in names]
        ax.bar(range(len(names)), values, color=colours)
        ax.set_xticks(range(len(names)), names, rotation=20, ha="right", fontsize=8)
        ax.set_title(group, fontsize=10)
        ax.set_ylabel(ylabel, fontsize=9)
        for i, v in enumerate(values):
            ax.text(
                i, v, f"{v:,.1f}" if v < 100 else f"{v:,.0f}", ha="center", va="bottom", fontsize=7
            )
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    print(f"plot: {path}")


def read_metrics(path: Path) -> dict[str, Any] | None:
    """The JSON metrics a run wrote, or None when it wrote none."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def finish(
    output: Path,
    results: dict[str, Any],
    chart: tuple[str, dict[str, dict[str, float | None]], str],
    scratch: Path,
    keep: bool,
    text: str,
) -> int:
    """Writes the results JSON and its bar chart (title, groups, y label) beside it, removes the
    scratch folder unless kept, prints the report; returns 1 when a run failed."""
    write_json(output, results)
    bar_chart(output.with_suffix(".png"), *chart)
    if keep:
        print(f"kept {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\n" + text)
    return 1 if any("error" in r for r in results["runs"]) else 0
