"""Katib's search algorithms and their settings, and the Optuna sampler that runs each locally.

Names and setting names are Katib's (case-sensitive). Locally every algorithm is an Optuna
sampler: `random` (RandomSampler), `grid` (GridSampler), `tpe` (TPESampler), `multivariate-tpe`
(TPESampler(multivariate=True, constant_liar=True), as Katib's Optuna service), `cmaes`
(CmaEsSampler), `bayesianoptimization` (GPSampler: a Gaussian process with expected
improvement) and `sobol` (QMCSampler). A setting Katib accepts but Optuna has no counterpart
for is refused with the reason, rather than ignored. `hyperband` and `pbt` run only on
Kubernetes, by Katib itself, which checks their settings.

Early stopping: `medianstop` (settings `min_trials_required`, default 3, and `start_step`,
default 4) stops a running trial whose latest reported objective value is worse than the
median of the other trials' values at the same step, once `min_trials_required` trials have
ended and the trial has reported `start_step` values (Optuna's MedianPruner).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kubetune.katib.space import Parameter

LOCAL_ALGORITHMS = (
    "random",
    "grid",
    "tpe",
    "multivariate-tpe",
    "cmaes",
    "bayesianoptimization",
    "sobol",
)
KATIB_ONLY_ALGORITHMS = ("hyperband", "pbt")
EARLY_STOPPING_ALGORITHM = "medianstop"
EARLY_STOPPING_DEFAULTS = {"min_trials_required": 3, "start_step": 4}


def _int(low: int) -> Callable[[str], str | None]:
    def check(text: str) -> str | None:
        try:
            value = float(text)
        except ValueError:
            return f"must be an integer >= {low}"
        if not value.is_integer() or value < low:
            return f"must be an integer >= {low}"
        return None

    return check


def _float(
    low: float, high: float | None = None, low_open: bool = True
) -> Callable[[str], str | None]:
    def check(text: str) -> str | None:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        too_low = value <= low if low_open else value < low
        if math.isnan(value) or too_low or (high is not None and value >= high):
            bounds = f"{'>' if low_open else '>='} {low:g}" + (
                f" and < {high:g}" if high is not None else ""
            )
            return f"must be a number {bounds}"
        return None

    return check


def _one_of(*allowed: str) -> Callable[[str], str | None]:
    def check(text: str) -> str | None:
        return None if text in allowed else f"allowed here: {', '.join(allowed)}"

    return check


_SEED = {"random_state": _int(0)}
# Katib's settings per algorithm, each with its check (of the value as text).
SETTINGS: dict[str, dict[str, Callable[[str], str | None]]] = {
    "random": dict(_SEED),
    "grid": dict(_SEED),
    "sobol": dict(_SEED),
    "tpe": {
        **_SEED,
        "gamma": _float(0.0, 1.0),
        "prior_weight": _float(0.0),
        "n_EI_candidates": _int(1),
    },
    "multivariate-tpe": {**_SEED, "n_startup_trials": _int(0), "n_ei_candidates": _int(1)},
    "cmaes": {
        **_SEED,
        "sigma": _float(0.0),
        "restart_strategy": _one_of("ipop", "bipop", "none"),
    },
    "bayesianoptimization": {
        **_SEED,
        "n_initial_points": _int(0),
        # Optuna's Gaussian-process sampler has one estimator (GP) and one acquisition
        # function (expected improvement), optimised its own way.
        "base_estimator": _one_of("GP"),
        "acq_func": _one_of("EI"),
        "acq_optimizer": _one_of("auto"),
    },
}
EARLY_STOPPING_SETTINGS = {"min_trials_required": _int(1), "start_step": _int(1)}


def algorithm_problems(
    name: Any, settings: Mapping[str, str], parameters: Sequence[Parameter], kubernetes: bool
) -> list[str]:
    """What is wrong with an algorithm name and its settings for these parameters."""
    allowed = LOCAL_ALGORITHMS + (KATIB_ONLY_ALGORITHMS if kubernetes else ())
    if name not in allowed:
        extra = (
            ""
            if kubernetes
            else f" ({', '.join(KATIB_ONLY_ALGORITHMS)} run only on Kubernetes, by Katib)"
        )
        return [f"algorithm_name={name!r}: allowed: {', '.join(allowed)}{extra}"]
    if name in KATIB_ONLY_ALGORITHMS:
        return []
    problems = settings_problems(f"algorithm_settings of {name}", settings, SETTINGS[name])
    numeric = [p for p in parameters if p.parameter_type != "categorical"]
    if name == "cmaes" and len(numeric) < 2:
        problems.append(
            f"algorithm_name='cmaes': needs at least 2 int or double parameters (as Katib's); "
            f"this search has {len(numeric)}"
        )
    if name == "grid":
        for parameter in parameters:
            try:
                parameter.grid()
            except ValueError as e:
                problems.append(str(e))
    return problems


def settings_problems(
    where: str, settings: Mapping[str, str], known: Mapping[str, Callable[[str], str | None]]
) -> list[str]:
    """What is wrong with `settings` (Katib's setting names and values as text) against `known`."""
    problems = []
    for key, value in settings.items():
        check = known.get(key)
        if check is None:
            allowed = ", ".join(known) or "none"
            problems.append(f"{where}: unknown setting {key!r}; allowed: {allowed}")
            continue
        wrong = check(value)
        if wrong:
            problems.append(f"{where}: {key}={value!r}: {wrong}")
    return problems


def sampler(name: str, settings: Mapping[str, str], parameters: Sequence[Parameter]) -> Any:
    """The Optuna sampler that runs algorithm `name` with Katib's `settings` (checked before).

    Katib's tpe `gamma` and `prior_weight` and cmaes `sigma` map to TPESampler's and
    CmaEsSampler's arguments of the same meaning, which Optuna 4.9 deprecated (to go in 6.0);
    its FutureWarning is not shown."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return _sampler(name, settings, parameters)


def _sampler(name: str, settings: Mapping[str, str], parameters: Sequence[Parameter]) -> Any:
    import optuna

    seed = int(settings["random_state"]) if "random_state" in settings else None
    samplers = optuna.samplers
    if name == "random":
        return samplers.RandomSampler(seed=seed)
    if name == "grid":
        return _GridSampler({p.name: p.grid() for p in parameters}, seed=seed)
    if name == "sobol":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return samplers.QMCSampler(qmc_type="sobol", scramble=seed is not None, seed=seed)
    if name == "tpe":
        kwargs: dict[str, Any] = {"seed": seed}
        if "gamma" in settings:
            fraction = float(settings["gamma"])
            kwargs["gamma"] = lambda n: min(math.ceil(fraction * n), 25)
        if "prior_weight" in settings:
            kwargs["prior_weight"] = float(settings["prior_weight"])
        if "n_EI_candidates" in settings:
            kwargs["n_ei_candidates"] = int(float(settings["n_EI_candidates"]))
        return samplers.TPESampler(**kwargs)
    if name == "multivariate-tpe":
        kwargs = {"seed": seed, "multivariate": True, "constant_liar": True}
        if "n_startup_trials" in settings:
            kwargs["n_startup_trials"] = int(float(settings["n_startup_trials"]))
        if "n_ei_candidates" in settings:
            kwargs["n_ei_candidates"] = int(float(settings["n_ei_candidates"]))
        return samplers.TPESampler(**kwargs)
    if name == "cmaes":
        kwargs = {"seed": seed, "warn_independent_sampling": False}
        if "sigma" in settings:
            kwargs["sigma0"] = float(settings["sigma"])
        if settings.get("restart_strategy", "none") != "none":
            kwargs["restart_strategy"] = settings["restart_strategy"]
        return samplers.CmaEsSampler(**kwargs)
    if name == "bayesianoptimization":
        kwargs = {"seed": seed, "warn_independent_sampling": False}
        if "n_initial_points" in settings:
            kwargs["n_startup_trials"] = int(float(settings["n_initial_points"]))
        return samplers.GPSampler(**kwargs)
    raise ValueError(f"algorithm_name={name!r}: not run locally")


def _grid_sampler_class() -> type:
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's grid sampler, without its call of `study.stop()` once the grid is done (which
        works only inside `study.optimize`); SearchLoop stops asking after the last point."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return GridSampler


def _GridSampler(search_space: dict[str, list[Any]], seed: int | None) -> Any:
    return _grid_sampler_class()(search_space, seed=seed)


def pruner(settings: Mapping[str, str]) -> Any:
    """Optuna's MedianPruner with Katib's medianstop settings."""
    import optuna

    merged = {**{k: str(v) for k, v in EARLY_STOPPING_DEFAULTS.items()}, **settings}
    return optuna.pruners.MedianPruner(
        n_startup_trials=int(float(merged["min_trials_required"])),
        n_warmup_steps=int(float(merged["start_step"])) - 1,
    )


def distribution(parameter: Parameter) -> Any:
    """The Optuna distribution of a parameter."""
    from optuna import distributions

    if parameter.parameter_type == "categorical":
        return distributions.CategoricalDistribution(list(parameter.choices))
    if parameter.parameter_type == "int":
        return distributions.IntDistribution(
            int(parameter.min or 0),
            int(parameter.max or 0),
            log=parameter.log,
            step=int(parameter.step or 1),
        )
    return distributions.FloatDistribution(
        float(parameter.min or 0.0),
        float(parameter.max or 0.0),
        log=parameter.log,
        step=None if parameter.step is None else float(parameter.step),
    )
