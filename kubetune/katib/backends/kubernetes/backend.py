"""KubernetesExperiments: experiments as Katib Experiments, through the official client.

`create` makes the objects of manifests.experiment_objects in order (the Secret, ConfigMap and
PVC the trials share, then the Experiment) and makes the Experiment their owner, so deleting the
Experiment removes them; it is all or nothing, as a job's creation. Katib's controller then runs
the trials. Reads are plain API calls; a trial's metric log comes from Katib's DB manager (gRPC),
as Katib's SDK reads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kubetune.katib.backends.base import ExperimentBackend, oldest_first
from kubetune.katib.backends.kubernetes import manifests
from kubetune.katib.constants import constants
from kubetune.katib.request import ExperimentRequest
from kubetune.training.backends.kubernetes import manifests as job_manifests
from kubetune.training.backends.kubernetes.backend import REQUEST_TIMEOUT, KubernetesBackend
from kubetune.training.images import resolve_images

GROUP, VERSION = constants.KUBEFLOW_GROUP, constants.KATIB_VERSION
# The container whose log a StdOut-collected trial's output goes to (Katib's sidecar).
METRICS_COLLECTOR_CONTAINER = "metrics-logger-and-collector"


class KubernetesExperiments(KubernetesBackend, ExperimentBackend):
    """Katib Experiments on the cluster of a kubeconfig (or the in-cluster service account)."""

    # --- create --------------------------------------------------------------------------------

    def render_experiment(
        self, request: ExperimentRequest, secrets: dict[str, str]
    ) -> list[dict[str, Any]]:
        """Every object `create_experiment` makes, in order, as dicts; contacts no cluster."""
        images = resolve_images(gpu=request.job.requests_gpus)
        return manifests.experiment_objects(request, secrets, images)

    def create_experiment(self, request: ExperimentRequest, secrets: dict[str, str]) -> None:
        """Creates the Secret, ConfigMap and PVC the trials share, then the Experiment, and makes
        the Experiment their owner; all or nothing."""
        objects = self.render_experiment(request, secrets)
        created: list[dict[str, Any]] = []
        try:
            for obj in objects[:-1]:
                created.append(self._create(obj))
            experiment = self._post_experiment(objects[-1])
            created.append(experiment)
            owner = {
                "apiVersion": constants.API_VERSION,
                "kind": constants.EXPERIMENT_KIND,
                "name": experiment["metadata"]["name"],
                "uid": experiment["metadata"]["uid"],
                "controller": False,
            }
            for obj in created[:-1]:
                self._patch_owner(obj["kind"], obj["metadata"]["name"], request.namespace, [owner])
        except BaseException as error:
            self._roll_back_experiment(created, request.namespace, error)
            raise

    def create_experiment_object(self, experiment: dict[str, Any]) -> None:
        self._post_experiment(experiment)

    def _post_experiment(self, obj: dict[str, Any]) -> dict[str, Any]:
        namespace, name = obj["metadata"]["namespace"], obj["metadata"]["name"]
        api = self._custom_api()
        try:
            created: dict[str, Any] = self._call(
                f"create Experiment {namespace}/{name}",
                namespace,
                manifests.EXPERIMENT_PLURAL,
                lambda: api.create_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    manifests.EXPERIMENT_PLURAL,
                    obj,
                    _request_timeout=REQUEST_TIMEOUT,
                ),
            )
        except RuntimeError as e:
            if getattr(e.__cause__, "status", None) == 409:
                raise RuntimeError(
                    f"A Katib Experiment with the name {namespace}/{name} already exists "
                    "(AlreadyExists); delete it first or choose another name"
                ) from e
            raise
        return created

    def _roll_back_experiment(
        self, created: list[dict[str, Any]], namespace: str, error: BaseException
    ) -> None:
        left = []
        for obj in reversed(created):
            kind, name = obj["kind"], obj["metadata"]["name"]
            try:
                if kind == constants.EXPERIMENT_KIND:
                    self._delete_experiment_object(name, namespace)
                else:
                    self._delete_core(kind, name, namespace)
            except Exception:
                left.append(f"{kind} {namespace}/{name}")
        if left:
            error.add_note(f"could not roll back, delete by hand: {', '.join(left)}")

    # --- read ----------------------------------------------------------------------------------

    def _get(self, plural: str, name: str, namespace: str, timeout: float | None) -> dict[str, Any]:
        kind = "Experiment" if plural == manifests.EXPERIMENT_PLURAL else "Trial"
        return self._get_custom(
            (GROUP, VERSION, plural, kind),
            name,
            namespace,
            timeout,
            f"{kind.lower()} {namespace}/{name} not found (NotFound): no {kind} of that name",
        )

    def _list(
        self, plural: str, namespace: str, selector: str | None, timeout: float | None
    ) -> list[dict[str, Any]]:
        api = self._custom_api()
        extra = {"label_selector": selector} if selector else {}
        listed = self._call(
            f"list {plural} in {namespace}",
            namespace,
            plural,
            lambda: api.list_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                plural,
                _request_timeout=timeout or REQUEST_TIMEOUT,
                **extra,
            ),
        )
        items: list[dict[str, Any]] = listed.get("items") or []
        return items

    def get_experiment(
        self, name: str, namespace: str, timeout: float | None = None
    ) -> dict[str, Any]:
        return self._get(manifests.EXPERIMENT_PLURAL, name, namespace, timeout)

    def list_experiments(
        self, namespace: str | None, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """The Experiments of `namespace`; with None, of the cluster when the credentials may
        list them there, else of the backend's namespace. Oldest first."""
        if namespace is not None:
            found = self._list(manifests.EXPERIMENT_PLURAL, namespace, None, timeout)
        else:
            found = self._list_everywhere(manifests.EXPERIMENT_PLURAL, timeout)
        return oldest_first(found)

    def _list_everywhere(self, plural: str, timeout: float | None) -> list[dict[str, Any]]:
        api = self._custom_api()
        try:
            listed = self._call(
                f"list {plural} in all namespaces",
                "",
                plural,
                lambda: api.list_cluster_custom_object(
                    GROUP, VERSION, plural, _request_timeout=timeout or REQUEST_TIMEOUT
                ),
            )
        except RuntimeError as e:
            if getattr(e.__cause__, "status", None) not in (403, 404):
                raise
            return self._list(plural, self.namespace, None, timeout)  # not allowed cluster-wide
        items: list[dict[str, Any]] = listed.get("items") or []
        return items

    def get_trial(self, name: str, namespace: str, timeout: float | None = None) -> dict[str, Any]:
        return self._get(constants.TRIAL_PLURAL, name, namespace, timeout)

    def list_trials(
        self, experiment_name: str | None, namespace: str, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        selector = f"{constants.EXPERIMENT_LABEL}={experiment_name}" if experiment_name else None
        return self._list(constants.TRIAL_PLURAL, namespace, selector, timeout)

    def trial_logs(
        self, experiment: str, trial: str, namespace: str, follow: bool
    ) -> Iterator[str]:
        """The lines of the trial's primary pod: the metrics collector's container for a
        StdOut-collected trial (the training's output goes there), else the primary container."""
        found = self.get_trial(trial, namespace)
        spec = found.get("spec") or {}
        if not (found.get("status") or {}).get("conditions"):
            raise RuntimeError(f"Trial {trial} not found or has no status")
        labels = {constants.TRIAL_LABEL: trial, **(spec.get("primaryPodLabels") or {})}
        core = self._core()
        listed = self._call(
            f"list the pods of trial {namespace}/{trial}",
            namespace,
            "pods",
            lambda: core.list_namespaced_pod(
                namespace,
                label_selector=",".join(f"{k}={v}" for k, v in labels.items()),
                _preload_content=False,
                _request_timeout=REQUEST_TIMEOUT,
            ),
        )
        pods = self._json(listed).get("items") or []
        if not pods:
            raise RuntimeError(f"No pods found for trial {trial}")
        collector = ((spec.get("metricsCollector") or {}).get("collector") or {}).get("kind")
        container = (
            METRICS_COLLECTOR_CONTAINER
            if collector == "StdOut"
            else spec.get("primaryContainerName")
        )
        response = self._read_log(pods[0]["metadata"]["name"], str(container), namespace, follow)
        if not follow:
            yield from response.data.decode(errors="replace").splitlines()
            return
        pending = b""
        try:
            while chunk := response.read1(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    yield line.decode(errors="replace")
        finally:
            response.release_conn()
        if pending:
            yield pending.decode(errors="replace")

    def trial_metric_logs(
        self, trial: str, namespace: str, db_manager_address: str, timeout: float
    ) -> Any:
        """The trial's observation log from Katib's DB manager, as Katib's SDK reads it."""
        try:
            import grpc
            from kubeflow.katib import katib_api_pb2, katib_api_pb2_grpc

            with grpc.insecure_channel(db_manager_address) as channel:
                stub = katib_api_pb2_grpc.DBManagerStub(channel)
                reply = stub.GetObservationLog(
                    katib_api_pb2.GetObservationLogRequest(trial_name=trial), timeout=timeout
                )
            return reply.observation_log.metric_logs
        except Exception as e:
            raise RuntimeError(
                f"Unable to get metrics for Trial {namespace}/{trial} from Katib's DB manager at "
                f"{db_manager_address} (outside the cluster: kubectl port-forward "
                f"svc/katib-db-manager -n kubeflow 6789): {e}"
            ) from e

    # --- change ----------------------------------------------------------------------------------

    def edit_experiment_budget(self, name: str, namespace: str, changes: dict[str, int]) -> None:
        api = self._custom_api()
        self._call(
            f"edit Experiment {namespace}/{name}",
            namespace,
            manifests.EXPERIMENT_PLURAL,
            lambda: api.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                manifests.EXPERIMENT_PLURAL,
                name,
                {"spec": changes},
                _content_type="application/merge-patch+json",
                _request_timeout=REQUEST_TIMEOUT,
            ),
        )

    def _delete_experiment_object(
        self, name: str, namespace: str, options: dict[str, Any] | None = None
    ) -> None:
        api = self._custom_api()
        body = options if options is not None else {"propagationPolicy": "Foreground"}
        self._call(
            f"delete Experiment {namespace}/{name}",
            namespace,
            manifests.EXPERIMENT_PLURAL,
            lambda: api.delete_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                manifests.EXPERIMENT_PLURAL,
                name,
                body=body,
                _request_timeout=REQUEST_TIMEOUT,
            ),
        )

    def delete_experiment(
        self, name: str, namespace: str, delete_options: dict[str, Any] | None = None
    ) -> None:
        """Deletes the Experiment (Katib deletes its trials and their jobs) and the objects the
        trials shared (owned by it, so the garbage collector would too)."""
        self.get_experiment(name, namespace)
        self._delete_experiment_object(name, namespace, delete_options)
        self._delete_core("Secret", job_manifests.secret_name(name), namespace)
        self._delete_core("ConfigMap", job_manifests.configmap_name(name), namespace)
        self._delete_core("PersistentVolumeClaim", job_manifests.pvc_name(name), namespace)
