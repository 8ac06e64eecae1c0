"""The dashboard in headless Chromium against one real local job (created through the page's
New job form; long enough to watch it run, then it finishes) and one failed job's folder written
directly. One server and one browser serve the whole module, and the tests run in order: the
job starts, is watched while it runs, is looked at once finished, then deleted. Each test's page
must log no console error.

The screenshots in docs/ui.md are taken here (see conftest.SCREENSHOTS_ENV).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune.training.backends.local.jobdir import job_dir
from kubetune.training.backends.local.processes import is_alive
from kubetune.ui.server import UIServer
from kubetune.ui.source import LocalSource
from tests.ui.ui_browser import TIMEOUT, screenshot, wait_true

JOB = "ui-job"
FAILED = "ui-failed"  # written directly: a job folder as a failed job leaves it
STEPS = 300  # of the real job: 5 to 10 s of training here, logged at every step
EVAL_STEPS = 100
LOG_LINES = "document.querySelector('#logs').textContent.split('\\n').length"
BAD_YAML = """\
name: Bad_Name
num_workers: 0
model_provider_parameters: {model_uri: hf://google-bert/bert-base-cased, transformer_type: AutoModelForSequenceClassification}
dataset_provider_parameters: {local: {path: /no/such/train.csv}}
trainer_parameters:
  training_parameters: {output_dir: out, num_train_epochs: 1, evaluation_strategy: steps}
"""


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    """The dashboard of a fresh local home that holds one failed job."""
    from tests.ui.ui_jobs import write_job

    home = tmp_path_factory.mktemp("ui-home")
    write_job(home, FAILED, state="failed", steps=12, total_steps=100, created_minutes_ago=90)
    source = LocalSource(home=home)
    server = UIServer(source, port=0).start()
    try:
        yield server
    finally:
        server.stop()
        for job in source.list_jobs():
            source.delete(job["namespace"], job["name"])


def job_text(job_yaml: Any) -> str:
    return str(
        job_yaml(
            JOB, max_steps=STEPS, eval_strategy="steps", eval_steps=EVAL_STEPS, learning_rate=0.003
        )
    )


@pytest.fixture
def job(ui: UIServer, job_yaml: Any) -> str:
    """The real job: created through the page by the first test, or here when that did not run."""
    if JOB not in [j["name"] for j in ui.source.list_jobs()]:
        ui.source.create(job_text(job_yaml), "job.yaml", Path.cwd())
    return JOB


def wait_for_state(ui: UIServer, name: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        job = ui.source.job("default", name)
        if job["state"] == state:
            return job
        assert job["state"] not in ("failed", "succeeded"), (
            f"{name}: {job['state']}: {job['message']}"
        )
        time.sleep(0.5)
    pytest.fail(f"{name} did not become {state} within {TIMEOUT:g} s")


def number(page: Any, selector: str, attribute: str) -> int:
    value = page.get_attribute(selector, attribute)
    return int(value) if value else 0


# --- creating jobs ---------------------------------------------------------------------------


def test_new_job_from_pasted_yaml_starts_it(ui, watched, job_yaml):
    page = watched.page
    page.goto("/#/new")
    page.fill("#job-yaml", job_text(job_yaml))
    page.click("#create")
    page.wait_for_url(f"**/#/jobs/default/{JOB}")
    page.wait_for_selector("#job-state .badge")
    assert ui.source.job("default", JOB)["name"] == JOB


def test_bad_yaml_shows_the_clis_error_text(
    ui, watched, tmp_path, screenshots, monkeypatch, capsys
):
    from kubetune import cli

    watched.allowed.append("status of 400")  # the page's own request, answered 400 on purpose
    bad = tmp_path / "bad-job.yaml"
    bad.write_text(BAD_YAML)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "bad-job.yaml"]) == 1
    cli_error = capsys.readouterr().err.split("kubetune: error: ", 1)[1].strip()
    assert "bad-job.yaml: " in cli_error and "evaluation_strategy" in cli_error

    page = watched.page
    page.goto("/#/new")
    page.fill("#job-yaml", BAD_YAML)
    page.click("#create")
    page.wait_for_selector("#create-error:not([hidden])")
    shown = page.inner_text("#create-error").strip()
    assert shown == cli_error.replace("bad-job.yaml: ", "pasted job YAML: ", 1)
    screenshot(page, screenshots / "new-job.png")

    # Uploaded: the file's name prefixes the problems, as the path does on the command line.
    page.set_input_files("#job-file", str(bad))
    wait_true(page, "document.querySelector('#job-yaml').value.startsWith('name: Bad_Name')")
    page.click("#create")
    wait_true(
        page, "document.querySelector('#create-error').innerText.startsWith('bad-job.yaml: ')"
    )
    assert page.inner_text("#create-error").strip() == cli_error
    assert "Bad_Name" not in [j["name"] for j in ui.source.list_jobs()]


# --- the token on a non-loopback bind --------------------------------------------------------


def test_without_the_token_every_request_is_refused(ui, browser):
    with UIServer(ui.source, host="0.0.0.0", port=0) as open_server:
        token = open_server.access.token
        assert token
        base = f"http://127.0.0.1:{open_server.port}"
        ctx = browser.new_context()
        try:
            page = ctx.new_page()
            response = page.goto(base + "/")
            assert response.status == 401 and "needs its token" in page.inner_text("body")
            for method, path in [
                ("GET", "/api/jobs"),
                ("GET", "/api/info"),
                ("GET", "/static/app.js"),
                ("GET", "/api/events"),
                ("GET", f"/api/jobs/default/{FAILED}"),
                ("GET", f"/api/jobs/default/{FAILED}/logs"),
                ("POST", "/api/jobs"),
                ("DELETE", f"/api/jobs/default/{FAILED}"),
            ]:
                answer = ctx.request.fetch(base + path, method=method, fail_on_status_code=False)
                assert answer.status == 401, (method, path, answer.status)
            wrong = ctx.request.get(
                base + "/api/jobs", headers={"Authorization": "Bearer not-the-token"}
            )
            assert wrong.status == 401

            # The printed address carries the token: the page then works (cookie set).
            page.goto(f"{base}/?token={token}")
            assert page.url == base + "/"
            page.wait_for_selector(f'tr[data-job="default/{FAILED}"]')
            assert ctx.request.get(base + "/api/jobs").status == 200
        finally:
            ctx.close()
    assert ui.source.job("default", FAILED)  # the refused DELETE changed nothing


# --- watching the job --------------------------------------------------------------------------


def test_job_list_loads_with_no_console_error(ui, watched, job):
    page = watched.page
    page.goto("/")
    page.wait_for_selector(f'tr[data-job="default/{JOB}"]')
    failed_row = page.inner_text(f'tr[data-job="default/{FAILED}"]')
    assert "failed" in failed_row and "WorkerFailed" in failed_row and "2 × 1" in failed_row
    assert page.inner_text("#job-count") == "2 of 2 jobs"
    page.fill("#job-filter", "failed")
    wait_true(page, "document.querySelectorAll('#jobs tbody tr').length === 1")
    assert page.get_attribute("#jobs tbody tr", "data-job") == f"default/{FAILED}"
    page.fill("#job-filter", "")
    page.click('th[data-sort="name"]')
    rows = page.eval_on_selector_all("#jobs tbody tr", "rows => rows.map(r => r.dataset.job)")
    assert rows == [f"default/{FAILED}", f"default/{JOB}"]
    page.click('th[data-sort="name"]')
    rows = page.eval_on_selector_all("#jobs tbody tr", "rows => rows.map(r => r.dataset.job)")
    assert rows == [f"default/{JOB}", f"default/{FAILED}"]
    assert page.inner_text("#live") == "live"


def test_running_jobs_progress_bar_loss_curve_and_logs_advance(ui, watched, job, screenshots):
    """Watched on one page while the job trains: the bar, the curve and the log all move on."""
    page = watched.page
    page.goto(f"/#/jobs/default/{job}")
    wait_true(
        page,
        "+document.querySelector('#job-progress')?.dataset.step > 0"
        " && +document.querySelector('#loss-chart')?.dataset.points > 0"
        " && document.querySelector('#logs').textContent.includes(\"'loss'\")",
    )
    # The step and the bar's width are read together: a redraw between two reads would pair
    # one step with the next step's width.
    step, width = page.eval_on_selector(
        "#job-progress", "e => [+e.dataset.step, parseFloat(e.querySelector('.fill').style.width)]"
    )
    points = number(page, "#loss-chart", "data-points")
    lines = page.evaluate(LOG_LINES)
    assert step < STEPS, "the job ended before the test could watch it run"
    wait_true(
        page,
        f"+document.querySelector('#job-progress').dataset.step > {step}"
        f" && +document.querySelector('#loss-chart').dataset.points > {points}"
        f" && {LOG_LINES} > {lines + 2}",
        timeout=30,
    )
    later_step, later_width = page.eval_on_selector(
        "#job-progress", "e => [+e.dataset.step, parseFloat(e.querySelector('.fill').style.width)]"
    )
    assert later_step > step and later_width > width
    assert number(page, "#lr-chart", "data-points") > 0
    if "running" in page.inner_text("#job-state"):
        screenshot(page, screenshots / "job-running.png")

    page.select_option("#log-source", "initializer")
    shown = [line for line in page.inner_text("#logs").splitlines() if line]
    assert shown and all(line.startswith("[initializer] ") for line in shown)


def test_finished_job_shows_outputs_metrics_and_evaluation(ui, watched, job, screenshots):
    wait_for_state(ui, job, "succeeded")
    page = watched.page
    page.goto("/")
    page.wait_for_selector(f'tr[data-job="default/{job}"][data-state="succeeded"]')
    screenshot(page, screenshots / "jobs.png")

    page.goto(f"/#/jobs/default/{job}")
    page.wait_for_selector("#metrics-table")
    wait_true(page, f"+document.querySelector('#loss-chart')?.dataset.points === {STEPS}")
    evals = page.eval_on_selector_all(
        "#eval-table tbody tr", "rows => rows.map(r => r.cells[0].innerText)"
    )
    # Every EVAL_STEPS (the final evaluation may log the last step once more).
    assert list(dict.fromkeys(evals)) == [str(s) for s in range(EVAL_STEPS, STEPS + 1, EVAL_STEPS)]
    for output in ("model", "merged_model", "metrics.json", "loss_curve.png"):
        assert "written" in page.inner_text(f'tr[data-output="{output}"]'), output
    wait_true(page, "document.querySelector('img.curve')?.naturalWidth > 0")
    assert "Succeeded" in page.inner_text("#conditions")
    screenshot(page, screenshots / "job-finished.png", whole=True)


def test_delete_asks_then_removes_the_job(ui, watched, job, screenshots):
    folder = job_dir(ui.source.backend.home, "default", job)
    status = folder.read_status()
    assert status is not None
    pids = status.all_pids()
    page = watched.page
    page.goto(f"/#/jobs/default/{job}")
    page.click("#delete")
    page.wait_for_selector("#confirm[open]")
    assert f"default/{job}" in page.inner_text("#confirm-text")
    page.screenshot(path=screenshots / "delete.png")
    page.click("#confirm-cancel")
    page.wait_for_selector("#confirm", state="hidden")
    assert ui.source.job("default", job)

    page.click("#delete")
    page.click("#confirm-ok")
    page.wait_for_url("**/#/jobs")
    page.wait_for_selector(".notice >> text=deleted")
    page.wait_for_selector(f'tr[data-job="default/{FAILED}"]')
    assert page.query_selector(f'tr[data-job="default/{job}"]') is None
    assert not folder.path.exists()
    assert not [pid for pid in pids if is_alive(pid)]
