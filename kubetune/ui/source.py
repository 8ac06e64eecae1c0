"""The dashboard's one window on kubetune: jobs read through a Backend (local or Kubernetes) and
answered as plain dicts, their history, logs and outputs, and jobs created from job YAML.

Every use of kubetune's internals by the dashboard (backend classes, job directories, the
workspace layout, the JobSpec, the job file loader, name validation) is in this module, so
when those move, only this file changes. The rest of `kubetune.ui` sees `JobSource`.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from abc import ABC, abstractmethod
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubetune import jobfile, validation, workspace
from kubetune.trainer import outputs as trainer_outputs
from kubetune.training.backends.base import Backend
from kubetune.training.job import JobReport
from kubetune.training.spec import build_job_spec
from kubetune.ui import views

if TYPE_CHECKING:
    from kubetune.training.backends.kubernetes.backend import KubernetesBackend
    from kubetune.training.backends.local.backend import LocalBackend
    from kubetune.training.backends.local.jobdir import JobDir

# Bytes of each log file shown when a log view opens (the rest streams from there).
LOG_TAIL_BYTES = 256 * 1024
# Outputs a job may have, as (file or folder name in the output directory, what it is).
OUTPUTS = (
    (trainer_outputs.MODEL_DIR, "model"),
    (trainer_outputs.MERGED_MODEL_DIR, "merged model"),
    (trainer_outputs.METRICS_FILE, "metrics"),
    (trainer_outputs.LOSS_CURVE_FILE, "loss curve"),
)
# Output files the page may fetch (read from the output directory, never a path from the URL).
SERVED_OUTPUTS = (trainer_outputs.LOSS_CURVE_FILE, trainer_outputs.METRICS_FILE)
LogLines = list[tuple[str, str]]


class NotFound(LookupError):
    """No job of that namespace and name."""


def name_problem(value: str) -> str | None:
    """Why `value` cannot be a job name (a DNS-1035 label), or None."""
    return validation.dns1035_label("name", value)


def namespace_problem(value: str) -> str | None:
    """Why `value` cannot be a namespace (a DNS-1123 label), or None."""
    return validation.dns1123_label("namespace", value)


def parse_job_yaml(text: str, source: str, base_dir: Path) -> dict[str, Any]:
    """`train()` keyword arguments from job YAML text, read and checked by the CLI's job file
    loader; raises its JobFileError (a ValueError) with every problem, `source` standing where
    the CLI names the file. Relative paths in it are relative to `base_dir`."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kubetune-ui-") as folder:
        path = Path(folder) / "job.yaml"
        path.write_text(text, encoding="utf-8")
        try:
            data = jobfile.read_yaml(path)
        except jobfile.JobFileError as e:
            raise jobfile.JobFileError(str(e).replace(str(path), source)) from None
    return jobfile.job_kwargs(data, base_dir=base_dir, source=source)


def summary(job: JobReport, workers: int | None, procs: int | str | None) -> dict[str, Any]:
    """The row of the job list: state with reason, size, progress, restarts, times."""
    conditions = [c.to_dict() for c in job.conditions]
    state, reason, message = views.state_of(conditions)
    return {
        "name": job.name,
        "namespace": job.namespace,
        "backend": job.backend,
        "state": state,
        "reason": reason,
        "message": message,
        "workers": workers,
        "procs_per_worker": procs,
        "progress": job.progress,
        "restarts": job.restarts,
        "creation_time": job.creation_time,
        "start_time": job.start_time,
        "completion_time": job.completion_time,
        "output_dir": job.output_dir,
    }


def history_records(lines: list[str]) -> list[dict[str, Any]]:
    """The records of history.jsonl lines; a half-written or damaged line is skipped."""
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


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


