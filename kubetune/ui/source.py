"""The dashboard's one window on kubetune: jobs read through the Backend interface (local or
Kubernetes) and answered as plain dicts, their history, logs and outputs, and jobs created from
job YAML.

Every use of kubetune by the dashboard (the Backend interface, the job file loader, name
validation) is in this module, so the rest of `kubetune.ui` sees `JobSource` only.
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubetune import jobfile
from kubetune.contract import layout
from kubetune.params import validation
from kubetune.training.backends.base import Backend
from kubetune.training.job import JobReport, LogLine
from kubetune.ui import views

if TYPE_CHECKING:
    from kubetune.training.backends.kubernetes.backend import KubernetesBackend
    from kubetune.training.backends.local.backend import LocalBackend

# Lines of each log source shown when a log view opens (the rest streams from there).
LOG_TAIL_LINES = 2500
# Outputs a job may have, as (file or folder name in the output directory, what it is).
OUTPUTS = (
    (layout.OUTPUT_MODEL_DIR, "model"),
    (layout.OUTPUT_MERGED_MODEL_DIR, "merged model"),
    (layout.METRICS_FILE, "metrics"),
    (layout.LOSS_CURVE_FILE, "loss curve"),
)
# Output files the page may fetch (read from the output directory, never a path from the URL).
SERVED_OUTPUTS = (layout.LOSS_CURVE_FILE, layout.METRICS_FILE)
LogLines = list[tuple[str, str]]


class NotFound(LookupError):
    """No job (or experiment) of that namespace and name."""


@contextmanager
def not_found_as(what: str) -> Iterator[None]:
    """Turns a backend's RuntimeError that says "not found" into NotFound("`what` not found")."""
    try:
        yield
    except RuntimeError as e:
        if "not found" in str(e):
            raise NotFound(f"{what} not found") from None
        raise


def name_problem(value: str) -> str | None:
    """Why `value` cannot be a job name (a DNS-1035 label), or None."""
    return validation.dns1035_label("name", value)


def namespace_problem(value: str) -> str | None:
    """Why `value` cannot be a namespace (a DNS-1123 label), or None."""
    return validation.dns1123_label("namespace", value)


def parse_job_yaml(
    text: str, source: str, base_dir: Path, default_namespace: str = "default"
) -> jobfile.JobFile:
    """The job that job YAML text describes, read and checked by the CLI's job file loader.

    `source` stands where the CLI names the file; relative paths in it are relative to
    `base_dir`.

    Raises:
        JobFileError: (a ValueError) with every problem.
    """
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kubetune-ui-") as folder:
        path = Path(folder) / "job.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            data = jobfile.read_yaml(path)
        except jobfile.JobFileError as e:
            raise jobfile.JobFileError(str(e).replace(str(path), source)) from None
    return jobfile.job_from_data(
        data, base_dir=base_dir, source=source, default_namespace=default_namespace
    )


def summary(job: JobReport) -> dict[str, Any]:
    """The row of the job list: state with reason, size, progress, restarts, times."""
    state, reason, message = views.state_of([c.to_dict() for c in job.conditions])
    return {
        "name": job.name,
        "namespace": job.namespace,
        "backend": job.backend,
        "state": state,
        "reason": reason,
        "message": message,
        "workers": job.num_workers,
        "procs_per_worker": job.num_procs_per_worker,
        "progress": job.progress,
        "restarts": job.restarts,
        "creation_time": job.creation_time,
        "start_time": job.start_time,
        "completion_time": job.completion_time,
        "output_dir": job.output_dir,
    }


class LogReader(ABC):
    """A job's log lines as they are written: each `read_new()` returns what came since."""

    sources: list[str]

    @abstractmethod
    def read_new(self) -> LogLines:
        """(source, line) pairs written since the last call."""

    @abstractmethod
    def ended(self) -> bool:
        """Whether the job has ended and every line has been returned."""

    @abstractmethod
    def close(self) -> None:
        """Stops reading."""


class HistoryReader(ABC):
    """A job's logged records as they come: each `read_new()` returns the new ones."""

    @abstractmethod
    def read_new(self) -> list[dict[str, Any]]:
        """Records logged since the last call."""


