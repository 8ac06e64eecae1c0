"""KubernetesBackend: jobs as Kubeflow PyTorchJobs (or TrainJobs) through the official client.

The cluster configuration (a kubeconfig, or the in-cluster service account) is loaded on the
first API call, so constructing the backend and rendering (`dry_run`) need no cluster at all.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from kubetune import workspace
from kubetune.training import job as conditions
from kubetune.training.backends.base import Backend
from kubetune.training.backends.kubernetes import errors, manifests
from kubetune.training.backends.kubernetes.images import resolve_images
from kubetune.training.backends.kubernetes.logs import LogFollower, split_lines, started_containers
from kubetune.training.backends.kubernetes.status import (
    job_from_object,
    progress_sources,
    trainer_restarts,
)
from kubetune.training.job import Job, LogLine
from kubetune.training.spec import JobSpec

T = TypeVar("T")

IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
MERGE_PATCH = "application/merge-patch+json"
# Seconds an API call may take (log streams that follow a job have none).
REQUEST_TIMEOUT = 60
# Log lines read back from the end of a trainer's log to find its latest progress record.
PROGRESS_TAIL_LINES = 200

# kind -> (REST plural, CoreV1Api method suffix)
_CORE = {
    "Secret": ("secrets", "secret"),
    "ConfigMap": ("configmaps", "config_map"),
    "PersistentVolumeClaim": ("persistentvolumeclaims", "persistent_volume_claim"),
}


def default_namespace(config_file: str | None = None, context: str | None = None) -> str:
    """The namespace of the kubeconfig's (given or current) context, else the in-cluster one,
    else 'default'. Reads files only; never contacts a cluster, never fails."""
    try:
        from kubernetes import config

        contexts, active = config.list_kube_config_contexts(config_file)
        chosen = (
            next((c for c in contexts if c.get("name") == context), None) if context else active
        )
        namespace = ((chosen or {}).get("context") or {}).get("namespace")
        if namespace:
            return str(namespace)
    except Exception:
        pass
    try:
        return Path(IN_CLUSTER_NAMESPACE_FILE).read_text().strip() or "default"
    except OSError:
        return "default"


class KubernetesBackend(Backend):
    """Creates and follows jobs on a Kubernetes cluster running a Kubeflow operator.

    `api='pytorchjob'` (Kubeflow Training Operator V1) or `'trainjob'` (Kubeflow Trainer V2).
    `client_configuration`: a `kubernetes.client.Configuration` to use instead of a kubeconfig.
    """

    name = "kubernetes"

    def __init__(
        self,
        namespace: str | None = None,
        config_file: str | None = None,
        context: str | None = None,
        client_configuration: Any = None,
        api: str = "pytorchjob",
        poll_interval: float = 1.0,
    ) -> None:
        if api not in manifests.APIS:
            raise ValueError(f"api={api!r}: allowed: {', '.join(manifests.APIS)}")
        self.api = api
        self.config_file = config_file
        self.context = context
        self.client_configuration = client_configuration
        self.poll_interval = poll_interval
        if namespace:
            self.namespace = namespace
        elif client_configuration is not None:
            self.namespace = "default"
        else:
            self.namespace = default_namespace(config_file, context)
        self._api_client: Any = None
        self._lock = threading.Lock()

    # --- the job kind ------------------------------------------------------------------------

    @property
    def _custom(self) -> tuple[str, str, str, str]:
        """(group, version, plural, kind) of the job objects this backend manages."""
        if self.api == "trainjob":
            return (
                manifests.TRAINJOB_GROUP,
                manifests.TRAINJOB_VERSION,
                manifests.TRAINJOB_PLURAL,
                "TrainJob",
            )
        return (
            manifests.PYTORCHJOB_GROUP,
            manifests.PYTORCHJOB_VERSION,
            manifests.PYTORCHJOB_PLURAL,
            "PyTorchJob",
        )

    # --- the API client, loaded lazily ---------------------------------------------------------

    def _client(self) -> Any:
        with self._lock:
            if self._api_client is None:
                from kubernetes import client, config

                configuration = self.client_configuration
                if configuration is None:
                    configuration = client.Configuration()
                    problems = []
                    try:
                        config.load_kube_config(
                            config_file=self.config_file,
                            context=self.context,
                            client_configuration=configuration,
                        )
                    except Exception as e:  # ConfigException, missing or unreadable file
                        problems.append(f"kubeconfig: {e}")
                        if self.config_file or self.context:
                            raise errors.no_config_error(problems) from e
                        try:
                            config.load_incluster_config(client_configuration=configuration)
                        except Exception as e2:
                            problems.append(f"in-cluster: {e2}")
                            raise errors.no_config_error(problems) from e2
                self._api_client = client.ApiClient(configuration)
            return self._api_client

    def _core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self._client())

    def _custom_api(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self._client())

    def _call(self, action: str, namespace: str, resource: str, fn: Callable[[], T]) -> T:
        """Runs one API call, turning its failures into RuntimeErrors that say what to do."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return fn()
        except ApiException as e:
            raise errors.api_error(e, action, namespace, resource) from e
        except HTTPError as e:
            raise errors.connection_error(e, self._client().configuration.host) from e

    @staticmethod
    def _json(response: Any) -> Any:
        return json.loads(response.data)

    # --- create --------------------------------------------------------------------------------

    def render(self, spec: JobSpec, secrets: dict[str, str]) -> list[dict[str, Any]]:
        """Every object `create_job` would create, in order, as dicts; contacts no cluster."""
        images = resolve_images(gpu=manifests.requests_gpu(spec))
        return manifests.build_objects(spec, secrets, images, self.api)

    def _create(self, obj: dict[str, Any]) -> dict[str, Any]:
        kind, namespace = obj["kind"], obj["metadata"]["namespace"]
        action = f"create {kind} {namespace}/{obj['metadata']['name']}"
        if kind in _CORE:
            plural, suffix = _CORE[kind]
            method = getattr(self._core(), f"create_namespaced_{suffix}")
            return self._json(
                self._call(
                    action,
                    namespace,
                    plural,
                    lambda: method(
                        namespace, obj, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                    ),
                )
            )
        group, version, plural, _ = self._custom
        api = self._custom_api()
        created: dict[str, Any] = self._call(
            action,
            namespace,
            plural,
            lambda: api.create_namespaced_custom_object(
                group, version, namespace, plural, obj, _request_timeout=REQUEST_TIMEOUT
            ),
        )
        return created

    def _delete_core(self, kind: str, name: str, namespace: str) -> None:
        """Deletes a Secret/ConfigMap/PVC; one that is already gone is fine."""
        from kubernetes.client.exceptions import ApiException

        plural, suffix = _CORE[kind]
        method = getattr(self._core(), f"delete_namespaced_{suffix}")
        try:
            method(
                name,
                namespace,
                propagation_policy="Foreground",
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            )
        except ApiException as e:
            if e.status != 404:
                raise errors.api_error(
                    e, f"delete {kind} {namespace}/{name}", namespace, plural
                ) from e

    def _delete_job_object(self, name: str, namespace: str) -> None:
        group, version, plural, kind = self._custom
        api = self._custom_api()
        self._call(
            f"delete {kind} {namespace}/{name}",
            namespace,
            plural,
            lambda: api.delete_namespaced_custom_object(
                group,
                version,
                namespace,
                plural,
                name,
                propagation_policy="Foreground",
                body={"propagationPolicy": "Foreground"},
                _request_timeout=REQUEST_TIMEOUT,
            ),
        )

    def _patch_owner(self, kind: str, name: str, namespace: str, owners: list[Any] | None) -> None:
        plural, suffix = _CORE[kind]
        method = getattr(self._core(), f"patch_namespaced_{suffix}")
        body = {"metadata": {"ownerReferences": owners}}
        self._call(
            f"set the owner of {kind} {namespace}/{name}",
            namespace,
            plural,
            lambda: method(
                name,
                namespace,
                body,
                _content_type=MERGE_PATCH,
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            ),
        )

    def create_job(self, spec: JobSpec, secrets: dict[str, str]) -> None:
        """Creates Secret, ConfigMap, PVC and the job in order, then makes the job their owner.

        All or nothing: when a step fails, what was created is deleted again and the step's
        error (a RuntimeError saying what to do) is raised.
        """
        objects = self.render(spec, secrets)
        created: list[dict[str, Any]] = []
        try:
            for obj in objects:
                created.append(self._create(obj))
            owner = manifests.owner_reference(created[-1])
            for obj in created[:-1]:
                self._patch_owner(obj["kind"], obj["metadata"]["name"], spec.namespace, [owner])
        except BaseException as error:
            self._roll_back(created, spec.namespace, error)
            raise

    def _roll_back(
        self, created: list[dict[str, Any]], namespace: str, error: BaseException
    ) -> None:
        left: list[str] = []
        for obj in reversed(created):
            kind, name = obj["kind"], obj["metadata"]["name"]
            try:
                if kind in _CORE:
                    self._delete_core(kind, name, namespace)
                else:
                    self._delete_job_object(name, namespace)
            except Exception:
                left.append(f"{kind} {namespace}/{name}")
        if left:
            error.add_note(f"could not roll back, delete by hand: {', '.join(left)}")

    # --- read ----------------------------------------------------------------------------------

    def _get_object(self, name: str, namespace: str) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        group, version, plural, kind = self._custom
        api = self._custom_api()
        try:
            obj: dict[str, Any] = self._call(
                f"get {kind} {namespace}/{name}",
                namespace,
                plural,
                lambda: api.get_namespaced_custom_object(
                    group, version, namespace, plural, name, _request_timeout=REQUEST_TIMEOUT
                ),
            )
        except RuntimeError as e:
            cause = e.__cause__
            if isinstance(cause, ApiException) and cause.status == 404:
                details = errors._status_body(cause).get("details") or {}
                if details.get("name") == name:
                    raise RuntimeError(
                        f"job {namespace}/{name} not found: no {kind} of that name "
                        f"(list them with TrainingClient(backend='kubernetes').list_jobs())"
                    ) from None
            raise
        return obj

    def get_job(self, name: str, namespace: str) -> Job:
        """The job's conditions and times from its PyTorchJob/TrainJob, output_dir inside the
        volume; once it runs, restarts from its pods and progress from rank 0's latest record."""
        job = job_from_object(self._get_object(name, namespace))
        if job.status != conditions.CREATED:
            self._add_pod_report(job)
        return job

    def _add_pod_report(self, job: Job) -> None:
        """Fills `restarts` and (unless the job object had it) `progress`; leaves them as they
        are when the pods or their logs cannot be read, since the job's status stands without."""
        try:
            pods = self._pods(job.name, job.namespace)
        except RuntimeError:
            return
        job.restarts = trainer_restarts(pods)
        if job.progress is not None:
            return
        for pod, container in progress_sources(pods):
            try:
                response = self._read_log(
                    pod, container, job.namespace, follow=False, tail_lines=PROGRESS_TAIL_LINES
                )
            except RuntimeError:
                continue
            job.progress = workspace.last_progress_in_log(response.data.decode(errors="replace"))
            if job.progress is not None:
                return

    def list_jobs(self, namespace: str) -> list[Job]:
        """kubetune's jobs in the namespace (by label), oldest first."""
        group, version, plural, kind = self._custom
        api = self._custom_api()
        listed = self._call(
            f"list {kind}s in {namespace}",
            namespace,
            plural,
            lambda: api.list_namespaced_custom_object(
                group,
                version,
                namespace,
                plural,
                label_selector=f"{manifests.MANAGED_BY_LABEL}={manifests.MANAGED_BY}",
                _request_timeout=REQUEST_TIMEOUT,
            ),
        )
        items = sorted(
            listed.get("items") or [],
            key=lambda o: (o["metadata"].get("creationTimestamp") or "", o["metadata"]["name"]),
        )
        return [job_from_object(o) for o in items]

    def _pods(self, name: str, namespace: str) -> list[dict[str, Any]]:
        core = self._core()
        listed = self._call(
            f"list the pods of job {namespace}/{name}",
            namespace,
            "pods",
            lambda: core.list_namespaced_pod(
                namespace,
                label_selector=f"{manifests.JOB_NAME_LABEL}={name}",
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            ),
        )
        items: list[dict[str, Any]] = self._json(listed).get("items") or []
        return items

    def _read_log(
        self, pod: str, container: str, namespace: str, follow: bool, tail_lines: int | None = None
    ) -> Any:
        core = self._core()
        tail = {"tail_lines": tail_lines} if tail_lines else {}
        return self._call(
            f"read the log of {namespace}/{pod}/{container}",
            namespace,
            "pods",
            lambda: core.read_namespaced_pod_log(
                pod,
                namespace,
                container=container,
                follow=follow,
                _preload_content=False,
                _request_timeout=None if follow else REQUEST_TIMEOUT,
                **tail,
            ),
        )

    def get_job_logs(self, name: str, namespace: str, follow: bool) -> Iterator[LogLine]:
        """Lines of the initializer and every replica's containers, as `pod/container`;
        with `follow`, new pods and lines as they come, until the job ends."""
        self._get_object(name, namespace)  # a clear error for a job that does not exist
        if not follow:
            return self._logs_so_far(name, namespace)

        def job_ended() -> bool:
            try:
                return (
                    job_from_object(self._get_object(name, namespace)).status in conditions.TERMINAL
                )
            except RuntimeError:
                return True

        def open_stream(pod: str, container: str) -> Iterator[bytes]:
            response = self._read_log(pod, container, namespace, follow=True)
            try:
                # read1 returns what has arrived; read(n)/stream(n) would wait for n bytes.
                while chunk := response.read1(4096):
                    yield chunk
            finally:
                response.release_conn()

        return iter(
            LogFollower(
                list_pods=lambda: self._pods(name, namespace),
                open_stream=open_stream,
                job_ended=job_ended,
                poll_interval=self.poll_interval,
            )
        )

    def _logs_so_far(self, name: str, namespace: str) -> Iterator[LogLine]:
        for pod, container, _ in started_containers(self._pods(name, namespace)):
            response = self._read_log(pod, container, namespace, follow=False)
            yield from split_lines(response.data.decode(errors="replace"), f"{pod}/{container}")

    # --- delete --------------------------------------------------------------------------------

    def delete_job(self, name: str, namespace: str, keep_outputs: bool = False) -> None:
        """Deletes the job (foreground: its pods first) and its Secret, ConfigMap and PVC;
        with `keep_outputs` the PVC stays (its owner reference is removed first)."""
        self._get_object(name, namespace)
        pvc = manifests.pvc_name(name)
        if keep_outputs:
            try:
                self._patch_owner("PersistentVolumeClaim", pvc, namespace, None)
            except RuntimeError as e:
                if getattr(e.__cause__, "status", None) != 404:
                    raise
        self._delete_job_object(name, namespace)
        # The garbage collector removes owned objects too; deleting them here makes it immediate.
        self._delete_core("Secret", manifests.secret_name(name), namespace)
        self._delete_core("ConfigMap", manifests.configmap_name(name), namespace)
        if not keep_outputs:
            self._delete_core("PersistentVolumeClaim", pvc, namespace)
