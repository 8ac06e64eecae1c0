"""What the dashboard computes from plain data (states, history after restarts, redaction,
browser-safe JSON), and the history the trainer's rank 0 writes for it."""

from __future__ import annotations

import json
import math

import pytest

from kubetune.contract import layout, records
from kubetune.ui import views


def condition(type_: str, reason: str = "", status: str = "True") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason, "message": f"{type_} message"}


@pytest.mark.parametrize(
    ("conditions", "state", "reason"),
    [
        ([], "created", ""),
        ([condition("Created", "JobCreated")], "created", "JobCreated"),
        ([condition("Created", "Queued")], "queued", "Queued"),
        (
            [condition("Created", "Queued"), condition("Running", "JobRunning")],
            "running",
            "JobRunning",
        ),
        (
            [
                condition("Created"),
                condition("Running", status="False"),
                condition("Restarting", "WorkerFailed"),
            ],
            "restarting",
            "WorkerFailed",
        ),
        (
            [
                condition("Created"),
                condition("Running", status="False"),
                condition("Succeeded", "JobSucceeded"),
            ],
            "succeeded",
            "JobSucceeded",
        ),
        ([condition("Created"), condition("Failed", "SupervisorLost")], "failed", "SupervisorLost"),
        ([condition("Created"), condition("Suspended")], "suspended", ""),
    ],
)
def test_state_comes_from_the_latest_true_condition(conditions, state, reason):
    assert views.state_of(conditions)[:2] == (state, reason)


def test_history_after_restarts_keeps_the_latest_run_of_each_step():
    steps = [1, 2, 3, 4, 5, 3, 4, 5, 6, 2, 3]
    records = [{"step": s, "loss": float(i)} for i, s in enumerate(steps)]
    records.insert(5, {"step": 5, "eval_loss": 0.5})  # an evaluation at the same step stays
    kept = views.clean_history([*records, {"no": "step"}])
    assert [r["step"] for r in kept] == [1, 2, 3]
    assert [r["loss"] for r in kept] == [0.0, 9.0, 10.0]
    kept = views.clean_history(records[:6])
    assert kept[-1] == {"step": 5, "eval_loss": 0.5} and len(kept) == 6


def test_restarts_in_new_records():
    assert not views.restarts_in(None, [{"step": 1}, {"step": 1}, {"step": 2}])
    assert not views.restarts_in(5, [{"step": 5}, {"step": 6}])
    assert views.restarts_in(5, [{"step": 6}, {"step": 4}])
    assert views.restarts_in(5, [{"step": 3}])


def test_redact_hides_secret_looking_env_values_and_every_secret_value():
    spec = {
        "env": {"WANDB_API_KEY": "k", "HF_TOKEN": "t", "DB_PASSWORD": "p", "EPOCHS": "3"},
        "init_env": {"AWS_SECRET_ACCESS_KEY": "s"},
        "dataset": {"kind": "s3", "file_key": "train.csv"},
    }
    shown = views.redact(spec)
    assert shown["env"] == {
        "WANDB_API_KEY": views.REDACTED,
        "HF_TOKEN": views.REDACTED,
        "DB_PASSWORD": views.REDACTED,
        "EPOCHS": "3",
    }
    assert shown["init_env"] == {"AWS_SECRET_ACCESS_KEY": views.REDACTED}
    assert shown["dataset"]["file_key"] == "train.csv"
    objects = [
        {"kind": "Secret", "data": {"KUBETUNE_HF_MODEL_TOKEN": "aGZfeHl6"}},
        {
            "kind": "PyTorchJob",
            "spec": {"env": [{"name": "MY_TOKEN", "value": "v"}, {"name": "A", "value": "1"}]},
        },
    ]
    shown_objects = views.redact(objects)
    assert shown_objects[0]["data"] == {"KUBETUNE_HF_MODEL_TOKEN": views.REDACTED}
    assert shown_objects[1]["spec"]["env"] == [
        {"name": "MY_TOKEN", "value": views.REDACTED},
        {"name": "A", "value": "1"},
    ]
    assert objects[0]["data"]["KUBETUNE_HF_MODEL_TOKEN"] == "aGZfeHl6"  # the input is untouched


def test_json_safe_turns_nan_and_infinities_into_null():
    value = {"loss": math.nan, "x": [math.inf, -math.inf, 1.5], "n": 3}
    assert json.dumps(views.json_safe(value), allow_nan=False) == (
        '{"loss": null, "x": [null, null, 1.5], "n": 3}'
    )


# --- the trainer's side: rank 0 writes the history -----------------------------------------------


def reporter(tmp_path, enabled=True):
    from kubetune.runtime.progress import ProgressReporter

    return ProgressReporter(
        layout.Workspace(tmp_path),
        restarted_from_step=None,
        enabled=enabled,
        print_records=True,
    )


def test_every_logged_record_is_appended_to_the_history_file(tmp_path, capsys):
    from transformers import TrainerControl, TrainerState

    progress = reporter(tmp_path)
    state = TrainerState(max_steps=10)
    for step, logs in [
        (1, {"loss": 0.9, "learning_rate": 5e-5, "grad_norm": 1.2, "epoch": 0.1}),
        (2, {"loss": math.nan, "learning_rate": 4e-5, "epoch": 0.2}),
        (2, {"eval_loss": 0.7, "eval_accuracy": 0.75, "eval_runtime": 0.1, "epoch": 0.2}),
    ]:
        state.global_step, state.epoch = step, logs["epoch"]
        progress.on_log(None, state, TrainerControl(), logs=dict(logs))
    history = [
        json.loads(line) for line in (tmp_path / layout.HISTORY_FILE).read_text().splitlines()
    ]
    assert [(r["step"], r.get("loss"), r.get("eval_loss")) for r in history] == [
        (1, 0.9, None),
        (2, None, None),
        (2, None, 0.7),
    ]
    assert history[0]["learning_rate"] == 5e-5 and history[0]["grad_norm"] == 1.2
    assert history[2]["eval_accuracy"] == 0.75 and isinstance(history[2]["time"], float)
    assert "loss" in history[1] and history[1]["loss"] is None  # NaN: logged, not a number
    # The progress record carries the latest, on disk and in the log line backends read.
    on_disk = layout.read_json(tmp_path / layout.PROGRESS_FILE)
    assert on_disk["logged"] == history[-1]
    assert records.last_progress_in_log(capsys.readouterr().out)["logged"] == history[-1]


def test_other_ranks_write_no_history(tmp_path):
    from transformers import TrainerControl, TrainerState

    state = TrainerState(max_steps=10, global_step=1)
    reporter(tmp_path, enabled=False).on_log(None, state, TrainerControl(), logs={"loss": 1.0})
    assert not (tmp_path / layout.HISTORY_FILE).exists()
