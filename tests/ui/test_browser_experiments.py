"""The experiments views in headless Chromium against one real local hyperparameter search: a
custom objective whose trials are function jobs (a few seconds each), 4 trials, 2 at a time. The
tests run in order: the trials table fills while the search runs, the finished search shows its
best trial and charts, then it is deleted. Each test's page must log no console error.

The screenshots of the experiments views in docs/ui.md are taken here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from kubetune.katib import KatibClient, search
from kubetune.katib.backends.local.store import experiment_dir
from kubetune.ui.server import UIServer
from kubetune.ui.source import LocalSource
from tests.ui.ui_browser import screenshot, wait_true

NAME = "ui-search"
TRIALS = 4
ROWS = "document.querySelectorAll('#trials tbody tr')"
ENDED = "+(document.querySelector('#trials')?.dataset.ended || 0)"


def objective(parameters):
    """Best at x = 0.3 with the fast optimizer."""
    penalty = 0.05 if parameters["optimizer"] == "slow" else 0.0
    print(f"score={(float(parameters['x']) - 0.3) ** 2 + penalty}")


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UIServer]:
    """The dashboard of a fresh local home."""
    home = tmp_path_factory.mktemp("ui-experiments-home")
    server = UIServer(LocalSource(home=home), port=0).start()
    try:
        yield server
    finally:
        server.stop()
        client = KatibClient(home=home)
        for found in client.list_experiments():
            client.delete_experiment(found.metadata.name)


@pytest.fixture(scope="module")
def katib(ui: UIServer) -> KatibClient:
    """The search, started once for the module."""
    client = KatibClient(home=ui.source.backend.home)
    client.tune(
        name=NAME,
        objective=objective,
        parameters={
            "x": search.double(min=0, max=1),
            "optimizer": search.categorical(["fast", "slow"]),
        },
        objective_metric_name="score",
        objective_type="minimize",
        algorithm_name="random",
        algorithm_settings={"random_state": 7},
        max_trial_count=TRIALS,
        parallel_trial_count=2,
        resources_per_trial={"cpu": 1},
    )
    return client


def trial_rows(page: Any) -> list[dict[str, Any]]:
    """The trials table as the page shows it."""
    return list(
        page.eval_on_selector_all(
            "#trials tbody tr",
            """rows => rows.map(r => ({
                name: r.dataset.trial, status: r.dataset.status, best: r.classList.contains('best'),
                objective: r.querySelector('td.objective').innerText,
                link: r.querySelector('a')?.getAttribute('href') || null,
            }))""",
        )
    )


def test_an_experiments_trials_table_fills_as_trials_finish(ui, katib, watched, screenshots):
    page = watched.page
    page.goto("/#/experiments")
    page.wait_for_selector(f'tr[data-experiment="default/{NAME}"]')
    page.click(f'tr[data-experiment="default/{NAME}"] a')
    page.wait_for_url(f"**/#/experiments/default/{NAME}")

    # Seen while the search runs: some trials ended, not all; then every one, on the same page.
    wait_true(page, f"{ENDED} >= 1")
    # Read in one evaluation: a redraw between two reads could pair them wrongly.
    seen, state = page.evaluate(
        f"[{ENDED}, document.querySelector('#experiment-state .badge').innerText]"
    )
    assert seen < TRIALS, "the search ended before the test could watch it"
    assert state == "running"
    wait_true(page, f"{ENDED} === {TRIALS}")
    wait_true(page, "document.querySelector('#experiment-state').innerText.includes('succeeded')")

    rows = trial_rows(page)
    report = katib.get_experiment_report(NAME)
    assert [r["name"] for r in rows] == [t.name for t in report.trials]
    assert {r["status"] for r in rows} == {"Succeeded"}
    # The best trial is highlighted, and it is the one with the lowest score.
    assert [r["name"] for r in rows if r["best"]] == [report.best_trial]
    best = min(report.trials, key=lambda t: t.objective if t.objective is not None else 1e9)
    assert report.best_trial == best.name
    # Its job is kept (a link to its page); the others' jobs are removed (no link).
    assert [r["link"] for r in rows] == [
        f"#/jobs/default/{t.name}" if t.name == best.name else None for t in report.trials
    ]
    wait_true(page, f"+document.querySelector('#objective-chart').dataset.points === {TRIALS}")
    for parameter in ("x", "optimizer"):
        points = page.get_attribute(f'.param-chart[data-param="{parameter}"]', "data-points")
        assert points == str(TRIALS), parameter
    assert page.inner_text("#live") == "live"
    screenshot(page, screenshots / "experiment.png", whole=True)

    page.click(f'tr[data-trial="{best.name}"] a')
    page.wait_for_url(f"**/#/jobs/default/{best.name}")
    page.wait_for_selector('#job-state .badge:text("succeeded")')


def test_experiment_list_shows_state_trials_and_best(ui, katib, watched, screenshots):
    page = watched.page
    page.goto("/#/experiments")
    row = f'tr[data-experiment="default/{NAME}"][data-state="succeeded"]'
    page.wait_for_selector(row)
    text = page.inner_text(row)
    report = katib.get_experiment_report(NAME)
    assert f"{TRIALS}/{TRIALS}" in text and "ExperimentMaxTrialsReached" in text
    assert report.best_trial is not None and report.best_trial in text
    assert page.inner_text("#experiment-count") == "1 experiment"
    screenshot(page, screenshots / "experiments.png")


def test_delete_asks_then_removes_the_experiment(ui, katib, watched, screenshots):
    folder = experiment_dir(ui.source.backend.home, "default", NAME)
    page = watched.page
    page.goto(f"/#/experiments/default/{NAME}")
    page.wait_for_selector("#trials")
    page.click("#delete")
    page.wait_for_selector("#confirm[open]")
    assert f"experiment default/{NAME}" in page.inner_text("#confirm-text")
    page.click("#confirm-cancel")
    page.wait_for_selector("#confirm", state="hidden")
    assert folder.path.exists()

    page.click("#delete")
    page.click("#confirm-ok")
    page.wait_for_url("**/#/experiments")
    page.wait_for_selector(".notice >> text=deleted")
    page.wait_for_selector("#experiments .empty")
    assert page.query_selector(f'tr[data-experiment="default/{NAME}"]') is None
    assert not folder.path.exists()
    assert not [j for j in ui.source.list_jobs() if j["name"].startswith(f"{NAME}-")]
