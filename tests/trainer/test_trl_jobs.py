"""Training methods of TRL as real jobs on a tiny decoder, each with 2 processes
(`torchrun --nproc-per-node=2`, gloo): an SFT job with completion-only loss, a DPO, an ORPO and a
KTO job, all started at once. The DPO job goes through the local backend (storage initializer,
supervisor, torchrun) to Succeeded; the others run the runtime on workspaces built here, as the
backend would (its Succeeded is their exit status 0), which saves two storage initializers.

The preference set is learnable (the chosen answer is always 'good good .', the rejected one
'bad bad .'), so the logged reward margin must rise. The jobs also check what every job has:
the history of logged values, the final metrics (with TRL's), marked checkpoints, the adapter
naming its base model, and a run that resumes from its own checkpoint.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubetune.contract import checkpoints, layout
from kubetune.contract.causal_lm import TrainingMethod
from kubetune.contract.spec import JobSpec
from kubetune.training.backends.local.jobdir import job_dir
from tests import tiny_models as tm
from tests.trainer.trainer_jobs import Run, build_workspace, start_trainer

JOB_TIMEOUT = 600
STEPS = 12
# Shared by every job: tiny steps, LoRA's learning rate, no checkpointing of activations.
COMMON: dict[str, Any] = {
    "max_steps": STEPS,
    "per_device_train_batch_size": 4,
    "learning_rate": 5e-3,
    "logging_steps": 3,
    "max_length": 64,
    "activation_checkpointing": False,
    "save_strategy": "no",
    "report_to": "none",
    "disable_tqdm": True,
    "seed": 0,
}
VIA_BACKEND = TrainingMethod.DPO


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def jobs(model: Path, data: Path) -> dict[TrainingMethod, dict[str, Any]]:
    """train() arguments of the four jobs, by method (their data files written in `data`)."""
    import transformers
    from peft import LoraConfig
    from trl import DPOConfig, KTOConfig, SFTConfig
    from trl.experimental.orpo import ORPOConfig

    from kubetune import HuggingFaceModelParams, HuggingFaceTrainerParams, LocalDatasetParams

    lora = LoraConfig(r=8, lora_alpha=16)
    # DPO and KTO save checkpoints along the way.
    checkpointed = {**COMMON, "save_strategy": "steps", "save_steps": 6}
    # SFT and DPO evaluate at the end, on 16 of their 48 rows.
    evaluated = {"eval_strategy": "steps", "eval_steps": STEPS, "bf16": False}
    splits = {"split": "train[:32]", "eval_split": "train[32:]"}
    configs = {
        # The loss on the completions only.
        TrainingMethod.SFT: (
            SFTConfig("sft", completion_only_loss=True, **evaluated, **COMMON),
            write_jsonl(data / "sft.jsonl", tm.prompt_completion_rows(48)),
            splits,
            lora,
        ),
        # Also evaluated before training.
        TrainingMethod.DPO: (
            DPOConfig("dpo", beta=0.1, **evaluated, **checkpointed),
            write_jsonl(data / "dpo.jsonl", tm.preference_rows(48)),
            splits,
            lora,
        ),
        # Full fine-tuning (ORPO has no reference model).
        TrainingMethod.ORPO: (
            ORPOConfig("orpo", beta=0.1, bf16=False, **{**COMMON, "learning_rate": 1e-3}),
            write_jsonl(data / "orpo.jsonl", tm.preference_rows(32)),
            {},
            None,
        ),
        TrainingMethod.KTO: (
            KTOConfig("kto", beta=0.1, bf16=False, **checkpointed),
            write_jsonl(data / "kto.jsonl", tm.kto_rows(32)),
            {},
            lora,
        ),
    }
    return {
        method: {
            "name": f"trl-{method}",
            "model_provider_parameters": HuggingFaceModelParams(
                model_uri=str(model), transformer_type=transformers.AutoModelForCausalLM
            ),
            "dataset_provider_parameters": LocalDatasetParams(path=str(path), **dataset_splits),
            "trainer_parameters": HuggingFaceTrainerParams(
                training_parameters=arguments,
                lora_config=lora_config,
                evaluate_before_training=method is TrainingMethod.DPO,
            ),
            "num_workers": 1,
            "num_procs_per_worker": 2,
            "resources_per_worker": {"cpu": 1, "memory": "2G"},
        }
        for method, (arguments, path, dataset_splits, lora_config) in configs.items()
    }


@dataclass
class Finished:
    """A finished job: its spec, how it ended, its workspace and what it wrote there."""

    spec: JobSpec
    status: str
    workspace: Path
    error: str = ""

    @property
    def output_dir(self) -> Path:
        return self.spec.output_path(self.workspace)

    @property
    def metrics(self) -> dict[str, Any]:
        return json.loads((self.output_dir / layout.METRICS_FILE).read_text())

    @property
    def history(self) -> list[dict[str, Any]]:
        lines = (self.workspace / layout.HISTORY_FILE).read_text().splitlines()
        return [json.loads(line) for line in lines]

    def logged(self, key: str) -> list[float]:
        return [r[key] for r in self.history if r.get(key) is not None]


def workspace_of(kwargs: dict[str, Any], root: Path) -> tuple[JobSpec, Path]:
    """The job's spec, and a workspace as its storage initializer would leave it."""
    from datasets import load_dataset

    from kubetune.params.job import build_job_spec

    spec, _ = build_job_spec(**kwargs)
    dataset = kwargs["dataset_provider_parameters"]
    rows = load_dataset("json", data_files=dataset.path, split="train").to_list()
    train, evaluate = rows, None
    if dataset.eval_split:  # 'train[:32]' / 'train[32:]'
        cut = int(dataset.split.split(":")[1].rstrip("]"))
        train, evaluate = rows[:cut], rows[cut:]
    model = Path(kwargs["model_provider_parameters"].model_uri)
    workspace = root / spec.name
    build_workspace(workspace, lambda p: copy_model(model, p), train, evaluate)
    return spec, workspace


