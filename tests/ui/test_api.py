"""The dashboard's JSON API and its rules, through Starlette's test client (and, for the event
streams and the command, a real server) on local job folders written directly."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from kubetune.contract import layout
from kubetune.training.backends.local.jobdir import job_dir
from kubetune.ui.app import create_app
from kubetune.ui.security import CONTENT_SECURITY_POLICY, TOKEN_COOKIE, Access
from kubetune.ui.server import UIServer
from kubetune.ui.source import LocalSource
from tests.ui.ui_events import Events
from tests.ui.ui_jobs import append_records, history_record, stop_stand_ins, write_job

LOOPBACK = "http://127.0.0.1:8765"
VALID_ELSEWHERE = """\
name: {name}
model_provider_parameters: {{model_uri: hf://google-bert/bert-base-cased, transformer_type: AutoModelForSequenceClassification}}
dataset_provider_parameters: {{hf: {{repo_id: yelp_review_full}}}}
trainer_parameters: {{training_parameters: {{output_dir: out}}}}
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Jobs in every state, in two namespaces; the running one has 30 of 100 steps logged."""
    root = tmp_path_factory.mktemp("ui-api-home")
    write_job(root, "done", eval_every=10, env={"HF_TOKEN": "hf_notForTheBrowser", "PLAIN": "x"})
    write_job(root, "running", state="running", steps=30, total_steps=100, created_minutes_ago=3)
    write_job(root, "broken", namespace="team-a", state="failed", steps=5, total_steps=100)
    write_job(root, "waiting", state="queued", steps=0, created_minutes_ago=1)
    yield root
    stop_stand_ins()


@pytest.fixture(scope="module")
def source(home: Path) -> LocalSource:
    return LocalSource(home=home)


@pytest.fixture(scope="module")
def access() -> Access:
    return Access.for_bind("127.0.0.1", None)


@pytest.fixture(scope="module")
def client(source: LocalSource, access: Access) -> TestClient:
    return TestClient(create_app(source, access), base_url=LOOPBACK)


def csrf(access: Access) -> dict[str, str]:
    return {"X-CSRF-Token": access.csrf_token}


# --- reading -----------------------------------------------------------------------------------


def test_jobs_of_every_namespace_with_state_reason_size_and_progress(client):
    jobs = {j["name"]: j for j in client.get("/api/jobs").json()["jobs"]}
    assert {n: j["state"] for n, j in jobs.items()} == {
        "done": "succeeded",
        "running": "running",
        "broken": "failed",
        "waiting": "queued",
    }
    assert jobs["broken"]["namespace"] == "team-a"
    assert jobs["broken"]["reason"] == "WorkerFailed"
    assert "out of memory" in jobs["broken"]["message"]
    assert (jobs["running"]["workers"], jobs["running"]["procs_per_worker"]) == (2, 1)
    assert jobs["running"]["progress"]["step"] == 30
    assert jobs["running"]["progress"]["total_steps"] == 100
    only = client.get("/api/jobs", params={"namespace": "team-a"}).json()["jobs"]
    assert [j["name"] for j in only] == ["broken"]
    only = client.get("/api/jobs", params={"state": "queued"}).json()["jobs"]
    assert [j["name"] for j in only] == ["waiting"]
    info = client.get("/api/info").json()
    assert info["backend"] == "local" and info["namespaces"] == ["default", "team-a"]


def test_one_job_has_conditions_outputs_metrics_and_a_spec_without_secrets(client):
    answer = client.get("/api/jobs/default/done")
    job = answer.json()
    assert [c["type"] for c in job["conditions"]] == ["Created", "Running", "Succeeded"]
    assert {o["name"]: o["exists"] for o in job["outputs"]} == {
        "model": True,
        "merged_model": False,
        "metrics.json": True,
        "loss_curve.png": False,
    }
    assert job["metrics"] == {"train_loss": 0.42, "eval_accuracy": 0.9}
    assert job["log_sources"] == ["initializer", "worker-0", "worker-1"]
    assert job["spec"]["env"] == {"HF_TOKEN": "<redacted>", "PLAIN": "x"}
    assert "hf_notForTheBrowser" not in answer.text


def test_history_keeps_the_run_that_counts_after_a_restart(client, home):
    records = client.get("/api/jobs/default/running/history").json()["records"]
    assert [r["step"] for r in records] == list(range(1, 31))
    job = job_dir(home, "default", "running")
    # Restarted from a checkpoint at step 20: steps 21.. are logged again.
    append_records(job, 21, 35, 100)
    records = client.get("/api/jobs/default/running/history").json()["records"]
    assert [r["step"] for r in records] == list(range(1, 36))
    assert records[25]["loss"] == history_record(26, 100)["loss"]


def test_history_with_eval_records(client):
    records = client.get("/api/jobs/default/done/history").json()["records"]
    assert [r["step"] for r in records if "eval_loss" in r] == [10, 20, 30, 40]
    assert len([r for r in records if "loss" in r]) == 40


def test_logs_and_served_outputs(client):
    logs = client.get("/api/jobs/default/done/logs").json()
    assert logs["sources"] == ["initializer", "worker-0", "worker-1"]
    assert logs["lines"][0] == ["initializer", "initializer line 0"]
    assert len(logs["lines"]) == 15
    assert client.get("/api/jobs/default/done/outputs/metrics.json").json()["train_loss"] == 0.42
    # Only named output files, never a path from the URL.
    for path in ("outputs/spec.json", "outputs/..%2F..%2Fspec.json", "outputs/loss_curve.png"):
        assert client.get(f"/api/jobs/default/done/{path}").status_code == 404, path


def test_a_long_log_opens_at_its_end(tmp_path):
    home = tmp_path / "home"
    job = write_job(home, "chatty", log_lines=0)
    line = "x" * 99 + "\n"
    job.log_path("worker-0").write_text("first\n" + line * 5000)  # 500 kB
    logs = LocalSource(home=home).logs("default", "chatty", follow=False)
    lines = [text for source, text in logs.read_new() if source == "worker-0"]
    assert 2000 < len(lines) < 5000 and set(lines) == {"x" * 99}


def test_nan_becomes_null(client, home):
    job = job_dir(home, "default", "done")
    progress = layout.read_json(job.workspace / layout.PROGRESS_FILE)
    progress["loss"] = math.nan
    (job.workspace / layout.PROGRESS_FILE).write_text(json.dumps(progress))
    answer = client.get("/api/jobs/default/done")
    assert json.loads(answer.text, parse_constant=pytest.fail)["progress"]["loss"] is None


def test_names_in_urls_are_validated(client):
    answer = client.get("/api/jobs/default/Bad_Name")
    assert answer.status_code == 400
    assert "name='Bad_Name': must be a DNS-1035 label" in answer.json()["error"]
    answer = client.get("/api/jobs/No_Such/done/history")
    assert answer.status_code == 400 and "DNS-1123" in answer.json()["error"]
    assert client.get("/api/jobs/default/..%2Fteam-a").status_code in (400, 404)
    answer = client.get("/api/jobs/default/missing")
    assert answer.status_code == 404 and "default/missing" in answer.json()["error"]


# --- changing ----------------------------------------------------------------------------------


def test_delete_needs_the_csrf_header_and_a_same_origin(client, access, home):
    write_job(home, "doomed")
    assert client.delete("/api/jobs/default/doomed").status_code == 403
    wrong = {**csrf(access), "Origin": "http://evil.example"}
    assert client.delete("/api/jobs/default/doomed", headers=wrong).status_code == 403
    assert client.get("/api/jobs/default/doomed").status_code == 200
    same = {**csrf(access), "Origin": LOOPBACK}
    answer = client.delete("/api/jobs/default/doomed", headers=same)
    assert answer.status_code == 200 and answer.json()["deleted"] is True
    assert client.get("/api/jobs/default/doomed").status_code == 404
    assert not (home / "jobs" / "default" / "doomed").exists()
    assert client.delete("/api/jobs/default/doomed", headers=csrf(access)).status_code == 404


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name: [unclosed\n", "not valid YAML"),
        ("name: a\nname: b\n", "duplicate key 'name'"),
        (
            "a: &x [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
            + "".join(
                f"{c}: &{c}{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, c in [("x", "b"), ("bb", "c"), ("cc", "d"), ("dd", "e"), ("ee", "f")]
            ),
            "expand",
        ),
    ],
    ids=["syntax", "duplicate-key", "alias-bomb"],
)
def test_create_reports_problems_as_the_cli_does(
    client, access, tmp_path, monkeypatch, capsys, text, problem
):
    from kubetune import cli

    (tmp_path / "job.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "job.yaml"]) == 1
    cli_error = capsys.readouterr().err.split("kubetune: error: ", 1)[1].strip()
    answer = client.post(
        "/api/jobs", json={"yaml": text, "filename": "job.yaml"}, headers=csrf(access)
    )
    assert answer.status_code == 400 and answer.json()["error"] == cli_error
    assert problem in cli_error and cli_error.startswith("job.yaml")


def test_create_needs_csrf_json_and_a_sane_size(client, access):
    text = "name: x\n"

    assert client.post("/api/jobs", json={"yaml": text}).status_code == 403  # no CSRF header
    answer = client.post("/api/jobs", content=b"{}", headers=csrf(access))
    assert answer.status_code == 400 and '"yaml"' in answer.json()["error"]
    answer = client.post("/api/jobs", json={"yaml": "#" * (2**20 + 1)}, headers=csrf(access))
    assert answer.status_code == 400 and "more than 1 MiB" in answer.json()["error"]
    huge = {"yaml": "#" * (5 * 2**20)}
    assert client.post("/api/jobs", json=huge, headers=csrf(access)).status_code == 413


def test_create_of_a_taken_name_is_refused_before_anything_starts(client, access, home):
    before = sorted(p.name for p in (home / "jobs" / "default").iterdir())
    answer = client.post(
        "/api/jobs", json={"yaml": VALID_ELSEWHERE.format(name="done")}, headers=csrf(access)
    )
    assert answer.status_code == 409 and "already exists" in answer.json()["error"]
    assert sorted(p.name for p in (home / "jobs" / "default").iterdir()) == before


# --- who may ask -------------------------------------------------------------------------------


def test_every_answer_carries_the_security_headers(client):
    for path in ("/", "/api/jobs", "/static/app.js", "/api/jobs/default/missing"):
        headers = client.get(path).headers
        assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY, path
        assert headers["x-content-type-options"] == "nosniff"


def test_a_loopback_bind_answers_only_to_loopback_host_names(source, access):
    app = create_app(source, access)
    assert TestClient(app, base_url="http://localhost:8765").get("/api/jobs").status_code == 200
    assert TestClient(app, base_url="http://[::1]:8765").get("/api/jobs").status_code == 200
    # A page whose own host name was pointed at 127.0.0.1 (DNS rebinding) is refused.
    rebound = TestClient(app, base_url="http://attacker.example:8765")
    assert rebound.get("/api/jobs").status_code == 403
    assert rebound.get("/").status_code == 403


def test_a_token_is_needed_for_every_request(source):
    access = Access.for_bind("0.0.0.0", "s3cret-token")
    app = create_app(source, access)
    anonymous = TestClient(app, base_url="http://192.0.2.10:8765", follow_redirects=False)
    for path in ("/", "/api/jobs", "/api/info", "/static/app.css", "/api/jobs/default/done"):
        answer = anonymous.get(path)
        assert answer.status_code == 401 and "needs its token" in answer.text, path
        assert "s3cret-token" not in answer.text
    assert anonymous.delete("/api/jobs/default/done").status_code == 401
    assert anonymous.get("/api/jobs", params={"token": "wrong"}).status_code == 401

    bearer = {"Authorization": "Bearer s3cret-token"}
    assert anonymous.get("/api/jobs", headers=bearer).status_code == 200
    answer = anonymous.get("/?token=s3cret-token&x=1")
    assert answer.status_code == 303 and answer.headers["location"] == "/?x=1"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}=s3cret-token;")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    anonymous.cookies.set(TOKEN_COOKIE, "s3cret-token")
    assert anonymous.get("/api/jobs").status_code == 200


def test_a_non_loopback_bind_gets_a_token_when_none_is_given():
    assert Access.for_bind("0.0.0.0", None).token
    assert Access.for_bind("::", None).token
    assert Access.for_bind("127.0.0.1", None).token is None
    assert Access.for_bind("localhost", "given").token == "given"


def test_assets_ship_with_the_package_and_nothing_comes_from_elsewhere(client):
    from importlib.resources import files

    static = files("kubetune.ui") / "static"
    names = {p.name for p in static.iterdir()}
    assert {"index.html", "app.js", "app.css", "uPlot.iife.min.js", "uPlot.LICENSE"} <= names
    page = client.get("/").text
    for url in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert url.startswith(("/static/", "#")), url
    for name in ("index.html", "app.js", "app.css", "uPlot.min.css"):
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", (static / name).read_text()), (
            name
        )
    assert client.get("/static/uPlot.iife.min.js").status_code == 200
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"kubetune.ui" = ["static/*"]' in pyproject


# --- live updates --------------------------------------------------------------------------------


def test_job_events_follow_progress_history_and_restarts(tmp_path):
    home = tmp_path / "home"
    job = write_job(home, "live", state="running", steps=10, total_steps=100)
    with (
        UIServer(LocalSource(home=home), port=0) as server,
        httpx.stream("GET", f"{server.url}api/jobs/default/live/events", timeout=10) as stream,
    ):
        events = Events(stream)
        (kind, job_data), (kind2, history) = events.next(2)
        assert (kind, kind2) == ("job", "history")
        assert job_data["progress"]["step"] == 10
        assert history["reset"] is True and len(history["records"]) == 10

        written = time.monotonic()
        append_records(job, 11, 12, 100)
        seen: dict[str, Any] = {}
        while set(seen) != {"job", "history"}:
            ((kind, data),) = events.next()
            seen[kind] = data
        # Polled every 0.5 s: well within the 2 s allowed, with room for a busy machine.
        assert time.monotonic() - written < 3.0
        assert seen["job"]["progress"]["step"] == 12
        assert seen["history"] == {
            "reset": False,
            "records": [history_record(11, 100), history_record(12, 100)],
        }

        append_records(job, 5, 6, 100)  # restarted from a checkpoint at step 4
        data = events.until("history")
        assert data["reset"] is True and [r["step"] for r in data["records"]] == list(range(1, 7))

        server.source.delete("default", "live")
        assert events.until("gone") == {"namespace": "default", "name": "live"}


def assert_stream_of_racy_ends_with_gone(source: LocalSource) -> None:
    """The event stream of job default/racy ends with `gone`, and the response ends whole."""
    with (
        UIServer(source, port=0) as server,
        httpx.stream("GET", f"{server.url}api/jobs/default/racy/events", timeout=10) as stream,
    ):
        events = Events(stream)
        assert events.until("gone") == {"namespace": "default", "name": "racy"}
        assert not any(list(events.lines))


def test_a_job_deleted_between_two_reads_of_its_stream_ends_it_with_gone(tmp_path):
    """The job is read, then deleted before its history is: the stream still ends cleanly with
    `gone` (it used to break off mid-response, which the browser logs as a network error)."""
    home = tmp_path / "home"
    write_job(home, "racy", state="running", steps=3, total_steps=10)
    source = LocalSource(home=home)
    read_history = source.history

    def history_after_a_delete(namespace: str, name: str) -> list[dict[str, Any]]:
        source.delete(namespace, name)
        return read_history(namespace, name)

    source.history = history_after_a_delete  # type: ignore[method-assign]
    assert_stream_of_racy_ends_with_gone(source)


def test_a_job_deleted_while_it_is_read_ends_its_stream_with_gone(tmp_path):
    """The job's state is read, then it is deleted before its spec is: the stream still ends
    cleanly with `gone` (the spec read's 'not found' used to break it off mid-response)."""
    home = tmp_path / "home"
    write_job(home, "racy", state="running", steps=3, total_steps=10)
    source = LocalSource(home=home)
    read_spec = source.backend.get_job_spec
    reads = []

    def spec_after_a_delete(name: str, namespace: str) -> Any:
        reads.append(name)
        if len(reads) == 2:  # the first read answers the check before the stream starts
            source.delete(namespace, name)
        return read_spec(name, namespace)

    source.backend.get_job_spec = spec_after_a_delete  # type: ignore[method-assign]
    assert_stream_of_racy_ends_with_gone(source)


def test_a_stream_whose_read_fails_ends_whole_and_says_why(tmp_path):
    """The backend fails after the list was sent once: the stream ends with a comment naming the
    failure (it used to break off mid-response, which the browser logs as a network error)."""
    home = tmp_path / "home"
    write_job(home, "listed", state="running", steps=3, total_steps=10)
    source = LocalSource(home=home)
    list_jobs = source.list_jobs
    reads = []

    def list_then_fail() -> list[dict[str, Any]]:
        reads.append(1)
        if len(reads) > 1:
            raise RuntimeError("the cluster does not answer\n(connection refused)")
        return list_jobs()

    source.list_jobs = list_then_fail  # type: ignore[method-assign]
    with (
        UIServer(source, port=0) as server,
        httpx.stream("GET", f"{server.url}api/events", timeout=10) as stream,
    ):
        events = Events(stream)
        assert [j["name"] for j in events.until("jobs")["jobs"]] == ["listed"]
        rest = [line for line in events.lines if line]
        assert rest == [": stream ended: the cluster does not answer (connection refused)"]


def test_log_stream_ends_with_the_job(tmp_path):
    home = tmp_path / "home"
    write_job(home, "over", state="failed", log_lines=3)
    with (
        UIServer(LocalSource(home=home), port=0) as server,
        httpx.stream("GET", f"{server.url}api/jobs/default/over/logs/stream", timeout=10) as stream,
    ):
        events = Events(stream).next(3)
    assert events[0] == ("sources", {"sources": ["initializer", "worker-0", "worker-1"]})
    assert events[1][0] == "lines" and len(events[1][1]["lines"]) == 9
    assert events[2] == ("end", {})


# --- the command -------------------------------------------------------------------------------


def test_kubetune_ui_prints_its_token_and_refuses_requests_without_it(tmp_path):
    env = {**os.environ, "KUBETUNE_HOME": str(tmp_path)}
    env.pop("KUBETUNE_UI_TOKEN", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "kubetune.cli", "ui", "--host", "0.0.0.0", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        printed = [process.stdout.readline() for _ in range(3)]
        match = re.search(r"open http://[^:/]+:(\d+)/\?token=([\w-]+)", "".join(printed))
        assert match, printed
        port, token = match.groups()
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{base}/api/jobs").status_code == 401
        answer = httpx.get(f"{base}/api/jobs", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and answer.json() == {"jobs": []}
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 0


def test_kubetune_ui_checks_its_arguments(capsys):
    from kubetune import cli

    assert cli.main(["ui", "--port", "70000"]) == 1
    assert "--port=70000" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["ui", "--backend", "docker"])


def test_the_docs_show_every_screenshot_the_browser_tests_take():
    repo = Path(__file__).resolve().parents[2]
    taken = {
        name
        for path in (repo / "tests/ui").glob("test_browser*.py")
        for name in re.findall(r'screenshots / "([\w-]+\.png)"', path.read_text())
    }
    shown = set(re.findall(r"\]\(images/ui/([\w-]+\.png)\)", (repo / "docs/ui.md").read_text()))
    assert taken and shown == taken
    assert all((repo / "docs/images/ui" / name).is_file() for name in shown)


def test_a_slow_cached_value_holds_up_only_its_own_requests():
    """The experiments of a slow cluster being listed must not stall the job list."""
    import threading

    from kubetune.ui.app import _Cache

    cache = _Cache()
    release = threading.Event()
    started = threading.Event()

    def slow() -> str:
        started.set()
        release.wait(10)
        return "experiments"

    worker = threading.Thread(target=cache.get, args=("experiments", 1.0, slow))
    worker.start()
    try:
        assert started.wait(10)
        answered = threading.Event()
        threading.Thread(
            target=lambda: answered.set() if cache.get("jobs", 1.0, lambda: "jobs") else None,
            daemon=True,
        ).start()
        assert answered.wait(5), "the job list waited for the experiments"
    finally:
        release.set()
        worker.join()
    assert cache.get("experiments", 60.0, lambda: "again") == "experiments"
