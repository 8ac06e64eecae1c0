"""The trainer under real `torchrun --nproc-per-node=2` (gloo on CPU), one tiny run per task.

Each run checks: exit 0, the loss at the end below the loss at the start, the saved model
reloads and predicts, metrics.json holds the task's metrics. The sequence-classification run
also checks LoRA without task_type trains the classifier, fractional logging/save steps, the
samples each rank sees, the progress file, permissions and the loss curve, checkpoint marks,
reports printed once, and another job continuing one of its checkpoints; the
token-classification run kills a worker and checks the restarted group resumes; the causal-LM
run packs its samples.
"""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest
import torch

from kubetune.contract import checkpoints, layout, records
from tests import tiny_models as tm
from tests.trainer.trainer_jobs import (
    build_workspace,
    job_spec,
    run_trainer,
    trainer_command,
    trainer_env,
)

SEQ = "AutoModelForSequenceClassification"


def loss_went_down(losses: list[float]) -> bool:
    assert len(losses) >= 4, losses
    return sum(losses[-2:]) / 2 < sum(losses[:2]) / 2


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(scope="module")
def sequence_run(tmp_path_factory: pytest.TempPathFactory):
    """Tiny BERT classifier (dropout off), LoRA without task_type, merged model, 2 processes."""
    root = tmp_path_factory.mktemp("seq")
    build_workspace(
        root,
        lambda p: tm.tiny_bert_classifier(
            p, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        ),
        tm.sentiment_rows(64),
        tm.sentiment_rows(32, seed=1),
    )
    training = {
        "per_device_train_batch_size": 4,
        "num_train_epochs": 2,
        "learning_rate": 5e-2,
        "logging_steps": 0.01,
        "save_strategy": "steps",
        "save_steps": 0.25,
        "eval_strategy": "epoch",
    }
    spec = job_spec(
        SEQ,
        training,
        lora={"r": 8, "lora_alpha": 16},
        merge_adapter=True,
        evaluate_before_training=True,
    )
    run = run_trainer(
        root,
        spec,
        nproc=2,
        env={"KUBETUNE_TRACE_SAMPLES": str(root / "trace"), records.PROGRESS_LOG_ENV: "1"},
    ).check()
    return root, spec, run


def test_sequence_classification_trains_saves_and_reloads(sequence_run):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    root, _, run = sequence_run
    assert loss_went_down(run.losses), run.losses
    metrics = run.metrics
    for key in (
        "eval_accuracy",
        "eval_f1",
        "eval_loss",
        "train_runtime",
        "train_samples_per_second",
        "train_tokens_per_second",
        "train_loss",
    ):
        assert key in metrics, (key, metrics)
    assert metrics["global_step"] == 16
    # evaluate_before_training: the untrained model's figures, from the same eval split.
    # (this tiny model does not generalise to the eval texts, so only the figures' presence and
    # that they describe a different model are checked; make demo shows 0.5 -> 0.98)
    assert "eval_before_accuracy" in metrics and "eval_before_f1" in metrics
    assert metrics["eval_before_loss"] != metrics["eval_loss"], metrics

    model_dir = run.output_dir / "model"
    adapter_config = json.loads((model_dir / "adapter_config.json").read_text())
    # The model the user named, not the job's workspace that is gone once the job is deleted.
    assert adapter_config["base_model_name_or_path"] == "/models/tiny"
    assert json.loads((model_dir / "labels.json").read_text()) == ["0", "1"]
    base = AutoModelForSequenceClassification.from_pretrained(
        layout.Workspace(Path(root)).model_path(), num_labels=2
    )
    original_classifier = base.classifier.weight.detach().clone()
    adapted = PeftModel.from_pretrained(base, model_dir).eval()
    merged = AutoModelForSequenceClassification.from_pretrained(
        run.output_dir / "merged_model"
    ).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    batch = tokenizer(
        ["the movie was great", "the plot was awful"], return_tensors="pt", padding=True
    )
    with torch.no_grad():
        adapted_logits = adapted(**batch).logits
        merged_logits = merged(**batch).logits
    assert merged_logits.shape == (2, 2)
    assert torch.allclose(adapted_logits, merged_logits, atol=1e-4)
    # LoraConfig had no task_type: the classifier must still have been trained.
    assert not torch.allclose(merged.classifier.weight, original_classifier)


