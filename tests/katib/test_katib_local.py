"""Hyperparameter searches on this machine, with real trials: Katib's LLM example runs to
Succeeded; a custom objective runs as function jobs; a killed controller reads back Failed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from kubetune.katib import KatibClient, search
from kubetune.katib.backends.local.store import experiment_dir
from tests.katib.katib_helpers import (
    LLM_EXAMPLE,
    LLM_NAMESPACE,
    llm_example,
    no_process_in,
)
from tests.local.local_jobs import wait_until

# --- Katib's LLM example (one run per session: the llm_run fixture) ----------------------------


def test_llm_example_runs_to_succeeded(llm_run):
    client = llm_run["client"]
    experiment = llm_run["experiment"]
    assert client.is_experiment_succeeded(LLM_EXAMPLE, experiment=experiment)
    assert experiment.status.conditions[-1].reason == "ExperimentMaxTrialsReached"
    assert experiment.status.trials == experiment.status.trials_succeeded == 2
    # wait_for_experiment_condition printed Katib's three status lines on its last poll
    assert (
        "Experiment Trials status: 2 Trials, 0 Pending Trials, 0 Running Trials, 2 Succeeded"
        in llm_run["printed"]
    )
    for trial in client.list_trials(LLM_EXAMPLE):
        values = {a.name: a.value for a in trial.spec.parameter_assignments}
        assert 1e-05 <= float(values["learning_rate"]) <= 5e-05
        assert 8 <= int(values["r"]) <= 32 and values["r"] == str(int(values["r"]))
        (metric,) = trial.status.observation.metrics
        assert metric.name == "train_loss" and float(metric.latest) > 0


def test_optimal_hyperparameters_are_the_best_row_of_the_results_table(llm_run):
    client, folder = llm_run["client"], llm_run["folder"]
    optimal = client.get_optimal_hyperparameters(LLM_EXAMPLE)
    with folder.results_csv.open() as f:
        rows = list(csv.DictReader(f))
    assert [r["trial"] for r in rows] == [t.metadata.name for t in client.list_trials(LLM_EXAMPLE)]
    best = min(rows, key=lambda r: float(r["objective"]))
    assert optimal.best_trial_name == best["trial"]
    assert {a.name: a.value for a in optimal.parameter_assignments} == {
        "learning_rate": best["learning_rate"],
        "r": best["r"],
    }
    (metric,) = optimal.observation.metrics
    assert float(metric.min) == float(best["objective"]) == float(best["train_loss"])
    results = json.loads(folder.results_json.read_text())
    assert results["best"]["trial"] == best["trial"]
    for png in (folder.objective_png, folder.parameters_png):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_best_trial_keeps_its_model_the_others_are_removed(llm_run):
    client, home = llm_run["client"], llm_run["home"]
    report = client.get_experiment_report(LLM_EXAMPLE)
    assert report.best is not None and report.best.job_kept
    assert (Path(report.best.output_dir) / "model" / "adapter_config.json").is_file()
    jobs = sorted(p.name for p in (home / "jobs" / LLM_NAMESPACE).iterdir())
    assert jobs == [report.best_trial]
    others = [t for t in report.trials if t.name != report.best_trial]
    assert all(t.job_kept is False for t in others)
    with pytest.raises(RuntimeError, match="retain_trials"):
        list(client.get_job_logs(LLM_EXAMPLE, others[0].name))
    lines = list(client.get_job_logs(LLM_EXAMPLE, report.best_trial))
    assert any("already initialized for this spec" in line for line in lines), lines[:5]


def test_trials_share_one_initializer_run_and_the_preprocessing_cache(llm_run):
    folder, home = llm_run["folder"], llm_run["home"]
    shared = folder.shared_workspace
    assert (shared / ".kubetune-initialized").is_file()
    cached = list((shared / ".kubetune-cache").glob("*.arrow"))
    assert len(cached) == 1, cached  # tokenised once, for both trials
    report = llm_run["client"].get_experiment_report(LLM_EXAMPLE)
    workspace = home / "jobs" / LLM_NAMESPACE / report.best_trial / "workspace"
    for name in ("dataset", ".kubetune-cache", ".kubetune-initialized", "model.path"):
        assert (workspace / name).is_symlink(), name
        assert (workspace / name).resolve() == (shared / name).resolve()


def test_trial_metrics_are_katib_metric_logs(llm_run):
    client = llm_run["client"]
    trial = client.list_trials(LLM_EXAMPLE)[0].metadata.name
    logs = list(client.get_trial_metrics(trial))
    assert [log.metric.name for log in logs] == ["train_loss", "train_loss"]  # logged, then final
    assert logs[0].metric.value == logs[1].metric.value
    assert type(logs[0]).__name__ == "MetricLog"


def test_a_second_experiment_of_the_same_name_is_refused(llm_run, tiny_model, sentiment_data):
    with pytest.raises(RuntimeError, match="already exists"):
        llm_run["client"].tune(**llm_example(tiny_model, sentiment_data))


# --- a custom objective as local function jobs; its controller killed mid-search ---------------


def objective(parameters):
    import time

    pause = parameters["pause"]
    print(f"score={ {'none': 1.0, 'short': 0.75, 'long': 0.5}[pause] }")
    time.sleep({"none": 0, "short": 1, "long": 120}[pause])


def test_killed_controller_reads_back_failed_with_the_trials_so_far(home):
    """A custom objective's search as local function jobs, 3 trials, 2 at once: two end soon,
    one runs on; the controller is killed (SIGKILL); a new process reads the experiment back as
    Failed (ControllerLost) with the ended trials and their metric, the other trial Killed and
    its processes stopped, never Running."""
    client = KatibClient(home=home)
    client.tune(
        name="killed",
        objective=objective,
        parameters={"pause": search.categorical(["none", "short", "long"])},
        objective_metric_name="score",
        objective_type="maximize",
        algorithm_name="grid",
        max_trial_count=3,
        parallel_trial_count=2,
        resources_per_trial={"cpu": 1},
    )
    folder = experiment_dir(home, "default", "killed")

    def states() -> dict[str, str]:
        report = client.get_experiment_report("killed")
        return {t.values["pause"]: t.status for t in report.trials}

    wanted = {"none": "Succeeded", "short": "Succeeded", "long": "Running"}
    wait_until(lambda: states() == wanted, 180, f"trials {wanted}")
    assert client.is_experiment_running("killed")
    # The third trial was made only once one of the first two had ended.
    trials = client.get_experiment_report("killed").trials
    first_end = min(t.completion_time for t in trials[:2] if t.completion_time)
    assert trials[2].creation_time >= first_end, [
        (t.name, t.creation_time, t.completion_time) for t in trials
    ]
    client.edit_experiment_budget("killed", max_trial_count=4)
    assert json.loads(folder.experiment_path.read_text())["spec"]["maxTrialCount"] == 4
    names = {t.values["pause"]: t.name for t in trials}

    controller = json.loads(folder.status_path.read_text())["controller"]["pid"]
    os.kill(controller, signal.SIGKILL)
    wait_until(lambda: _gone(controller), 10, "the controller to end")
    code = textwrap.dedent(
        f"""
        import json
        from kubetune.katib import KatibClient
        client = KatibClient(home={str(home)!r})
        report = client.get_experiment_report("killed")
        print(json.dumps({{
            "status": report.status,
            "reason": report.conditions[-1]["reason"],
            "trials": {{t.values["pause"]: [t.status, t.objective] for t in report.trials}},
            "failed": client.is_experiment_failed("killed"),
            "running": client.is_experiment_running("killed"),
        }}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert (seen["status"], seen["reason"]) == ("Failed", "ControllerLost")
    assert seen["failed"] is True and seen["running"] is False
    assert seen["trials"] == {
        "none": ["Succeeded", 1.0],
        "short": ["Succeeded", 0.75],
        "long": ["Killed", 0.5],
    }
    job = home / "jobs" / "default" / names["long"]
    wait_until(lambda: no_process_in(job) == [], 30, "the slow trial's processes to end")
    report = client.get_experiment_report("killed")  # read again: the same
    assert report.status == "Failed" and report.best_trial == names["none"]
    assert [t.status for t in report.trials if t.name == names["long"]] == ["Killed"]

    client.delete_experiment("killed")
    assert not folder.path.exists()
    assert not any((home / "jobs" / "default").iterdir())


def _gone(pid: int) -> bool:
    """Whether process `pid` has ended (a zombie counts: it runs no more)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except OSError:
        return True


def test_reading_an_experiment_that_does_not_exist(home):
    client = KatibClient(home=home)
    with pytest.raises(RuntimeError, match="NotFound"):
        client.get_experiment("nothing")
    assert client.list_experiments() == []
    assert client.list_experiment_reports() == []
