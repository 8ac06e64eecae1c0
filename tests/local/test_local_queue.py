"""The local queue: jobs are admitted by the machine's free CPU cores, memory and GPUs, first come
first served; a job that does not fit waits, visibly, and starts when resources free up.

The admission rule is a pure function, checked here on made-up machines. One real job shows the
whole path: queued behind a holder of the machine, listed with its place, another queued job
deleted, its client gone, started once the machine is free; its secrets only in the storage
initializer; then its supervisor killed, which takes every process of the job with it.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import psutil
import pytest

from kubetune import cli
from kubetune.contract.secrets import SECRET_ENV_VARS
from kubetune.params.job import build_job_spec
from kubetune.training.backends.local import jobqueue, launch, processes
from kubetune.training.backends.local.jobqueue import Entry, LocalQueue, Machine, decide
from kubetune.training.job import QueuePlace
from tests.local.local_jobs import bert_job, status_of, the_job_dir, wait_until
from tests.s3_server import MotoServer

GiB = 2**30
TWO_CORES = Machine(cpus=2, memory=8 * GiB, gpu_ids=[])
JOB_TIMEOUT = 400


def entry(uid: str, cpus: float, gpus: int = 0, admitted: bool = False, **extra) -> Entry:
    return Entry(
        uid=uid,
        namespace="default",
        name=uid,
        pid=os.getpid(),
        create_time=None,
        cpus=cpus,
        gpus=gpus,
        admitted=admitted,
        **extra,
    )


def test_first_come_first_served_and_nobody_overtakes():
    entries = [entry("a", 2, admitted=True), entry("b", 1), entry("c", 1)]
    b = decide(entries, "b", TWO_CORES)
    assert (b.admitted, b.place, b.waiting) == (False, 1, 2)
    assert b.waits_for == "1 CPU core(s) (0 of 2 free)"
    c = decide(entries, "c", TWO_CORES)
    assert (c.admitted, c.place) == (False, 2) and "its turn (after default/b)" in c.waits_for
    assert "place 2 of 2" in jobqueue.queued_message(c)

    entries = [entry("b", 1), entry("c", 1)]  # a ended
    assert decide(entries, "b", TWO_CORES).admitted
    assert not decide(entries, "c", TWO_CORES).admitted  # b first, even though c would fit
    entries[0].admitted = True
    assert decide(entries, "c", TWO_CORES).admitted  # one core each: both run

    # A big job at the head holds back a small one behind it (it would starve otherwise).
    entries = [entry("small", 1, admitted=True), entry("big", 2), entry("tiny", 1)]
    assert not decide(entries, "tiny", TWO_CORES).admitted


def test_a_job_that_can_never_fit_is_told_so():
    decision = decide([entry("huge", 3)], "huge", TWO_CORES)
    assert not decision.admitted and "3 CPU core(s), the machine has 2" in decision.never


def test_two_gpu_jobs_get_different_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    machine = jobqueue.this_machine()
    assert machine.gpu_ids == ["0", "1"]
    plan = launch.plan_launch(1, 1, {"gpu": 1, "cpu": 1})
    queue = LocalQueue(tmp_path)  # the real file and lock
    first, second, third = (entry(uid, plan.cpus / 2, gpus=plan.gpus) for uid in "xyz")
    got = [queue.poll(e, machine) for e in (first, second, third)]
    assert got[0].gpu_ids == ["0"] and got[1].gpu_ids == ["1"]
    assert plan.slices(got[1].gpu_ids) == ["1"]  # worker-0's CUDA_VISIBLE_DEVICES
    assert not got[2].admitted and "1 GPU(s) (0 of 2 free)" in got[2].waits_for
    queue.remove("x")
    assert queue.poll(third, machine).gpu_ids == ["0"]  # admitted on a later poll: recorded
    assert [(e.uid, e.admitted, e.gpu_ids) for e in queue.entries()] == [
        ("y", True, ["1"]),
        ("z", True, ["0"]),
    ]
    assert not queue.poll(entry("w", 0.5, gpus=1), machine).admitted


@pytest.mark.parametrize(
    ("workers", "procs", "resources", "cores", "gpus", "cpus", "threads"),
    [
        (1, 1, {}, 8, [], 8, 8),  # no cpu request: every core (the job runs alone)
        (2, 1, {}, 8, [], 8, 4),
        (4, 1, {}, 2, [], 2, 1),  # more processes than cores: one thread each, all cores
        (1, 1, {"gpu": 1}, 16, ["0", "1", "2", "3"], 4, 4),  # a GPU job: its share of cores
        (1, 1, {"cpu": "500m"}, 2, [], 1, 1),  # whole threads: 500m holds one core
        (1, 2, {"cpu": 1}, 2, [], 2, 1),  # at least one core per process
        (2, 1, {"cpu": 1}, 2, [], 2, 1),
        (2, 2, {"cpu": 1}, 2, [], 2, 1),  # 4 processes on 2 cores: all of them (runs alone)
    ],
)
def test_what_a_job_reserves(workers, procs, resources, cores, gpus, cpus, threads):
    plan = launch.plan_launch(workers, procs, resources, gpus=gpus, cores=cores, memory_bytes=GiB)
    assert (plan.cpus, plan.threads) == (cpus, threads)


def test_ten_small_jobs_on_two_cores_never_run_more_threads_than_cores():
    kinds = [{}, {"cpu": "500m"}, {"cpu": "500m"}, {"cpu": 1}, {"cpu": 2}]
    plans = [
        launch.plan_launch(1, 1, kinds[i % len(kinds)], gpus=[], cores=2, memory_bytes=8 * GiB)
        for i in range(10)
    ]
    entries = [entry(f"job-{i}", plan.cpus) for i, plan in enumerate(plans)]
    plan_of = {e.uid: plan for e, plan in zip(entries, plans, strict=True)}
    rng = random.Random(0)
    remaining = {e.uid: rng.randint(1, 4) for e in entries}  # rounds each job runs
    started: list[str] = []
    most_threads = most_jobs = 0
    for _ in range(200):
        for e in rng.sample(entries, len(entries)):  # supervisors poll in any order
            if not e.admitted and decide(entries, e.uid, TWO_CORES).admitted:
                e.admitted = True
                started.append(e.uid)
        running = [e.uid for e in entries if e.admitted]
        threads = sum(plan_of[uid].threads * plan_of[uid].procs_per_worker for uid in running)
        assert threads <= 2, running
        most_threads, most_jobs = max(most_threads, threads), max(most_jobs, len(running))
        for uid in running:
            remaining[uid] -= 1
        entries = [e for e in entries if remaining[e.uid] > 0]
        if not entries:
            break
    assert started == [f"job-{i}" for i in range(10)]  # in order of arrival, all of them
    assert (most_threads, most_jobs) == (2, 2)  # small jobs share the machine


@pytest.fixture(scope="module")
def s3_dataset(tmp_path_factory, sentiment_data):
    """A moto_server that checks signatures, holding the sentiment CSV: (url, access, secret)."""
    with MotoServer(log_path=tmp_path_factory.mktemp("moto") / "auth.log") as server:
        access_key, secret_key = server.create_access_key()
        server.enable_auth()
        s3 = server.client(access_key=access_key, secret_key=secret_key)
        s3.create_bucket(Bucket="data")
        s3.upload_file(str(sentiment_data), "data", "sentiment.csv")
        yield server.url, access_key, secret_key


def take_the_machine(queue: LocalQueue) -> None:
    """Reserves every core, all memory and every GPU for this test process, through the queue."""
    machine = jobqueue.this_machine()
    me = psutil.Process()
    holder = Entry(
        uid="holder",
        namespace="tests",
        name="holder",
        pid=me.pid,
        create_time=me.create_time(),
        cpus=machine.cpus,
        memory=machine.memory,
        gpus=len(machine.gpu_ids),
    )
    assert queue.poll(holder, machine).admitted


def submit_from_a_process_that_exits(home: Path, kwargs: dict) -> None:
    """Creates the job from a separate Python process, as a script or `kubetune train` would."""
    spec, secrets = build_job_spec(**kwargs)
    script = (
        "import json, sys\n"
        "from kubetune.training.backends.local.backend import LocalBackend\n"
        "from kubetune.contract.spec import JobSpec\n"
        "data = json.load(sys.stdin)\n"
        "LocalBackend(home=sys.argv[1]).create_job(JobSpec.from_dict(data['spec']), data['secrets'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(home)],
        input=json.dumps({"spec": spec.to_dict(), "secrets": secrets}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_queued_job_starts_when_the_machine_frees_up_and_dies_with_its_supervisor(
    client, home, tiny_model, sentiment_data, s3_dataset, tmp_path, monkeypatch, capsys
):
    """One real job through the queue to training, then its supervisor is killed (kill -9)."""
    from kubetune.storage_initializer.s3 import S3DatasetParams

    # No AWS credentials but the job's: the job reads its S3 data only if they reached it.
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    url, access_key, secret_key = s3_dataset
    token = f"hf_{uuid.uuid4().hex}"
    secrets = [token, access_key, secret_key]
    queue = LocalQueue(home)
    take_the_machine(queue)

    name = "queued-a"
    first = bert_job(
        name, tiny_model, sentiment_data, num_workers=1, access_token=token, max_steps=100_000
    )
    first["dataset_provider_parameters"] = S3DatasetParams(
        endpoint_url=url,
        bucket_name="data",
        file_key="sentiment.csv",
        access_key=access_key,
        secret_key=secret_key,
    )
    submit_from_a_process_that_exits(home, first)
    client.train(**bert_job("queued-b", tiny_model, sentiment_data, num_workers=1))

    # Both wait, visibly, each with its place (a's supervisor updates it as b arrives).
    b = client.get_job_report("queued-b")
    assert (b.status, b.conditions[-1].reason) == ("Created", "Queued")
    assert "place 2 of 2" in b.message, b.message
    assert b.queue == QueuePlace(position=2, waiting=2)  # typed, for the CLI and the dashboard
    wait_until(lambda: "place 1 of 2" in client.get_job_report(name).message, 30, "a's place")
    # As a Kubeflow PyTorchJob: Created, the place in an annotation.
    queued = client.get_job(name)
    assert queued.metadata.annotations["kubetune.io/queue-position"] == "1"
    assert queued.status.conditions[-1].reason == "Queued"
    assert cli.main(["list"]) == 0
    listed = capsys.readouterr().out
    assert "Queued 1/2" in listed and "Queued 2/2" in listed, listed
    assert status_of(home, name).initializer is None  # nothing of it runs yet

    # A queued job can be deleted: its supervisor stops and it leaves the queue.
    b_supervisor = status_of(home, "queued-b").supervisor
    assert b_supervisor is not None
    client.delete_job("queued-b")
    assert not the_job_dir(home, "queued-b").path.exists()
    assert not processes.is_alive(b_supervisor.pid)
    assert [e.name for e in queue.entries()] == ["holder", name]
    wait_until(lambda: "place 1 of 1" in client.get_job_report(name).message, 30, "a to move up")

    # The machine frees up: the job starts (its client is long gone) and trains; the storage
    # initializer read the S3 data with the job's keys.
    queue.remove("holder")

    def training_or_ended():
        job = client.get_job_report(name)
        return job if (job.progress or {}).get("step", 0) > 0 or job.status == "Failed" else None

    job = wait_until(training_or_ended, JOB_TIMEOUT, "training to start")
    assert job.status == "Running", job.message
    created = next(c for c in job.conditions if c.type == "Created")
    assert created.reason == "JobCreated" and "started after" in created.message
    assert job.creation_time <= job.start_time

    # Only the storage initializer needs the secrets (as on Kubernetes): they are in the
    # environment of no other process of the job, and in no command line, file or log.
    status = status_of(home, name)
    supervisor = status.supervisor
    assert supervisor is not None
    job_pids = [
        supervisor.pid,
        status.workers["worker-0"].pid,
        *status.workers["worker-0"].children,
    ]
    assert len(job_pids) == 3, job_pids
    for pid in job_pids:
        environ = psutil.Process(pid).environ()
        assert not set(SECRET_ENV_VARS) & set(environ), pid
        assert not set(secrets) & set(environ.values()), pid
    for process in psutil.process_iter(["cmdline"]):
        line = " ".join(process.info["cmdline"] or [])
        assert not [s for s in secrets if s in line], line
    job_path = the_job_dir(home, name).path
    for path in job_path.rglob("*"):
        if path.is_file():
            assert not [s for s in secrets if s.encode() in path.read_bytes()], path
    assert not [line for line in client.stream_job_logs(name) if token in line.line]

    # kill -9 of the supervisor: its agent and the agent's trainer die with it, before anyone
    # looks at the job (no process goes on training, or writing a model, for a lost job).
    os.kill(supervisor.pid, signal.SIGKILL)
    wait_until(
        lambda: not [pid for pid in job_pids if processes.is_alive(pid)],
        30,
        "every process of the job to die with its supervisor",
    )
    assert not processes.job_processes(status.uid)

    # It is reported Failed (not Running forever), and reading that writes nothing.
    written = the_job_dir(home, name).status_path.read_bytes()
    job = client.get_job_report(name)
    assert job.status == "Failed" and job.conditions[-1].reason == "SupervisorLost"
    assert str(supervisor.pid) in job.message
    assert [j.status for j in client.list_job_reports()] == ["Failed"]
    assert the_job_dir(home, name).status_path.read_bytes() == written

    # torchrun kept its files in the job folder, none in the temp folder.
    assert list((job_path / "logs" / "torchelastic").rglob("attempt_0"))
    assert not list(tmp_path.glob("torchelastic_*"))
    client.delete_job(name)
    assert not job_path.exists()
    assert queue.entries() == []
