"""Reading the logs of a job's pods: every init container and container, optionally following."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from kubetune.contract.records import without_progress_record
from kubetune.training.job import LogLine

# (pod name, container name) in the order to show them, for containers that have started.
Started = list[tuple[str, str, int]]


def started_containers(pods: list[dict[str, Any]]) -> Started:
    """(pod, container, restart count) of every container that has started, init containers first,
    pods by name: only those have logs to read."""
    result: Started = []
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        status = pod.get("status") or {}
        for statuses_key in ("initContainerStatuses", "containerStatuses"):
            for container in status.get(statuses_key) or []:
                state = container.get("state") or {}
                last = container.get("lastState") or {}
                if "running" in state or "terminated" in state or "terminated" in last:
                    result.append(
                        (
                            pod["metadata"]["name"],
                            container["name"],
                            container.get("restartCount", 0),
                        )
                    )
    return result


def split_lines(text: str, source: str) -> Iterator[LogLine]:
    """The lines of `text` from `source`, without the progress records the runtime printed."""
    for line in text.splitlines():
        shown = without_progress_record(line)
        if shown is not None:
            yield LogLine(source, shown)


class LogFollower:
    """Streams the logs of every container of a job as they are written, until the job ends.

    `list_pods()` returns the job's pods as dicts; `open_stream(pod, container)` returns an
    iterable of byte chunks that ends when the container stops; `job_ended()` says whether the
    job is over (or gone). New pods and restarted containers are picked up at every poll, and
    `on_poll()` (if given) is called then.
    """

    def __init__(
        self,
        list_pods: Callable[[], list[dict[str, Any]]],
        open_stream: Callable[[str, str], Any],
        job_ended: Callable[[], bool],
        poll_interval: float = 1.0,
        grace_seconds: float = 30.0,
        on_poll: Callable[[], None] | None = None,
    ) -> None:
        self.list_pods = list_pods
        self.open_stream = open_stream
        self.job_ended = job_ended
        self.poll_interval = poll_interval
        self.on_poll = on_poll
        self.grace_seconds = grace_seconds
        self._lines: queue.Queue[LogLine] = queue.Queue()
        self._threads: dict[tuple[str, str, int], threading.Thread] = {}

    def _pump(self, pod: str, container: str) -> None:
        source = f"{pod}/{container}"
        pending = b""
        try:
            for chunk in self.open_stream(pod, container):
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    self._put(source, raw)
        except Exception:  # a pod deleted under us ends its stream; the others go on
            pass
        if pending:
            self._put(source, pending)

    def _put(self, source: str, raw: bytes) -> None:
        shown = without_progress_record(raw.decode(errors="replace").rstrip("\r"))
        if shown is not None:
            self._lines.put(LogLine(source, shown))

    def _start_new_streams(self) -> int:
        """Starts a stream for every container that has none; a pod's containers one after
        another, in order (its init containers' lines come before its training container's).
        Returns how many containers wait for an earlier one of their pod to end."""
        busy: set[str] = set()
        waiting = 0
        for pod, container, restarts in started_containers(self.list_pods()):
            key = (pod, container, restarts)
            thread = self._threads.get(key)
            if thread is None and pod not in busy:
                thread = threading.Thread(target=self._pump, args=(pod, container), daemon=True)
                self._threads[key] = thread
                thread.start()
            waiting += thread is None
            if thread is None or thread.is_alive():
                busy.add(pod)
        return waiting

    def _drain(self, timeout: float) -> Iterator[LogLine]:
        try:
            yield self._lines.get(timeout=timeout)
            while True:
                yield self._lines.get_nowait()
        except queue.Empty:
            return

    def __iter__(self) -> Iterator[LogLine]:
        ended_at: float | None = None
        while True:
            ended = self.job_ended()
            waiting = self._start_new_streams()
            yield from self._drain(self.poll_interval)
            if self.on_poll is not None:
                self.on_poll()
            if ended:
                ended_at = ended_at if ended_at is not None else time.monotonic()
                streaming = waiting or any(t.is_alive() for t in self._threads.values())
                if not streaming or time.monotonic() - ended_at > self.grace_seconds:
                    yield from self._drain(0)
                    return
