"""The search itself, driven in this process with a deterministic custom objective (the same
search loop as local experiments, InProcessRunner instead of local jobs): tpe beats random,
grid tries each point once, the goal and the failure budget end the search, medianstop."""

from __future__ import annotations

import statistics
from typing import Any

import pytest

from kubetune.katib import search
from kubetune.katib.backends.local.runners import InProcessRunner, run_in_process
from kubetune.katib.backends.local.search import Outcome, SearchLoop
from kubetune.katib.backends.local.store import ExperimentRecord
from kubetune.katib.metrics import MetricLog
from kubetune.katib.request import ExperimentRequest, TuneArguments, build_request
from kubetune.training import TrainingClient


def bowl(parameters):
    """A deterministic objective with its minimum (0) at x=0.62, y=-0.35; values come as text."""
    x, y = float(parameters["x"]), float(parameters["y"])
    print(f"loss={(x - 0.62) ** 2 + (y + 0.35) ** 2}")


def request(objective: Any = bowl, **given: Any) -> ExperimentRequest:
    arguments = {
        "name": "search",
        "objective": objective,
        "parameters": {"x": search.double(min=-2, max=2), "y": search.double(min=-2, max=2)},
        "objective_metric_name": "loss",
        "objective_type": "minimize",
        "max_trial_count": 40,
        "parallel_trial_count": 1,
        **given,
    }
    built, _ = build_request(
        TuneArguments(**arguments), TrainingClient(backend="local"), kubernetes=False
    )
    return built


def best_value(record: ExperimentRecord) -> float:
    best = record.trial(record.best_trial) if record.best_trial else None
    assert best is not None and best.objective is not None
    return best.objective


def test_tpe_finds_a_better_optimum_than_random_within_the_same_budget():
    random_best, tpe_best = [], []
    for seed in range(5):
        for algorithm, found in (("random", random_best), ("tpe", tpe_best)):
            record = run_in_process(
                request(algorithm_name=algorithm, algorithm_settings={"random_state": seed}),
                bowl,
            )
            assert record.status == "Succeeded" and len(record.trials) == 40
            found.append(best_value(record))
    wins = sum(t < r for t, r in zip(tpe_best, random_best, strict=True))
    assert wins >= 4, (tpe_best, random_best)
    assert statistics.median(tpe_best) < statistics.median(random_best) / 2, (tpe_best, random_best)


@pytest.mark.parametrize("parallel", [1, 2])
def test_grid_tries_every_point_of_its_grid_exactly_once(parallel):
    space = {
        "x": search.double(min=0.0, max=1.0, step=0.25),
        "y": search.categorical([-1, 0, 1]),
    }
    record = run_in_process(
        request(
            parameters=space,
            algorithm_name="grid",
            max_trial_count=None,
            parallel_trial_count=parallel,
        ),
        bowl,
    )
    tried = [(t.assignments["x"], t.assignments["y"]) for t in record.trials]
    expected = {(x, y) for x in ("0.0", "0.25", "0.5", "0.75", "1.0") for y in ("-1", "0", "1")}
    assert len(tried) == len(expected) == 15
    assert set(tried) == expected
    assert record.status == "Succeeded"
    assert record.conditions[-1].reason == "ExperimentSuggestionEndReached"
    assert record.trial(record.best_trial).assignments == {"x": "0.5", "y": "0"}


def test_grid_refuses_more_trials_than_points_and_a_double_without_step():
    with pytest.raises(ValueError) as found:
        request(
            parameters={"x": search.double(min=0, max=1), "y": search.int(min=1, max=3)},
            algorithm_name="grid",
            max_trial_count=5,
        )
    assert "training" not in str(found.value)
    assert "parameters.x: grid search needs a step for a double" in str(found.value)
    with pytest.raises(
        ValueError,
        match=r"max_trial_count=7: more than all possible search combinations of the grid \(6\)",
    ):
        request(
            parameters={"x": search.int(min=1, max=3), "y": search.categorical(["a", "b"])},
            algorithm_name="grid",
            max_trial_count=7,
        )


def test_objective_goal_ends_the_search_early():
    record = run_in_process(
        request(
            algorithm_name="random", objective_goal=0.5, algorithm_settings={"random_state": 0}
        ),
        bowl,
    )
    assert record.status == "Succeeded"
    assert record.conditions[-1].reason == "ExperimentGoalReached"
    assert best_value(record) <= 0.5
    assert len(record.trials) < 40
    # the goal was met by the last trial, not before
    assert all(t.objective is None or t.objective > 0.5 for t in record.trials[:-1])


def flaky(parameters):
    if float(parameters["x"]) > 0:
        raise RuntimeError("diverged")
    print(f"loss={float(parameters['x']) ** 2}")


def test_more_failed_trials_than_max_failed_trial_count_fail_the_experiment():
    record = run_in_process(
        request(objective=flaky, max_failed_trial_count=2, algorithm_settings={"random_state": 1}),
        flaky,
    )
    failed = [t for t in record.trials if t.status == "Failed"]
    assert record.status == "Failed"
    assert record.conditions[-1].reason == "ExperimentMaxFailedTrialsReached"
    assert len(failed) == 3
    assert failed[0].message == "RuntimeError: diverged"


def silent(parameters):
    print("nothing to report")


