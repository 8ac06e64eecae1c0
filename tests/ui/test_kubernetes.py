"""The dashboard on the Kubernetes backend, against the fake API server of tests/kubernetes (a real
HTTP server): a job created from job YAML, its state, size, objects (Secret values hidden), the
history read from the progress records rank 0 prints, logs, and deletion."""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from kubetune.contract.records import progress_log_line
from kubetune.ui.app import create_app
from kubetune.ui.security import Access
from kubetune.ui.source import KubernetesSource, make_source
from tests.kubernetes import test_katib_experiment as katib_test
from tests.kubernetes.fake_apiserver import FakeApiServer

SECRET = "hf_uiSecretValue0123456789"
JOB_YAML = f"""\
name: remote-bert
num_workers: 2
num_procs_per_worker: 2
model_provider_parameters:
  model_uri: hf://google-bert/bert-base-cased
  transformer_type: AutoModelForSequenceClassification
  access_token: {SECRET}
dataset_provider_parameters: {{hf: {{repo_id: yelp_review_full, split: 'train[:100]'}}}}
trainer_parameters: {{training_parameters: {{output_dir: out, logging_steps: 1}}}}
"""
RUNNING = {
    "conditions": [
        {"type": "Created", "status": "True", "reason": "PyTorchJobCreated"},
        {"type": "Running", "status": "True", "reason": "PyTorchJobRunning", "message": "running"},
    ],
    "startTime": "2026-01-01T00:01:00Z",
}


def record(step: int, **logged: Any) -> dict[str, Any]:
    """A progress record as rank 0 prints it, with the latest logged values."""
    entry = {"step": step, "epoch": step / 10, "time": 1000.0 + len(logged) + step, **logged}
    return {"step": step, "total_steps": 40, "loss": logged.get("loss"), "logged": entry}


@pytest.fixture
def apiserver() -> Iterator[FakeApiServer]:
    server = FakeApiServer(namespaces=("default", "team-a")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def source(apiserver: FakeApiServer) -> KubernetesSource:
    made = make_source("kubernetes", client_configuration=apiserver.configuration())
    assert isinstance(made, KubernetesSource)
    made.backend.poll_interval = 0.02
    return made


@pytest.fixture
def client(source: KubernetesSource) -> tuple[TestClient, Access]:
    access = Access.for_bind("127.0.0.1", None)
    return TestClient(create_app(source, access), base_url="http://127.0.0.1:8765"), access


def start_running(apiserver: FakeApiServer) -> None:
    """The operator's part: the job runs, its pods start, rank 0 logs."""
    apiserver.set_status("pytorchjobs", "remote-bert", RUNNING)
    job = apiserver.objects[("pytorchjobs", "default", "remote-bert")]
    apiserver.add_pod(
        "remote-bert-master-0", job, {"storage-initializer": "terminated"}, {"pytorch": "running"}
    )
    apiserver.add_pod("remote-bert-worker-0", job, {}, {"pytorch": "running"})
    apiserver.write_log("remote-bert-master-0", "storage-initializer", "fetching model")
    first = record(1, loss=2.0, learning_rate=5e-5)
    apiserver.write_log(
        "remote-bert-master-0",
        "pytorch",
        "training starts",
        progress_log_line(first),
        progress_log_line({**first, "status": "evaluating"}),  # the same logged record again
        "{'loss': 2.0}",
        progress_log_line(record(2, loss=1.5, learning_rate=4e-5)),
        progress_log_line(record(2, eval_loss=1.4, eval_accuracy=0.5)),
    )


@pytest.fixture
def running(apiserver: FakeApiServer, client: tuple[TestClient, Access]) -> TestClient:
    """A job created from job YAML through the API, then running (its pods logging)."""
    http, access = client
    answer = http.post(
        "/api/jobs",
        json={"yaml": JOB_YAML, "filename": "remote.yaml"},
        headers={"X-CSRF-Token": access.csrf_token},
    )
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"namespace": "default", "name": "remote-bert"}
    assert apiserver.names("pytorchjobs") == ["remote-bert"]
    start_running(apiserver)
    return http


