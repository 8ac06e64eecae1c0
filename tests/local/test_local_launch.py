"""Resources, command lines, logs and status bookkeeping of the local backend (no job runs here)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kubetune.training.backends.local import launch, logs, outcomes
from kubetune.training.backends.local.jobdir import JobStatus
from kubetune.training.job import LogLine
from tests.local.local_jobs import bert_job

GiB = 2**30


def test_gpus_are_sliced_per_worker():
    plan = launch.plan_launch(
        2, 1, {"gpu": 2}, gpus=["0", "1", "2", "3"], cores=8, memory_bytes=GiB
    )
    assert plan.gpus == 4 and plan.slices(["0", "1", "2", "3"]) == ["0,1", "2,3"]
    plan = launch.plan_launch(
        1, "auto", {"nvidia.com/gpu": "2"}, gpus=["4", "5"], cores=8, memory_bytes=GiB
    )
    assert plan.slices(["4", "5"]) == ["4,5"] and plan.procs_per_worker == 2


def test_no_gpu_requested_hides_every_gpu_as_on_kubernetes():
    plan = launch.plan_launch(2, 1, {}, gpus=["0", "1"], cores=4, memory_bytes=GiB)
    assert plan.gpus == 0 and plan.slices([]) == ["", ""]


def test_more_gpus_than_the_machine_has_is_an_error_naming_the_field():
    with pytest.raises(
        ValueError, match=r"resources_per_worker\['gpu'\]=2: 2 worker\(s\) x 2 GPU\(s\) = 4"
    ):
        launch.plan_launch(2, 1, {"gpu": 2}, gpus=["0", "1"], cores=4, memory_bytes=GiB)


@pytest.mark.parametrize(
    ("workers", "procs", "resources", "cores", "threads"),
    [
        (2, 1, {}, 8, 4),  # the machine's cores split over every process
        (2, 2, {}, 8, 2),
        (4, 1, {}, 2, 1),  # never below one
        (1, 2, {"cpu": 6}, 16, 3),  # the worker's cores split over its processes
        (1, 1, {"cpu": "500m"}, 4, 1),
    ],
)
def test_threads_per_process(workers, procs, resources, cores, threads):
    plan = launch.plan_launch(workers, procs, resources, gpus=[], cores=cores, memory_bytes=GiB)
    assert plan.threads == threads


def test_more_memory_or_cores_than_the_machine_has_is_refused_in_one_error():
    with pytest.raises(ValueError) as refused:
        launch.plan_launch(
            2, 1, {"memory": "10Gi", "cpu": 4}, gpus=[], cores=4, memory_bytes=8 * GiB
        )
    message = str(refused.value)
    assert "resources_per_worker['memory']='10Gi'" in message and "20.0 GiB" in message
    assert "resources_per_worker['cpu']=4" in message and "this machine has 4" in message


@pytest.mark.parametrize(
    ("value", "number"),
    [(2, 2.0), ("500m", 0.5), ("10G", 10e9), ("4Gi", 4 * GiB), ("1.5", 1.5), ("1e3", 1000.0)],
)
def test_quantities(value, number):
    assert launch.parse_quantity(value) == number


def test_agent_command_is_one_node_of_a_static_rendezvous_on_localhost(tmp_path):
    command = launch.agent_command(
        tmp_path / "spec.json",
        tmp_path / "ws",
        num_workers=3,
        node_rank=1,
        procs_per_worker=2,
        port=4321,
        log_dir=tmp_path / "elastic",
    )
    assert command[1:3] == ["-m", "torch.distributed.run"]
    for flag in (
        "--nnodes=3",
        "--node-rank=1",
        "--nproc-per-node=2",
        "--rdzv-backend=static",
        "--master-addr=127.0.0.1",
        "--master-port=4321",
        "--max-restarts=0",
        f"--log-dir={tmp_path / 'elastic'}",  # torchrun's files stay in the job folder
    ):
        assert flag in command
    assert command[-7:] == [
        "-m",
        launch.ENTRY_MODULE,  # binds each process to its agent, records how it ended
        "kubetune.runtime",
        "--spec",
        str(tmp_path / "spec.json"),
        "--workspace",
        str(tmp_path / "ws"),
    ]


def test_worker_env_sets_threads_even_for_one_process_and_lets_the_user_win():
    # torchrun sets OMP_NUM_THREADS=1 only with more than one process per node.
    env = launch.worker_env({"PATH": "/bin"}, {}, gpu_slice="", threads=3)
    assert env["OMP_NUM_THREADS"] == "3" and env["CUDA_VISIBLE_DEVICES"] == ""
    env = launch.worker_env({}, {"OMP_NUM_THREADS": "7"}, gpu_slice="1", threads=3)
    assert env["OMP_NUM_THREADS"] == "7" and env["CUDA_VISIBLE_DEVICES"] == "1"


def test_free_ports_differ():
    assert len({launch.free_port() for _ in range(5)}) > 1


def test_asking_for_gpus_on_this_machine_fails_before_anything_is_created(
    client, home, tiny_model, sentiment_data
):
    kwargs = bert_job("greedy", tiny_model, sentiment_data)
    kwargs["resources_per_worker"] = {"gpu": 1024}
    with pytest.raises(ValueError, match=r"resources_per_worker\['gpu'\]=1024"):
        client.train(**kwargs)
    assert not (home / "jobs" / "default" / "greedy").exists()
    assert client.list_job_reports() == []


def test_a_job_that_can_never_fit_this_machine_is_refused_before_anything_is_created(
    client, home, tiny_model, sentiment_data
):
    kwargs = bert_job("big", tiny_model, sentiment_data, num_workers=1)
    kwargs["resources_per_worker"] = {"memory": "64Pi", "cpu": 100_000}
    with pytest.raises(ValueError) as refused:
        client.train(**kwargs)
    assert "resources_per_worker['memory']='64Pi'" in str(refused.value)
    assert "resources_per_worker['cpu']=100000" in str(refused.value)
    assert not (home / "jobs" / "default" / "big").exists()
    assert client.list_job_reports() == []


def test_failure_reason_prefers_the_component_error_line(tmp_path):
    log = tmp_path / "worker-0.log"
    log.write_text(
        "loading\nTraceback (most recent call last):\nValueError: boom\n"
        "kubetune.trainer: error: column 'nope' not found; the dataset has: text, label\n"
        "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:\n  exitcode  : 1 (pid: 12)\n"
    )
    assert (
        logs.failure_reason(log)
        == "kubetune.trainer: error: column 'nope' not found; the dataset has: text, label"
    )
    log.write_text(
        "step 3\n  exitcode  : -9 (pid: 77)\n  traceback : Signal 9 (SIGKILL) received by PID 77\n"
    )
    assert "Signal 9" in logs.failure_reason(log)


def test_following_logs_yields_lines_as_written_and_ends_with_the_job(tmp_path):
    path = tmp_path / "worker-0.log"
    path.write_text("first\npart")
    rounds = iter(range(100))

    def done() -> bool:
        n = next(rounds)
        if n == 2:
            with path.open("a") as f:
                f.write("ial\r progress 100%\nlast without newline")
        return n >= 4

    lines = list(
        logs.follow_logs(
            [("worker-0", path), ("initializer", tmp_path / "absent.log")], done, poll_interval=0.01
        )
    )
    assert lines == [
        LogLine("worker-0", "first"),
        LogLine("worker-0", " progress 100%"),
        LogLine("worker-0", "last without newline"),
    ]


def test_conditions_follow_the_training_operator():
    status = JobStatus(uid="u", name="j", namespace="default", num_workers=1, output_dir="/o")
    status.set_condition("Created", "JobCreated", "")
    status.set_condition("Running", "WorkersRunning", "")
    status.set_condition("Restarting", "WorkerRestarting", "worker-0 failed")
    status.set_condition("Running", "WorkersRunning", "again")
    status.set_condition("Succeeded", "JobSucceeded", "done")
    assert [(c.type, c.status) for c in status.conditions] == [
        ("Created", "True"),
        ("Restarting", "False"),
        ("Running", "False"),
        ("Succeeded", "True"),
    ]
    assert status.terminal and status.completion_time
    assert JobStatus.from_dict(status.to_dict()) == status


def test_a_job_being_created_is_not_taken_for_a_dead_one(home):
    from kubetune.training.backends.local.backend import LocalBackend
    from kubetune.training.backends.local.jobdir import job_dir

    job = job_dir(Path(home), "default", "starting")
    job.logs_dir.mkdir(parents=True)
    status = JobStatus(
        uid="u", name="starting", namespace="default", num_workers=1, output_dir="/o"
    )
    status.set_condition("Created", "JobCreated", "")
    job.write_status(status)
    backend = LocalBackend(home=home)
    assert backend.get_job("starting", "default").status == "Created"
    status.updated_at = time.time() - 3600
    job.write_status(status)
    failed = backend.get_job("starting", "default")
    assert failed.status == "Failed" and "never started" in failed.message


def test_a_taken_rendezvous_port_is_worth_a_restart():
    # What torchrun's agent records in its reply file when it cannot bind the rendezvous port.
    report = outcomes.WorkerReport(
        "worker-0",
        1,
        reply={
            "message": "DistNetworkError: The server socket has failed to listen on any local "
            "network address. port: 41234, useIpv6: false, code: -98, name: EADDRINUSE"
        },
    )
    verdict = outcomes.judge(report)
    assert verdict.retryable and "EADDRINUSE" in verdict.reason
