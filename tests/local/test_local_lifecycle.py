"""Local jobs end to end: real supervisor, real storage initializer, real torchrun (gloo), tiny BERT.

Each test runs one or two small jobs (a 2-layer BERT, 64 rows), so the folder stays within a few
minutes on 2 cores. Times are never asserted, only generous timeouts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from kubetune.training.backends.local import processes
from tests.local.local_jobs import bert_job, status_of, the_job_dir, wait_until

JOB_TIMEOUT = 400


def assert_gone(pids: set[int]) -> None:
    """No process of `pids` runs, and none lingers as a zombie (reaped within seconds)."""
    assert pids
    assert not [pid for pid in pids if processes.is_alive(pid)]
    wait_until(
        lambda: not [pid for pid in pids if psutil.pid_exists(pid)], 10, f"{pids} to be reaped"
    )


def test_jobs_are_waited_on_read_and_deleted_from_a_new_process(
    client, home, tiny_model, sentiment_data
):
    # Two jobs at once (each picks its own rendezvous port), started here and left running.
    names = ["cross-a", "cross-b"]
    for name in names:
        client.train(**bert_job(name, tiny_model, sentiment_data, num_workers=1))

    def worker_recorded(name: str) -> bool:
        record = status_of(home, name).workers.get("worker-0")
        return bool(record and record.children)

    for name in names:
        wait_until(lambda name=name: worker_recorded(name), JOB_TIMEOUT, f"{name}'s worker")
    pids = {name: status_of(home, name).all_pids() for name in names}
    assert all(len(p) == 4 for p in pids.values()), pids  # supervisor, initializer, agent, worker

    script = textwrap.dedent(
        """
        import json, sys
        from kubetune.training import TrainingClient

        client = TrainingClient()
        report = {}
        for name in sys.argv[1:]:
            client.wait_for_job_conditions(name, wait_timeout=400, polling_interval=0.5)
            followed = [str(line) for line in client.stream_job_logs(name, follow=True)]
            sources = sorted({line.source for line in client.stream_job_logs(name)})
            status = client.get_job_report(name).status
            client.delete_job(name)
            report[name] = {"status": status, "sources": sources, "followed": len(followed)}
        print(json.dumps(report))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *names],
        capture_output=True,
        text=True,
        timeout=2 * JOB_TIMEOUT,
        env=os.environ,  # KUBETUNE_HOME points at this test's home
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for name in names:
        assert report[name]["status"] == "Succeeded"
        assert report[name]["sources"] == ["initializer", "worker-0"]
        assert report[name]["followed"] > 0
        assert not the_job_dir(home, name).path.exists()
        assert_gone(pids[name])
    assert client.list_jobs() == []


def test_a_killed_worker_restarts_the_group_which_resumes_and_succeeds(
    client, home, tiny_model, sentiment_data
):
    name = "restart-job"
    client.train(
        **bert_job(
            name,
            tiny_model,
            sentiment_data,
            num_workers=2,
            max_steps=100,
            save_strategy="steps",
            save_steps=5,
        )
    )

    def checkpointed() -> bool:
        job = client.get_job_report(name)
        step = (job.progress or {}).get("step", 0)
        return step >= 8 and any(Path(job.output_dir).glob("checkpoint-*"))

    wait_until(checkpointed, JOB_TIMEOUT, "a checkpoint while training runs")
    agent = status_of(home, name).workers["worker-1"].pid
    trainers = psutil.Process(agent).children()
    assert trainers, "worker-1's training process ended before the test could kill it"
    trainers[0].send_signal(signal.SIGKILL)

    client.wait_for_job_conditions(name, wait_timeout=JOB_TIMEOUT, polling_interval=0.5)
    job = client.get_job_report(name)
    assert job.status == "Succeeded"
    assert job.restarts == 1
    restarting = [c for c in job.conditions if c.type == "Restarting"]
    assert restarting and "restart 1/3" in restarting[0].message, job.conditions
    # The restarted group went on from a checkpoint (not from 0) and finished training.
    assert job.progress is not None and job.progress["status"] == "done", job.progress
    assert job.progress["total_steps"] == 100 and job.progress["step"] >= 100, job.progress
    assert (job.progress.get("restarted_from_step") or 0) >= 5, job.progress
    status = status_of(home, name)
    assert len(status.attempts) == 2 and status.attempts[-1].exit_codes == {
        "worker-0": 0,
        "worker-1": 0,
    }
    assert any("[kubetune] restart 1" in line.line for line in client.stream_job_logs(name))


def test_a_bad_column_fails_the_job_at_once_with_the_cause(
    client, home, tiny_model, sentiment_data
):
    name = "bad-column"
    client.train(
        **bert_job(name, tiny_model, sentiment_data, num_workers=1, columns={"text": "nope"})
    )
    with pytest.raises(RuntimeError) as failure:
        client.wait_for_job_conditions(name, wait_timeout=JOB_TIMEOUT, polling_interval=0.5)
    raised_at = time.time()
    message = str(failure.value)
    assert "nope" in message and "kubetune.runtime: error" in message, message
    # Raised within seconds of the failure: the worker's log ends when it fails.
    failed_at = the_job_dir(home, name).log_path("worker-0").stat().st_mtime
    assert raised_at - failed_at < 30, raised_at - failed_at
    job = client.get_job_report(name)
    assert job.status == "Failed" and job.restarts == 0  # a permanent error is not retried
    assert job.conditions[-1].reason == "WorkerFailed"
