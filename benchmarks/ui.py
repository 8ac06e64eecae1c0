"""Benchmark: the job dashboard (`kubetune ui`) with many jobs and one long run.

Writes local job folders directly (tests/ui/ui_jobs.py: status, spec, progress, history, logs;
no training runs): JOBS jobs in every state, each with 100 logged steps, and one running job
with STEPS logged steps. Serves them on 127.0.0.1 and measures, in Debian's headless Chromium:

  - page load: the job list until every row is drawn; the long job's page until its loss curve
    holds every point;
  - update latency: from appending a logged step to the history and progress files (as the
    trainer's rank 0 does) until the page shows it, on the job page (progress bar and loss curve)
    and on the list (the job's progress bar);
  - smoothness: main-thread tasks over 50 ms (the browser's long tasks) while the job page
    takes those updates with STEPS points drawn;
  - an experiment with TRIALS trials (tests/ui/ui_experiments.py): its page until the trials
    table and the charts hold every trial, and from a trial's end being recorded until the page
    shows it;

and, without a browser, the JSON API's answer times. Prints a table and writes
benchmarks/results/ui.json. Times are medians over ROUNDS.

    python benchmarks/ui.py [--jobs 200] [--steps 10000] [--trials 500] [--rounds 5] [--updates 20]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "ui.json"
CHROMIUM = Path("/usr/bin/chromium")
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO))  # the tests package (its job folders)

import benchlib  # noqa: E402
import httpx  # noqa: E402

from kubetune.ui.server import UIServer  # noqa: E402
from kubetune.ui.source import LocalSource  # noqa: E402
from tests.ui.ui_experiments import write_experiment  # noqa: E402
from tests.ui.ui_jobs import append_records, stop_stand_ins, write_job  # noqa: E402

LONG = "long-run"
SEARCH = "big-search"
STATES = ("succeeded", "succeeded", "succeeded", "failed", "running", "queued")


def build_home(home: Path, jobs: int, steps: int) -> Any:
    """`jobs` short jobs in two namespaces plus the long running one; returns the long job's dir."""
    for i in range(jobs):
        state = STATES[i % len(STATES)]
        write_job(
            home,
            f"job-{i:03d}",
            namespace="default" if i % 4 else "team-a",
            state=state,
            steps=0 if state == "queued" else 100,
            total_steps=200 if state == "running" else 100,
            eval_every=25,
            created_minutes_ago=jobs - i,
        )
    return write_job(
        home, LONG, state="running", steps=steps, total_steps=steps * 2, eval_every=500
    )


def build_search(home: Path, trials: int) -> Any:
    """A running experiment with `trials` trials, all ended but the last; returns its folder."""
    rng = random.Random(0)
    rows = []
    for _ in range(trials):
        x = rng.random()
        optimizer = rng.choice(["fast", "slow"])
        score = (x - 0.3) ** 2 + (0.1 if optimizer == "slow" else 0.0)
        rows.append(({"x": repr(x), "optimizer": optimizer}, "Succeeded", score))
    rows[-1] = (rows[-1][0], "Running", None)
    return write_experiment(home, SEARCH, rows, state="running", max_trial_count=trials + 100)


def timed(action: Any) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def api_times(url: str, rounds: int) -> dict[str, Any]:
    def uncached_list() -> float:
        time.sleep(0.3)  # past the server's shared list (kept for half a poll interval)
        return timed(lambda: client.get("/api/jobs").raise_for_status())

    with httpx.Client(base_url=url, timeout=60) as client:
        listing = [uncached_list() for _ in range(rounds)]
        history = client.get(f"/api/jobs/default/{LONG}/history")
        history_times = [
            timed(lambda: client.get(f"/api/jobs/default/{LONG}/history").raise_for_status())
            for _ in range(rounds)
        ]
        experiment_times = [
            timed(lambda: client.get(f"/api/experiments/default/{SEARCH}").raise_for_status())
            for _ in range(rounds)
        ]
    return {
        "experiment_seconds": statistics.median(experiment_times),
        "list_seconds": statistics.median(listing),
        "history_seconds": statistics.median(history_times),
        "history_bytes": len(history.content),
        "history_records": len(history.json()["records"]),
    }


