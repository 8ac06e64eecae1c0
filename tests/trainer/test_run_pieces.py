"""Pieces of the trainer's run: the before-training evaluation read back from the log history."""

from __future__ import annotations

import pytest

from kubetune.trainer.run import exclude_from_train_time, metrics_before_training


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