def test_the_job_list_shows_state_size_and_progress(running: TestClient) -> None:
    # Not allowed to list cluster-wide (the fake server has no such path): its own namespace.
    (job,) = running.get("/api/jobs").json()["jobs"]
    assert (job["state"], job["reason"]) == ("running", "PyTorchJobRunning")
    assert (job["workers"], job["procs_per_worker"]) == (2, 2)
    assert job["progress"]["step"] == 2


def test_a_jobs_page_shows_its_objects_spec_and_log_sources(running: TestClient) -> None:
    detail = running.get("/api/jobs/default/remote-bert").json()
    assert [o["kind"] for o in detail["objects"]] == [
        "PyTorchJob",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Secret",
    ]
    secret = detail["objects"][3]
    assert set(secret["data"].values()) == {"<redacted>"}
    assert detail["spec"]["name"] == "remote-bert" and detail["spec"]["num_workers"] == 2
    assert detail["log_sources"] == [
        "remote-bert-master-0/storage-initializer",
        "remote-bert-master-0/pytorch",
        "remote-bert-worker-0/pytorch",
    ]
    assert {o["exists"] for o in detail["outputs"]} == {None}  # in the job's volume


def test_history_comes_from_the_progress_records_rank_0_prints(running: TestClient) -> None:
    history = running.get("/api/jobs/default/remote-bert/history").json()["records"]
    assert [(r["step"], r.get("loss"), r.get("eval_loss")) for r in history] == [
        (1, 2.0, None),
        (2, 1.5, None),
        (2, None, 1.4),
    ]


def test_logs_leave_the_progress_records_out(running: TestClient) -> None:
    logs = running.get("/api/jobs/default/remote-bert/logs").json()["lines"]
    assert ["remote-bert-master-0/pytorch", "training starts"] in logs
    assert not [line for _, line in logs if "kubetune-progress" in line]


def test_no_answer_shows_the_secret(running: TestClient) -> None:
    encoded = base64.b64encode(SECRET.encode()).decode()
    for path in ("", "/history", "/logs"):
        text = running.get(f"/api/jobs/default/remote-bert{path}").text
        assert SECRET not in text and encoded not in text, path


def test_deleting_removes_the_job_and_its_objects(
    apiserver: FakeApiServer, client: tuple[TestClient, Access], running: TestClient
) -> None:
    _, access = client
    answer = running.delete(
        "/api/jobs/default/remote-bert", headers={"X-CSRF-Token": access.csrf_token}
    )
    assert answer.status_code == 200
    assert apiserver.names("pytorchjobs") == [] and apiserver.names("secrets") == []
    assert running.get("/api/jobs/default/remote-bert").status_code == 404


def test_a_job_in_another_namespace_is_not_found(apiserver, client):
    http, _ = client
    answer = http.get("/api/jobs/team-a/nothing")
    assert answer.status_code == 404 and "team-a/nothing" in answer.json()["error"]


# --- experiments (Katib Experiments and Trials) --------------------------------------------------


def remote_objective(parameters):
    print(f"train_loss={float(parameters['x']) ** 2}")


def katib_trial(experiment: dict[str, Any], name: str, x: str, loss: str | None) -> dict[str, Any]:
    """A Trial of `experiment` as Katib's controller makes it (Succeeded with its train_loss, or
    Running), owned by it."""
    trial = katib_test.trial(name, experiment["metadata"]["name"], {"x": x}, loss)
    owner = {
        "kind": "Experiment",
        "name": experiment["metadata"]["name"],
        "uid": experiment["metadata"]["uid"],
    }
    trial["metadata"].update(uid=f"uid-{name}", ownerReferences=[owner])
    return trial


