"""The log follower shows a pod's init container's lines before its training container's."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from kubetune.training.backends.kubernetes.logs import LogFollower


def _pod(name: str) -> dict[str, Any]:
    done = {"terminated": {"exitCode": 0}}
    return {
        "metadata": {"name": name},
        "status": {
            "initContainerStatuses": [{"name": "storage-initializer", "state": done}],
            "containerStatuses": [{"name": "pytorch", "state": done}],
        },
    }


def test_a_pods_init_container_lines_come_before_its_training_containers() -> None:
    # Both logs are complete when following starts (a job followed after it ran); the init
    # container's stream is the slower one, as a long initializer log over a network is.
    def open_stream(pod: str, container: str) -> Iterator[bytes]:
        if container == "storage-initializer":
            for i in range(3):
                time.sleep(0.05)
                yield f"{pod} init {i}\n".encode()
        else:
            yield f"{pod} train 0\n{pod} train 1\n".encode()

    follower = LogFollower(
        list_pods=lambda: [_pod("job-master-0"), _pod("job-worker-0")],
        open_stream=open_stream,
        job_ended=lambda: True,
        poll_interval=0.05,
    )
    by_pod: dict[str, list[str]] = {}
    for line in follower:
        by_pod.setdefault(line.source.split("/")[0], []).append(line.line)
    for pod in ("job-master-0", "job-worker-0"):
        assert by_pod[pod] == [
            f"{pod} init 0",
            f"{pod} init 1",
            f"{pod} init 2",
            f"{pod} train 0",
            f"{pod} train 1",
        ]