def test_fractional_logging_and_save_steps(sequence_run):
    _, _, run = sequence_run
    # 64 samples / (2 ranks x 4) = 8 steps per epoch, 16 in all: 0.01 -> every step, 0.25 -> every 4.
    logged_steps = [e["step"] for e in run.log_history if "loss" in e]
    assert logged_steps == list(range(1, 17))
    checkpoints = sorted(int(p.name.split("-")[1]) for p in run.output_dir.glob("checkpoint-*"))
    assert checkpoints == [4, 8, 12, 16]


def test_checkpoints_are_marked_with_the_job_uid(sequence_run):
    _, _, run = sequence_run
    for folder in run.output_dir.glob("checkpoint-*"):
        assert checkpoints.owner(folder) == "test-job-uid", folder


def test_reports_print_once_per_job_and_the_final_evaluation_runs_once(sequence_run):
    _, _, run = sequence_run
    # Both ranks load the model; only the main process shows transformers' loading bar.
    assert run.stderr.count("Loading weights: 100%") == 1, run.stderr[-3000:]
    # eval_on_start and one evaluation per epoch; the last one is of the final model and is
    # not run (nor printed) again after training.
    evaluations = [line for line in run.stdout.splitlines() if line.startswith("{'eval_loss'")]
    assert len(evaluations) == 3, evaluations
    final = [e for e in run.log_history if "eval_loss" in e][-1]
    assert run.metrics["eval_loss"] == final["eval_loss"]
    assert run.metrics["eval_accuracy"] == final["eval_accuracy"]


def test_a_new_job_continues_another_runs_checkpoint_when_asked(sequence_run, tmp_path):
    """resume_from_checkpoint names a checkpoint of another job; its output_dir is absolute."""
    import shutil

    root, spec, run = sequence_run
    other = tmp_path / "ws"
    for name in (layout.MODEL_DIR, layout.DATASET_DIR):
        shutil.copytree(root / name, other / name)
    shutil.copy(root / layout.MARKER_FILE, other / layout.MARKER_FILE)
    continued = tmp_path / "continued"
    again = json.loads(json.dumps(spec))
    again["uid"] = "newcomer"
    again["trainer"]["training_arguments"].update(
        output_dir=str(continued),
        resume_from_checkpoint=str(run.output_dir / "checkpoint-12"),
        per_device_train_batch_size=8,  # one process: the global batch of the 2-process run
        save_strategy="no",
        eval_strategy="no",
    )
    again["trainer"].update(merge_adapter=False, evaluate_before_training=False)
    resumed = run_trainer(other, again, nproc=0).check()
    metrics = resumed.metrics
    assert metrics["restarted_from_step"] == 12 and metrics["global_step"] == 16
    losses = {e["step"]: e["loss"] for e in resumed.log_history if "loss" in e}
    assert sorted(losses) == list(range(1, 17))  # 1-12 from the checkpoint, 13-16 trained now
    assert losses[3] == next(e["loss"] for e in run.log_history if e.get("step") == 3)
    # train_loss covers the whole run, not only the 4 steps trained after the resume.
    assert metrics["train_loss"] == pytest.approx(sum(losses.values()) / 16, rel=1e-6)
    assert sorted(p.name for p in run.output_dir.glob("checkpoint-*")) == [
        "checkpoint-12",
        "checkpoint-16",
        "checkpoint-4",
        "checkpoint-8",
    ]
    assert not list(continued.glob("checkpoint-*"))


