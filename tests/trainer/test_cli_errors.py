"""User errors end the trainer with exit status 1 and one clear last line on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from kubetune.contract import layout
from kubetune.contract.records import FAILURE_FILE_ENV, read_failure
from kubetune.runtime.cli import main
from tests import tiny_models as tm
from tests.trainer.trainer_jobs import ERROR_PREFIX, build_workspace, job_spec


def run_main(capsys, root, spec, *extra: str) -> tuple[int, str]:
    spec_file = root / "jobspec.json"
    spec_file.write_text(json.dumps(spec))
    code = main(["--spec", str(spec_file), "--workspace", str(root), *extra])
    stderr = capsys.readouterr().err
    return code, stderr.rstrip().splitlines()[-1]


def test_missing_marker_times_out_naming_the_path(tmp_path, capsys):
    spec = job_spec("AutoModelForSequenceClassification", {})
    started = time.monotonic()
    code, last = run_main(capsys, tmp_path, spec, "--marker-timeout", "0.2")
    assert code == 1 and time.monotonic() - started < 30
    assert last.startswith(ERROR_PREFIX + "timed out after 0.2s waiting for ")
    assert str(tmp_path / layout.MARKER_FILE) in last


def test_missing_column_is_one_line_naming_the_column_and_listing_the_columns(
    tmp_path, capsys, monkeypatch
):
    error_file = tmp_path / "error.json"  # where torchrun's agent looks for a worker's failure
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(error_file))
    rows = [{"review": r["text"], "stars": r["label"]} for r in tm.sentiment_rows(8)]
    build_workspace(tmp_path, tm.tiny_bert_classifier, rows)
    spec = job_spec(
        "AutoModelForSequenceClassification", {}, columns={"text": "body", "label": "stars"}
    )
    code, last = run_main(capsys, tmp_path, spec)
    assert code == 1
    assert last == (
        ERROR_PREFIX + "columns['text']='body': no such column in the dataset; "
        "the dataset has columns ['review', 'stars']"
    )
    assert json.loads(error_file.read_text())["message"]["message"] == last
    spec = job_spec("AutoModelForSequenceClassification", {})
    code, last = run_main(capsys, tmp_path, spec)
    assert (
        code == 1
        and "the 'label' column" in last
        and "['review', 'stars']" in last
        and "Traceback" not in last
    )


@pytest.mark.parametrize(
    ("training", "expected"),
    [
        ({"eval_strategy": "steps"}, "eval_strategy='steps': needs an eval split"),
        ({"evaluation_strategy": "steps"}, "training_arguments: "),
    ],
)
def test_bad_training_arguments(tmp_path, capsys, training, expected):
    build_workspace(tmp_path, tm.tiny_bert_classifier, tm.sentiment_rows(8))
    code, last = run_main(
        capsys, tmp_path, job_spec("AutoModelForSequenceClassification", training)
    )
    assert code == 1 and last.startswith(ERROR_PREFIX) and expected in last


def test_the_failure_is_also_recorded_for_the_process_that_started_the_step(
    tmp_path, capsys, monkeypatch
):
    failure_file = tmp_path / "failure.json"
    monkeypatch.setenv(FAILURE_FILE_ENV, str(failure_file))
    spec = job_spec("AutoModelForSequenceClassification", {})
    code, last = run_main(capsys, tmp_path, spec, "--marker-timeout", "0")
    failure = read_failure(failure_file)
    assert code == 1 and failure is not None
    assert failure.component == "kubetune.runtime" and failure.line == last


@pytest.mark.parametrize("module", ["kubetune.runtime", "kubetune.trainer"])
def test_both_module_names_run_the_runtime(module):
    """`kubetune.trainer` is the runtime's old name: manifests and images rendered before the
    runtime moved still call it."""
    shown = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"usage: {module} ") and "--marker-timeout" in shown.stdout
    missing = subprocess.run(
        [sys.executable, "-m", module, "--workspace", "w"], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "--spec" in missing.stderr
