"""A job folder whose status.json is damaged is listed with the reason, inspectable and deletable,
and never hides or breaks the other jobs. No job runs here: the folders are written by hand."""

from __future__ import annotations

import json

import pytest

from kubetune import cli
from kubetune.training.backends.local.jobdir import JobStatus, job_dir
from tests.local.local_jobs import bert_job

VALID = JobStatus(uid="u" * 32, name="x", namespace="default", num_workers=2, output_dir="/o")
DAMAGED = {
    "truncated": json.dumps(VALID.to_dict())[:40].encode(),
    "empty": b"",
    "nul": b"\0" * 64,
    "braces": b"{}",
    "a-list": b"[1, 2]",
}


def make_job(home, name: str, content: bytes | None) -> None:
    """A job folder as kubetune leaves it, with `content` as its status.json (None: a good one)."""
    job = job_dir(home, "default", name)
    job.logs_dir.mkdir(parents=True)
    (job.logs_dir / "worker-0.log").write_text(f"{name} trained\n")
    if content is None:
        status = JobStatus(
            uid="a" * 32,
            name=name,
            namespace="default",
            num_workers=1,
            output_dir=str(job.workspace / "outputs" / "out"),
            creation_time="2026-01-01T00:00:00Z",
        )
        status.set_condition("Created", "JobCreated", "")
        status.set_condition("Succeeded", "JobSucceeded", "done")
        job.write_status(status)
    else:
        job.status_path.write_bytes(content)


def test_each_damaged_status_is_listed_inspectable_and_deletable(
    client, home, tiny_model, sentiment_data, capsys
):
    make_job(home, "healthy", None)
    for name, content in DAMAGED.items():
        make_job(home, name, content)

    jobs = {job.name: job for job in client.list_job_reports()}
    assert set(jobs) == {"healthy", *DAMAGED}
    assert jobs["healthy"].status == "Succeeded"
    for name in DAMAGED:
        job = client.get_job_report(name)
        assert job.status == "Failed" and job.conditions[-1].reason == "StatusUnreadable", name
        assert "status.json" in job.message and f"delete {name}" in job.message, job.message
        assert [line.line for line in client.stream_job_logs(name)] == [f"{name} trained"]
    assert "is empty" in client.get_job_report("empty").message
    assert "NUL" in client.get_job_report("nul").message

    # As Kubeflow PyTorchJobs too (a damaged folder without its spec: name and status only).
    objects = {job.metadata.name: job for job in client.list_jobs()}
    assert set(objects) == set(jobs)
    assert objects["empty"].status.conditions[-1].reason == "StatusUnreadable"

    # The command line lists them all and exits 0.
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in ["healthy", *DAMAGED])

    # The name is taken (AlreadyExists) until the broken job is deleted, then free again.
    with pytest.raises(RuntimeError, match="already exists"):
        client.train(**bert_job("empty", tiny_model, sentiment_data))
    for name in DAMAGED:
        client.delete_job(name)
        assert not job_dir(home, "default", name).path.exists()
    assert [job.name for job in client.list_job_reports()] == ["healthy"]


def test_a_job_folder_without_status_json_is_a_damaged_job(client, home):
    make_job(home, "no-status", b"")
    job_dir(home, "default", "no-status").status_path.unlink()
    job = client.get_job_report("no-status")
    assert job.status == "Failed" and "is missing" in job.message
    client.delete_job("no-status", keep_outputs=True)
    assert client.list_job_reports() == []


def test_the_dashboard_shows_a_damaged_job_too(home):
    from kubetune.ui.source import LocalSource

    make_job(home, "healthy", None)
    make_job(home, "empty", b"")
    source = LocalSource(home)
    states = {job["name"]: (job["state"], job["reason"]) for job in source.list_jobs()}
    assert states["empty"][1] == "StatusUnreadable" and states["healthy"][0] == "succeeded"
    job = source.job("default", "empty")
    assert job["log_sources"] == ["initializer", "worker-0"]
