"""What the dashboard shows of a job, computed from plain data: its state, its cleaned history,
its spec without secret-looking values, and JSON that browsers can parse. It imports nothing of
kubetune but the contract: `source.py` turns kubetune's objects into the dicts these functions
take."""

from __future__ import annotations

import math
import re
from typing import Any

from kubetune.contract.conditions import QUEUED_REASON, TRUE, Condition

# A job's state as the dashboard names it, from its latest true condition.
STATES = ("queued", *(str(c).lower() for c in Condition))
# Environment variables whose values the page never shows, whatever the job put in them.
SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|KEY|CREDENTIAL|AUTH", re.IGNORECASE)
REDACTED = "<redacted>"
ENV_KEYS = ("env", "init_env", "env_vars", "init_env_vars")


def state_of(conditions: list[dict[str, Any]]) -> tuple[str, str, str]:
    """(state, reason, message) from a job's conditions: the latest true one decides; a Created
    condition with reason 'Queued' means the job waits in the local queue."""
    true = [c for c in conditions if str(c.get("status", TRUE)) == TRUE]
    if not true:
        return "created", "", ""
    latest = true[-1]
    kind = str(latest.get("type") or Condition.CREATED)
    reason = str(latest.get("reason") or "")
    message = str(latest.get("message") or "")
    if kind == Condition.CREATED and reason == QUEUED_REASON:
        return "queued", reason, message
    state = kind.lower()
    return (state if state in STATES else "created"), reason, message


def clean_history(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of the run that counts: when a restarted worker group logs a step again
    (resuming from a checkpoint), the earlier records from that step on are dropped."""
    kept: list[dict[str, Any]] = []
    for record in records:
        step = record.get("step")
        if not isinstance(step, int | float):
            continue
        if kept and step < kept[-1]["step"]:
            kept = [r for r in kept if r["step"] < step]
        kept.append(record)
    return kept


def restarts_in(last_step: float | None, records: list[dict[str, Any]]) -> bool:
    """Whether `records`, appended after a history whose last step is `last_step`, go back in
    steps (so the shown history must be replaced, not extended)."""
    for record in records:
        step = record.get("step")
        if not isinstance(step, int | float):
            continue
        if last_step is not None and step < last_step:
            return True
        last_step = step
    return False


def redact(value: Any) -> Any:
    """`value` (a job spec or Kubernetes objects) with the values of secret-looking environment
    variables (token, key, password, ...) and every value of a Secret replaced by a placeholder.
    The spec holds no secrets by design; this guards what users put in env_vars themselves."""
    if isinstance(value, list):
        return [redact(v) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("kind") == "Secret":
        value = {
            **value,
            **{
                key: {k: REDACTED for k in value[key]}
                for key in ("data", "stringData")
                if isinstance(value.get(key), dict)
            },
        }
    name = value.get("name")
    if isinstance(name, str) and "value" in value and SECRET_NAME.search(name):
        return {**value, "value": REDACTED}
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key in ENV_KEYS and isinstance(item, dict):
            out[key] = {k: REDACTED if SECRET_NAME.search(str(k)) else v for k, v in item.items()}
        else:
            out[key] = redact(item)
    return out


def json_safe(value: Any) -> Any:
    """`value` with NaN and infinities as None (browsers' JSON.parse rejects them)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
