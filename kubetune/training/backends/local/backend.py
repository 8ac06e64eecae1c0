"""LocalBackend: fine-tuning jobs as processes on this machine, one job directory each."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubetune.contract import checkpoints, layout
from kubetune.contract.conditions import Condition
from kubetune.contract.layout import OutputDir, Workspace
from kubetune.contract.problems import InvalidJob
from kubetune.contract.records import HistoryRecord
from kubetune.contract.secrets import without_secrets
from kubetune.contract.spec import JobSpec, KubernetesExtras
from kubetune.training.backends.base import ALL_PODS, Backend, PodSelector
from kubetune.training.backends.local import launch, logs, pods, processes
from kubetune.training.backends.local.jobdir import (
    JOBS_DIR,
    JobDir,
    JobStatus,
    StatusDamaged,
    default_home,
    job_dir,
    kept_outputs_dir,
    kept_outputs_dirs,
    namespace_dir,
    now_iso,
)
from kubetune.training.job import JobReport, LogLine, QueuePlace

# How long create_job waits for the supervisor to record itself.
START_TIMEOUT = 120.0


class LocalResourceWarning(UserWarning):
    """A job will share this machine's cores among more processes than it has cores."""


class LocalBackend(Backend):
    """Runs each job under a detached supervisor process; state lives in `home`/jobs/<ns>/<name>/.

    `home` defaults to $KUBETUNE_HOME or ~/.kubetune; `namespace` to 'default'. Any process
    that uses the same home sees, follows and deletes the same jobs.
    """

    name = "local"

    def __init__(
        self, namespace: str | None = None, home: str | os.PathLike[str] | None = None
    ) -> None:
        self.namespace = namespace or "default"
        self.home = Path(home).expanduser() if home is not None else default_home()

    # --- create ----------------------------------------------------------------------------------

    def create_job(
        self,
        spec: JobSpec,
        secrets: dict[str, str],
        *,
        shared_workspace: str | os.PathLike[str] | None = None,
    ) -> None:
        """Writes the job directory and starts its supervisor; returns once the supervisor runs
        (the job may wait in the local queue: condition Created, reason Queued).

        `shared_workspace`: a workspace that a storage initializer filled for the same model and
        dataset (the trials of a search share one): the job's workspace links to its model,
        dataset, marker and preprocessing cache (`layout.link_shared`), so the job's own
        storage initializer finds them there and fetches nothing.

        Raises ValueError when this machine can never hold the job (CPUs, memory, GPUs),
        RuntimeError when a job of that name exists (AlreadyExists), the job folder cannot be
        written (a full disk) or the supervisor did not start. Nothing is left behind on error.
        """
        plan = launch.plan_launch(
            spec.num_workers, spec.num_procs_per_worker, spec.resources_per_worker
        )
        job = job_dir(self.home, spec.namespace, spec.name)
        if job.path.exists():
            raise _already_exists(spec)
        outputs = spec.output_path(job.workspace)
        if spec.trainer is not None:
            problems = checkpoints.problems_before_creation(
                outputs, spec.trainer.resume_from_checkpoint
            )
            if problems:
                raise InvalidJob(f"job {spec.name!r}", problems)
        for message in plan.warnings:
            warnings.warn(message, LocalResourceWarning, stacklevel=3)

        uid = uuid.uuid4().hex
        staging = JobDir(namespace_dir(self.home, spec.namespace) / f".{spec.name}.creating-{uid}")
        status = JobStatus(
            uid=uid,
            name=spec.name,
            namespace=spec.namespace,
            num_workers=spec.num_workers,
            output_dir=str(outputs),
            creation_time=now_iso(),
            launch=plan,
        )
        status.set_condition(
            Condition.CREATED, "JobCreated", f"job {spec.namespace}/{spec.name} created"
        )
        try:
            staging.logs_dir.mkdir(parents=True)
            staging.workspace.mkdir()
            if shared_workspace is not None:
                layout.link_shared(staging.workspace, shared_workspace)
            staging.spec_path.write_text(spec.to_json())
            staging.write_status(status)
        except OSError as e:
            shutil.rmtree(staging.path, ignore_errors=True)
            raise _cannot_write(spec, namespace_dir(self.home, spec.namespace), e) from None
        try:
            # Atomic: fails when a job of that name appeared meanwhile (a non-empty directory).
            os.rename(staging.path, job.path)
        except OSError:
            shutil.rmtree(staging.path, ignore_errors=True)
            raise _already_exists(spec) from None
        self._start_supervisor(job, uid, secrets)

    def _start_supervisor(self, job: JobDir, uid: str, secrets: dict[str, str]) -> None:
        # Secrets go to the supervisor on its standard input, never in its environment.
        env = {**without_secrets(os.environ), launch.JOB_UID_ENV: uid}
        code, reason = processes.start_detached(
            "kubetune.training.backends.local.supervisor", job.path, env, secrets, START_TIMEOUT
        )
        if code != 0:
            processes.stop_job(uid, grace=5.0)
            shutil.rmtree(job.path, ignore_errors=True)
            raise RuntimeError(
                f"job {job.path.parent.name}/{job.path.name}: the supervisor did not start "
                f"(exit code {code}): {reason or 'no reason given'}; nothing was created"
            )

    def unsupported_settings(self, kubernetes: KubernetesExtras) -> list[str]:
        """Env entries reading a Secret or ConfigMap (`valueFrom`, `envFrom`): this machine has
        neither."""
        problems = []
        for entries, field_name in (
            (kubernetes.env + kubernetes.env_from, "env_vars"),
            (kubernetes.init_env + kubernetes.init_env_from, "init_env_vars"),
        ):
            if entries:
                names = [e.get("name") or e.get("prefix") or _source_name(e) for e in entries]
                problems.append(
                    f"{field_name}: {names}: valueFrom/envFrom entries read a cluster's Secrets and "
                    "ConfigMaps, which the local backend has none of; give plain values, or use "
                    "TrainingClient(backend='kubernetes')"
                )
        return problems

    # --- read (never writes) -----------------------------------------------------------------------

    def get_job(self, name: str, namespace: str) -> JobReport:
        """The job's report from its status.json and progress.json (a damaged status.json
        reports StatusUnreadable; a job whose supervisor died is Failed)."""
        job = job_dir(self.home, namespace, name)
        status = self._status(job, name, namespace)
        return self._to_job(job, status)

    def list_jobs(self, namespace: str | None) -> list[JobReport]:
        """The jobs of `namespace` (None: of every namespace folder), oldest first."""
        namespaces = [namespace] if namespace is not None else self.namespaces()
        jobs = [(job, status) for ns in namespaces for job, status in self._jobs(ns)]
        jobs.sort(key=lambda j: (j[1].creation_time or "", j[1].namespace, j[1].name))
        return [self._to_job(job, status) for job, status in jobs]

    def namespaces(self) -> list[str]:
        """The namespace folders under the home's jobs/ folder."""
        root = self.home / JOBS_DIR
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def _jobs(self, namespace: str) -> list[tuple[JobDir, JobStatus]]:
        """Every job of the namespace with its (checked) status, oldest first."""
        folder = namespace_dir(self.home, namespace)
        jobs = []
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name.startswith(".") or not path.is_dir():
                    continue
                job = JobDir(path)
                status = self._read(job)
                if status is not None:
                    jobs.append((job, status))
        return sorted(jobs, key=lambda j: (j[1].creation_time or "", j[1].name))

    def log_sources(self, name: str, namespace: str) -> list[str]:
        """'initializer', then 'worker-0', 'worker-1', ... (one log file each)."""
        job = job_dir(self.home, namespace, name)
        return job.sources(self._status(job, name, namespace).num_workers)

    def get_job_logs(
        self,
        name: str,
        namespace: str,
        follow: bool,
        selector: PodSelector = ALL_PODS,
        on_poll: Callable[[], None] | None = None,
        tail_lines: int | None = None,
    ) -> Iterator[LogLine]:
        """The lines of the job's log files (those of the chosen pods' workers), initializer
        first; with `follow`, as they are written, until the job ends."""
        job = job_dir(self.home, namespace, name)
        status = self._status(job, name, namespace)
        files = [
            (source, job.log_path(source))
            for source in job.sources(status.num_workers)
            if selector.matches(name, pods.pod_labels(name, pods.source_node_rank(source)))
        ]
        if not follow:
            return logs.read_logs(files, tail_lines)
        return logs.follow_logs(
            files, done=lambda: self._ended(job), on_poll=on_poll, tail_lines=tail_lines
        )

    def job_history(self, name: str, namespace: str) -> list[HistoryRecord]:
        """The records of the workspace's history.jsonl (a half-written or damaged line is left out)."""
        job = job_dir(self.home, namespace, name)
        self._status(job, name, namespace)
        try:
            text = Workspace(job.workspace).history.read_text(errors="replace")
        except FileNotFoundError:
            return []
        records = []
        for line in text.splitlines():
            try:
                data = json.loads(line)
                if isinstance(data, dict):
                    records.append(HistoryRecord.from_dict(data))
            except ValueError:
                continue
        return records

    def local_outputs(self, name: str, namespace: str) -> OutputDir | None:
        """The job's output directory (on this machine)."""
        job = job_dir(self.home, namespace, name)
        return OutputDir(Path(self._status(job, name, namespace).output_dir))

    # --- the Training Operator's view of local jobs (see pods.py) ---------------------------------

    def _spec(self, job: JobDir) -> JobSpec:
        try:
            return JobSpec.from_json(job.spec_path.read_text())
        except (OSError, ValueError) as e:
            raise RuntimeError(
                f"job {job.path.parent.name}/{job.path.name}: its {job.spec_path.name} cannot be "
                f"read ({type(e).__name__}: {e}); `kubetune -n {job.path.parent.name} delete "
                f"{job.path.name}` removes the job"
            ) from None

    def _spec_if_readable(self, job: JobDir) -> JobSpec | None:
        try:
            return self._spec(job)
        except RuntimeError:
            return None

    def get_job_spec(self, name: str, namespace: str) -> JobSpec | None:
        """The job's spec.json; None when it cannot be read."""
        job = job_dir(self.home, namespace, name)
        self._status(job, name, namespace)
        return self._spec_if_readable(job)

    def _progress(self, job: JobDir) -> dict[str, Any] | None:
        try:
            progress = layout.read_json(Workspace(job.workspace).progress)
        except OSError:
            return None
        return progress if isinstance(progress, dict) else None

    def _object(self, job: JobDir, status: JobStatus) -> dict[str, Any]:
        # A damaged job folder may have lost its spec too: the object then says only what is known.
        spec = self._spec_if_readable(job)
        return pods.job_object(spec, status, self._progress(job), status.queue_position)

    def get_job_object(
        self, name: str, namespace: str, timeout: float | None = None
    ) -> dict[str, Any]:
        """The PyTorchJob kubetune would create for the job, with the local status."""
        job = job_dir(self.home, namespace, name)
        return self._object(job, self._status(job, name, namespace))

    def list_job_objects(
        self, namespace: str, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """The PyTorchJobs of the namespace's jobs (see `get_job_object`), oldest first."""
        return [self._object(job, status) for job, status in self._jobs(namespace)]

    def list_pods(
        self,
        name: str,
        namespace: str,
        selector: PodSelector = ALL_PODS,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        """The job's workers as the pods the operator would create (see pods.py)."""
        job = job_dir(self.home, namespace, name)
        status = self._status(job, name, namespace)
        return [
            pod
            for pod in pods.pods(self._spec(job), status)
            if selector.matches(name, pod["metadata"]["labels"])
        ]

    def pod_of(self, job_name: str, source: str) -> str:
        """The pod name of a log source ('initializer' and 'worker-0' are the master's)."""
        return pods.pod_of_source(job_name, source)

    def job_events(
        self, name: str, namespace: str, pod_names: list[str], timeout: float | None = None
    ) -> dict[str, list[str]]:
        """The job's condition changes, as Kubeflow lists events."""
        job = job_dir(self.home, namespace, name)
        return pods.events(self._spec(job), self._status(job, name, namespace))

    def create_job_object(self, job: dict[str, Any], namespace: str) -> None:
        """Refused: a job object names container images, which run only on Kubernetes."""
        raise ValueError(
            "create_job(job=...): a job object names container images, which run only on "
            "Kubernetes; use TrainingClient(backend='kubernetes') (or a kubeconfig), or describe "
            "the job with create_job(name=..., train_func=...) to run it locally"
        )

    def update_job_object(
        self, name: str, namespace: str, patch: dict[str, Any], timeout: float | None = None
    ) -> None:
        """Refused: there is no operator here to act on a changed spec."""
        raise RuntimeError(
            f"update_job: the local backend cannot change job {namespace}/{name} once created "
            "(there is no operator here to act on a changed spec); delete it and create it "
            "again, or use TrainingClient(backend='kubernetes')"
        )

    def _ended(self, job: JobDir) -> bool:
        status = self._read(job)
        return status is None or status.terminal

    def _status(self, job: JobDir, name: str, namespace: str) -> JobStatus:
        status = self._read(job)
        if status is None:
            raise RuntimeError(
                f"job {namespace}/{name} not found (NotFound) in {namespace_dir(self.home, namespace)}"
            )
        return status

    def _read(self, job: JobDir) -> JobStatus | None:
        """The job's status as readers see it; None when the job is gone.

        A damaged status.json becomes a status that says so; a job whose supervisor died is
        Failed. Nothing is written: reading works on a full or read-only disk.
        """
        try:
            status = job.read_status()
        except StatusDamaged as e:
            return _damaged_status(job, str(e))
        except OSError as e:
            return _damaged_status(job, f"{job.status_path} cannot be read: {e}")
        return None if status is None else self._checked(job, status)

    def _checked(self, job: JobDir, status: JobStatus) -> JobStatus:
        """The status, Failed when its supervisor died without a result; what is left of the
        job's processes is stopped then (a job reported Failed has no live process)."""
        if status.terminal:
            return status
        supervisor = status.supervisor
        if supervisor is None:
            age = time.time() - status.updated_at
            if age < START_TIMEOUT + 10:
                return status  # being created
            message = "the job's supervisor never started"
        elif processes.is_alive(supervisor.pid, supervisor.create_time):
            return status
        else:
            last = [line for line in logs.tail(job.supervisor_log)[-5:] if line]
            message = f"the job's supervisor (pid {supervisor.pid}) ended without a result" + (
                f"; its last words: {' | '.join(last)}" if last else ""
            )
        processes.stop_job(status.uid, known_pids=status.all_pids())
        # Re-read: the supervisor may have written its final status just before it ended.
        try:
            latest = job.read_status()
        except StatusDamaged:
            latest = None
        if latest is not None and latest.terminal:
            return latest
        status.set_condition(
            Condition.FAILED, "SupervisorLost", message, stamp=_last_sign_of_life(job, status)
        )
        return status

    def _to_job(self, job: JobDir, status: JobStatus) -> JobReport:
        place = None
        if status.queue_position is not None:
            place = QueuePlace(status.queue_position, status.queue_waiting or status.queue_position)
        return JobReport(
            name=status.name,
            namespace=status.namespace,
            backend=self.name,
            conditions=list(status.conditions),
            progress=self._progress(job),
            creation_time=status.creation_time,
            start_time=status.start_time,
            completion_time=status.completion_time,
            output_dir=status.output_dir,
            restarts=status.restarts,
            num_workers=status.num_workers,
            num_procs_per_worker=status.launch.procs_per_worker if status.launch else None,
            queue=place,
        )

    # --- stop, delete ----------------------------------------------------------------------------

    def stop_job(self, name: str, namespace: str) -> None:
        """Stops the job's processes and keeps its folder: its supervisor records the job Failed
        (reason Stopped). Does nothing for a job that has ended or is gone."""
        status = self._read(job_dir(self.home, namespace, name))
        if status is not None and not status.terminal and status.uid:
            processes.stop_job(status.uid, known_pids=status.all_pids())

    def delete_job(
        self,
        name: str,
        namespace: str,
        keep_outputs: bool = False,
        delete_options: dict[str, Any] | None = None,
    ) -> None:
        """Stops every process of the job (queued, running or ended), then removes its directory.

        With `keep_outputs`, outputs inside the job directory move to
        `kept_outputs_path(name, namespace)` first (an absolute output_dir is never touched).
        A job whose status.json is damaged is deleted as well: its processes are those running
        in its folder. `delete_options` (Kubernetes deletion options) has no meaning here and is
        ignored.
        """
        job = job_dir(self.home, namespace, name)
        status = self._read(job)
        if status is None:
            raise RuntimeError(
                f"job {namespace}/{name} not found (NotFound) in {namespace_dir(self.home, namespace)}"
            )
        if status.uid:
            processes.stop_job(status.uid, known_pids=status.all_pids())
        processes.stop(processes.processes_in(job.path))
        left = [p.pid for p in processes.processes_in(job.path)]
        if status.uid:
            left += [p.pid for p in processes.job_processes(status.uid) if p.pid not in left]
        if left:
            raise RuntimeError(
                f"job {namespace}/{name}: processes {left} did not stop; the job directory was kept"
            )
        outputs = Path(status.output_dir)
        if keep_outputs and outputs.exists() and job.path in outputs.parents:
            target = kept_outputs_dir(self.home, namespace, name, _kept_id(job, status))
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(outputs), str(target))
        graveyard = job.path.with_name(f".{name}.deleting-{uuid.uuid4().hex}")
        os.rename(job.path, graveyard)
        shutil.rmtree(graveyard, ignore_errors=True)

    def kept_outputs_path(self, name: str, namespace: str) -> Path | None:
        """Where `delete_job(keep_outputs=True)` leaves this job's outputs: kept-outputs/ for
        outputs inside the job folder, the output directory itself for an absolute one; None
        for a job that is gone."""
        job = job_dir(self.home, namespace, name)
        status = self._read(job)
        if status is None:
            return None
        if job.path not in Path(status.output_dir).parents:
            return Path(status.output_dir)
        return kept_outputs_dir(self.home, namespace, name, _kept_id(job, status))

    def kept_outputs(self, name: str, namespace: str) -> list[OutputDir]:
        """The outputs kept in kept-outputs/ of deleted jobs named `name`, newest first."""
        return [OutputDir(path) for path in kept_outputs_dirs(self.home, namespace, name)]


def _damaged_status(job: JobDir, problem: str) -> JobStatus:
    """What can be told of a job whose status.json is damaged: Failed (reason StatusUnreadable)
    once none of its processes runs; Created with the same reason while some still do."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spec: JobSpec | None = JobSpec.from_json(job.spec_path.read_text())
    except (OSError, ValueError):
        spec = None
    if spec is not None and spec.num_workers >= 1:
        outputs, workers = spec.output_path(job.workspace), spec.num_workers
    else:
        outputs = layout.output_path(job.workspace, None)
        workers = max(1, len(list(job.logs_dir.glob("worker-*.log"))))
    try:
        created = now_iso(job.path.stat().st_mtime)
    except OSError:
        created = None
    status = JobStatus(
        uid="",
        name=job.path.name,
        namespace=job.path.parent.name,
        num_workers=workers,
        output_dir=str(outputs),
        creation_time=created,
    )
    running = processes.processes_in(job.path)
    remedy = f"`kubetune -n {status.namespace} delete {status.name}` stops it and removes it"
    if running:
        message = (
            f"{problem}; {len(running)} process(es) of the job still run (pids "
            f"{', '.join(str(p.pid) for p in running)}); {remedy}"
        )
        status.set_condition(Condition.CREATED, "StatusUnreadable", message, stamp=created)
    else:
        message = f"{problem}: the job's state is unknown and none of its processes runs; {remedy}"
        status.set_condition(Condition.CREATED, "StatusUnreadable", message, stamp=created)
        status.set_condition(Condition.FAILED, "StatusUnreadable", message, stamp=created)
    return status


def _last_sign_of_life(job: JobDir, status: JobStatus) -> str:
    """When a lost supervisor was last heard of (its last status or log line): a stable time."""
    moments = [status.updated_at]
    with contextlib.suppress(OSError):
        moments.append(job.supervisor_log.stat().st_mtime)
    return now_iso(max(moments))


def _kept_id(job: JobDir, status: JobStatus) -> str:
    """The job's uid; for a damaged job (uid unknown) a stable stand-in from its folder."""
    if status.uid:
        return status.uid
    try:
        return f"{job.path.stat().st_ino:016x}"[-8:]
    except OSError:
        return "unknown0"


def _cannot_write(spec: JobSpec, folder: Path, error: OSError) -> RuntimeError:
    full = " (the disk is full: free space and try again)" if error.errno == errno.ENOSPC else ""
    return RuntimeError(
        f"job {spec.namespace}/{spec.name}: cannot write its folder in {folder}: "
        f"{error.strerror or error}{full}; nothing was created"
    )


def _already_exists(spec: JobSpec) -> RuntimeError:
    return RuntimeError(
        f"job {spec.namespace}/{spec.name} already exists (AlreadyExists); delete it first "
        f"(TrainingClient().delete_job({spec.name!r}) or `kubetune delete {spec.name}`) or choose another name"
    )


def _source_name(entry: dict[str, Any]) -> str:
    for key in ("secretRef", "configMapRef"):
        if entry.get(key):
            return f"{key}={entry[key].get('name')}"
    return repr(entry)