def test_a_trial_without_its_objective_metric_is_metrics_unavailable():
    record = run_in_process(request(objective=silent, max_trial_count=2), silent)
    assert [t.status for t in record.trials] == ["MetricsUnavailable"] * 2
    assert record.trials[0].metrics == [
        {"name": "loss", "min": "unavailable", "max": "unavailable", "latest": "unavailable"}
    ]
    assert record.best_trial is None and record.status == "Succeeded"


def pushed(parameters):
    from kubetune.katib import report_metrics

    report_metrics({"loss": float(parameters["x"]) ** 2, "other": 1})


def test_report_metrics_with_the_push_collector():
    record = run_in_process(
        request(objective=pushed, metrics_collector_config={"kind": "Push"}, max_trial_count=3),
        pushed,
    )
    assert [t.status for t in record.trials] == ["Succeeded"] * 3
    for trial in record.trials:
        assert trial.objective == pytest.approx(float(trial.assignments["x"]) ** 2)


def test_medianstop_stops_a_trial_worse_than_the_median_of_the_others_at_the_same_step():
    """Three trials reported 1.0, 0.9, 0.8 at steps 0-3 and ended; a fourth reporting 5.0 is
    stopped once it has reported start_step values, one reporting 0.5 is not."""
    built = request(early_stopping={"min_trials_required": 3, "start_step": 2}, max_trial_count=10)
    loop = SearchLoop(
        built, InProcessRunner(built, bowl), ExperimentRecord("search", "default", "u")
    )
    for value in (1.0, 0.9, 0.8):
        loop.start_one()
        trial = loop.record.trials[-1]
        logs = [MetricLog("t", "loss", str(value)) for _ in range(4)]
        assert not loop.should_stop_early(trial, Outcome("Running", logs))
        loop.end_trial(trial, Outcome("Succeeded", logs))
    for value, stopped in ((5.0, True), (0.5, False)):
        loop.start_one()
        trial = loop.record.trials[-1]
        first = [MetricLog("t", "loss", str(value))]
        assert not loop.should_stop_early(trial, Outcome("Running", first))  # before start_step
        assert loop.should_stop_early(trial, Outcome("Running", first * 2)) is stopped


def test_values_reach_a_custom_objective_as_text_with_its_literal_inputs():
    seen: list[dict[str, Any]] = []

    def record_it(parameters):
        seen.append(dict(parameters))
        print("loss=1")

    space = {
        "lr": search.double(min=0.1, max=0.2),
        "layers": search.int(min=2, max=4),
        "act": search.categorical(["relu", "gelu"]),
        "epochs": 3,
    }
    # (the request is checked with a function that can travel; in this process a closure runs)
    run_in_process(request(objective=silent, parameters=space, max_trial_count=3), record_it)
    assert len(seen) == 3
    for given in seen:
        assert given["epochs"] == 3
        assert isinstance(given["lr"], str) and 0.1 <= float(given["lr"]) <= 0.2
        assert given["layers"] in ("2", "3", "4") and given["act"] in ("relu", "gelu")


@pytest.mark.parametrize(
    "algorithm,settings",
    [
        ("multivariate-tpe", {"n_startup_trials": 3, "random_state": 1}),
        ("cmaes", {"sigma": 0.5, "random_state": 1}),
        ("bayesianoptimization", {"n_initial_points": 3, "random_state": 1}),
        ("sobol", {"random_state": 1}),
        ("tpe", {"gamma": 0.25, "prior_weight": 1.0, "n_EI_candidates": 12, "random_state": 1}),
    ],
)
def test_every_local_algorithm_searches_with_its_katib_settings(algorithm, settings):
    record = run_in_process(
        request(algorithm_name=algorithm, algorithm_settings=settings, max_trial_count=6), bowl
    )
    assert record.status == "Succeeded" and len(record.trials) == 6
    assert len({tuple(t.assignments.values()) for t in record.trials}) == 6


def test_settings_optuna_cannot_honour_are_refused_with_the_reason():
    with pytest.raises(ValueError) as found:
        request(
            algorithm_name="bayesianoptimization",
            algorithm_settings={
                "base_estimator": "RF",
                "acq_func": "EI",
                "n_initial_points": -1,
                "bogus": 1,
            },
        )
    message = str(found.value)
    assert "base_estimator='RF': allowed here: GP" in message
    assert "n_initial_points='-1': must be an integer >= 0" in message
    assert "unknown setting 'bogus'" in message
    assert "acq_func=" not in message  # EI is what Optuna's GP sampler does
    with pytest.raises(ValueError, match="hyperband, pbt run only on Kubernetes"):
        request(algorithm_name="hyperband")
    with pytest.raises(ValueError, match="cmaes': needs at least 2 int or double parameters"):
        request(algorithm_name="cmaes", parameters={"x": search.double(min=0, max=1)})


def test_a_trial_is_saved_in_the_record_before_its_job_is_created():
    """A controller killed right after creating a trial's job must leave the trial in
    status.json, else delete_experiment (which deletes the jobs the record names) leaks the job."""
    built = request(max_trial_count=2)
    saved: list[list[str]] = []
    on_start: list[list[str]] = []

    class Recording(InProcessRunner):
        def start(self, trial, values):
            on_start.append(saved[-1] if saved else [])
            super().start(trial, values)

    record = ExperimentRecord("search", "default", "u")
    loop = SearchLoop(
        built,
        Recording(built, bowl),
        record,
        save=lambda r: saved.append([t.name for t in r.trials]),
        poll_interval=0,
    )
    loop.run()
    names = [t.name for t in record.trials]
    assert [names[i] in seen for i, seen in enumerate(on_start)] == [True, True]