def wait_true(page: Any, expression: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise TimeoutError(expression)
        time.sleep(0.01)


def browser_times(url: str, long_job: Any, search: Any, args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    jobs = args.jobs + 1
    points = args.steps
    step = args.steps
    results: dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
            ],
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()

        def load_list() -> None:
            page.goto(url)
            wait_true(page, f"document.querySelectorAll('#jobs tr[data-job]').length === {jobs}")

        results["list_load_seconds"] = statistics.median(
            [timed(load_list) for _ in range(args.rounds)]
        )

        def load_job() -> None:
            page.goto("about:blank")
            page.goto(f"{url}#/jobs/default/{LONG}")
            wait_true(page, f"+document.querySelector('#loss-chart')?.dataset.points === {points}")

        results["job_load_seconds"] = statistics.median(
            [timed(load_job) for _ in range(args.rounds)]
        )

        # Updates on the job page, watching for long tasks meanwhile.
        page.evaluate(
            "window.longTasks = [];"
            "new PerformanceObserver(l => window.longTasks.push(...l.getEntries().map(e => e.duration)))"
            ".observe({type: 'longtask'})"
        )
        latencies = []
        rng = random.Random(0)
        for _ in range(args.updates):
            time.sleep(rng.uniform(0.1, 0.6))
            step += 1
            points += 1
            start = time.perf_counter()
            append_records(long_job, step, step, args.steps * 2)
            wait_true(
                page,
                f"+document.querySelector('#job-progress').dataset.step === {step}"
                f" && +document.querySelector('#loss-chart').dataset.points === {points}",
            )
            latencies.append(time.perf_counter() - start)
        long_tasks = page.evaluate("window.longTasks")
        results["job_update_seconds_median"] = statistics.median(latencies)
        results["job_update_seconds_max"] = max(latencies)
        results["long_tasks_during_updates"] = len(long_tasks)
        results["longest_task_ms"] = max(long_tasks, default=0.0)

        # Updates on the list.
        page.goto(url)
        wait_true(page, f"document.querySelectorAll('#jobs tr[data-job]').length === {jobs}")
        row = f'#jobs tr[data-job="default/{LONG}"] .bar'
        latencies = []
        for _ in range(args.updates):
            time.sleep(rng.uniform(0.1, 0.6))
            step += 1
            start = time.perf_counter()
            append_records(long_job, step, step, args.steps * 2)
            wait_true(page, f"+document.querySelector('{row}')?.dataset.step === {step}")
            latencies.append(time.perf_counter() - start)
        results["list_update_seconds_median"] = statistics.median(latencies)
        results["list_update_seconds_max"] = max(latencies)

        # The experiment: its page, then a trial ending.
        trials = args.trials
        drawn = (
            f"+document.querySelector('#trials')?.dataset.count === {trials}"
            f" && +document.querySelector('#objective-chart')?.dataset.points === {trials - 1}"
            " && [...document.querySelectorAll('.param-chart')].every("
            f"c => +c.dataset.points === {trials - 1})"
        )

        def load_experiment() -> None:
            page.goto("about:blank")
            page.goto(f"{url}#/experiments/default/{SEARCH}")
            wait_true(page, drawn)

        results["experiment_load_seconds"] = statistics.median(
            [timed(load_experiment) for _ in range(args.rounds)]
        )
        latencies = []
        for _ in range(args.updates):
            time.sleep(rng.uniform(0.1, 0.6))
            record = search.read_record()
            running = record.trials[-1]
            ended = int(page.evaluate("+document.querySelector('#trials').dataset.ended"))
            running.status, running.objective = "Succeeded", rng.random()
            text = repr(running.objective)
            running.metrics = [{"name": "score", "min": text, "max": text, "latest": text}]
            start = time.perf_counter()
            search.write_record(record)
            wait_true(page, f"+document.querySelector('#trials').dataset.ended === {ended + 1}")
            latencies.append(time.perf_counter() - start)
            running.status, running.objective, running.metrics = "Running", None, []
            search.write_record(record)  # running again, for the next round
            wait_true(page, f"+document.querySelector('#trials').dataset.ended === {ended}")
        results["experiment_update_seconds_median"] = statistics.median(latencies)
        results["experiment_update_seconds_max"] = max(latencies)
        browser.close()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200, help="short jobs besides the long one")
    parser.add_argument("--steps", type=int, default=10000, help="logged steps of the long job")
    parser.add_argument("--trials", type=int, default=500, help="trials of the experiment")
    parser.add_argument("--rounds", type=int, default=5, help="page loads and API calls timed")
    parser.add_argument("--updates", type=int, default=20, help="updates timed on each page")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="kubetune-ui-bench-"))
    try:
        started = time.perf_counter()
        long_job = build_home(scratch / "home", args.jobs, args.steps)
        search = build_search(scratch / "home", args.trials)
        print(
            f"wrote {args.jobs + 1} job folders and an experiment of {args.trials} trials "
            f"in {time.perf_counter() - started:.1f} s"
        )
        with UIServer(LocalSource(home=scratch / "home"), port=0) as server:
            api = api_times(server.url, args.rounds)
            browser = (
                browser_times(server.url, long_job, search, args)
                if CHROMIUM.exists()
                else {"skipped": f"{CHROMIUM} missing: apt-get install chromium"}
            )
    finally:
        stop_stand_ins()
        shutil.rmtree(scratch, ignore_errors=True)

    results = {
        "benchmark": "ui",
        "machine": benchlib.machine(),
        "settings": vars(args) | {"output": str(args.output)},
        "api": api,
        "browser": browser,
    }
    benchlib.write_json(args.output, results)
    rows = [
        [
            "GET /api/jobs",
            f"{args.jobs + 1} jobs",
            benchlib.fmt(api["list_seconds"] * 1000, ",.0f") + " ms",
        ],
        [
            "GET .../history",
            f"{api['history_records']:,} records, {api['history_bytes'] / 1e6:.1f} MB",
            benchlib.fmt(api["history_seconds"] * 1000, ",.0f") + " ms",
        ],
        [
            "GET /api/experiments/NS/NAME",
            f"{args.trials} trials",
            benchlib.fmt(api["experiment_seconds"] * 1000, ",.0f") + " ms",
        ],
    ]
    if "skipped" not in browser:
        rows += [
            [
                "job list loads",
                f"{args.jobs + 1} rows drawn",
                f"{browser['list_load_seconds']:.2f} s",
            ],
            [
                "job page loads",
                f"{args.steps:,} points drawn",
                f"{browser['job_load_seconds']:.2f} s",
            ],
            [
                "job page update",
                "file written -> bar and curve",
                f"{browser['job_update_seconds_median']:.2f} s (max {browser['job_update_seconds_max']:.2f})",
            ],
            [
                "job list update",
                "file written -> bar",
                f"{browser['list_update_seconds_median']:.2f} s (max {browser['list_update_seconds_max']:.2f})",
            ],
            [
                "long tasks (>50 ms)",
                f"during {args.updates} updates",
                f"{browser['long_tasks_during_updates']} (longest {browser['longest_task_ms']:.0f} ms)",
            ],
            [
                "experiment page loads",
                f"{args.trials} trials: table and charts",
                f"{browser['experiment_load_seconds']:.2f} s",
            ],
            [
                "experiment page update",
                "a trial ends -> table",
                f"{browser['experiment_update_seconds_median']:.2f} s (max {browser['experiment_update_seconds_max']:.2f})",
            ],
        ]
    else:
        print(browser["skipped"])
    print(
        "\n" + benchlib.table(rows, ["what", "with", f"median of {args.rounds} / {args.updates}"])
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
