"""The dashboard's experiments API through Starlette's test client (and, for the event stream, a
real server) on local experiment folders written directly: the list of every namespace, one
experiment's report with its trials and best trial, links to the trials' jobs, no secret,
names checked, deletion behind the CSRF check, live updates as trials end."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from kubetune.katib.backends.local.store import experiment_dir
from kubetune.ui.app import create_app
from kubetune.ui.security import Access
from kubetune.ui.server import UIServer
from kubetune.ui.source import LocalSource
from tests.ui.ui_events import Events
from tests.ui.ui_experiments import write_experiment
from tests.ui.ui_jobs import stop_stand_ins, write_job

SECRET = "hf_experimentSecret0123456789"
DONE = [
    ({"x": "0.9", "optimizer": "fast"}, "Succeeded", 0.36),
    ({"x": "0.35", "optimizer": "fast"}, "Succeeded", 0.0025),
    ({"x": "0.3", "optimizer": "slow"}, "Succeeded", 0.1),
    ({"x": "0.1", "optimizer": "fast"}, "Failed", None),
]


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A finished search (the best trial's job kept), a running one in another namespace and a
    failed one; a job of its own beside them."""
    root = tmp_path_factory.mktemp("ui-experiments-home")
    write_experiment(root, "search", DONE, env={"HF_TOKEN": SECRET}, created_minutes_ago=30)
    write_job(root, "search-00000001")  # the best trial's job, kept
    write_experiment(
        root,
        "live",
        [DONE[0], ({"x": "0.5", "optimizer": "slow"}, "Running", None)],
        namespace="team-a",
        state="running",
        created_minutes_ago=20,
    )
    write_experiment(root, "broken", [DONE[3]], state="failed", created_minutes_ago=5)
    yield root
    stop_stand_ins()


@pytest.fixture(scope="module")
def access() -> Access:
    return Access.for_bind("127.0.0.1", None)


@pytest.fixture(scope="module")
def client(home: Path, access: Access) -> TestClient:
    app = create_app(LocalSource(home=home), access)
    return TestClient(app, base_url="http://127.0.0.1:8765")


def test_experiments_of_every_namespace_with_state_trials_and_best(client):
    answer = client.get("/api/experiments").json()
    assert answer["available"] is True
    rows = {e["name"]: e for e in answer["experiments"]}
    assert [e["name"] for e in answer["experiments"]] == [
        "search",
        "live",
        "broken",
    ]  # oldest first
    search = rows["search"]
    assert (search["namespace"], search["state"], search["reason"]) == (
        "default",
        "succeeded",
        "ExperimentMaxTrialsReached",
    )
    assert (search["trials_ended"], search["max_trial_count"], search["trials_failed"]) == (4, 6, 1)
    assert (search["best_trial"], search["best_objective"]) == ("search-00000001", 0.0025)
    assert (search["objective_metric_name"], search["objective_type"]) == ("score", "minimize")
    assert search["algorithm_name"] == "random"
    live = rows["live"]
    assert (live["namespace"], live["state"], live["trials_ended"], live["trials_running"]) == (
        "team-a",
        "running",
        1,
        1,
    )
    assert (rows["broken"]["state"], rows["broken"]["best_objective"]) == ("failed", None)

    only = client.get("/api/experiments?namespace=team-a").json()["experiments"]
    assert [e["name"] for e in only] == ["live"]
    failed = client.get("/api/experiments?state=failed").json()["experiments"]
    assert [e["name"] for e in failed] == ["broken"]


def test_one_experiment_has_its_search_space_trials_and_best(client):
    found = client.get("/api/experiments/default/search").json()
    assert found["state"] == "succeeded" and found["status"] == "Succeeded"
    assert [p["name"] for p in found["parameters"]] == ["x", "optimizer"]
    assert found["parameters"][1]["feasibleSpace"] == {"list": ["fast", "slow"]}
    trials = found["trials"]
    assert [(t["values"], t["status"], t["objective"]) for t in trials] == DONE
    assert [t["name"] for t in trials if t["best"]] == ["search-00000001"] == [found["best_trial"]]
    assert trials[1]["metrics"] == {"score": {"min": "0.0025", "max": "0.0025", "latest": "0.0025"}}
    # A link to a trial's job only where the job is there (the best trial's, kept).
    assert [t["job"] for t in trials] == [False, True, False, False]
    assert set(found["outputs"]) >= {"results_csv", "objective_png"}


def test_no_secret_of_a_trial_reaches_the_browser(client, home):
    encoded = base64.b64encode(SECRET.encode()).decode()
    # The search's trials get it as an environment variable, written in its Experiment...
    assert SECRET in experiment_dir(home, "default", "search").experiment_path.read_text()
    # ... which the dashboard never sends: only the report.
    for path in ("/api/experiments", "/api/experiments/default/search"):
        text = client.get(path).text
        assert SECRET not in text and encoded not in text, path


