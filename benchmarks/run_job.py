"""Runs one whole local kubetune job, as a user script would: `python run_job.py REQUEST.json`.

The request (JSON) names the job's home, name, model folder, dataset folder, TrainingArguments
and LoraConfig keywords, max_length, num_workers, num_procs_per_worker, optional env_vars and a
timeout. TrainingClient().train(..., wait=True) runs it to Succeeded; then a summary (status,
seconds, output folder, storage initializer seconds) is written to request["result"].
Used by overhead.py and scaling.py.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any


def main(request_path: Path) -> int:
    started = time.perf_counter()
    from peft import LoraConfig
    from transformers import TrainingArguments

    from kubetune.contract import layout
    from kubetune.storage_initializer.hugging_face import (
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )
    from kubetune.storage_initializer.local import LocalDatasetParams
    from kubetune.training import TrainingClient

    request = json.loads(request_path.read_text())
    client = TrainingClient(home=request["home"])
    imported = time.perf_counter()
    called_at = time.time()
    client.train(
        name=request["name"],
        num_workers=request.get("num_workers", 1),
        num_procs_per_worker=request.get("num_procs_per_worker", 1),
        model_provider_parameters=HuggingFaceModelParams(
            model_uri=request["model"], transformer_type=request["transformer_type"]
        ),
        dataset_provider_parameters=LocalDatasetParams(path=request["dataset"]),
        trainer_parameters=HuggingFaceTrainerParams(
            training_parameters=TrainingArguments(**request["training_arguments"]),
            lora_config=LoraConfig(**request["lora"]) if request.get("lora") else None,
            max_length=request["max_length"],
        ),
        env_vars=request.get("env_vars") or None,
        wait=True,
        wait_timeout=request["timeout"],
    )
    finished = time.perf_counter()
    returned_at = time.time()
    job = client.get_job_report(request["name"])
    job_dir = Path(request["home"]) / "jobs" / job.namespace / request["name"]
    marker = layout.read_json(job_dir / "workspace" / layout.MARKER_FILE) or {}
    status = layout.read_json(job_dir / "status.json") or {}
    summary = {
        "status": job.status,
        "import_s": round(imported - started, 3),
        "train_call_s": round(finished - imported, 3),
        "output_dir": job.output_dir,
        "initializer_s": marker.get("seconds"),
        "launch": status.get("launch"),
        "phases": phases(status, called_at, returned_at),
    }
    Path(request["result"]).write_text(json.dumps(summary))
    return 0


def phases(status: dict[str, Any], called_at: float, returned_at: float) -> dict[str, float]:
    """Seconds of train(): until the initializer starts, the initializer, the torchrun agents,
    and after the agents until train() returns (status polling). Whole seconds where the job
    status records ISO times."""
    try:
        initializer = float(status["initializer"]["create_time"])
        attempt = status["attempts"][-1]
        workers_start = _epoch(attempt["start_time"])
        workers_end = _epoch(attempt["end_time"])
    except (KeyError, IndexError, TypeError, ValueError):
        return {}
    return {
        "until_initializer_s": round(initializer - called_at, 2),
        "initializer_s": round(workers_start - initializer, 2),
        "workers_s": round(workers_end - workers_start, 2),
        "after_workers_s": round(returned_at - workers_end, 2),
    }


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
