"""Job conditions, as Kubeflow Training Operator V1 has them, and THE rules about them: which
condition is a job's latest, and what setting a new one does to the others.

Job reports, the local supervisor and the local job folder all use these rules.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Condition(StrEnum):
    """A job condition type (Kubeflow V1's names)."""

    CREATED = "Created"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


# Kubernetes condition statuses.
TRUE = "True"
FALSE = "False"
# Conditions after which a job has ended.
TERMINAL = frozenset({Condition.SUCCEEDED, Condition.FAILED})
# Conditions a job passes through: they stay in its history (status False) once it moves on.
PASSED = frozenset({Condition.CREATED, Condition.RUNNING, Condition.RESTARTING})
# The reason of a Created condition while the job waits in the local queue (Kubeflow has no
# Queued condition type).
QUEUED_REASON = "Queued"


@dataclass(frozen=True)
class JobCondition:
    """One condition of a job; `status` is 'True' or 'False' as in Kubernetes."""

    type: Condition
    status: str = TRUE
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The condition as JSON data (snake_case keys, as status files and reports hold it)."""
        return {
            "type": str(self.type),
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "last_transition_time": self.last_transition_time,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> JobCondition:
        """The condition `to_dict` wrote.

        Raises:
            ValueError: the type is not a known condition.
            KeyError: the type is missing.
        """
        return cls(
            type=Condition(data["type"]),
            status=data.get("status", TRUE),
            reason=data.get("reason", ""),
            message=data.get("message", ""),
            last_transition_time=data.get("last_transition_time"),
        )

    @property
    def holds(self) -> bool:
        """Whether the condition is true."""
        return self.status == TRUE


def latest(conditions: Sequence[JobCondition]) -> JobCondition | None:
    """The latest true condition (the last one in the list), or None when none is true."""
    true = [c for c in conditions if c.holds]
    return true[-1] if true else None


def current(conditions: Sequence[JobCondition]) -> Condition:
    """The type of the latest true condition; Created when none is true."""
    found = latest(conditions)
    return found.type if found is not None else Condition.CREATED


def has_ended(conditions: Iterable[JobCondition]) -> bool:
    """Whether a terminal condition (Succeeded or Failed) holds."""
    return any(c.type in TERMINAL and c.holds for c in conditions)


def reached(conditions: Sequence[JobCondition], wanted: Condition) -> bool:
    """Whether the job has reached `wanted`: it holds, or, for Created, Running and Restarting,
    the job has passed through it (a job that finished has been Running)."""
    if wanted in PASSED and any(c.type == wanted for c in conditions):
        return True
    return any(c.type == wanted and c.holds for c in conditions)


_EXCLUDES = {
    Condition.RUNNING: {Condition.RESTARTING},
    Condition.RESTARTING: {Condition.RUNNING},
    Condition.SUCCEEDED: {Condition.RUNNING, Condition.RESTARTING},
    Condition.FAILED: {Condition.RUNNING, Condition.RESTARTING},
}


def transition(
    conditions: Sequence[JobCondition],
    condition_type: Condition,
    reason: str,
    message: str,
    stamp: str,
) -> list[JobCondition]:
    """The conditions after `condition_type` becomes the latest true one, as the Training
    Operator does it: a condition of the same type is replaced; Running and Restarting exclude
    each other, and a terminal condition turns both off (status False, at `stamp`)."""
    excluded = _EXCLUDES.get(condition_type, set())
    kept = []
    for c in conditions:
        if c.type == condition_type:
            continue
        if c.type in excluded and c.holds:
            c = dataclasses.replace(c, status=FALSE, last_transition_time=stamp)
        kept.append(c)
    kept.append(JobCondition(condition_type, TRUE, reason, message, stamp))
    return kept