def copy_model(source: Path, target: Path) -> None:
    shutil.copytree(source, target)


@dataclass
class Jobs:
    """The four finished jobs, by method, and the KTO job's run resumed two steps further."""

    finished: dict[TrainingMethod, Finished]
    resumed: Run


@pytest.fixture(scope="module")
def jobs_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jobs]:
    from kubetune.training import TrainingClient

    root = tmp_path_factory.mktemp("trl")
    home = root / "home"
    model = tm.tiny_llama(root / "llama")
    data = root / "data"
    data.mkdir()
    client = TrainingClient(backend="local", home=home)
    submitted = jobs(model, data)
    backend_job = submitted[VIA_BACKEND]
    try:
        client.train(**backend_job)
        started = {
            method: (spec, start_trainer(workspace, spec.to_dict(), nproc=2))
            for method, kwargs in submitted.items()
            if method is not VIA_BACKEND
            for spec, workspace in [workspace_of(kwargs, root / "direct")]
        }
        finished: dict[TrainingMethod, Finished] = {}
        for method, (spec, run) in started.items():
            done = run.finish(JOB_TIMEOUT)
            status = "Succeeded" if done.returncode == 0 else f"Failed ({done.returncode})"
            finished[method] = Finished(spec, status, done.root, done.stderr[-5000:])
        # The KTO job's runtime once more on a copy of its workspace (as after a restart), two
        # steps further, while the backend's job may still run.
        kto = finished[TrainingMethod.KTO]
        shutil.copytree(kto.workspace, root / "resumed")
        again = kto.spec.to_dict()
        again["trainer"]["training_arguments"]["max_steps"] = STEPS + 2
        resuming = start_trainer(root / "resumed", again, nproc=0)
        client.wait_for_job_conditions(
            backend_job["name"], wait_timeout=JOB_TIMEOUT, polling_interval=1
        )
        name = backend_job["name"]
        finished[VIA_BACKEND] = Finished(
            client.backend.get_job_spec(name, "default"),
            str(client.get_job_report(name).status),
            job_dir(home, "default", name).workspace,
        )
        yield Jobs(finished, resuming.finish(JOB_TIMEOUT))
    finally:
        if client.backend.get_job_spec(backend_job["name"], "default") is not None:
            client.delete_job(backend_job["name"])


