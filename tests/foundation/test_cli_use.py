"""Using `kubetune` (issue 13): names cannot leave the home, -n goes anywhere, pipes close
quietly, progress prints plain lines without a terminal, render warns about this machine's
paths, train says at once what it does. No job runs here: job folders are written by hand."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from kubetune import cli
from kubetune.contract.conditions import Condition
from kubetune.training.backends.local.jobdir import (
    JobDir,
    JobStatus,
    job_dir,
    kept_outputs_dir,
    namespace_dir,
)
from kubetune.training.job import Job


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("KUBETUNE_HOME", str(path))
    monkeypatch.delenv("KUBETUNE_BACKEND", raising=False)
    return path


def write_job(
    home: Path, name: str, output_dir: Path | None = None, namespace: str = "default"
) -> JobDir:
    """A finished job's folder as the local backend leaves it (no process behind it)."""
    job = JobDir(home / "jobs" / namespace / name)
    job.logs_dir.mkdir(parents=True)
    status = JobStatus(
        uid=uuid.uuid4().hex,
        name=name,
        namespace=namespace,
        num_workers=1,
        output_dir=str(output_dir or job.workspace / "outputs" / "out"),
    )
    status.set_condition(Condition.SUCCEEDED, "JobSucceeded", "done")
    job.write_status(status)
    return job


# --- item 8: names reach no path unchecked -----------------------------------------------------


def test_a_name_cannot_reach_another_home(home: Path, tmp_path: Path, capsys) -> None:
    write_job(tmp_path / "other-home", "x")
    code = cli.main(["status", "../../../other-home/jobs/default/x"])
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "name='../../../other-home/jobs/default/x': must be a DNS-1035 label" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["-n", "../../../other-home/jobs/default", "list"],
        ["logs", "../x"],
        ["delete", "x/../../y"],
    ],
)
def test_no_command_takes_a_path_for_a_name(home: Path, tmp_path: Path, capsys, argv) -> None:
    write_job(tmp_path / "other-home", "x")
    assert cli.main(argv) == 1
    assert "must be a DNS-1" in capsys.readouterr().err
    assert (tmp_path / "other-home" / "jobs" / "default" / "x").is_dir()


def test_job_folders_are_only_reached_through_checked_names(tmp_path: Path) -> None:
    assert job_dir(tmp_path, "team-a", "job-1").path == tmp_path / "jobs" / "team-a" / "job-1"
    for call in (
        lambda: job_dir(tmp_path, "default", "../x"),
        lambda: job_dir(tmp_path, "default", "/etc"),
        lambda: namespace_dir(tmp_path, ".."),
        lambda: kept_outputs_dir(tmp_path, "default", "a/../../b", "0" * 32),
    ):
        with pytest.raises(ValueError, match="must be a DNS-1"):
            call()


# --- item 7: delete never removes what lies outside the job folder -----------------------------


def test_delete_leaves_an_absolute_output_dir_alone(home: Path, tmp_path: Path) -> None:
    from kubetune.training.backends.local.backend import LocalBackend

    outside = tmp_path / "my-outputs"
    outside.mkdir()
    (outside / "model.safetensors").write_text("weights")
    job = write_job(home, "abs", output_dir=outside)
    backend = LocalBackend(home=home)
    assert backend.kept_outputs_path("abs", "default") == outside
    backend.delete_job("abs", "default", keep_outputs=True)
    assert not job.path.exists()
    assert (outside / "model.safetensors").read_text() == "weights"


# --- item 19: -n after the command, pipes, progress, first output ------------------------------


def test_namespace_goes_before_or_after_the_command(home: Path, capsys) -> None:
    assert cli.main(["list", "-n", "team-a"]) == 0
    assert capsys.readouterr().out.strip() == "no jobs in namespace team-a"
    assert cli.main(["--namespace", "team-b", "list"]) == 0
    assert capsys.readouterr().out.strip() == "no jobs in namespace team-b"
    assert cli.main(["status", "ghost", "--namespace", "team-c"]) == 1
    assert "team-c/ghost not found" in capsys.readouterr().err