class JobSource:
    """The jobs of one backend in every namespace it can see, as the dashboard reads them."""

    name: str = "base"
    # Seconds between two reads of a job's state for live updates.
    poll_interval: float = 0.5

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def namespaces(self) -> list[str]:
        """The namespaces that hold jobs."""
        return self.backend.namespaces()

    def list_jobs(self) -> list[dict[str, Any]]:
        """A summary of every job, oldest first."""
        return [summary(job) for job in self.backend.list_jobs(None)]

    def _report(self, namespace: str, name: str) -> JobReport:
        with not_found_as(f"job {namespace}/{name}"):
            return self.backend.get_job(name, namespace)

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        """The summary plus conditions, spec (secrets redacted), outputs, metrics, log sources
        and, on Kubernetes, the objects.

        Raises:
            NotFound: the job does not exist.
        """
        with not_found_as(f"job {namespace}/{name}"):  # deleted between two of these reads too
            job = self.backend.get_job(name, namespace)
            spec = self.backend.get_job_spec(name, namespace)
            outputs = self.backend.local_outputs(name, namespace)
            objects = self.backend.job_resources(name, namespace)
            log_sources = self.backend.log_sources(name, namespace)
        metrics = None
        if outputs is not None:
            try:
                metrics = layout.read_json(outputs.metrics)
            except OSError:
                metrics = None
        for obj in objects:
            (obj.get("metadata") or {}).pop("managedFields", None)
        return {
            **summary(job),
            "conditions": [c.to_dict() for c in job.conditions],
            "spec": views.redact(spec.to_dict() if spec is not None else None),
            "outputs": _output_entries(job.output_dir, local=outputs is not None),
            "metrics": metrics if isinstance(metrics, dict) else None,
            "log_sources": log_sources,
            "objects": views.redact(objects) if objects else None,
        }

    def history(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """Every logged record (step, epoch, time, loss, learning_rate, eval_*...) in order,
        including records a restart logged again (see views.clean_history).

        Raises:
            NotFound: the job does not exist.
        """
        with not_found_as(f"job {namespace}/{name}"):
            records = self.backend.job_history(name, namespace)
        return [r.to_dict() for r in records]

    def history_reader(self, namespace: str, name: str) -> HistoryReader:
        """Reads the records logged from now on (the first read returns all so far)."""
        return _RereadHistoryReader(lambda: self.history(namespace, name))

    def logs(self, namespace: str, name: str, follow: bool) -> LogReader:
        """The logs: the end of each source first, then, with `follow`, lines as they come.

        Raises:
            NotFound: the job does not exist.
        """
        self._report(namespace, name)
        sources = self.backend.log_sources(name, namespace)
        if not follow:
            lines = self.backend.get_job_logs(
                name, namespace, follow=False, tail_lines=LOG_TAIL_LINES
            )
            return _ListLogReader([(line.source, line.line) for line in lines], sources)
        return _ThreadLogReader(
            lambda on_poll: self.backend.get_job_logs(
                name, namespace, follow=True, on_poll=on_poll, tail_lines=LOG_TAIL_LINES
            ),
            sources,
        )

    def output_file(self, namespace: str, name: str, filename: str) -> Path | None:
        """One of SERVED_OUTPUTS of the job as a file on this machine, or None where there is none."""
        if filename not in SERVED_OUTPUTS:
            return None
        self._report(namespace, name)
        outputs = self.backend.local_outputs(name, namespace)
        if outputs is None:
            return None
        path = outputs.root / filename
        return path if path.is_file() else None

    def delete(self, namespace: str, name: str) -> None:
        """Stops the job and removes it (outputs too).

        Raises:
            NotFound: the job does not exist.
        """
        self._report(namespace, name)
        self.backend.delete_job(name, namespace)

    def create(self, text: str, source: str, base_dir: Path) -> tuple[str, str]:
        """Creates the job that the YAML `text` describes; returns (namespace, name).

        Raises:
            ValueError: every problem (as `kubetune train` reports them), before anything is
                created.
            RuntimeError: the backend refused (a job of that name exists, ...).
        """
        job = parse_job_yaml(text, source, base_dir, default_namespace=self.backend.namespace)
        self.backend.create_job(job.spec, job.secrets)
        return job.spec.namespace, job.spec.name


class LocalSource(JobSource):
    """Jobs of the local backend: every namespace folder under $KUBETUNE_HOME/jobs."""

    name = "local"

    def __init__(self, home: str | Path | None = None) -> None:
        from kubetune.training.backends.local.backend import LocalBackend

        self.backend: LocalBackend = LocalBackend(home=home)


class KubernetesSource(JobSource):
    """Jobs of the Kubernetes backend: in every namespace when the credentials may list them
    cluster-wide, else in the backend's namespace. History comes from the progress records that
    the runtime's rank 0 prints into its log."""

    name = "kubernetes"
    poll_interval = 2.0

    def __init__(self, backend: KubernetesBackend) -> None:
        self.backend: KubernetesBackend = backend


def make_source(
    backend: str | None = None, namespace: str | None = None, **options: Any
) -> JobSource:
    """The JobSource of `backend` ('local' or 'kubernetes'; None: chosen as TrainingClient
    chooses it). `namespace` is where the Kubernetes source lists jobs when it may not list every
    namespace (the local source shows every namespace); `options` go to the backend (`home` for
    local; `config_file`, `context`, `client_configuration`, `api` for Kubernetes).

    Raises:
        ValueError: an unknown backend.
    """
    from kubetune.training.api.training_client import choose_backend

    keys = ("config_file", "context", "client_configuration")
    chosen = choose_backend(backend, **{k: options.get(k) for k in keys})
    if chosen == "local":
        return LocalSource(**options)
    from kubetune.training.backends.kubernetes.backend import KubernetesBackend

    return KubernetesSource(KubernetesBackend(namespace=namespace, **options))


def _output_entries(output_dir: str | None, local: bool) -> list[dict[str, Any]]:
    if not output_dir:
        return []
    return [
        {
            "name": name,
            "what": what,
            "path": str(Path(output_dir) / name),
            "exists": (Path(output_dir) / name).exists() if local else None,
        }
        for name, what in OUTPUTS
    ]


class _RereadHistoryReader(HistoryReader):
    """Reads the whole history each time and returns the records past those returned before."""

    def __init__(self, read_all: Callable[[], list[dict[str, Any]]]) -> None:
        self.read_all = read_all
        self.seen = 0

    def read_new(self) -> list[dict[str, Any]]:
        records = self.read_all()
        new = records[self.seen :]
        self.seen = max(self.seen, len(records))
        return new


class _ListLogReader(LogReader):
    """Lines read already: all of them on the first read."""

    def __init__(self, lines: LogLines, sources: list[str]) -> None:
        self.lines = lines
        self.sources = sources

    def read_new(self) -> LogLines:
        lines, self.lines = self.lines, []
        return lines

    def ended(self) -> bool:
        return not self.lines

    def close(self) -> None:
        self.lines = []


class _Closed(Exception):
    """The reader was closed: the followed stream stops."""


class _ThreadLogReader(LogReader):
    """Drains a following log iterator in a thread, so reads never wait; closing it stops the
    iterator at its next polling round."""

    def __init__(
        self, open_lines: Callable[[Callable[[], None]], Iterator[LogLine]], sources: list[str]
    ) -> None:
        self.sources = sources
        self._queue: queue.Queue[Any] = queue.Queue()
        self._end = object()
        self._closed = threading.Event()
        self._done = False
        thread = threading.Thread(target=self._pump, args=(open_lines,), daemon=True)
        thread.start()

    def _check_closed(self) -> None:
        if self._closed.is_set():
            raise _Closed()

    def _pump(self, open_lines: Callable[[Callable[[], None]], Iterator[LogLine]]) -> None:
        try:
            for line in open_lines(self._check_closed):
                if self._closed.is_set():
                    return
                self._queue.put((line.source, line.line))
        except _Closed:
            return
        except Exception as e:  # the stream broke: say so in the log view
            self._queue.put(("kubetune-ui", f"log stream ended: {e}"))
        finally:
            self._queue.put(self._end)

    def read_new(self) -> LogLines:
        lines: LogLines = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return lines
            if item is self._end:
                self._done = True
                return lines
            lines.append(item)

    def ended(self) -> bool:
        return self._done

    def close(self) -> None:
        self._closed.set()
