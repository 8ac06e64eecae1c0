"""Helpers of the Kubernetes backend tests: the test secrets, rendering through TrainingClient,
the CRD schemas made strict, and the Kubernetes core-schema check."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from kubetune.training import TrainingClient

# Secret values used by the tests; none may appear in a rendered object outside the Secret.
MODEL_TOKEN = "hf_modelTokenValue0123456789"
DATASET_TOKEN = "hf_datasetTokenValue987654321"
S3_ACCESS = "AKIAEXAMPLEACCESS00"
S3_SECRET = "s3SecretKey/With+Chars=0123456789abcd"


def render(api: str, params: dict[str, Any], **overrides: Any) -> list[dict[str, Any]]:
    """train(..., dry_run=True) through TrainingClient, as the CLI does it."""
    objects: list[dict[str, Any]] = TrainingClient(backend="kubernetes", api=api).train(
        **{**params, **overrides}, dry_run=True
    )
    return objects


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objects}


# --- CRD schemas -----------------------------------------------------------------------------


def strict(schema: Any) -> Any:
    """The schema with unknown fields rejected wherever the API server would prune them
    (objects with `properties` and no `additionalProperties`/preserve-unknown-fields)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def load_crd_schema(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRDs are large
    crd = yaml.load(path.read_text(), Loader=loader)
    assert crd["kind"] == "CustomResourceDefinition"
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    return strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))


def crd_errors(validators: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validators[obj["kind"]].iter_errors(obj)
    ]


# --- Kubernetes core schema ------------------------------------------------------------------


def core_errors(obj: dict[str, Any]) -> str | None:
    """Validates a core object through the kubernetes client's (pydantic) model in strict mode:
    unknown fields, wrong types and missing required fields fail. None when valid."""
    import pydantic
    from kubernetes import client

    model = {
        "Secret": client.V1Secret,
        "ConfigMap": client.V1ConfigMap,
        "PersistentVolumeClaim": client.V1PersistentVolumeClaim,
        "PodTemplateSpec": client.V1PodTemplateSpec,
    }[obj.get("kind", "PodTemplateSpec")]
    data = {k: v for k, v in obj.items() if not (model is client.V1PodTemplateSpec and k == "kind")}
    try:
        model.model_validate(data, strict=True)
    except pydantic.ValidationError as e:
        return str(e)
    return None


# --- the fake API server ---------------------------------------------------------------------
