"""Turns Kubernetes API errors into RuntimeErrors that say what went wrong and what to do."""

from __future__ import annotations

import json
from typing import Any

OPERATORS = {
    "pytorchjobs": (
        "PyTorchJob (kubeflow.org/v1)",
        "the Kubeflow Training Operator V1: kubectl apply --server-side -k "
        '"github.com/kubeflow/training-operator.git/manifests/overlays/standalone?ref=v1.9.3"',
    ),
    "trainjobs": (
        "TrainJob (trainer.kubeflow.org/v1alpha1)",
        "Kubeflow Trainer (V2) with its torch-distributed ClusterTrainingRuntime; "
        "see https://www.kubeflow.org/docs/components/trainer/operator-guides/installation/",
    ),
    "experiments": (
        "Experiment (kubeflow.org/v1beta1)",
        "Katib: kubectl apply -k "
        '"github.com/kubeflow/katib.git/manifests/v1beta1/installs/katib-standalone?ref=v0.19.0"',
    ),
}


def _status_body(error: Any) -> dict[str, Any]:
    body = getattr(error, "body", None)
    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    if not isinstance(body, str):
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def api_error(error: Any, action: str, namespace: str, resource: str) -> RuntimeError:
    """A RuntimeError for a failed API call (an ApiException) while doing `action` on `resource`.

    `resource` is the REST plural (secrets, configmaps, persistentvolumeclaims, pytorchjobs,
    trainjobs, pods); `action` says what was being done, e.g. "create PyTorchJob ns/name".
    """
    status = getattr(error, "status", None)
    body = _status_body(error)
    message = body.get("message") or getattr(error, "reason", "") or str(error)
    details = body.get("details") or {}
    if status == 401:
        return RuntimeError(
            f"{action}: unauthorized ({message}); your credentials were refused: refresh the "
            "kubeconfig's token or log in to the cluster again"
        )
    if status == 403:
        return RuntimeError(
            f"{action}: forbidden ({message}); the account needs RBAC permission on {resource} in "
            f"namespace {namespace!r}: ask a cluster admin for a Role/RoleBinding, or use another namespace"
        )
    if status == 404 and details.get("kind") == "namespaces":
        return RuntimeError(
            f"{action}: namespace {namespace!r} does not exist; create it "
            f"(kubectl create namespace {namespace}) or pass namespace= an existing one"
        )
    if status == 404 and resource in OPERATORS and not details.get("name"):
        kind, install = OPERATORS[resource]
        return RuntimeError(
            f"{action}: the {kind} CRD is not installed on this cluster ({message}); install {install}"
        )
    if status == 409:
        return RuntimeError(
            f"{action}: the name is taken ({message}); choose another job name or delete the old "
            "job first (TrainingClient.delete_job)"
        )
    if status == 422 or status == 400:
        return RuntimeError(f"{action}: the API server rejected the object: {message}")
    return RuntimeError(f"{action}: Kubernetes API error {status}: {message}")


def connection_error(error: BaseException, host: str) -> RuntimeError:
    """A RuntimeError for an API server that cannot be reached."""
    return RuntimeError(
        f"cannot reach the Kubernetes API server at {host}: {type(error).__name__}: {error}; "
        "check the kubeconfig's cluster address and your network"
    )


def no_config_error(problems: list[str]) -> RuntimeError:
    """A RuntimeError when neither a kubeconfig nor an in-cluster configuration is available."""
    return RuntimeError(
        "no Kubernetes configuration found ("
        + "; ".join(problems)
        + "): set KUBECONFIG or create ~/.kube/config, pass config_file=/context=, "
        "or run inside a cluster with a service account; `train(..., dry_run=True)` needs none"
    )