def test_names_in_urls_are_validated(client, access):
    answer = client.get("/api/experiments/default/Bad_Name")
    assert answer.status_code == 400
    assert "name='Bad_Name': must be a DNS-1035 label" in answer.json()["error"]
    answer = client.get("/api/experiments/No_Such/search/events")
    assert answer.status_code == 400 and "DNS-1123" in answer.json()["error"]
    headers = {"X-CSRF-Token": access.csrf_token}
    assert client.delete("/api/experiments/default/x_y", headers=headers).status_code == 400
    answer = client.get("/api/experiments/default/missing")
    assert answer.status_code == 404 and "default/missing" in answer.json()["error"]
    assert client.get("/api/experiments/team-a/search").status_code == 404


def test_delete_needs_the_csrf_header_then_removes_it_and_its_trials_jobs(client, access, home):
    write_experiment(home, "doomed", DONE[:2])
    write_job(home, "doomed-00000001")
    assert client.delete("/api/experiments/default/doomed").status_code == 403
    wrong = {"X-CSRF-Token": access.csrf_token, "Origin": "http://evil.example"}
    assert client.delete("/api/experiments/default/doomed", headers=wrong).status_code == 403
    assert client.get("/api/experiments/default/doomed").status_code == 200

    headers = {"X-CSRF-Token": access.csrf_token}
    answer = client.delete("/api/experiments/default/doomed", headers=headers)
    assert answer.status_code == 200 and answer.json()["deleted"] is True
    assert client.get("/api/experiments/default/doomed").status_code == 404
    assert not experiment_dir(home, "default", "doomed").path.exists()
    assert not (home / "jobs" / "default" / "doomed-00000001").exists()
    assert "doomed" not in [e["name"] for e in client.get("/api/experiments").json()["experiments"]]
    assert client.delete("/api/experiments/default/doomed", headers=headers).status_code == 404


def test_experiment_events_follow_trials_as_they_end(tmp_path):
    home = tmp_path / "home"
    trials = [DONE[0], ({"x": "0.4", "optimizer": "fast"}, "Running", None)]
    folder = write_experiment(home, "watched", trials, state="running")  # stand-in: see `home`
    with (
        UIServer(LocalSource(home=home), port=0) as server,
        httpx.stream(
            "GET", f"{server.url}api/experiments/default/watched/events", timeout=10
        ) as stream,
        httpx.stream("GET", f"{server.url}api/experiments/events", timeout=10) as listing,
    ):
        events, rows = Events(stream), Events(listing)
        ((kind, first),) = events.next()
        assert kind == "experiment" and [t["status"] for t in first["trials"]] == [
            "Succeeded",
            "Running",
        ]
        ((kind, listed),) = rows.next()
        assert kind == "experiments" and listed["experiments"][0]["trials_ended"] == 1

        record = folder.read_record()
        assert record is not None
        running = record.trials[1]
        running.status, running.objective = "Succeeded", 0.01
        running.completion_time = running.start_time
        running.metrics = [{"name": "score", "min": "0.01", "max": "0.01", "latest": "0.01"}]
        record.best_trial = running.name
        folder.write_record(record)
        changed = events.until("experiment")
        assert [(t["status"], t["best"]) for t in changed["trials"]] == [
            ("Succeeded", False),
            ("Succeeded", True),
        ]
        listed = rows.until("experiments")
        assert listed["experiments"][0]["trials_ended"] == 2
        assert listed["experiments"][0]["best_objective"] == 0.01

        # Deleted: the page's stream says it is gone, the list has it no more.
        assert httpx.delete(
            f"{server.url}api/experiments/default/watched",
            headers={"X-CSRF-Token": server.access.csrf_token},
        ).is_success
        assert events.until("gone") == {"namespace": "default", "name": "watched"}
        assert rows.until("experiments")["experiments"] == []


def test_an_experiment_deleted_while_it_is_read_ends_its_stream_with_gone(tmp_path, monkeypatch):
    """The experiment is read, then deleted before its trials are: the stream still ends cleanly
    with `gone` (the trials read's 'not found' used to break it off mid-response)."""
    from kubetune.katib.backends.local.backend import LocalExperiments

    home = tmp_path / "home"
    write_experiment(home, "racy", [DONE[0]], state="running")  # stand-in: see `home`
    read_trials = LocalExperiments.list_trials
    reads = []

    def trials_after_a_delete(self: LocalExperiments, name: str, namespace: str) -> Any:
        reads.append(name)
        if len(reads) == 2:  # the first read answers the check before the stream starts
            self.delete_experiment(name, namespace)
        return read_trials(self, name, namespace)

    monkeypatch.setattr(LocalExperiments, "list_trials", trials_after_a_delete)
    with (
        UIServer(LocalSource(home=home), port=0) as server,
        httpx.stream(
            "GET", f"{server.url}api/experiments/default/racy/events", timeout=10
        ) as stream,
    ):
        events = Events(stream)
        assert events.until("gone") == {"namespace": "default", "name": "racy"}
        assert not any(list(events.lines))  # and the response ends whole
