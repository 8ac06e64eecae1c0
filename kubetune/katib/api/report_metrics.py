"""`report_metrics`: a trial's metrics pushed by the trial itself (Katib's Push collector).

In a trial that kubetune runs on this machine, the metrics are appended to the file named by
$KUBETUNE_KATIB_METRICS_FILE (one JSON line per call), which the experiment's controller reads.
Anywhere else (a Katib trial pod) the call is Katib's own: a gRPC request to Katib's DB manager.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

from kubetune.katib.constants import constants

METRICS_FILE_ENV = constants.METRICS_FILE_ENV
TRIAL_NAME_ENV = constants.TRIAL_NAME_ENV


def report_metrics(
    metrics: dict[str, Any],
    db_manager_address: str = constants.DEFAULT_DB_MANAGER_ADDRESS,
    timeout: int = constants.DEFAULT_TIMEOUT,
) -> None:
    """Reports `metrics` ({'loss': 0.01, 'accuracy': 0.99}) of the running trial.

    ValueError when a value is not a number (or text of one) or when no trial runs this code
    ($KATIB_TRIAL_NAME unset); RuntimeError when the metrics cannot be recorded.
    """
    path = os.environ.get(METRICS_FILE_ENV)
    if not path:
        from kubeflow.katib import report_metrics as katib_report_metrics

        katib_report_metrics(metrics, db_manager_address=db_manager_address, timeout=timeout)
        return
    trial = os.environ.get(TRIAL_NAME_ENV)
    if trial is None:
        raise ValueError("The Trial name is not passed to environment variables")
    if not isinstance(metrics, dict):
        raise ValueError(f"metrics={metrics!r}: must be a dict of metric names to numbers")
    for name, value in metrics.items():
        if not _is_number(value):
            raise ValueError(
                f"Invalid value {value!r} for metrics value of {name!r}. The metrics value should "
                "have or can be converted to type `float`."
            )
    record = {
        "time": datetime.now(UTC).strftime(constants.RFC3339_FORMAT),
        "metrics": {str(name): str(value) for name, value in metrics.items()},
    }
    try:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
    except OSError as e:
        raise RuntimeError(
            f"Unable to record metrics for Trial {trial}: {path}: {e.strerror or e}"
        ) from e


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True