def test_an_experiment_shows_its_trials_best_and_job_links_then_is_deleted(apiserver, client):
    from kubetune.katib import KatibClient, search

    http, access = client
    katib = KatibClient(
        backend="kubernetes", client_configuration=apiserver.configuration(), namespace="default"
    )
    katib.tune(
        name="remote-search",
        objective=remote_objective,
        parameters={"x": search.double(min=-1, max=1)},
        objective_metric_name="train_loss",
        objective_type="minimize",
        max_trial_count=4,
        env_per_trial={"HF_TOKEN": SECRET},
        resources_per_trial={"cpu": 1},
    )
    experiment = apiserver.objects[("experiments", "default", "remote-search")]
    experiment["status"] = {
        "conditions": [
            {"type": "Created", "status": "True", "reason": "ExperimentCreated"},
            {"type": "Running", "status": "True", "reason": "ExperimentRunning"},
        ],
        "trials": 2,
        "trialsSucceeded": 1,
        "trialsRunning": 1,
        "currentOptimalTrial": {
            "bestTrialName": "remote-search-aaa",
            "observation": {
                "metrics": [{"name": "train_loss", "min": "0.04", "max": "0.04", "latest": "0.04"}]
            },
        },
    }
    for trial in (
        katib_trial(experiment, "remote-search-aaa", "0.2", "0.04"),
        katib_trial(experiment, "remote-search-bbb", "-0.7", None),
    ):
        apiserver.objects[("trials", "default", trial["metadata"]["name"])] = trial
    # The running trial's PyTorchJob, as Katib makes it from the trial template.
    job = copy.deepcopy(experiment["spec"]["trialTemplate"]["trialSpec"])
    job["metadata"].update(
        name="remote-search-bbb",
        namespace="default",
        uid="uid-job",
        ownerReferences=[
            {"kind": "Trial", "name": "remote-search-bbb", "uid": "uid-remote-search-bbb"}
        ],
    )
    apiserver.objects[("pytorchjobs", "default", "remote-search-bbb")] = job

    (row,) = http.get("/api/experiments").json()["experiments"]
    assert (row["name"], row["state"], row["reason"]) == (
        "remote-search",
        "running",
        "ExperimentRunning",
    )
    assert (row["trials_ended"], row["trials_running"], row["max_trial_count"]) == (1, 1, 4)
    assert (row["best_trial"], row["best_objective"]) == ("remote-search-aaa", 0.04)

    found = http.get("/api/experiments/default/remote-search").json()
    assert [
        (t["name"], t["status"], t["objective"], t["best"], t["job"]) for t in found["trials"]
    ] == [
        ("remote-search-aaa", "Succeeded", 0.04, True, False),
        ("remote-search-bbb", "Running", None, False, True),
    ]
    assert found["outputs"] == {}  # in the trials' volumes
    encoded = base64.b64encode(SECRET.encode()).decode()
    assert SECRET in json.dumps(experiment)  # in the trials' environment ...
    for path in ("/api/experiments", "/api/experiments/default/remote-search"):
        text = http.get(path).text  # ... never sent to the browser
        assert SECRET not in text and encoded not in text, path

    answer = http.delete(
        "/api/experiments/default/remote-search", headers={"X-CSRF-Token": access.csrf_token}
    )
    assert answer.status_code == 200
    assert apiserver.names("experiments") == [] and apiserver.names("trials") == []
    assert apiserver.names("pytorchjobs") == []  # the trials' jobs went with them
    assert apiserver.names("configmaps") == [] and apiserver.names("persistentvolumeclaims") == []
    assert http.get("/api/experiments/default/remote-search").status_code == 404


def test_a_cluster_without_katib_has_no_experiments_and_says_why(apiserver, client):
    http, _ = client
    apiserver.crds.discard("experiments")
    answer = http.get("/api/experiments").json()
    assert answer["available"] is False and answer["experiments"] == []
    assert "CRD is not installed" in answer["message"] and "katib" in answer["message"].lower()
