"""A trial's metrics as Katib's StdOut collector and controller see them.

`parse_lines` reads log lines as Katib's collector (TEXT format) does: only lines that contain
one of the metric names are looked at, an RFC 3339 time as the first word is the record's time,
and every match of each filter regex gives a (name, value) whose name is one of the metrics.
`observation` sums a trial up per metric as Katib's controller does: min, max and latest
(Katib's `V1beta1Metric`, values as text); the objective metric never reported becomes
'unavailable'. `objective_value` picks the figure the metric strategy names (Katib's defaults:
the min for minimize, the max for maximize).

A kubetune trial reports its final metrics as `kubetune-metric NAME=VALUE` lines (`metric_line`),
which KUBETUNE_FILTER matches and nothing else a trainer prints does; the Hugging Face Trainer's
printed log dicts (`{'loss': 0.69, ...}`) match HF_LOGS_FILTER.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kubetune.contract.records import HistoryRecord
from kubetune.katib.constants import constants

METRIC_PREFIX = "kubetune-metric"
KUBETUNE_FILTER = METRIC_PREFIX + r" ([\w|-]+)=([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
HF_LOGS_FILTER = r"'([\w|-]+)'\s*:\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"
# Katib's collector stamps a record without a time of its own with the zero time.
ZERO_TIME = "0001-01-01T00:00:00Z"
STRATEGIES = ("min", "max", "latest")


@dataclass(frozen=True)
class MetricLog:
    """One reported value: Katib's `MetricLog` (time, metric name, value as text)."""

    time: str
    name: str
    value: str

    def to_dict(self) -> dict[str, str]:
        """The log as JSON data."""
        return {"time": self.time, "name": self.name, "value": self.value}


def metric_line(name: str, value: float) -> str:
    """The line a kubetune trial prints to report a final metric (KUBETUNE_FILTER reads it)."""
    return f"{METRIC_PREFIX} {name}={value!r}"


def parse_lines(
    lines: Iterable[str], names: Sequence[str], filters: Sequence[str] | None = None
) -> list[MetricLog]:
    """The values of `names` reported in `lines`, as Katib's StdOut/File collector finds them
    (`filters`: regexes whose first two groups are name and value; Katib's default when empty)."""
    patterns = [re.compile(f, re.ASCII) for f in (filters or [constants.DEFAULT_METRICS_FILTER])]
    found = []
    for line in lines:
        if not any(name in line for name in names):
            continue
        first, _, rest = line.partition(" ")
        time = first if rest and _is_rfc3339(first) else ZERO_TIME
        for pattern in patterns:
            for match in pattern.finditer(line):
                if match.lastindex is None or match.lastindex < 2:
                    continue
                name, value = match.group(1).strip(), match.group(2).strip()
                if name in names and value:
                    found.append(MetricLog(time, name, value))
    return found


def _is_rfc3339(text: str) -> bool:
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return "T" in text


def observation(logs: Iterable[MetricLog], names: Sequence[str]) -> list[dict[str, str]]:
    """Katib's observation of a trial: for each metric of `names` that was reported, its min,
    max and latest value (text, as `V1beta1Metric`). When the objective metric (`names[0]`) was
    never reported, it alone is there, with every value 'unavailable'."""
    series: dict[str, list[tuple[float, str]]] = {}
    for log in logs:
        try:
            number = float(log.value)
        except ValueError:
            continue
        if not math.isnan(number):
            series.setdefault(log.name, []).append((number, log.value))
    if names and names[0] not in series:
        unavailable = constants.UNAVAILABLE_METRIC_VALUE
        return [{"name": names[0], "min": unavailable, "max": unavailable, "latest": unavailable}]
    return [
        {
            "name": name,
            "min": min(series[name])[1],
            "max": max(series[name])[1],
            "latest": series[name][-1][1],
        }
        for name in names
        if name in series
    ]


def default_strategy(objective_type: str) -> str:
    """Katib's default metric strategy for an objective type."""
    return "min" if objective_type == "minimize" else "max"


def objective_value(
    metrics: Sequence[Mapping[str, Any]], metric_name: str, strategy: str
) -> float | None:
    """The objective figure of an observation's metrics (None when unavailable)."""
    for metric in metrics:
        if metric.get("name") == metric_name:
            try:
                value = float(metric.get(strategy) or "nan")
            except ValueError:
                return None
            return None if math.isnan(value) else value
    return None


def is_better(value: float, than: float | None, objective_type: str) -> bool:
    """Whether objective `value` beats `than` (None: nothing to beat)."""
    if than is None:
        return True
    return value < than if objective_type == "minimize" else value > than


def goal_reached(value: float | None, goal: float | None, objective_type: str) -> bool:
    """Whether `value` meets the objective goal (Katib: <= goal to minimize, >= to maximize)."""
    if value is None or goal is None:
        return False
    return value <= goal if objective_type == "minimize" else value >= goal


def history_logs(
    records: Iterable[HistoryRecord], final: Mapping[str, Any] | None, names: Sequence[str]
) -> list[MetricLog]:
    """A fine-tuning trial's reported values: each logged record (the job's history: what the
    Trainer prints as its log dicts) and the final metrics (metrics.json), in that order."""
    from kubetune.training.backends.local.jobdir import now_iso

    logs = []
    for record in records:
        stamp = now_iso(record.time) if record.time else ZERO_TIME
        for name in names:
            value = record.values.get(name)
            if value is not None:
                logs.append(MetricLog(stamp, name, repr(value)))
    for name in names:
        value = (final or {}).get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            logs.append(MetricLog(ZERO_TIME, name, repr(value)))
    return logs
