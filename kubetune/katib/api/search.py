"""Search spaces, as Katib's `katib.search`: `double`, `int` and `categorical` return Katib's
`V1beta1ParameterSpec`, to put where a value goes (a `TrainingArguments` or `LoraConfig` field,
or a value of a custom objective's `parameters`).

One difference from Katib 0.19: `categorical` puts its values in `feasible_space.list`; Katib's
puts them in `feasible_space.distribution` (katib issue #2625), which Katib's webhook refuses.
`double` and `int` also take `distribution` ('uniform', the default, or 'logUniform'), a field
of Katib's feasible space that its SDK does not let you set.
"""

from __future__ import annotations

import builtins
from typing import Any

from kubetune.katib.space import DISTRIBUTIONS
from kubetune.params.validation import is_search_space

__all__ = ["DISTRIBUTIONS", "categorical", "double", "int", "is_search_space"]


def double(
    min: float, max: float, step: float | None = None, *, distribution: str | None = None
) -> Any:
    """A float between `min` and `max` (with `step`: on that grid, which `grid` search needs)."""
    return _range("double", min, max, step, distribution)


def int(
    min: builtins.int,
    max: builtins.int,
    step: builtins.int | None = None,
    *,
    distribution: str | None = None,
) -> Any:
    """An integer between `min` and `max`, both included (with `step`: every step-th one)."""
    return _range("int", min, max, step, distribution)


def categorical(list: builtins.list[Any]) -> Any:
    """One of the values in `list`."""
    from kubeflow.katib import models

    return models.V1beta1ParameterSpec(
        parameter_type="categorical",
        feasible_space=models.V1beta1FeasibleSpace(list=builtins.list(list)),
    )


def _range(kind: str, low: Any, high: Any, step: Any, distribution: str | None) -> Any:
    from kubeflow.katib import models

    space = models.V1beta1FeasibleSpace(min=str(low), max=str(high))
    if step is not None:
        space.step = str(step)
    if distribution is not None:
        space.distribution = distribution
    return models.V1beta1ParameterSpec(parameter_type=kind, feasible_space=space)