@pytest.fixture(scope="module")
def finished(jobs_run: Jobs) -> dict[TrainingMethod, Finished]:
    return jobs_run.finished


def test_every_method_runs_to_succeeded_with_two_processes(finished):
    assert set(finished) == set(TrainingMethod)
    for method, job in finished.items():
        assert job.status == "Succeeded", (method, job.error)
        assert job.spec.trainer.method is method and job.spec.num_procs_per_worker == 2
        assert job.metrics["global_step"] == STEPS
        progress = json.loads((job.workspace / layout.PROGRESS_FILE).read_text())
        assert progress["status"] == "done" and progress["step"] == STEPS
    # 2 ranks share each step: a global batch of 8 of the 32 samples.
    assert finished[TrainingMethod.KTO].metrics["epoch"] == pytest.approx(STEPS * 8 / 32)


@pytest.mark.parametrize("method", [TrainingMethod.DPO, TrainingMethod.ORPO, TrainingMethod.KTO])
def test_the_reward_margin_rises_on_a_learnable_preference(finished, method):
    job = finished[method]
    margins = job.logged("rewards/margins")
    assert len(margins) >= 3, job.history
    assert margins[-1] > margins[0] and margins[-1] > 0, margins
    # The final metrics hold the method's logged values, the last of each.
    assert job.metrics["train_rewards/margins"] == margins[-1]
    assert {"train_rewards/chosen", "train_rewards/rejected", "train_loss"} <= set(job.metrics)
    assert "train_perplexity" not in job.metrics  # a preference loss is no language model's


def test_dpo_evaluates_its_margin_before_and_after_training(finished):
    metrics = finished[TrainingMethod.DPO].metrics
    assert metrics["eval_samples"] == 16
    assert metrics["eval_before_rewards/margins"] == 0.0  # the adapter starts as a no-op
    assert metrics["eval_rewards/margins"] > 0 and metrics["eval_rewards/accuracies"] > 0.5


def test_sft_with_completion_only_loss_learns_and_evaluates(finished):
    job = finished[TrainingMethod.SFT]
    assert job.spec.trainer.training_arguments["completion_only_loss"] is True
    losses = job.logged("loss")
    assert len(losses) >= 3 and losses[-1] < losses[0], losses
    assert {"train_mean_token_accuracy", "train_perplexity", "eval_loss", "eval_perplexity"} <= set(
        job.metrics
    )
    assert job.metrics["eval_samples"] == 16


def test_lora_jobs_save_an_adapter_naming_their_base_model_and_orpo_a_full_model(finished):
    for method, job in finished.items():
        model_dir = job.output_dir / layout.MODEL_DIR
        if method is TrainingMethod.ORPO:
            assert (model_dir / "config.json").is_file() and job.metrics["lora"] is False
            continue
        adapter = json.loads((model_dir / layout.ADAPTER_CONFIG_FILE).read_text())
        assert adapter["base_model_name_or_path"] == job.spec.model.uri
        assert job.metrics["lora"] is True


def test_checkpoints_are_marked_and_a_rerun_resumes_from_its_own(jobs_run):
    for method in (TrainingMethod.DPO, TrainingMethod.KTO):
        job = jobs_run.finished[method]
        saved = sorted(p.name for p in job.output_dir.glob("checkpoint-*"))
        assert saved == ["checkpoint-12", "checkpoint-6"], method
        for name in saved:
            assert checkpoints.owner(job.output_dir / name) == job.spec.uid
    resumed = jobs_run.resumed.check()
    assert resumed.metrics["restarted_from_step"] == STEPS
    assert resumed.metrics["global_step"] == STEPS + 2
    assert "train_rewards/margins" in resumed.metrics