def test_logs_into_a_closed_pipe_end_quietly(home: Path) -> None:
    job = write_job(home, "chatty")
    job.log_path("initializer").write_text("".join(f"line {i}\n" for i in range(50_000)))
    process = subprocess.Popen(
        [sys.executable, "-m", "kubetune.cli", "logs", "chatty"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"[initializer] line 0")
    process.stdout.close()  # as `| head -1` does
    code = process.wait(timeout=120)
    err = process.stderr.read().decode()
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code == cli.EXIT_BROKEN_PIPE


def progress(step: int, total: int = 100) -> Job:
    return Job(
        name="tune",
        namespace="default",
        backend="local",
        progress={"step": step, "total_steps": total, "loss": 0.5, "eta_seconds": 70},
    )


def test_progress_without_a_terminal_is_plain_lines_not_too_often() -> None:
    stream = io.StringIO()
    now = [0.0]
    bar = cli.ProgressBar("tune", stream=stream, interval=15, clock=lambda: now[0])
    for second, step in [(0, 1), (5, 2), (10, 3), (16, 4), (20, 5), (21, 5)]:
        now[0] = second
        bar.update(progress(step))
    bar.close()  # the last state, not printed yet
    assert stream.getvalue().splitlines() == [
        "tune: step 1/100, loss=0.5, eta=1:10",
        "tune: step 4/100, loss=0.5, eta=1:10",
        "tune: step 5/100, loss=0.5, eta=1:10",
    ]
    assert "\r" not in stream.getvalue()


def test_the_last_step_prints_at_once() -> None:
    stream = io.StringIO()
    bar = cli.ProgressBar("tune", stream=stream, clock=lambda: 0.0)
    bar.update(progress(1, total=2))
    bar.update(progress(2, total=2))
    assert stream.getvalue().splitlines()[-1].startswith("tune: step 2/2")


def test_train_says_what_it_does_before_the_slow_imports(home: Path, tmp_path: Path, capsys):
    path = tmp_path / "job.yaml"
    path.write_text("name: x\n")
    assert cli.main(["train", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"kubetune: checking {path} (loading transformers and peft) ...\n")
    assert "model_provider_parameters: missing" in err


# --- item 20: render warns about this machine's paths ------------------------------------------


def render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, text: str) -> tuple[str, str]:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent(text))
    assert cli.main(["render", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "kind: PyTorchJob" in out
    return out, err


def test_render_warns_that_pods_cannot_read_local_paths(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "models" / "bert").mkdir(parents=True)
    (tmp_path / "train.csv").write_text("text,label\na,0\n")
    _, err = render(
        tmp_path,
        monkeypatch,
        capsys,
        f"""\
        name: local-files
        model_provider_parameters: {{model_uri: ./models/bert, transformer_type: AutoModelForMaskedLM}}
        dataset_provider_parameters: {{local: {{path: train.csv}}}}
        trainer_parameters:
          training_parameters: {{output_dir: {tmp_path}/outputs}}
        """,
    )
    warnings = [line for line in err.splitlines() if line.startswith("kubetune: warning: ")]
    assert len(warnings) == 3, err
    model, dataset, outputs = warnings
    assert str(tmp_path / "models" / "bert") in model and "s3://" in model and "hf://" in model
    assert str(tmp_path / "train.csv") in dataset and "S3DatasetParams" in dataset
    assert "PVC" in model and "PVC" in dataset
    assert f"{tmp_path}/outputs" in outputs and "relative output_dir" in outputs


def test_render_of_a_job_pods_can_run_warns_of_nothing(tmp_path, monkeypatch, capsys) -> None:
    _, err = render(
        tmp_path,
        monkeypatch,
        capsys,
        """\
        name: hub-only
        model_provider_parameters: {model_uri: hf://org/bert, transformer_type: AutoModelForMaskedLM}
        dataset_provider_parameters: {hf: {repo_id: org/data}}
        trainer_parameters:
          training_parameters: {output_dir: out}
        """,
    )
    assert "warning" not in err