def test_each_sample_is_seen_once_per_epoch_across_ranks(sequence_run):
    """With the default length-grouped order, which must stay one partition per epoch."""
    root, _, run = sequence_run
    assert "train order: each step's batches hold samples of similar length" in run.stderr
    ranks = [
        [int(line) for line in (root / "trace" / f"rank-{r}.txt").read_text().split()]
        for r in (0, 1)
    ]
    assert [len(seen) for seen in ranks] == [64, 64]  # 2 epochs x 32 samples per rank
    for epoch in (0, 1):
        seen = ranks[0][epoch * 32 : (epoch + 1) * 32] + ranks[1][epoch * 32 : (epoch + 1) * 32]
        assert sorted(seen) == list(range(64)), f"epoch {epoch}: {sorted(seen)}"
    assert set(ranks[0][:32]).isdisjoint(ranks[1][:32])
    assert ranks[0][:32] != ranks[0][32:]  # a new order each epoch


def test_two_processes_train_like_one_process_with_the_same_global_batch(sequence_run, tmp_path):
    """Every step's loss matches: the ranks exchange gradients (also after evaluate_before_training)."""
    _root, spec, run = sequence_run
    single = tmp_path / "single"
    build_workspace(
        single,
        lambda p: tm.tiny_bert_classifier(
            p, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0
        ),
        tm.sentiment_rows(64),
        tm.sentiment_rows(32, seed=1),
    )
    args = spec["trainer"]["training_arguments"]
    one = json.loads(json.dumps(spec))
    one["trainer"]["training_arguments"] = {
        **args,
        "per_device_train_batch_size": 8,
        "save_strategy": "no",
        "eval_strategy": "no",
        "logging_steps": 1,
    }
    one["trainer"]["merge_adapter"] = False
    one["trainer"]["evaluate_before_training"] = False
    single_run = run_trainer(single, one, nproc=1).check()
    assert len(single_run.losses) == len(run.losses) == 16
    # Float drift over 16 steps stays under 0.005; ranks that do not exchange gradients drift
    # apart by 0.09 (measured with the evaluate-before-train bug this test guards against).
    assert single_run.losses == pytest.approx(run.losses, abs=1e-2), (single_run.losses, run.losses)


