"""A full disk, for real: a small tmpfs mounted in a private mount namespace (`unshare -Urm`, no
root needed where unprivileged user namespaces are allowed; skipped where they are not).

Reading jobs never writes (so it works on a full disk), a submission that cannot be written fails
with one clear error and leaves nothing, and a supervisor that hits ENOSPC still records Failed
with the reason (it frees the space it set aside at start).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kubetune.params.job import build_job_spec
from tests.local.local_jobs import bert_job

HERE = Path(__file__).resolve().parent


def private_mounts_work() -> bool:
    if not shutil.which("unshare") or not shutil.which("mount"):
        return False
    try:
        probe = subprocess.run(
            ["unshare", "-Urm", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@pytest.mark.skipif(
    not private_mounts_work(),
    reason="needs `unshare -Urm` (unprivileged user namespaces) to mount a small tmpfs",
)
def test_a_full_disk_breaks_no_read_leaves_no_half_job_and_still_records_failed(
    tmp_path, tiny_model, sentiment_data
):
    specs = {
        name: build_job_spec(**bert_job(name, tiny_model, sentiment_data, num_workers=1))[
            0
        ].to_dict()
        for name in ("a-full", "b-full")
    }
    done = subprocess.run(
        ["unshare", "-Urm", sys.executable, str(HERE / "full_disk.py"), str(tmp_path)],
        input=json.dumps({"a": specs["a-full"], "b": specs["b-full"]}),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["free_bytes"] == 0

    # Reading writes nothing, so a full disk breaks no read; a lost supervisor is still Failed.
    assert report["listed"] == {
        "a-full": ["Created", "Queued"],
        "lost": ["Failed", "SupervisorLost"],
    }
    assert report["lost"] == "Failed" and report["cli_list"] == 0
    assert "a-full" in report["cli_list_output"] and "Queued 1/1" in report["cli_list_output"]

    # A submission on the full disk: one clear error, nothing left behind.
    assert report["submit"].startswith("RuntimeError: job default/b-full: cannot write"), report
    assert "disk is full" in report["submit"] and "nothing was created" in report["submit"]
    assert report["left_behind"] == ["a-full", "lost"]

    # The queued job's supervisor hit ENOSPC when admitted: Failed with the reason, on disk.
    status, reason, message = report["a"]
    assert (status, reason) == ("Failed", "DiskFull"), report["a"]
    assert "No space left on device" in message and "is full" in message
    assert report["a_recorded"] == "DiskFull" and report["a_supervisor_ended"]
