"""`kubetune` end to end through the installed console script, and the job file loader."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune import cli
from kubetune.jobfile import JobFileError, load_job_file

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "tiny-sentiment.yaml"
KUBETUNE = Path(sys.executable).parent / "kubetune"


def kubetune(
    *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs the installed console script (KUBETUNE_HOME from `env`, else the `home` fixture's)."""
    return subprocess.run(
        [str(KUBETUNE), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        cwd=REPO,
    )


def prepare_example_model() -> Path:
    """examples/models/all-MiniLM-L6-v2, as `python examples/prepare_models.py` links it."""
    spec = importlib.util.spec_from_file_location(
        "prepare_models", REPO / "examples" / "prepare_models.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return Path(module.minilm())


@dataclass
class Trained:
    """`kubetune train examples/tiny-sentiment.yaml --follow`, run once for this module."""

    home: Path
    env: dict[str, str]
    run: subprocess.CompletedProcess[str]
    output_dir: Path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """The quickstart's example job, trained and followed to its end on a home of its own.
    test_delete_keeps_the_outputs_where_it_says, last of the tests using it, deletes the job."""
    assert KUBETUNE.exists(), f"{KUBETUNE}: the console script is missing; pip install -e ."
    home = tmp_path_factory.mktemp("kubetune-home")
    # TRANSFORMERS_VERBOSITY: what a user sees by default.
    env = {"KUBETUNE_HOME": str(home), "TRANSFORMERS_VERBOSITY": "warning"}
    prepare_example_model()
    run = kubetune("train", "examples/tiny-sentiment.yaml", "--follow", timeout=600, env=env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    output_dir = Path(run.stdout.split("outputs: ")[-1].strip().splitlines()[0])
    yield Trained(home, env, run, output_dir)
    if (home / "jobs" / "default" / "tiny-sentiment").exists():
        kubetune("delete", "tiny-sentiment", env=env)


def test_train_follow_prints_the_jobs_lines_and_its_end(trained: Trained) -> None:
    out = trained.run.stdout
    assert "job default/tiny-sentiment created" in out
    # worker-1 (rank 1) may print nothing: reports, warnings and evaluations print on the main
    # process only, and it may find the preprocessed data already cached by worker-0.
    for source in ("[initializer]", "[worker-0]"):
        assert source in out
    assert "all 2 worker(s) completed" in out
    assert "job default/tiny-sentiment Succeeded" in out
    # Both workers load the model; transformers' load report (the new classifier) shows once.
    reports = [line for line in out.splitlines() if "LOAD REPORT" in line]
    assert len(reports) == 1, reports


def test_train_follow_shows_a_live_progress_bar(trained: Trained) -> None:
    # On stderr: steps, loss and ETA.
    err = trained.run.stderr
    assert "tiny-sentiment:" in err and "step" in err and "loss=" in err and "eta=" in err


def test_the_example_job_learns(trained: Trained) -> None:
    assert (trained.output_dir / "model" / "adapter_config.json").is_file()  # the LoRA adapter
    # The quickstart's first job really learns, as the example says.
    metrics = json.loads((trained.output_dir / "metrics.json").read_text())
    assert metrics["eval_accuracy"] >= 0.9, metrics


def test_list_and_status_show_the_finished_job(trained: Trained) -> None:
    listed = kubetune("list", env=trained.env)
    assert listed.returncode == 0 and "tiny-sentiment" in listed.stdout
    assert "Succeeded" in listed.stdout
    status = kubetune("status", "tiny-sentiment", "--json", env=trained.env)
    job = json.loads(status.stdout)
    assert job["status"] == "Succeeded" and job["output_dir"] == str(trained.output_dir)
    assert job["progress"]["step"] == job["progress"]["total_steps"]
    assert "Succeeded" in kubetune("status", "tiny-sentiment", env=trained.env).stdout


def test_logs_and_followed_logs_of_an_ended_job_agree(trained: Trained) -> None:
    logs = kubetune("logs", "tiny-sentiment", env=trained.env)
    assert logs.returncode == 0 and "[worker-0]" in logs.stdout
    followed = kubetune("logs", "-f", "tiny-sentiment", env=trained.env)  # ends: the job has ended
    assert followed.returncode == 0 and followed.stdout.count("\n") == logs.stdout.count("\n")


REVIEWS = ["a wonderful, moving film", "a dull, awful mess"]


def predicted_labels(trained: Trained, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> list[str]:
    """`kubetune predict tiny-sentiment REVIEWS` (run in this process): each line's labels."""
    monkeypatch.setenv("KUBETUNE_HOME", str(trained.home))
    assert cli.main(["predict", "tiny-sentiment", *REVIEWS]) == 0
    out, err = capsys.readouterr()
    assert "loading its adapter on " + str(REPO / "examples/models/all-MiniLM-L6-v2") in err
    lines = out.splitlines()
    scores = [dict(pair.split() for pair in line.split(", ")) for line in lines]
    assert all(abs(sum(float(v) for v in s.values()) - 1) < 0.01 for s in scores), lines
    return [line.split()[0] for line in lines]


def test_predict_labels_texts_with_the_finished_jobs_adapter(trained, monkeypatch, capsys):
    from kubetune import pipeline_for_job
    from kubetune.training import TrainingClient

    assert predicted_labels(trained, monkeypatch, capsys) == ["positive", "negative"]
    pipe = pipeline_for_job("tiny-sentiment", client=TrainingClient(home=trained.home))
    assert pipe.task == "text-classification"
    assert [top["label"] for top in pipe(REVIEWS)] == ["positive", "negative"]
    # chat is for causal LMs: one line naming the job's model type
    assert cli.main(["chat", "tiny-sentiment"]) == 1
    err = capsys.readouterr().err
    assert (
        "chat needs an AutoModelForCausalLM, and its model is an AutoModelForSequenceClassification"
        in err
    )


def test_delete_keeps_the_outputs_where_it_says(trained: Trained) -> None:
    deleted = kubetune("delete", "tiny-sentiment", "--keep-outputs", env=trained.env)
    assert deleted.returncode == 0, deleted.stderr
    kept = Path(deleted.stdout.split("outputs kept in ")[-1].strip())
    assert (kept / "model").is_dir() and kept.is_relative_to(trained.home)
    assert not (trained.home / "jobs" / "default" / "tiny-sentiment").exists()
    assert_adapter_loads_without_the_job(kept / "model")
    missing = kubetune("status", "tiny-sentiment", env=trained.env)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_predict_answers_from_the_kept_outputs_after_delete(trained, monkeypatch, capsys):
    assert not (trained.home / "jobs" / "default" / "tiny-sentiment").exists()
    assert predicted_labels(trained, monkeypatch, capsys) == ["positive", "negative"]


def assert_adapter_loads_without_the_job(adapter: Path) -> None:
    """With plain transformers + PEFT: the base model as the job file named it, the label names."""
    import torch
    from peft import AutoPeftModelForSequenceClassification
    from transformers import AutoTokenizer

    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(REPO / "examples/models/all-MiniLM-L6-v2")
    labels = json.loads((adapter / "labels.json").read_text())
    assert labels == ["negative", "positive"]
    model = AutoPeftModelForSequenceClassification.from_pretrained(str(adapter)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter))
    batch = tokenizer(
        ["a wonderful, moving film", "a dull, awful mess"], return_tensors="pt", padding=True
    )
    with torch.no_grad():
        predicted = model(**batch).logits.argmax(-1).tolist()
    assert [labels[i] for i in predicted] == ["positive", "negative"]


def test_namespace_applies_to_every_command(home):
    assert kubetune("--namespace", "team-a", "list").stdout.strip() == "no jobs in namespace team-a"
    gone = kubetune("-n", "team-a", "delete", "nothing")
    assert gone.returncode == 1 and "team-a/nothing not found" in gone.stderr


def test_example_job_file_becomes_train_arguments():
    prepare_example_model()
    kwargs = load_job_file(EXAMPLE)
    assert kwargs["name"] == "tiny-sentiment" and kwargs["num_workers"] == 2
    model = kwargs["model_provider_parameters"]
    assert model.model_uri == str(REPO / "examples" / "models" / "all-MiniLM-L6-v2")
    assert model.transformer_type_name == "AutoModelForSequenceClassification"
    dataset = kwargs["dataset_provider_parameters"]
    assert type(dataset).__name__ == "LocalDatasetParams"
    assert dataset.path == str(REPO / "examples" / "data" / "sentiment")
    trainer = kwargs["trainer_parameters"]
    assert trainer.training_parameters.num_train_epochs == 2
    assert trainer.lora_config.r == 8 and trainer.max_length == 48


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "job.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_job_file_problems_are_listed_together_with_key_paths(tmp_path):
    path = write(
        tmp_path,
        """
        name: Bad_Name
        num_workers: 0
        gpus: 1
        model_provider_parameters: {model_uri: ./missing, transformer_type: AutoModelForSequence}
        dataset_provider_parameters: {hf: {repo_id: yelp_review_full, splt: "train"}}
        trainer_parameters:
          training_parameters: {output_dir: out, num_epochs: 1}
          lora_config: {r: 8, lora_alpa: 8}
        """,
    )
    with pytest.raises(JobFileError) as error:
        load_job_file(path)
    message = str(error.value)
    for expected in (
        "8 problem(s)",
        "gpus: unknown key",
        "model_provider_parameters.model_uri='./missing'",
        "transformer_type='AutoModelForSequence'",
        "dataset_provider_parameters.hf.splt: unknown key of HuggingFaceDatasetParams; did you mean split?",
        "trainer_parameters.training_parameters.num_epochs: unknown key of TrainingArguments; did you mean num_train_epochs?",
        "trainer_parameters.lora_config.lora_alpa: unknown key of LoraConfig; did you mean lora_alpha",
        "name='Bad_Name'",
        "num_workers=0",
    ):
        assert expected in message, message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\n  bad: [\n", "not valid YAML"),
        ("- a list\n", "must be a mapping of train() arguments"),
        ("name: x\n", "model_provider_parameters: missing (required)"),
        (
            "name: x\nmodel_provider_parameters: {model_uri: a/b, transformer_type: AutoModelForMaskedLM}\n"
            "dataset_provider_parameters: {hf: {repo_id: a}, local: {path: x}}\n"
            "trainer_parameters: {training_parameters: {output_dir: o}}\n",
            "exactly one key naming the kind (hf, s3, local)",
        ),
    ],
)
def test_bad_job_files_are_rejected_clearly(tmp_path, text, expected):
    with pytest.raises(JobFileError, match=r"job\.yaml") as error:
        load_job_file(write(tmp_path, text))
    assert expected in str(error.value)


def test_local_paths_resolve_against_the_job_file_and_null_lora_means_full_fine_tuning(
    tmp_path, tiny_model, sentiment_data
):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "bert").symlink_to(tiny_model)
    (tmp_path / "data.csv").write_text(sentiment_data.read_text())
    path = write(
        tmp_path,
        """
        name: full
        model_provider_parameters: {model_uri: ./models/bert, transformer_type: AutoModelForSequenceClassification}
        dataset_provider_parameters: {local: {path: data.csv}}
        trainer_parameters:
          training_parameters: {output_dir: out}
          lora_config: null
        """,
    )
    kwargs = load_job_file(path)
    assert kwargs["model_provider_parameters"].model_uri == str(tmp_path / "models" / "bert")
    assert kwargs["dataset_provider_parameters"].path == str(tmp_path / "data.csv")
    assert kwargs["trainer_parameters"].lora_config is None


@pytest.mark.parametrize("api", ["pytorchjob", "trainjob"])
def test_render_prints_kubernetes_objects_without_a_kubeconfig(api, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert cli.main(["--namespace", "ml", "render", str(EXAMPLE), "--api", api]) == 0
    documents = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    kinds = [d["kind"] for d in documents]
    assert ("PyTorchJob" if api == "pytorchjob" else "TrainJob") in kinds
    assert all(d["metadata"]["namespace"] == "ml" for d in documents)


def test_cli_errors_are_one_line_and_exit_1(home, capsys, tmp_path):
    assert cli.main(["train", str(tmp_path / "nope.yaml")]) == 1
    assert capsys.readouterr().err.startswith("kubetune: error: ")
    assert cli.main(["logs", "ghost"]) == 1
    assert "default/ghost not found" in capsys.readouterr().err