def test_progress_file_permissions_and_loss_curve(sequence_run):
    root, _, run = sequence_run
    progress = json.loads((root / layout.PROGRESS_FILE).read_text())
    assert progress["status"] == "done"
    assert progress["step"] == progress["total_steps"] == 16
    assert progress["epoch"] == pytest.approx(2.0)
    for key in ("loss", "learning_rate", "samples_per_second", "eta_seconds", "updated_at"):
        assert progress[key] is not None, key
    assert progress["restarted_from_step"] is None
    # As on Kubernetes: rank 0 alone also prints each record, the last one as the file holds it.
    printed = [line for line in run.stdout.splitlines() if line.startswith("kubetune-progress ")]
    assert records.last_progress_in_log(run.stdout) == progress
    statuses = [json.loads(line.split(" ", 1)[1])["status"] for line in printed]
    assert statuses.count("done") == 1 and statuses.count("saving") == 1, statuses
    assert (run.output_dir / "loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for path in [run.output_dir, *run.output_dir.rglob("*")]:
        assert mode(path) == (0o755 if path.is_dir() else 0o644), path
    assert not list((root / layout.DATASET_DIR).rglob("cache-*")), (
        "cache files written into dataset/"
    )
    assert list((root / ".kubetune-cache").glob("*.arrow")), "preprocessing was not cached"


def test_token_classification_resumes_after_a_worker_is_killed(tmp_path):
    """Full fine-tuning; one worker is killed after the first checkpoint; the group is run again."""
    import psutil
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    root = build_workspace(
        tmp_path / "ws", tm.tiny_bert_masked_lm, tm.ner_rows(64), tm.ner_rows(32, seed=1)
    )
    training = {
        "per_device_train_batch_size": 4,
        "num_train_epochs": 2,
        "learning_rate": 5e-3,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": 4,
    }
    spec = job_spec("AutoModelForTokenClassification", training)
    spec_file = root / "jobspec.json"
    spec_file.write_text(json.dumps(spec))
    output_dir = root / "outputs" / "out"
    env = trainer_env({"KUBETUNE_DEBUG_STEP_DELAY": "0.3"})
    with subprocess.Popen(
        trainer_command(spec_file, root, nproc=2),
        env=env,
        cwd=Path(__file__).parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    ) as agent:
        deadline = time.monotonic() + 240
        while not (output_dir / "checkpoint-4" / "trainer_state.json").is_file():
            assert agent.poll() is None, agent.communicate()[1][-4000:]
            assert time.monotonic() < deadline, "no checkpoint-4 in time"
            time.sleep(0.05)
        workers = psutil.Process(agent.pid).children()
        assert len(workers) == 2, workers
        workers[-1].send_signal(signal.SIGKILL)
        agent.communicate(timeout=120)
    assert agent.returncode != 0  # the group failed with its worker
    assert not (output_dir / "metrics.json").exists()

    rerun = run_trainer(root, spec, env={"KUBETUNE_DEBUG_STEP_DELAY": "0"}).check()
    stderr = rerun.stderr
    metrics = json.loads((output_dir / "metrics.json").read_text())
    assert metrics["restarted_from_step"] is not None and 4 <= metrics["restarted_from_step"] < 16
    assert metrics["global_step"] == 16
    progress = json.loads((root / layout.PROGRESS_FILE).read_text())
    assert progress["restarted_from_step"] == metrics["restarted_from_step"]
    assert f"resuming from {output_dir / 'checkpoint-'}" in stderr
    history = json.loads((output_dir / "trainer_state.json").read_text())["log_history"]
    steps = [e["step"] for e in history if "loss" in e]
    assert steps == list(range(1, 17)), steps  # no step trained twice, none skipped
    losses = [e["loss"] for e in history if "loss" in e]
    assert loss_went_down(losses)
    # The whole run's train loss, not only that of the steps after the restart.
    assert metrics["train_loss"] == pytest.approx(sum(losses) / 16, rel=1e-6)

    for key in ("eval_f1", "eval_precision", "eval_recall", "eval_accuracy", "eval_loss"):
        assert key in metrics, (key, metrics)
    model = AutoModelForTokenClassification.from_pretrained(output_dir / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(output_dir / "model")
    assert set(model.config.id2label.values()) == {"B-LOC", "B-PER", "I-LOC", "O"}
    batch = tokenizer(
        [["alice", "the", "paris", "rome"]], is_split_into_words=True, return_tensors="pt"
    )
    with torch.no_grad():
        tags = model(**batch).logits.argmax(-1)[0, 1:-1].tolist()
    assert len(tags) == 4 and all(model.config.id2label[t] in model.config.label2id for t in tags)


def test_question_answering_with_lora_without_task_type(tmp_path):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    root = build_workspace(
        tmp_path, tm.tiny_bert_masked_lm, tm.squad_rows(64), tm.squad_rows(32, seed=1)
    )
    training = {
        "per_device_train_batch_size": 4,
        "num_train_epochs": 2,
        "learning_rate": 2e-2,
        "logging_steps": 1,
    }
    spec = job_spec(
        "AutoModelForQuestionAnswering",
        training,
        lora={"r": 8, "lora_alpha": 16},
        merge_adapter=True,
        length_grouping=False,
    )
    run = run_trainer(root, spec).check()
    assert "train order" not in run.stderr  # length_grouping=False keeps the plain shuffle
    assert loss_went_down(run.losses), run.losses
    assert {"eval_exact_match", "eval_f1", "eval_loss"} <= set(run.metrics), run.metrics
    model = AutoModelForQuestionAnswering.from_pretrained(run.output_dir / "merged_model").eval()
    tokenizer = AutoTokenizer.from_pretrained(run.output_dir / "merged_model")
    batch = tokenizer("where bob lives ?", "the film bob lives in oslo .", return_tensors="pt")
    with torch.no_grad():
        out = model(**batch)
    assert out.start_logits.shape == batch["input_ids"].shape


def test_causal_lm_chat_messages_with_lora_and_merge(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = build_workspace(tmp_path, tm.tiny_llama, tm.chat_rows(64), tm.chat_rows(16, seed=1))
    training = {
        "per_device_train_batch_size": 4,
        "num_train_epochs": 2,
        "learning_rate": 3e-2,
        "logging_steps": 1,
    }
    # As in Kubeflow's TinyLlama example, resume_from_checkpoint=True on a fresh run.
    training["resume_from_checkpoint"] = True
    spec = job_spec(
        "AutoModelForCausalLM",
        training,
        lora={"r": 8, "lora_alpha": 16},
        merge_adapter=True,
        packing=True,
        max_length=48,
    )
    run = run_trainer(root, spec).check()
    assert run.metrics["restarted_from_step"] is None
    assert loss_went_down(run.losses), run.losses
    assert {"eval_loss", "eval_perplexity", "train_perplexity", "train_tokens_per_second"} <= set(
        run.metrics
    )
    merged = run.output_dir / "merged_model"
    model = AutoModelForCausalLM.from_pretrained(merged).eval()
    tokenizer = AutoTokenizer.from_pretrained(merged)
    assert tokenizer.chat_template
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "bob lives in rome . where bob lives ?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    generated = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert (
        generated.shape[1] == prompt["input_ids"].shape[1] + 4
        or tokenizer.eos_token_id in generated[0]
    )


def test_masked_lm_full_fine_tuning(tmp_path):
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    root = build_workspace(tmp_path, tm.tiny_bert_masked_lm, tm.lm_rows(64), tm.lm_rows(16, seed=1))
    training = {
        "per_device_train_batch_size": 4,
        "num_train_epochs": 2,
        "learning_rate": 1e-2,
        "logging_steps": 1,
    }
    run = run_trainer(root, job_spec("AutoModelForMaskedLM", training)).check()
    assert loss_went_down(run.losses), run.losses
    assert {"eval_loss", "eval_perplexity"} <= set(run.metrics)
    model = AutoModelForMaskedLM.from_pretrained(run.output_dir / "model").eval()
    tokenizer = AutoTokenizer.from_pretrained(run.output_dir / "model")
    batch = tokenizer("bob lives [MASK] oslo .", return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits
    assert logits.shape == (*batch["input_ids"].shape, len(tokenizer))


def test_image_classification_with_lora(tmp_path):
    from datasets import ClassLabel, Features, Image
    from transformers import AutoImageProcessor, AutoModelForImageClassification

    features = Features({"image": Image(), "label": ClassLabel(names=["red", "blue"])})
    root = build_workspace(
        tmp_path, tm.tiny_vit, tm.image_rows(64), tm.image_rows(32, seed=1), features=features
    )
    training = {
        "per_device_train_batch_size": 4,
        "num_train_epochs": 2,
        "learning_rate": 1e-2,
        "logging_steps": 1,
    }
    spec = job_spec(
        "AutoModelForImageClassification",
        training,
        lora={"r": 8, "lora_alpha": 16},
        merge_adapter=True,
    )
    run = run_trainer(root, spec).check()
    assert loss_went_down(run.losses), run.losses
    assert run.metrics["eval_accuracy"] >= 0.9, run.metrics
    merged = run.output_dir / "merged_model"
    model = AutoModelForImageClassification.from_pretrained(merged).eval()
    assert model.config.id2label == {0: "red", 1: "blue"}
    processor = AutoImageProcessor.from_pretrained(merged)
    images = [row["image"] for row in tm.image_rows(4, seed=2)]
    with torch.no_grad():
        predicted = model(**processor(images, return_tensors="pt")).logits.argmax(-1).tolist()
    assert predicted == [0, 1, 0, 1]
