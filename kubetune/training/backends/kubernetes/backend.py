"""KubernetesBackend: jobs as Kubeflow PyTorchJobs (or TrainJobs) through the official client.

The cluster configuration (a kubeconfig, or the in-cluster service account) is loaded on the
first API call, so constructing the backend and rendering (`dry_run`) need no cluster at all.
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from kubetune.contract.conditions import Condition
from kubetune.contract.records import (
    HistoryRecord,
    last_progress_in_log,
    progress_records_in_log,
)
from kubetune.contract.spec import JobSpec
from kubetune.training.backends.base import ALL_PODS, Backend, PodSelector
from kubetune.training.backends.kubernetes import errors, manifests
from kubetune.training.backends.kubernetes.logs import LogFollower, split_lines, started_containers
from kubetune.training.backends.kubernetes.status import (
    job_from_object,
    progress_sources,
    trainer_restarts,
)
from kubetune.training.images import resolve_images
from kubetune.training.job import JobReport, LogLine

T = TypeVar("T")

IN_CLUSTER_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"
# A TrainJob's node 0: its pods carry the Job's completion index.
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
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
    runs_container_images = True

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
        """Runs one API call, turning its failures into RuntimeErrors that say what to do, and a
        request that ran out of time into a TimeoutError."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError
        from urllib3.exceptions import TimeoutError as RequestTimeout

        try:
            return fn()
        except ApiException as e:
            raise errors.api_error(e, action, namespace, resource) from e
        except HTTPError as e:
            cause = e.reason if isinstance(e, MaxRetryError) else e
            # (urllib3 counts a refused connection as a connect timeout too)
            if isinstance(cause, RequestTimeout) and not isinstance(cause, NewConnectionError):
                raise TimeoutError(
                    f"{action}: the Kubernetes API server did not answer in time ({e})"
                ) from e
            raise errors.connection_error(e, self._client().configuration.host) from e

    @staticmethod
    def _json(response: Any) -> Any:
        return json.loads(response.data)

    # --- create --------------------------------------------------------------------------------

    def render(self, spec: JobSpec, secrets: dict[str, str]) -> list[dict[str, Any]]:
        """Every object `create_job` would create, in order, as dicts; contacts no cluster."""
        images = resolve_images(gpu=spec.requests_gpus)
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

    def _delete_job_object(
        self, name: str, namespace: str, options: dict[str, Any] | None = None
    ) -> None:
        """Deletes the job object: in the foreground (its pods first), or with `options` (a
        V1DeleteOptions in API form) as the request body when given."""
        group, version, plural, kind = self._custom
        api = self._custom_api()
        extra: dict[str, Any] = (
            {"body": options}
            if options is not None
            else {"propagation_policy": "Foreground", "body": {"propagationPolicy": "Foreground"}}
        )
        self._call(
            f"delete {kind} {namespace}/{name}",
            namespace,
            plural,
            lambda: api.delete_namespaced_custom_object(
                group, version, namespace, plural, name, _request_timeout=REQUEST_TIMEOUT, **extra
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

    def create_job_object(self, job: dict[str, Any], namespace: str) -> None:
        """Creates the job object as given (Kubeflow's `create_job(job=...)`)."""
        self._create({**job, "metadata": {**(job.get("metadata") or {}), "namespace": namespace}})

    def update_job_object(
        self, name: str, namespace: str, patch: dict[str, Any], timeout: float | None = None
    ) -> None:
        """Sends `patch` as a JSON merge patch of the job object, as Kubeflow's `update_job` does."""
        group, version, plural, kind = self._custom
        api = self._custom_api()
        self._call(
            f"update {kind} {namespace}/{name}",
            namespace,
            plural,
            lambda: api.patch_namespaced_custom_object(
                group,
                version,
                namespace,
                plural,
                name,
                patch,
                _content_type=MERGE_PATCH,
                _request_timeout=timeout or REQUEST_TIMEOUT,
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

    def _get_object(
        self, name: str, namespace: str, timeout: float | None = None
    ) -> dict[str, Any]:
        kind = self._custom[3]
        return self._get_custom(
            self._custom,
            name,
            namespace,
            timeout,
            f"job {namespace}/{name} not found: no {kind} of that name "
            f"(list them with TrainingClient(backend='kubernetes').list_jobs())",
        )

    def _get_custom(
        self,
        resource: tuple[str, str, str, str],
        name: str,
        namespace: str,
        timeout: float | None,
        not_found: str,
    ) -> dict[str, Any]:
        """The custom object `name` of `resource` (group, version, plural, kind) in API form;
        RuntimeError(`not_found`) when there is none of that name."""
        from kubernetes.client.exceptions import ApiException

        group, version, plural, kind = resource
        api = self._custom_api()
        try:
            obj: dict[str, Any] = self._call(
                f"get {kind} {namespace}/{name}",
                namespace,
                plural,
                lambda: api.get_namespaced_custom_object(
                    group,
                    version,
                    namespace,
                    plural,
                    name,
                    _request_timeout=timeout or REQUEST_TIMEOUT,
                ),
            )
        except RuntimeError as e:
            cause = e.__cause__
            if isinstance(cause, ApiException) and cause.status == 404:
                details = errors._status_body(cause).get("details") or {}
                if details.get("name") == name:
                    raise RuntimeError(not_found) from None
            raise
        return obj

    def get_job(self, name: str, namespace: str) -> JobReport:
        """The job's conditions and times from its PyTorchJob/TrainJob, output_dir inside the
        volume; once it runs, restarts from its pods and progress from rank 0's latest record."""
        job = job_from_object(self._get_object(name, namespace))
        if job.status != Condition.CREATED:
            self._add_pod_report(job)
        return job

    def _add_pod_report(self, job: JobReport) -> None:
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
            job.progress = last_progress_in_log(response.data.decode(errors="replace"))
            if job.progress is not None:
                return

    def _kubetune_objects(self, namespace: str | None) -> list[dict[str, Any]]:
        """kubetune's job objects (by label) in `namespace`; with None in every namespace when
        the credentials may list them cluster-wide, else in the backend's namespace."""
        group, version, plural, kind = self._custom
        api = self._custom_api()
        selector = f"{manifests.MANAGED_BY_LABEL}={manifests.MANAGED_BY}"
        listed = None
        if namespace is None:
            try:
                listed = self._call(
                    f"list {kind}s in all namespaces",
                    "",
                    plural,
                    lambda: api.list_cluster_custom_object(
                        group,
                        version,
                        plural,
                        label_selector=selector,
                        _request_timeout=REQUEST_TIMEOUT,
                    ),
                )
            except RuntimeError as e:
                if getattr(e.__cause__, "status", None) not in (403, 404):
                    raise
        if listed is None:
            own = namespace or self.namespace
            listed = self._call(
                f"list {kind}s in {own}",
                own,
                plural,
                lambda: api.list_namespaced_custom_object(
                    group,
                    version,
                    own,
                    plural,
                    label_selector=selector,
                    _request_timeout=REQUEST_TIMEOUT,
                ),
            )
        return sorted(
            listed.get("items") or [],
            key=lambda o: (
                o["metadata"].get("creationTimestamp") or "",
                o["metadata"].get("namespace") or "",
                o["metadata"]["name"],
            ),
        )

    def list_jobs(self, namespace: str | None) -> list[JobReport]:
        """kubetune's jobs (by label), oldest first, with restarts and progress from their pods
        once they run; `namespace` None: every namespace the credentials may list (else the
        backend's own)."""
        jobs = [job_from_object(o) for o in self._kubetune_objects(namespace)]
        for job in jobs:
            if job.status != Condition.CREATED:
                self._add_pod_report(job)
        return jobs

    def namespaces(self) -> list[str]:
        """The namespaces holding kubetune's jobs that the credentials may list."""
        return sorted({o["metadata"].get("namespace", "") for o in self._kubetune_objects(None)})

    def get_job_spec(self, name: str, namespace: str) -> JobSpec | None:
        """The spec in the job's ConfigMap; None when it cannot be read (or is not a spec)."""
        configmap = self._read_core("ConfigMap", manifests.configmap_name(name), namespace)
        text = ((configmap or {}).get("data") or {}).get(manifests.SPEC_KEY)
        if not text:
            return None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a newer client's keys: shown as far as known
                return JobSpec.from_json(text)
        except ValueError:
            return None

    def job_resources(self, name: str, namespace: str) -> list[dict[str, Any]]:
        """The job object, its ConfigMap, PersistentVolumeClaim and Secret, those that can be read."""
        found: list[dict[str, Any] | None] = [
            self._get_object(name, namespace),
            self._read_core("ConfigMap", manifests.configmap_name(name), namespace),
            self._read_core("PersistentVolumeClaim", manifests.pvc_name(name), namespace),
            self._read_core("Secret", manifests.secret_name(name), namespace),
        ]
        return [o for o in found if o]

    def _read_core(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
        """A Secret, ConfigMap or PVC in API form; None when it is missing or may not be read."""
        plural, suffix = _CORE[kind]
        method = getattr(self._core(), f"read_namespaced_{suffix}")
        try:
            response = self._call(
                f"read {kind} {namespace}/{name}",
                namespace,
                plural,
                lambda: method(
                    name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
                ),
            )
        except RuntimeError:
            return None
        obj: dict[str, Any] = self._json(response)
        return obj

    def get_job_object(
        self, name: str, namespace: str, timeout: float | None = None
    ) -> dict[str, Any]:
        return self._get_object(name, namespace, timeout)

    def list_job_objects(
        self, namespace: str, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """Every job object of the backend's kind in the namespace (kubetune's or not)."""
        group, version, plural, kind = self._custom
        api = self._custom_api()
        listed = self._call(
            f"list {kind}s in {namespace}",
            namespace,
            plural,
            lambda: api.list_namespaced_custom_object(
                group, version, namespace, plural, _request_timeout=timeout or REQUEST_TIMEOUT
            ),
        )
        items: list[dict[str, Any]] = listed.get("items") or []
        return items

    def _pod_labels(self, name: str, selector: PodSelector) -> str:
        """The label selector of a job's chosen pods: the Training Operator's labels for a
        PyTorchJob; for a TrainJob kubetune's job label, node 0 being its master."""
        if self.api == "trainjob":
            if selector.replica_type is not None or selector.replica_index is not None:
                raise ValueError(
                    "replica_type/replica_index: a TrainJob has nodes, not PyTorchJob replicas; "
                    "use is_master=True for node 0 or leave them unset"
                )
            labels = {manifests.JOB_NAME_LABEL: name}
            if selector.is_master:
                labels[COMPLETION_INDEX_LABEL] = "0"
        else:
            labels = selector.labels(name)
        return ",".join(f"{key}={value}" for key, value in labels.items())

    def _pods(
        self,
        name: str,
        namespace: str,
        selector: PodSelector = ALL_PODS,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        core = self._core()
        label_selector = self._pod_labels(name, selector)
        listed = self._call(
            f"list the pods of job {namespace}/{name}",
            namespace,
            "pods",
            lambda: core.list_namespaced_pod(
                namespace,
                label_selector=label_selector,
                _preload_content=False,
                _request_timeout=timeout or REQUEST_TIMEOUT,
            ),
        )
        items: list[dict[str, Any]] = self._json(listed).get("items") or []
        return items

    def list_pods(
        self,
        name: str,
        namespace: str,
        selector: PodSelector = ALL_PODS,
        timeout: float | None = None,
    ) -> list[dict[str, Any]]:
        return self._pods(name, namespace, selector, timeout)

    def job_events(
        self, name: str, namespace: str, pods: list[str], timeout: float | None = None
    ) -> dict[str, list[str]]:
        """The events of the job object and of `pods` since each was created, as Kubeflow lists them."""
        job = self._get_object(name, namespace, timeout)
        core = self._core()
        listed = self._call(
            f"list the events of namespace {namespace}",
            namespace,
            "events",
            lambda: core.list_namespaced_event(
                namespace, _preload_content=False, _request_timeout=timeout or REQUEST_TIMEOUT
            ),
        )
        created = {(job["kind"], name): job["metadata"].get("creationTimestamp") or ""}
        for pod in self._pods(name, namespace, timeout=timeout):
            if pod["metadata"]["name"] in pods:
                created[("Pod", pod["metadata"]["name"])] = (
                    pod["metadata"].get("creationTimestamp") or ""
                )
        found: dict[str, list[str]] = {}
        for event in self._json(listed).get("items") or []:
            involved = event.get("involvedObject") or {}
            key = (involved.get("kind"), involved.get("name"))
            when = (event.get("metadata") or {}).get("creationTimestamp") or ""
            if key in created and when >= created[key]:
                stamp = when.replace("T", " ").rstrip("Z")
                found.setdefault(f"{key[0].lower()}/{key[1]}", []).append(
                    f"{stamp} {event.get('message', '')}"
                )
        return found

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

    def log_sources(self, name: str, namespace: str) -> list[str]:
        """'pod/container' of every container of the job that has started, init containers first."""
        self._get_object(name, namespace)
        try:
            pods = self._pods(name, namespace)
        except RuntimeError:
            return []
        return [f"{pod}/{container}" for pod, container, _ in started_containers(pods)]

    def get_job_logs(
        self,
        name: str,
        namespace: str,
        follow: bool,
        selector: PodSelector = ALL_PODS,
        on_poll: Callable[[], None] | None = None,
        tail_lines: int | None = None,
    ) -> Iterator[LogLine]:
        """Lines of the chosen pods' containers (init containers first), as `pod/container`;
        with `follow`, new pods and lines as they come, until the job ends."""
        self._get_object(name, namespace)  # a clear error for a job that does not exist
        self._pod_labels(name, selector)  # a clear error for a selector this kind has no use for
        if not follow:
            return self._logs_so_far(name, namespace, selector, tail_lines)

        def job_ended() -> bool:
            try:
                return job_from_object(self._get_object(name, namespace)).ended
            except RuntimeError:
                return True

        def open_stream(pod: str, container: str) -> Iterator[bytes]:
            response = self._read_log(pod, container, namespace, True, tail_lines)
            try:
                # read1 returns what has arrived; read(n)/stream(n) would wait for n bytes.
                while chunk := response.read1(4096):
                    yield chunk
            finally:
                response.release_conn()

        return iter(
            LogFollower(
                list_pods=lambda: self._pods(name, namespace, selector),
                open_stream=open_stream,
                job_ended=job_ended,
                poll_interval=self.poll_interval,
                on_poll=on_poll,
            )
        )

    def _logs_so_far(
        self,
        name: str,
        namespace: str,
        selector: PodSelector = ALL_PODS,
        tail_lines: int | None = None,
    ) -> Iterator[LogLine]:
        for pod, container, _ in started_containers(self._pods(name, namespace, selector)):
            response = self._read_log(pod, container, namespace, False, tail_lines)
            yield from split_lines(response.data.decode(errors="replace"), f"{pod}/{container}")

    def job_history(self, name: str, namespace: str) -> list[HistoryRecord]:
        """The records logged by rank 0, read from the progress records it prints into its log
        (each logged record once, though it repeats until the next one)."""
        self._get_object(name, namespace)
        try:
            pods = self._pods(name, namespace)
        except RuntimeError:
            return []
        for pod, container in progress_sources(pods):
            try:
                response = self._read_log(pod, container, namespace, follow=False)
            except RuntimeError:
                continue
            records: list[HistoryRecord] = []
            seen: set[str] = set()
            for record in progress_records_in_log(response.data.decode(errors="replace")):
                logged = record.get("logged")
                key = json.dumps(logged, sort_keys=True)
                if isinstance(logged, dict) and key not in seen:
                    seen.add(key)
                    try:
                        records.append(HistoryRecord.from_dict(logged))
                    except ValueError:
                        continue
            if records:
                return records
        return []

    # --- delete --------------------------------------------------------------------------------

    def delete_job(
        self,
        name: str,
        namespace: str,
        keep_outputs: bool = False,
        delete_options: dict[str, Any] | None = None,
    ) -> None:
        """Deletes the job (foreground: its pods first, unless `delete_options` says otherwise)
        and its Secret, ConfigMap and PVC; with `keep_outputs` the PVC stays (its owner
        reference is removed first)."""
        self._get_object(name, namespace)
        pvc = manifests.pvc_name(name)
        if keep_outputs:
            try:
                self._patch_owner("PersistentVolumeClaim", pvc, namespace, None)
            except RuntimeError as e:
                if getattr(e.__cause__, "status", None) != 404:
                    raise
        self._delete_job_object(name, namespace, delete_options)
        # The garbage collector removes owned objects too; deleting them here makes it immediate.
        self._delete_core("Secret", manifests.secret_name(name), namespace)
        self._delete_core("ConfigMap", manifests.configmap_name(name), namespace)
        if not keep_outputs:
            self._delete_core("PersistentVolumeClaim", pvc, namespace)