class JobSource(ABC):
    """The jobs of one backend in every namespace it can see, as the dashboard reads them."""

    name: str
    backend: Backend
    # Seconds between two reads of a job's state for live updates.
    poll_interval: float = 0.5

    @abstractmethod
    def namespaces(self) -> list[str]:
        """The namespaces that hold jobs (or that the dashboard may list)."""

    @abstractmethod
    def list_jobs(self) -> list[dict[str, Any]]:
        """A summary of every job, oldest first."""

    @abstractmethod
    def job(self, namespace: str, name: str) -> dict[str, Any]:
        """The summary plus conditions, spec (secrets redacted), outputs, metrics, log sources
        and, on Kubernetes, the objects; raises NotFound."""

    @abstractmethod
    def history(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """Every logged record (step, epoch, time, loss, learning_rate, eval_*...) in order,
        including records a restart logged again (see views.clean_history)."""

    @abstractmethod
    def history_reader(self, namespace: str, name: str) -> HistoryReader:
        """Reads the records logged from now on (the first read returns all so far)."""

    @abstractmethod
    def logs(self, namespace: str, name: str, follow: bool) -> LogReader:
        """The logs: the end of each source first, then, with `follow`, lines as they come."""

    @abstractmethod
    def output_file(self, namespace: str, name: str, filename: str) -> Path | None:
        """One of SERVED_OUTPUTS of the job as a local file, or None where there is none."""

    def delete(self, namespace: str, name: str) -> None:
        """Stops the job and removes it (outputs too)."""
        self.job(namespace, name)  # NotFound for a job that does not exist
        self.backend.delete_job(name, namespace)

    def create(self, text: str, source: str, base_dir: Path) -> tuple[str, str]:
        """Creates the job that the YAML `text` describes; returns (namespace, name).

        Raises ValueError with every problem (as `kubetune train` reports them) before anything
        is created, RuntimeError when the backend refuses (a job of that name exists, ...).
        """
        kwargs = parse_job_yaml(text, source, base_dir)
        kwargs["namespace"] = kwargs.get("namespace") or self.backend.namespace
        spec, secrets = build_job_spec(**kwargs)
        self.backend.create_job(spec, secrets)
        return spec.namespace, spec.name


def make_source(
    backend: str | None = None, namespace: str | None = None, **options: Any
) -> JobSource:
    """The JobSource of `backend` ('local' or 'kubernetes'; None: chosen as TrainingClient
    chooses it). `namespace` is where the Kubernetes source lists jobs when it may not list every
    namespace (the local source shows every namespace); `options` go to the backend (`home` for
    local; `config_file`, `context`, `client_configuration`, `api` for Kubernetes)."""
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


# --- local -----------------------------------------------------------------------------------


class LocalSource(JobSource):
    """Jobs of the local backend: every namespace folder under $KUBETUNE_HOME/jobs."""

    name = "local"
    poll_interval = 0.5

    def __init__(self, home: str | os.PathLike[str] | None = None) -> None:
        from kubetune.training.backends.local.backend import LocalBackend

        self.backend: LocalBackend = LocalBackend(home=home)
        self._sizes: dict[tuple[str, str, str | None], tuple[int | None, int | str | None]] = {}

    def _jobs_root(self) -> Path:
        from kubetune.training.backends.local.jobdir import JOBS_DIR

        return Path(self.backend.home) / JOBS_DIR

    def _dir(self, namespace: str, name: str) -> JobDir:
        from kubetune.training.backends.local.jobdir import JobDir

        job = JobDir(self.backend.job_dir(name, namespace))
        if not job.exists():
            raise NotFound(f"job {namespace}/{name} not found")
        return job

    def _workspace(self, namespace: str, name: str) -> Path:
        return self._dir(namespace, name).workspace

    def namespaces(self) -> list[str]:
        root = self._jobs_root()
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _spec(self, namespace: str, name: str) -> dict[str, Any] | None:
        from kubetune.training.backends.local.jobdir import JobDir

        path = JobDir(self.backend.job_dir(name, namespace)).spec_path
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None

    def _size(self, job: JobReport) -> tuple[int | None, int | str | None]:
        key = (job.namespace, job.name, job.creation_time)
        if key not in self._sizes:
            spec = self._spec(job.namespace, job.name) or {}
            self._sizes[key] = (spec.get("num_workers"), spec.get("num_procs_per_worker"))
        return self._sizes[key]

    def list_jobs(self) -> list[dict[str, Any]]:
        jobs = [job for ns in self.namespaces() for job in self.backend.list_jobs(ns)]
        jobs.sort(key=lambda j: (j.creation_time or "", j.namespace, j.name))
        return [summary(job, *self._size(job)) for job in jobs]

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        folder = self._dir(namespace, name)
        try:
            job = self.backend.get_job(name, namespace)
            status = self.backend.job_status(name, namespace)
        except RuntimeError as e:
            raise NotFound(str(e)) from None
        metrics = None
        if job.output_dir:
            metrics = workspace.read_json(Path(job.output_dir) / trainer_outputs.METRICS_FILE)
        return {
            **summary(job, *self._size(job)),
            "conditions": [c.to_dict() for c in job.conditions],
            "spec": views.redact(self._spec(namespace, name)),
            "outputs": _output_entries(job.output_dir, local=True),
            "metrics": metrics if isinstance(metrics, dict) else None,
            "log_sources": folder.sources(status.num_workers) if status else [],
            "objects": None,
        }

    def history(self, namespace: str, name: str) -> list[dict[str, Any]]:
        path = self._workspace(namespace, name) / workspace.HISTORY_FILE
        try:
            text = path.read_text()
        except FileNotFoundError:
            return []
        return history_records(text.splitlines())

    def history_reader(self, namespace: str, name: str) -> HistoryReader:
        return _FileHistoryReader(self._workspace(namespace, name) / workspace.HISTORY_FILE)

    def logs(self, namespace: str, name: str, follow: bool) -> LogReader:
        folder = self._dir(namespace, name)
        try:
            status = self.backend.job_status(name, namespace)
        except RuntimeError as e:
            raise NotFound(str(e)) from None
        sources = folder.sources(status.num_workers)
        return _LocalLogReader(self, namespace, name, folder, sources, follow)

    def output_file(self, namespace: str, name: str, filename: str) -> Path | None:
        if filename not in SERVED_OUTPUTS:
            return None
        output_dir = self.job(namespace, name).get("output_dir")
        if not output_dir:
            return None
        path = Path(output_dir) / filename
        return path if path.is_file() else None

    def ended(self, namespace: str, name: str) -> bool:
        """Whether the job has ended (or is gone)."""
        try:
            return self.job(namespace, name)["state"] in ("succeeded", "failed")
        except NotFound:
            return True


class _FileHistoryReader(HistoryReader):
    """history.jsonl read from where the last read ended; complete lines only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read_new(self) -> list[dict[str, Any]]:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        *complete, self.partial = (self.partial + data).split(b"\n")
        return history_records([line.decode(errors="replace") for line in complete])


class _LocalLogReader(LogReader):
    def __init__(
        self,
        owner: LocalSource,
        namespace: str,
        name: str,
        folder: JobDir,
        sources: list[str],
        follow: bool,
    ) -> None:
        from kubetune.training.backends.local.logs import LogFile

        self.owner, self.namespace, self.name = owner, namespace, name
        self.sources = sources
        self.follow = follow
        self.readers = []
        self.skip_first: set[str] = set()
        for source in sources:
            reader = LogFile(folder.log_path(source), source)
            try:
                size = reader.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size > LOG_TAIL_BYTES:
                reader.offset = size - LOG_TAIL_BYTES
                self.skip_first.add(source)  # the tail starts inside a line
            self.readers.append(reader)
        self._done = False

    def read_new(self) -> LogLines:
        finished = not self.follow or self.owner.ended(self.namespace, self.name)
        lines: LogLines = []
        for reader in self.readers:
            new = reader.read_new(final=finished)
            if reader.source in self.skip_first and new:
                self.skip_first.discard(reader.source)
                new = new[1:]
            lines.extend((line.source, line.line) for line in new)
        self._done = finished
        return lines

    def ended(self) -> bool:
        return self._done

    def close(self) -> None:
        self.readers = []


# --- Kubernetes --------------------------------------------------------------------------------


class KubernetesSource(JobSource):
    """Jobs of the Kubernetes backend: in every namespace when the credentials may list them
    cluster-wide, else in the backend's namespace. History comes from the progress records that
    the trainer's rank 0 prints into its log."""

    name = "kubernetes"
    poll_interval = 2.0

    def __init__(self, backend: KubernetesBackend) -> None:
        self.backend: KubernetesBackend = backend

    def _objects(self) -> list[dict[str, Any]]:
        from kubetune.training.backends.kubernetes import manifests

        group, version, plural, kind = self.backend._custom
        api = self.backend._custom_api()
        selector = f"{manifests.MANAGED_BY_LABEL}={manifests.MANAGED_BY}"
        try:
            listed = self.backend._call(
                f"list {kind}s in all namespaces",
                "",
                plural,
                lambda: api.list_cluster_custom_object(
                    group, version, plural, label_selector=selector, _request_timeout=60
                ),
            )
        except RuntimeError as e:
            if getattr(e.__cause__, "status", None) not in (403, 404):
                raise
            namespace = self.backend.namespace  # not allowed cluster-wide: the own namespace
            listed = self.backend._call(
                f"list {kind}s in {namespace}",
                namespace,
                plural,
                lambda: api.list_namespaced_custom_object(
                    group, version, namespace, plural, label_selector=selector, _request_timeout=60
                ),
            )
        items: list[dict[str, Any]] = listed.get("items") or []
        return items

    @staticmethod
    def _size(obj: dict[str, Any]) -> tuple[int | None, int | str | None]:
        spec = obj.get("spec") or {}
        if obj.get("kind") == "TrainJob":
            trainer = spec.get("trainer") or {}
            return trainer.get("numNodes"), trainer.get("numProcPerNode")
        replicas = spec.get("pytorchReplicaSpecs") or {}
        workers = sum(int(r.get("replicas") or 0) for r in replicas.values()) or None
        procs = spec.get("nprocPerNode")
        return workers, int(procs) if isinstance(procs, str) and procs.isdigit() else procs

    def _job(self, obj: dict[str, Any]) -> JobReport:
        from kubetune.training.backends.kubernetes.status import job_from_object

        job = job_from_object(obj)
        if job.status != "Created":
            self.backend._add_pod_report(job)
        return job

    def namespaces(self) -> list[str]:
        return sorted({o["metadata"].get("namespace", "") for o in self._objects()})

    def list_jobs(self) -> list[dict[str, Any]]:
        objects = sorted(
            self._objects(),
            key=lambda o: (
                o["metadata"].get("creationTimestamp") or "",
                o["metadata"].get("namespace") or "",
                o["metadata"]["name"],
            ),
        )
        return [summary(self._job(o), *self._size(o)) for o in objects]

    def _object(self, namespace: str, name: str) -> dict[str, Any]:
        try:
            obj: dict[str, Any] = self.backend._get_object(name, namespace)
        except RuntimeError as e:
            if "not found" in str(e):
                raise NotFound(f"job {namespace}/{name} not found") from None
            raise
        return obj

    def _core_object(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        core = self.backend._core()
        method = {
            "ConfigMap": core.read_namespaced_config_map,
            "PersistentVolumeClaim": core.read_namespaced_persistent_volume_claim,
            "Secret": core.read_namespaced_secret,
        }[kind]
        try:
            response = method(name, namespace, _preload_content=False, _request_timeout=60)
            obj: dict[str, Any] = json.loads(response.data)
        except Exception:  # missing or forbidden: the page shows what it can read
            return None
        return obj

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        from kubetune.training.backends.kubernetes import manifests
        from kubetune.training.backends.kubernetes.logs import started_containers

        obj = self._object(namespace, name)
        job = self._job(obj)
        configmap = self._core_object("ConfigMap", manifests.configmap_name(name), namespace)
        spec = None
        if configmap:
            try:
                spec = json.loads((configmap.get("data") or {}).get(manifests.SPEC_KEY) or "")
            except json.JSONDecodeError:
                spec = None
        objects = [
            obj,
            configmap,
            self._core_object("PersistentVolumeClaim", manifests.pvc_name(name), namespace),
            self._core_object("Secret", manifests.secret_name(name), namespace),
        ]
        for o in objects:
            if o:
                (o.get("metadata") or {}).pop("managedFields", None)
        try:
            pods = self.backend._pods(name, namespace)
        except RuntimeError:
            pods = []
        return {
            **summary(job, *self._size(obj)),
            "conditions": [c.to_dict() for c in job.conditions],
            "spec": views.redact(spec),
            "outputs": _output_entries(job.output_dir, local=False),
            "metrics": None,
            "log_sources": [f"{p}/{c}" for p, c, _ in started_containers(pods)],
            "objects": views.redact([o for o in objects if o]),
        }

    def history(self, namespace: str, name: str) -> list[dict[str, Any]]:
        self._object(namespace, name)
        from kubetune.training.backends.kubernetes.status import progress_sources

        try:
            pods = self.backend._pods(name, namespace)
        except RuntimeError:
            return []
        for pod, container in progress_sources(pods):
            try:
                response = self.backend._read_log(pod, container, namespace, follow=False)
            except RuntimeError:
                continue
            # Each record is printed once per report; a logged entry repeats until the next log.
            records = []
            seen: set[str] = set()
            for line in response.data.decode(errors="replace").splitlines():
                logged = (workspace.last_progress_in_log(line) or {}).get("logged")
                key = json.dumps(logged, sort_keys=True)
                if isinstance(logged, dict) and key not in seen:
                    seen.add(key)
                    records.append(logged)
            if records:
                return records
        return []

    def history_reader(self, namespace: str, name: str) -> HistoryReader:
        return _RereadHistoryReader(lambda: self.history(namespace, name))

    def logs(self, namespace: str, name: str, follow: bool) -> LogReader:
        self._object(namespace, name)
        lines = self.backend.get_job_logs(name, namespace, follow=follow)
        if follow:
            return _ThreadLogReader(lines)
        return _ListLogReader([(line.source, line.line) for line in lines])

    def output_file(self, namespace: str, name: str, filename: str) -> Path | None:
        return None  # outputs lie in the job's volume, which this machine cannot read


class _RereadHistoryReader(HistoryReader):
    """Reads the whole history each time and returns the records past those returned before."""

    def __init__(self, read_all: Any) -> None:
        self.read_all = read_all
        self.seen = 0

    def read_new(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.read_all()
        new = records[self.seen :]
        self.seen = max(self.seen, len(records))
        return new


class _ListLogReader(LogReader):
    """Lines read already: all of them on the first read."""

    def __init__(self, lines: LogLines) -> None:
        self.lines = lines
        self.sources = list(dict.fromkeys(source for source, _ in lines))

    def read_new(self) -> LogLines:
        lines, self.lines = self.lines, []
        return lines

    def ended(self) -> bool:
        return not self.lines

    def close(self) -> None:
        self.lines = []


class _ThreadLogReader(LogReader):
    """Drains a blocking log iterator in a thread, so reads never wait."""

    def __init__(self, lines: Any) -> None:
        self.sources = []
        self._queue: queue.Queue[Any] = queue.Queue()
        self._end = object()
        self._closed = threading.Event()
        self._done = False
        thread = threading.Thread(target=self._pump, args=(lines,), daemon=True)
        thread.start()

    def _pump(self, lines: Any) -> None:
        try:
            for line in lines:
                if self._closed.is_set():
                    return
                self._queue.put((line.source, line.line))
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
