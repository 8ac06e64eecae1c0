"""Pieces of the trainer's run read back from the log history: the before-training evaluation,
the final evaluation, the train loss of a resumed run."""

from __future__ import annotations

import pytest

from kubetune.runtime.run import (
    exclude_from_train_time,
    final_evaluation,
    metrics_before_training,
    train_loss_over_run,
)


def test_the_step_zero_evaluation_becomes_eval_before():
    history = [
        {"eval_loss": 0.69, "eval_accuracy": 0.5, "eval_runtime": 2.0, "epoch": 0, "step": 0},
        {"loss": 0.6, "epoch": 0.5, "step": 4},
        {"eval_loss": 0.3, "eval_accuracy": 0.9, "epoch": 1.0, "step": 8},
    ]
    assert metrics_before_training(history) == {
        "eval_before_loss": 0.69,
        "eval_before_accuracy": 0.5,
        "eval_before_runtime": 2.0,
    }
    assert metrics_before_training(history[1:]) == {}


def test_the_first_evaluation_is_taken_out_of_the_training_time():
    metrics = {
        "train_runtime": 10.0,
        "train_samples_per_second": 8.0,
        "train_steps_per_second": 1.0,
    }
    exclude_from_train_time(metrics, 2.0)
    assert metrics == {
        "train_runtime": 8.0,
        "train_samples_per_second": pytest.approx(10.0),
        "train_steps_per_second": pytest.approx(1.25),
    }
    unchanged = {"train_runtime": 1.0}
    exclude_from_train_time(unchanged, 5.0)  # a nonsense figure changes nothing
    assert unchanged == {"train_runtime": 1.0}


def test_the_train_loss_of_a_resumed_run_covers_the_steps_before_the_resume():
    history = [
        {"loss": 0.9, "step": 2},  # the mean of steps 1-2
        {"eval_loss": 0.8, "step": 2},
        {"loss": 0.5, "step": 4},
        {"loss": 0.1, "step": 6},  # logged after the checkpoint a later run resumed from
    ]
    # Resumed at step 4 with 4 steps left, whose mean loss was 0.3.
    assert train_loss_over_run(history, 4, 0.3, 4) == pytest.approx(
        (0.9 * 2 + 0.5 * 2 + 0.3 * 4) / 8
    )
    # Resumed at the last step: nothing left to train, and the Trainer reports 0.0.
    assert train_loss_over_run(history, 4, 0.0, 0) == pytest.approx(0.7)
    assert train_loss_over_run([], 4, 0.0, 0) is None


def test_an_evaluation_at_the_last_step_is_the_final_evaluation():
    history = [
        {"eval_loss": 0.7, "eval_accuracy": 0.5, "epoch": 1.0, "step": 8},
        {"loss": 0.4, "step": 16},
        {"eval_loss": 0.3, "eval_accuracy": 0.9, "epoch": 2.0, "step": 16},
        {"train_loss": 0.5, "train_runtime": 3.0, "step": 16},
    ]
    assert final_evaluation(history, 16) == {"eval_loss": 0.3, "eval_accuracy": 0.9}
    assert final_evaluation(history[:2], 16) is None  # the last evaluation was of step 8
