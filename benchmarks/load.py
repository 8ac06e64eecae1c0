"""Ten small local jobs submitted at once, against the same jobs run one by one: the local queue.

Each job is small: a randomly initialised BERT-style encoder (hidden 64, 2 layers), LoRA, a few
hundred synthetic reviews, a fixed number of steps, 1 worker x 1 process,
resources_per_worker={"cpu": 1}. First all jobs are submitted at once (`TrainingClient.train`
returns at once; the local queue admits them as cores free up), then the same jobs run one by
one (submit, wait until it ends, next). Every 0.2 s a sampler records:

  jobs running     jobs the queue admitted (their initializer or workers run)
  compute threads  the OMP_NUM_THREADS of every live initializer and training process, summed
  runnable threads the jobs' OS threads in state R (running or ready to run), for information:
                   Python, gloo and tokenizer threads come and go besides the compute threads

Prints jobs Succeeded, the most jobs and threads running at any moment, and the two wall times.
Target: all Succeeded, never more compute threads than cores, total wall time no worse than one
by one.

    python benchmarks/load.py                 # 10 jobs
    python benchmarks/load.py --jobs 4 --steps 10
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import benchlib as bl
import psutil

SAMPLE_SECONDS = 0.2
JOB_PROCESS_MARKS = ("kubetune.training.backends.local.entry", "kubetune.storage_initializer")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10, help="how many jobs (default 10)")
    parser.add_argument("--steps", type=int, default=30, help="training steps per job")
    parser.add_argument("--cpu", default="1", help="resources_per_worker cpu of each job")
    parser.add_argument("--output", type=Path, help="results JSON (default results/load.json)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    return parser.parse_args()


class Sampler(threading.Thread):
    """Samples the jobs of `home` every SAMPLE_SECONDS until stopped: the peaks it saw."""

    def __init__(self, home: Path) -> None:
        super().__init__(daemon=True)
        from kubetune.training.backends.local.jobqueue import LocalQueue

        self.queue = LocalQueue(home)
        self.home = str(home)
        self.stopped = threading.Event()
        self.peak = {"jobs": 0, "compute_threads": 0, "runnable_threads": 0}
        self.samples = 0

    def run(self) -> None:
        while not self.stopped.is_set():
            jobs = sum(1 for e in self.queue.entries() if e.admitted)
            compute = runnable = 0
            for process in psutil.process_iter(["cmdline"]):
                cmdline = " ".join(process.info["cmdline"] or [])
                if "torch.distributed.run" in cmdline or not any(
                    mark in cmdline for mark in JOB_PROCESS_MARKS
                ):
                    continue  # torchrun agents name the entry point too, and run no compute
                try:
                    if process.cwd().startswith(self.home):
                        compute += int(process.environ().get("OMP_NUM_THREADS", "1"))
                        runnable += _runnable_threads(process.pid)
                except (psutil.Error, OSError, ValueError):
                    continue
            self.samples += 1
            for key, value in (
                ("jobs", jobs),
                ("compute_threads", compute),
                ("runnable_threads", runnable),
            ):
                self.peak[key] = max(self.peak[key], value)
            time.sleep(SAMPLE_SECONDS)


def _runnable_threads(pid: int) -> int:
    count = 0
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            if stat.read_text().rsplit(")", 1)[1].split()[0] == "R":
                count += 1
        except (OSError, IndexError):
            continue
    return count


def job_kwargs(name: str, model: str, data: Path, steps: int, cpu: str) -> dict[str, Any]:
    from peft import LoraConfig
    from transformers import TrainingArguments

    from kubetune.storage_initializer.hugging_face import (
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )
    from kubetune.storage_initializer.local import LocalDatasetParams

    return {
        "name": name,
        "model_provider_parameters": HuggingFaceModelParams(
            model_uri=model, transformer_type="AutoModelForSequenceClassification"
        ),
        "dataset_provider_parameters": LocalDatasetParams(path=str(data)),
        "trainer_parameters": HuggingFaceTrainerParams(
            training_parameters=TrainingArguments(
                output_dir="out",
                max_steps=steps,
                per_device_train_batch_size=8,
                learning_rate=2e-4,
                logging_steps=10,
                save_strategy="no",
                eval_strategy="no",
                report_to="none",
                disable_tqdm=True,
                use_cpu=True,
                seed=bl.SEED,
            ),
            lora_config=LoraConfig(r=8, lora_alpha=16, target_modules=["query", "value"]),
            max_length=64,
        ),
        "num_workers": 1,
        "num_procs_per_worker": 1,
        "resources_per_worker": {"cpu": cpu},
    }


def run_phase(
    client: Any, home: Path, names: list[str], make: Any, at_once: bool
) -> dict[str, Any]:
    """Runs the jobs `names` (all submitted at once, or one by one); wall time, outcomes, peaks."""
    sampler = Sampler(home)
    sampler.start()
    started = time.perf_counter()
    statuses: dict[str, str] = {}

    def finish(name: str) -> None:
        try:
            client.wait_for_job_conditions(name, wait_timeout=3600, polling_interval=0.5)
            statuses[name] = client.get_job_report(name).status
        except (RuntimeError, TimeoutError) as e:
            statuses[name] = f"Failed: {e}"[:300]

    if at_once:
        for name in names:
            client.train(**make(name))
        for name in names:
            finish(name)
    else:
        for name in names:
            client.train(**make(name))
            finish(name)
    wall = time.perf_counter() - started
    sampler.stopped.set()
    sampler.join()
    return {
        "wall_s": round(wall, 1),
        "succeeded": sum(1 for s in statuses.values() if s == "Succeeded"),
        "jobs": len(names),
        "statuses": statuses,
        "peak": sampler.peak,
        "samples": sampler.samples,
    }


def report(results: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    cores = results["machine"]["nproc"]
    rows = []
    for label, key in (("all at once", "at_once"), ("one by one", "one_by_one")):
        r = results[key]
        rows.append(
            [
                label,
                f"{r['succeeded']}/{r['jobs']}",
                str(r["peak"]["jobs"]),
                str(r["peak"]["compute_threads"]),
                str(r["peak"]["runnable_threads"]),
                bl.fmt(r["wall_s"], ".0f"),
            ]
        )
    table = bl.table(
        rows,
        [
            "submitted",
            "Succeeded",
            "most jobs running",
            "most compute threads",
            "most runnable threads",
            "wall s",
        ],
    )
    at_once, serial = results["at_once"], results["one_by_one"]
    ratio = at_once["wall_s"] / serial["wall_s"] if serial["wall_s"] else None
    checks = [
        f"all Succeeded: {'met' if at_once['succeeded'] == at_once['jobs'] else '**not met**'}",
        f"never more compute threads than cores ({cores}): "
        + ("met" if at_once["peak"]["compute_threads"] <= cores else "**not met**"),
        f"wall time at once / one by one: {bl.fmt(ratio, '.2f')}x, target <= 1.0x: "
        + ("met" if ratio is not None and ratio <= 1.0 else "**not met**"),
    ]
    m = results["machine"]
    machine = (
        f"Machine: {m['nproc']} cores ({m['cpu_model']}), {m['memory_gib']} GiB, GPU: "
        f"{m['gpu'] or 'none'}; torch {m['torch']}; kubetune commit {m['commit']}"
    )
    if results.get("load_average"):
        machine += "; load average (1 min) before and after the run: " + ", ".join(
            f"{v:.1f}" for v in results["load_average"]
        )
    return (
        f"{results['description']}\n\n{machine}.\n\n{table}\n\n"
        + "\n".join(f"* {c}" for c in checks)
        + "\n"
    )


def main() -> int:
    args = parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="kubetune-load-"))
    output = args.output or bl.RESULTS / "load.json"
    home = scratch / "home"
    os.environ["KUBETUNE_HOME"] = str(home)
    from kubetune.training import TrainingClient

    words = bl.filler_words(500)
    model = bl.build_encoder(scratch / "encoder", words, hidden=64, layers=2)
    rows = bl.review_rows(400, words, 6, 60, 20.0)
    data = bl.write_csv(scratch / "reviews.csv", rows)
    description = (
        f"{args.jobs} jobs, each: BERT-style encoder ({model.parameters / 1e6:.2f}M parameters, "
        f"hidden 64, 2 layers), LoRA r=8, {args.steps} steps of batch 8, 1 worker x 1 process, "
        f"resources_per_worker={{'cpu': {args.cpu!r}}}; one run"
    )
    print(description)
    client = TrainingClient(home=home)

    def make(name: str) -> dict[str, Any]:
        return job_kwargs(name, model.path, data, args.steps, args.cpu)

    results: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/load.py", *sys.argv[1:]]),
        "description": description,
        "machine": bl.machine(),
        "load_average": [os.getloadavg()[0]],
    }
    print("all at once ...", flush=True)
    results["at_once"] = run_phase(
        client, home, [f"load-{i}" for i in range(args.jobs)], make, at_once=True
    )
    print("one by one ...", flush=True)
    results["one_by_one"] = run_phase(
        client, home, [f"serial-{i}" for i in range(args.jobs)], make, at_once=False
    )
    results["load_average"].append(os.getloadavg()[0])
    for job in client.list_job_reports():
        client.delete_job(job.name)
    bl.write_json(output, results)
    if args.keep:
        print(f"kept {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\n" + report(results))
    ok = results["at_once"]["succeeded"] == args.jobs == results["one_by_one"]["succeeded"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
