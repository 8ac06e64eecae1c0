"""Kubernetes API data (JSON-like dicts with camelCase keys) to and from model objects:
Kubeflow's `KubeflowOrgV1*` classes, Katib's `V1beta1*` classes and the Kubernetes client's
`V1*` classes.

Kubeflow's own deserializer cannot build the Kubernetes client's models of the client version
kubetune uses (pydantic models since kubernetes 35), so both directions are done here: Kubeflow's
classes through their `openapi_types`/`attribute_map`, the Kubernetes classes through their
`from_dict`/`model_dump`.
"""

from __future__ import annotations

import datetime
import re
from typing import Any

_LIST = re.compile(r"^list\[(.+)\]$")
_DICT = re.compile(r"^dict\(str, (.+)\)$")
_PLAIN = {"str", "int", "float", "bool", "object", "Quantity"}
# Type names Kubeflow's models use for Kubernetes classes that the client names otherwise.
_RENAMED = {"K8sIoApiAutoscalingV2MetricSpec": "V2MetricSpec"}


def to_api(value: Any) -> Any:
    """`value` as Kubernetes API data: model objects become camelCase dicts without unset fields;
    datetimes RFC 3339 strings; dicts, lists and plain values are converted item by item."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime.datetime):
        return _timestamp(value)
    if isinstance(value, dict):
        return {key: to_api(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_api(item) for item in value]
    if hasattr(value, "model_dump"):  # a Kubernetes client model (pydantic)
        return value.model_dump(by_alias=True, exclude_none=True, mode="json")
    if hasattr(value, "openapi_types") and hasattr(value, "attribute_map"):  # a Kubeflow model
        data = {}
        for attribute in value.openapi_types:
            item = getattr(value, attribute)
            if item is not None:
                data[value.attribute_map[attribute]] = to_api(item)
        return data
    raise TypeError(f"{type(value).__name__} is not Kubernetes API data")


def from_api(data: Any, type_name: str) -> Any:
    """API data as an object of `type_name`, a type name as Kubeflow's models write them
    ('KubeflowOrgV1PyTorchJob', 'V1ObjectMeta', 'list[...]', 'dict(str, ...)', 'datetime', ...).
    Fields a class does not know are left out, as the Kubernetes client does."""
    if data is None:
        return None
    if match := _LIST.match(type_name):
        return [from_api(item, match.group(1)) for item in data]
    if match := _DICT.match(type_name):
        return {key: from_api(item, match.group(1)) for key, item in data.items()}
    if type_name in _PLAIN:
        return data
    if type_name == "datetime":
        return parse_timestamp(data)
    kubeflow = _kubeflow_class(type_name)
    if kubeflow is not None:
        cls, configuration = kubeflow
        kwargs: dict[str, Any] = {
            attribute: from_api(data.get(cls.attribute_map[attribute]), attribute_type)
            for attribute, attribute_type in cls.openapi_types.items()
            if cls.attribute_map[attribute] in data
        }
        # What the server sent stands, even where a required field is missing.
        configuration.client_side_validation = False
        return cls(**kwargs, local_vars_configuration=configuration)
    from kubernetes import client

    cls = getattr(client, _RENAMED.get(type_name, type_name), None)
    if cls is None or not hasattr(cls, "from_dict"):
        return data
    return cls.from_dict(data)


def _kubeflow_class(type_name: str) -> tuple[Any, Any] | None:
    """The Kubeflow model class of `type_name` with a configuration of its package: Kubeflow
    Training's `KubeflowOrgV1*` or Katib's `V1beta1*` (None for any other type)."""
    if type_name.startswith("KubeflowOrgV1"):
        from kubeflow.training import models
        from kubeflow.training.configuration import Configuration
    elif type_name.startswith("V1beta1"):
        from kubeflow.katib import models
        from kubeflow.katib.configuration import Configuration
    else:
        return None
    cls = getattr(models, type_name, None)
    if cls is None or not hasattr(cls, "openapi_types"):
        return None
    return cls, Configuration()


def pytorchjob(data: dict[str, Any]) -> Any:
    """A `KubeflowOrgV1PyTorchJob` from a PyTorchJob as the API returns it."""
    return from_api(data, "KubeflowOrgV1PyTorchJob")


def pod(data: dict[str, Any]) -> Any:
    """A Kubernetes `V1Pod` from a pod as the API returns it."""
    return from_api(data, "V1Pod")


def condition(data: dict[str, Any]) -> Any:
    """A `KubeflowOrgV1JobCondition` from a condition in API form."""
    return from_api(data, "KubeflowOrgV1JobCondition")


def parse_timestamp(value: Any) -> datetime.datetime | None:
    """An RFC 3339 timestamp ('2026-01-31T12:00:00Z') as an aware datetime."""
    if value is None or isinstance(value, datetime.datetime):
        return value
    return datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _timestamp(value: datetime.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    text = value.astimezone(datetime.UTC).isoformat()
    return text.replace("+00:00", "Z")
