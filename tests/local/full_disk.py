"""A full disk for real: `unshare -Urm python full_disk.py SCRATCH < specs.json` (see test_local_disk_full.py).

In its own mount namespace it mounts a small tmpfs as KUBETUNE_HOME, queues job A behind a
process holding the machine, fabricates a job whose supervisor died, fills the tmpfs to the
last byte, then reads (list, status, logs, `kubetune list`), submits job B, and lets A's
supervisor be admitted on the full disk. It prints one JSON report of what happened.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

SIZE = "4m"


def fill(folder: Path) -> None:
    """Writes a file in `folder` until the disk is full."""
    chunk = os.urandom(64 * 1024)
    with (folder / "filler").open("wb", buffering=0) as f:
        while True:
            try:
                f.write(chunk)
            except OSError:
                break
        for size in (4096, 512, 1):  # the last pages too
            with contextlib.suppress(OSError):
                while True:
                    f.write(chunk[:size])


def main() -> int:
    scratch = Path(sys.argv[1])
    specs = json.load(sys.stdin)
    home = scratch / "home"
    home.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(home)], check=True)
    os.environ["KUBETUNE_HOME"] = str(home)

    import psutil

    from kubetune import cli
    from kubetune.contract.spec import JobSpec
    from kubetune.training.backends.local import jobqueue
    from kubetune.training.backends.local.backend import LocalBackend
    from kubetune.training.backends.local.jobdir import JobStatus, ProcessRecord, job_dir

    report: dict = {}
    backend = LocalBackend(home=home)
    queue = jobqueue.LocalQueue(home)
    machine = jobqueue.this_machine()
    holder = subprocess.Popen(["sleep", "600"])
    queue.poll(
        jobqueue.Entry(
            uid="holder",
            namespace="tests",
            name="holder",
            pid=holder.pid,
            create_time=psutil.Process(holder.pid).create_time(),
            cpus=machine.cpus,
            memory=machine.memory,
            gpus=len(machine.gpu_ids),
        ),
        machine,
    )
    backend.create_job(JobSpec.from_dict(specs["a"]), {})

    dead = subprocess.Popen(["true"])
    dead.wait()
    lost = job_dir(home, "default", "lost")
    lost.logs_dir.mkdir(parents=True)
    status = JobStatus(
        uid="l" * 32, name="lost", namespace="default", num_workers=1, output_dir="/o"
    )
    status.supervisor = ProcessRecord(pid=dead.pid)
    status.set_condition("Created", "JobCreated", "")
    status.set_condition("Running", "WorkersRunning", "")
    lost.write_status(status)

    fill(home)
    report["free_bytes"] = os.statvfs(home).f_bavail * os.statvfs(home).f_frsize

    # Reading works on the full disk.
    report["listed"] = {
        j.name: [j.status, j.conditions[-1].reason] for j in backend.list_jobs("default")
    }
    report["lost"] = backend.get_job("lost", "default").status
    report["logs"] = len(list(backend.get_job_logs("a-full", "default", follow=False)))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        report["cli_list"] = cli.main(["list"])
    report["cli_list_output"] = out.getvalue()

    # Submitting fails cleanly and leaves nothing.
    try:
        backend.create_job(JobSpec.from_dict(specs["b"]), {})
        report["submit"] = "created"
    except Exception as e:
        report["submit"] = f"{type(e).__name__}: {e}"
    report["left_behind"] = sorted(p.name for p in (home / "jobs" / "default").iterdir())

    # A's supervisor is admitted once the holder is gone, and hits the full disk.
    holder.kill()
    holder.wait()
    deadline = time.monotonic() + 120
    job = backend.get_job("a-full", "default")
    while job.status not in ("Failed", "Succeeded") and time.monotonic() < deadline:
        time.sleep(0.2)
        job = backend.get_job("a-full", "default")
    report["a"] = [job.status, job.conditions[-1].reason, job.message]
    supervisor = (job_dir(home, "default", "a-full").read_status() or status).supervisor
    assert supervisor is not None
    while psutil.pid_exists(supervisor.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    report["a_supervisor_ended"] = not psutil.pid_exists(supervisor.pid)
    report["a_recorded"] = json.loads(job_dir(home, "default", "a-full").status_path.read_text())[
        "conditions"
    ][-1]["reason"]

    (home / "filler").unlink()
    for name in ("a-full", "lost"):
        backend.delete_job(name, "default")
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
