"""Whose checkpoints a run resumes from: the job's own (marked with its uid), or the one the
user asked for with resume_from_checkpoint; another job's in the way are refused, by the local
backend before anything is created and by the trainer itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubetune.contract import checkpoints, layout
from kubetune.contract.checkpoints import resume_point
from kubetune.runtime.cli import main
from tests import tiny_models as tm
from tests.trainer.trainer_jobs import ERROR_PREFIX, job_spec

SEQ = "AutoModelForSequenceClassification"


def checkpoint(output_dir: Path, step: int, uid: str | None, complete: bool = True) -> Path:
    folder = output_dir / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    if complete:
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    if uid is not None:
        checkpoints.mark(folder, uid, "default/x")
    return folder


def test_a_job_spec_carries_a_new_uid_that_round_trips_and_old_specs_still_load(tmp_path):
    import transformers

    from kubetune import HuggingFaceModelParams, HuggingFaceTrainerParams, LocalDatasetParams
    from kubetune.contract.spec import JobSpec
    from kubetune.params.job import build_job_spec

    def build() -> JobSpec:
        return build_job_spec(
            name="x",
            model_provider_parameters=HuggingFaceModelParams(
                model_uri="hf://org/model",
                transformer_type=transformers.AutoModelForSequenceClassification,
            ),
            dataset_provider_parameters=LocalDatasetParams(
                path=str(tm.sentiment_csv(tmp_path / "d.csv"))
            ),
            trainer_parameters=HuggingFaceTrainerParams(
                training_parameters=transformers.TrainingArguments(output_dir="out")
            ),
        )[0]

    spec = build()
    assert len(spec.uid or "") == 32 and int(spec.uid or "", 16) >= 0
    assert build().uid != spec.uid
    assert JobSpec.from_json(spec.to_json()) == spec
    old = json.loads(spec.to_json())
    del old["uid"]
    assert JobSpec.from_dict(old).uid is None


def test_a_run_resumes_from_its_own_latest_checkpoint_never_from_another_jobs(tmp_path):
    out = tmp_path / "out"
    assert resume_point(out, "me", None) is None  # no folder yet: start fresh
    checkpoint(out, 4, "me")
    own = checkpoint(out, 8, "me")
    checkpoint(out, 12, "me", complete=False)  # killed while saving
    assert resume_point(out, "me", None) == own
    checkpoint(out, 20, "other")
    checkpoint(out, 24, None)  # written by something that does not mark checkpoints
    assert resume_point(out, "me", None) == own
    assert resume_point(out, "me", True) == own
    # A restarted job continues its own progress rather than the checkpoint it started from.
    assert resume_point(out, "me", str(out / "checkpoint-20")) == own
    # A spec from before checkpoints were marked takes every checkpoint as its own.
    assert resume_point(out, None, None) == out / "checkpoint-24"


@pytest.mark.parametrize("asked", [None, False, True])
def test_another_jobs_checkpoints_in_the_way_are_refused_naming_the_ways_out(tmp_path, asked):
    out = tmp_path / "shared"
    checkpoint(out, 4, "other")
    latest = checkpoint(out, 8, None)
    with pytest.raises(ValueError) as error:
        resume_point(out, "me", asked)
    message = str(error.value)
    assert (
        f"training_parameters.output_dir={str(out)!r}: holds checkpoints of another job" in message
    )
    assert "checkpoint-4, checkpoint-8" in message
    assert "give another output_dir" in message and f"delete {out}" in message
    assert f"set resume_from_checkpoint={str(latest)!r} to continue that run" in message


def test_resume_from_checkpoint_names_a_checkpoint_or_asks_for_the_latest(tmp_path):
    out = tmp_path / "out"
    elsewhere = checkpoint(tmp_path / "earlier", 12, "other")
    assert resume_point(out, "me", str(elsewhere)) == elsewhere
    assert resume_point(out, "me", True) is None  # True on a fresh run: start fresh
    inside = checkpoint(out, 4, "other")
    assert resume_point(out, "me", "checkpoint-4") == inside  # relative: in the output directory
    with pytest.raises(ValueError, match=r"resume_from_checkpoint='/no/such': /no/such is not a"):
        resume_point(out, "me", "/no/such")
    checkpoint(out, 6, "other", complete=False)
    with pytest.raises(ValueError, match=r"checkpoint-6 is not a checkpoint"):
        resume_point(out, "me", "checkpoint-6")


def test_the_trainer_refuses_foreign_checkpoints_before_loading_anything(tmp_path, capsys):
    root = tmp_path / "ws"
    root.mkdir()
    layout.write_json_atomic(root / layout.MARKER_FILE, {})  # no model or data needed
    shared = tmp_path / "shared"
    checkpoint(shared, 8, "other")
    spec_file = root / "jobspec.json"
    spec_file.write_text(json.dumps(job_spec(SEQ, {"output_dir": str(shared)})))
    code = main(["--spec", str(spec_file), "--workspace", str(root)])
    last = capsys.readouterr().err.rstrip().splitlines()[-1]
    assert code == 1 and last.startswith(ERROR_PREFIX)
    assert f"output_dir={str(shared)!r}: holds checkpoints of another job (checkpoint-8)" in last
    assert not (shared / "metrics.json").exists()


def local_spec(tmp_path: Path, **training):
    import transformers

    from kubetune import HuggingFaceModelParams, HuggingFaceTrainerParams, LocalDatasetParams
    from kubetune.params.job import build_job_spec

    model = tm.tiny_bert_classifier(tmp_path / "model")
    return build_job_spec(
        name="newcomer",
        model_provider_parameters=HuggingFaceModelParams(
            model_uri=str(model), transformer_type=transformers.AutoModelForSequenceClassification
        ),
        dataset_provider_parameters=LocalDatasetParams(
            path=str(tm.sentiment_csv(tmp_path / "d.csv"))
        ),
        trainer_parameters=HuggingFaceTrainerParams(
            training_parameters=transformers.TrainingArguments(**training)
        ),
    )


def test_the_local_backend_refuses_before_creating_anything(tmp_path):
    from kubetune.training.backends.local.backend import LocalBackend

    home = tmp_path / "home"
    shared = tmp_path / "shared"
    checkpoint(shared, 8, "other")
    backend = LocalBackend(home=home)
    spec, secrets = local_spec(tmp_path, output_dir=str(shared))
    with pytest.raises(ValueError) as error:
        backend.create_job(spec, secrets)
    message = str(error.value)
    assert message.startswith("job 'newcomer': training_parameters.output_dir=")
    assert "give another output_dir" in message and "resume_from_checkpoint=" in message
    missing = str(tmp_path / "gone" / "checkpoint-3")
    spec, secrets = local_spec(tmp_path / "b", output_dir="out", resume_from_checkpoint=missing)
    with pytest.raises(ValueError, match=rf"resume_from_checkpoint='{missing}': .* is not a"):
        backend.create_job(spec, secrets)
    assert not (home / "jobs").exists() or not any((home / "jobs").rglob("*"))
    # Continuing the other job's run deliberately, or True on a fresh job, passes the check.
    spec, _ = local_spec(
        tmp_path / "c", output_dir=str(shared), resume_from_checkpoint=str(shared / "checkpoint-8")
    )
    workspace = tmp_path / "job" / "workspace"
    asked = spec.trainer.resume_from_checkpoint
    assert checkpoints.problems_before_creation(spec.output_path(workspace), asked) == []
    spec, _ = local_spec(tmp_path / "d", output_dir="out", resume_from_checkpoint=True)
    asked = spec.trainer.resume_from_checkpoint
    assert checkpoints.problems_before_creation(spec.output_path(workspace), asked) == []


def test_a_job_file_may_set_resume_from_checkpoint_to_true_or_a_path(tmp_path):
    from kubetune.jobfile import JobFileError, load_job_file

    def job_file(value: str) -> Path:
        path = tmp_path / "job.yaml"
        path.write_text(
            "name: again\n"
            "model_provider_parameters: {model_uri: hf://org/m, transformer_type: AutoModelForCausalLM}\n"
            "dataset_provider_parameters: {hf: {repo_id: org/d}}\n"
            f"trainer_parameters: {{training_parameters: {{output_dir: out, resume_from_checkpoint: {value}}}}}\n"
        )
        return path

    for value, expected in (("true", True), ("/ckpt/checkpoint-8", "/ckpt/checkpoint-8")):
        kwargs = load_job_file(job_file(value))
        assert kwargs["trainer_parameters"].training_parameters.resume_from_checkpoint == expected
    with pytest.raises(JobFileError, match="resume_from_checkpoint=3: must be"):
        load_job_file(job_file("3"))
