"""LocalBackend: fine-tuning jobs as processes on this machine, one job directory each."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from kubetune import workspace
from kubetune.trainer import checkpoints
from kubetune.training import job as conditions
from kubetune.training.backends.base import ALL_PODS, Backend, PodSelector
from kubetune.training.backends.local import launch, logs, pods, processes
from kubetune.training.backends.local.jobdir import (
    JobDir,
    JobStatus,
    default_home,
    job_dir,
    kept_outputs_dir,
    namespace_dir,
    now_iso,
)
from kubetune.training.job import JobCondition, JobReport, LogLine
from kubetune.training.spec import JobSpec

# How long create_job waits for the supervisor to record itself.
START_TIMEOUT = 120.0


class LocalResourceWarning(UserWarning):
    """A job asks for more of this machine (cores, memory) than it has."""


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

    def create_job(self, spec: JobSpec, secrets: dict[str, str]) -> None:
        """Writes the job directory and starts its supervisor; returns once the supervisor runs.

        Raises ValueError when this machine cannot hold the job (GPUs), RuntimeError when a job
        of that name exists (AlreadyExists) or the supervisor did not start. Nothing is left
        behind on error.
        """
        plan = launch.plan_launch(
            spec.num_workers, spec.num_procs_per_worker, spec.resources_per_worker
        )
        job = job_dir(self.home, spec.namespace, spec.name)
        if job.path.exists():
            raise _already_exists(spec)
        checkpoints.check_before_creation(spec, job.workspace)
        for message in plan.warnings:
            warnings.warn(message, LocalResourceWarning, stacklevel=3)

        uid = uuid.uuid4().hex
        staging = JobDir(namespace_dir(self.home, spec.namespace) / f".{spec.name}.creating-{uid}")
        staging.logs_dir.mkdir(parents=True)
        staging.workspace.mkdir()
        staging.spec_path.write_text(spec.to_json())
        output_dir = spec.trainer.get("training_arguments", {}).get("output_dir")
        # A function job's outputs are what it writes in its working directory, the workspace.
        outputs = (
            job.workspace if spec.function else workspace.output_path(job.workspace, output_dir)
        )
        status = JobStatus(
            uid=uid,
            name=spec.name,
            namespace=spec.namespace,
            num_workers=spec.num_workers,
            output_dir=str(outputs),
            creation_time=now_iso(),
            launch={
                "gpu_slices": plan.gpu_slices,
                "threads": plan.threads,
                "procs_per_worker": plan.procs_per_worker,
            },
        )
        status.set_condition(
            conditions.CREATED, "JobCreated", f"job {spec.namespace}/{spec.name} created"
        )
        staging.write_status(status)
        try:
            # Atomic: fails when a job of that name appeared meanwhile (a non-empty directory).
            os.rename(staging.path, job.path)
        except OSError:
            shutil.rmtree(staging.path, ignore_errors=True)
            raise _already_exists(spec) from None
        self._start_supervisor(job, uid, secrets)

    def _start_supervisor(self, job: JobDir, uid: str, secrets: dict[str, str]) -> None:
        env = {**os.environ, **secrets, launch.JOB_UID_ENV: uid}
        with job.supervisor_log.open("ab") as log:
            launcher = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "kubetune.training.backends.local.supervisor",
                    str(job.path),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=job.path,
                start_new_session=True,
            )
        try:
            code = launcher.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            launcher.kill()
            launcher.wait()
            code = -1
        if code != 0:
            reason = " | ".join(line for line in logs.tail(job.supervisor_log)[-8:] if line)
            processes.stop_job(uid, grace=5.0)
            shutil.rmtree(job.path, ignore_errors=True)
            raise RuntimeError(
                f"job {job.path.parent.name}/{job.path.name}: the supervisor did not start "
                f"(exit code {code}): {reason}"
            )

    # --- read ------------------------------------------------------------------------------------

    def get_job(self, name: str, namespace: str) -> JobReport:
        job = job_dir(self.home, namespace, name)
        status = self._status(job, name, namespace)
        return self._to_job(job, status)

    def list_jobs(self, namespace: str) -> list[JobReport]:
        return [self._to_job(job, status) for job, status in self._jobs(namespace)]

    def _jobs(self, namespace: str) -> list[tuple[JobDir, JobStatus]]:
        """Every job of the namespace with its (checked) status, oldest first."""
        folder = namespace_dir(self.home, namespace)
        jobs = []
        if folder.is_dir():
            for path in folder.iterdir():
                if path.name.startswith(".") or not path.is_dir():
                    continue
                job = JobDir(path)
                status = job.read_status()
                if status is not None:
                    jobs.append((job, self._checked(job, status)))
        return sorted(jobs, key=lambda j: (j[1].creation_time or "", j[1].name))

    def get_job_logs(
        self, name: str, namespace: str, follow: bool, selector: PodSelector = ALL_PODS
    ) -> Iterator[LogLine]:
        job = job_dir(self.home, namespace, name)
        status = self._status(job, name, namespace)
        files = [
            (source, job.log_path(source))
            for source in job.sources(status.num_workers)
            if selector.matches(name, pods.pod_labels(name, pods.source_node_rank(source)))
        ]
        if not follow:
            return logs.read_logs(files)
        return logs.follow_logs(files, done=lambda: self._ended(job))

    # --- the Training Operator's view of local jobs (see pods.py) ---------------------------------

    def _spec(self, job: JobDir) -> JobSpec:
        return JobSpec.from_json(job.spec_path.read_text())

    def _progress(self, job: JobDir) -> dict[str, Any] | None:
        progress = workspace.read_json(job.workspace / workspace.PROGRESS_FILE)
        return progress if isinstance(progress, dict) else None

    def _object(self, job: JobDir, status: JobStatus) -> dict[str, Any]:
        queue_position = getattr(status, "queue_position", None)
        return pods.job_object(self._spec(job), status, self._progress(job), queue_position)

    def get_job_object(
        self, name: str, namespace: str, timeout: float | None = None
    ) -> dict[str, Any]:
        job = job_dir(self.home, namespace, name)
        return self._object(job, self._status(job, name, namespace))

    def list_job_objects(
        self, namespace: str, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        return [self._object(job, status) for job, status in self._jobs(namespace)]

    def list_pods(
        self,
        name: str,
        namespace: str,
        selector: PodSelector = ALL_PODS,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        job = job_dir(self.home, namespace, name)
        status = self._status(job, name, namespace)
        return [
            pod
            for pod in pods.pods(self._spec(job), status)
            if selector.matches(name, pod["metadata"]["labels"])
        ]

    def pod_of(self, job_name: str, source: str) -> str:
        return pods.pod_of_source(job_name, source)

    def job_events(
        self, name: str, namespace: str, pod_names: list[str], timeout: float | None = None
    ) -> dict[str, list[str]]:
        job = job_dir(self.home, namespace, name)
        return pods.events(self._spec(job), self._status(job, name, namespace))

    def create_job_object(self, job: dict[str, Any], namespace: str) -> None:
        raise ValueError(
            "create_job(job=...): a job object names container images, which run only on "
            "Kubernetes; use TrainingClient(backend='kubernetes') (or a kubeconfig), or describe "
            "the job with create_job(name=..., train_func=...) to run it locally"
        )

    def update_job_object(
        self, name: str, namespace: str, patch: dict[str, Any], timeout: float | None = None
    ) -> None:
        raise RuntimeError(
            f"update_job: the local backend cannot change job {namespace}/{name} once created "
            "(there is no operator here to act on a changed spec); delete it and create it "
            "again, or use TrainingClient(backend='kubernetes')"
        )

    def follow_job_logs(
        self, name: str, namespace: str, on_poll: Callable[[], None] | None = None
    ) -> Iterator[LogLine]:
        """Like `get_job_logs(follow=True)`, calling `on_poll()` at every polling round."""
        job = job_dir(self.home, namespace, name)
        status = self._status(job, name, namespace)
        files = [(source, job.log_path(source)) for source in job.sources(status.num_workers)]
        return logs.follow_logs(files, done=lambda: self._ended(job), on_poll=on_poll)

    def job_dir(self, name: str, namespace: str) -> Path:
        """The directory of a job (whether or not it exists)."""
        return job_dir(self.home, namespace, name).path

    def _ended(self, job: JobDir) -> bool:
        status = job.read_status()
        return status is None or self._checked(job, status).terminal

    def _status(self, job: JobDir, name: str, namespace: str) -> JobStatus:
        status = job.read_status()
        if status is None:
            raise RuntimeError(
                f"job {namespace}/{name} not found (NotFound) in {namespace_dir(self.home, namespace)}"
            )
        return self._checked(job, status)

    def _checked(self, job: JobDir, status: JobStatus) -> JobStatus:
        """The status, marked Failed (and saved) when its supervisor died without a result."""
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
        # Re-read: the supervisor may have written its final status just now.
        latest = job.read_status()
        if latest is None or latest.terminal:
            return latest or status
        latest.set_condition(conditions.FAILED, "SupervisorLost", message)
        job.write_status(latest)
        return latest

    def _to_job(self, job: JobDir, status: JobStatus) -> JobReport:
        progress = workspace.read_json(job.workspace / workspace.PROGRESS_FILE)
        return JobReport(
            name=status.name,
            namespace=status.namespace,
            backend=self.name,
            conditions=[JobCondition.from_dict(c.to_dict()) for c in status.conditions],
            progress=progress if isinstance(progress, dict) else None,
            creation_time=status.creation_time,
            start_time=status.start_time,
            completion_time=status.completion_time,
            output_dir=status.output_dir,
            restarts=status.restarts,
        )

    # --- delete ----------------------------------------------------------------------------------

    def delete_job(
        self,
        name: str,
        namespace: str,
        keep_outputs: bool = False,
        delete_options: dict[str, Any] | None = None,
    ) -> None:
        """Stops every process of the job, then removes its directory.

        With `keep_outputs`, outputs inside the job directory move to
        `kept_outputs_path(name, namespace)` first (an absolute output_dir is never touched).
        `delete_options` (Kubernetes deletion options) has no meaning here and is ignored.
        """
        job = job_dir(self.home, namespace, name)
        status = job.read_status()
        if status is None:
            raise RuntimeError(
                f"job {namespace}/{name} not found (NotFound) in {namespace_dir(self.home, namespace)}"
            )
        processes.stop_job(status.uid, known_pids=status.all_pids())
        left = [p.pid for p in processes.job_processes(status.uid)]
        if left:
            raise RuntimeError(
                f"job {namespace}/{name}: processes {left} did not stop; the job directory was kept"
            )
        outputs = Path(status.output_dir)
        if keep_outputs and outputs.exists() and job.path in outputs.parents:
            target = kept_outputs_dir(self.home, namespace, name, status.uid)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(outputs), str(target))
        graveyard = job.path.with_name(f".{name}.deleting-{status.uid}")
        os.rename(job.path, graveyard)
        shutil.rmtree(graveyard, ignore_errors=True)

    def kept_outputs_path(self, name: str, namespace: str) -> Path | None:
        """Where `delete_job(keep_outputs=True)` would move this job's outputs (None: not moved)."""
        job = job_dir(self.home, namespace, name)
        status = job.read_status()
        if status is None:
            return None
        if job.path not in Path(status.output_dir).parents:
            return Path(status.output_dir)
        return kept_outputs_dir(self.home, namespace, name, status.uid)


def _already_exists(spec: JobSpec) -> RuntimeError:
    return RuntimeError(
        f"job {spec.namespace}/{spec.name} already exists (AlreadyExists); delete it first "
        f"(TrainingClient().delete_job({spec.name!r}) or `kubetune delete {spec.name}`) or choose another name"
    )
