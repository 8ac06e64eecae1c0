"""`kubetune tune`, `kubetune trials`, and experiments in `list`, `status`, `delete` and `render`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml

from kubetune import cli
from kubetune.katib.cli import follow
from tests.katib.katib_helpers import LLM_EXAMPLE, LLM_NAMESPACE


@pytest.fixture
def llm_home(llm_run, monkeypatch: pytest.MonkeyPatch) -> dict:
    monkeypatch.setenv("KUBETUNE_HOME", str(llm_run["home"]))
    return llm_run


def test_trials_lists_values_status_and_objective(llm_home, capsys):
    assert cli.main(["-n", LLM_NAMESPACE, "trials", LLM_EXAMPLE]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["TRIAL", "STATUS", "learning_rate", "r", "TRAIN_LOSS"]
    report = llm_home["client"].get_experiment_report(LLM_EXAMPLE)
    for line, trial in zip(lines[1:], report.trials, strict=True):
        cells = line.split()
        assert cells[:4] == [
            trial.name,
            "Succeeded",
            trial.values["learning_rate"],
            trial.values["r"],
        ]
        assert float(cells[4]) == pytest.approx(trial.objective, rel=1e-5)
        assert (cells[5:] == ["best"]) is (trial.name == report.best_trial)
    assert cli.main(["-n", LLM_NAMESPACE, "trials", LLM_EXAMPLE, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in listed] == [t.name for t in report.trials]


def test_list_and_status_show_the_experiment(llm_home, capsys):
    assert cli.main(["list", "-n", LLM_NAMESPACE]) == 0
    out = capsys.readouterr().out
    report = llm_home["client"].get_experiment_report(LLM_EXAMPLE)
    assert report.best_trial in out.split("EXPERIMENT")[0]  # the best trial's job is a job
    row = out.split("EXPERIMENT")[1].splitlines()[1].split()
    assert row[:3] == [LLM_EXAMPLE, "Succeeded", "2/2"]
    assert cli.main(["status", LLM_EXAMPLE, "-n", LLM_NAMESPACE]) == 0
    status = capsys.readouterr().out
    assert f"experiment:  {LLM_NAMESPACE}/{LLM_EXAMPLE} (local)" in status
    assert "objective:   minimize train_loss" in status
    assert f"best trial:  {report.best_trial}: learning_rate=" in status
    assert str(llm_home["folder"].results_csv) in status
    assert cli.main(["status", LLM_EXAMPLE, "-n", LLM_NAMESPACE, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["best_trial"] == report.best_trial and len(data["trials"]) == 2


def test_following_prints_a_line_per_trial_then_the_end(llm_home):
    out = io.StringIO()
    client = llm_home["client"]
    assert follow(client, LLM_EXAMPLE, LLM_NAMESPACE, out=out, interval=0) == 0
    lines = out.getvalue().splitlines()
    report = client.get_experiment_report(LLM_EXAMPLE)
    first, second = sorted(report.trials, key=lambda t: t.completion_time or "")
    assert (
        lines[0].startswith("trial ")
        and f"{first.name} Succeeded: learning_rate={first.values['learning_rate']} r={first.values['r']} -> train_loss="
        in lines[0]
    )
    assert lines[0].endswith(f"(best {first.objective:.6g}: {first.name})")
    assert second.name in lines[1]
    assert lines[1].endswith(f"(best {report.best.objective:.6g}: {report.best_trial})")
    assert lines[2].startswith(f"experiment {LLM_NAMESPACE}/{LLM_EXAMPLE} Succeeded after ")
    assert lines[3].startswith(f"best trial: {report.best_trial}: ")
    assert lines[-1] == f"results: {llm_home['folder'].results_csv}"


EXPERIMENT = """
name: cli-search
resources_per_worker: {cpu: 1, memory: 1G}
model_provider_parameters: {model_uri: MODEL, transformer_type: AutoModelForSequenceClassification}
dataset_provider_parameters: {local: {path: DATA}}
trainer_parameters:
  training_parameters:
    output_dir: out
    max_steps: 2
    report_to: none
    learning_rate: {double: {min: 1.0e-5, max: 5.0e-4, distribution: logUniform}}
  lora_config:
    r: {int: {min: 4, max: 16}}
objective_metric_name: train_loss
objective_type: minimize
algorithm_name: random
max_trial_count: 4
parallel_trial_count: 1
"""


@pytest.fixture
def experiment_file(tmp_path: Path, tiny_model: Path, sentiment_data: Path) -> Path:
    path = tmp_path / "search.yaml"
    path.write_text(
        EXPERIMENT.replace("MODEL", str(tiny_model)).replace("DATA", str(sentiment_data))
    )
    return path


def test_render_prints_the_katib_experiment_of_an_experiment_file(experiment_file, capsys):
    assert cli.main(["render", str(experiment_file)]) == 0
    documents = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in documents] == ["ConfigMap", "PersistentVolumeClaim", "Experiment"]
    experiment = documents[-1]
    assert experiment["metadata"]["name"] == "cli-search"
    assert [p["name"] for p in experiment["spec"]["parameters"]] == ["learning_rate", "r"]
    assert experiment["spec"]["parameters"][0]["feasibleSpace"]["distribution"] == "logUniform"
    assert experiment["spec"]["trialTemplate"]["trialSpec"]["kind"] == "PyTorchJob"


def test_render_refuses_trainjob_trials_for_an_experiment_file(experiment_file, capsys):
    assert cli.main(["render", str(experiment_file), "--api", "trainjob"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "--api trainjob" in captured.err and "allowed for an experiment file" in captured.err


def test_tune_creates_the_experiment_and_delete_removes_it(home, experiment_file, capsys):
    assert cli.main(["tune", str(experiment_file)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "experiment default/cli-search created (local backend)",
        "see its trials with: kubetune -n default trials cli-search",
    ]
    folder = home / "experiments" / "default" / "cli-search"
    assert folder.is_dir()
    assert cli.main(["tune", str(experiment_file)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["delete", "cli-search"]) == 0
    assert (
        capsys.readouterr().out.strip() == "experiment default/cli-search deleted, with its trials"
    )
    assert not folder.exists()
    jobs = home / "jobs" / "default"
    assert not jobs.exists() or not any(jobs.iterdir())
    assert cli.main(["status", "cli-search"]) == 1
    assert "not found" in capsys.readouterr().err
