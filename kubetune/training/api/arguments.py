"""Kubeflow's argument forms, turned into what a JobSpec records (on the client's side).

`env_vars`/`init_env_vars` may be a dict or a list of `V1EnvVar` (or dicts of its fields) and
`V1EnvFromSource`; plain name/value pairs become the spec's mapping, entries that read a Secret
or ConfigMap (`valueFrom`, `envFrom`) are kept as given for Kubernetes. `resources_per_worker`
may be a dict or a `V1ResourceRequirements`, kept as given for Kubernetes. A value of no known
form passes through unchanged, so that the spec's validation names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kubetune.contract.spec import KubernetesExtras
from kubetune.training.api.objects import to_api


@dataclass
class EnvArgument:
    """One env argument, split: `plain` for the spec, `refs`/`sources` for Kubernetes only."""

    plain: Any
    refs: list[dict[str, Any]] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def env_argument(field_name: str, value: Any) -> EnvArgument:
    """Splits a dict or a list of V1EnvVar/V1EnvFromSource (see the module docstring)."""
    if not isinstance(value, list | tuple):
        return EnvArgument(value)
    from kubernetes import client

    found = EnvArgument(plain={})
    for index, item in enumerate(value):
        if isinstance(item, client.V1EnvFromSource):
            found.sources.append(to_api(item))
            continue
        if isinstance(item, dict):
            try:
                item = client.V1EnvVar.model_validate(item)
            except ValueError as e:
                found.problems.append(
                    f"{field_name}[{index}]={item!r}: not the fields of a V1EnvVar ({_first_line(e)})"
                )
                continue
        if not isinstance(item, client.V1EnvVar):
            found.problems.append(
                f"{field_name}[{index}]={item!r}: must be a V1EnvVar, a V1EnvFromSource or a dict "
                "of V1EnvVar fields"
            )
        elif item.value_from is not None:
            found.refs.append(to_api(item))
        else:
            found.plain[item.name] = item.value or ""
    return found


def resources_argument(value: Any) -> tuple[Any, dict[str, Any] | None]:
    """(what the spec records, the V1ResourceRequirements in API form or None).

    The spec's mapping of a `V1ResourceRequirements` is its limits over its requests: what a
    worker may use, which the local backend plans threads and GPUs with."""
    if value is None or isinstance(value, dict) or not hasattr(value, "model_dump"):
        return value, None
    from kubernetes import client

    if not isinstance(value, client.V1ResourceRequirements):
        return value, None
    merged = {**(value.requests or {}), **(value.limits or {})}
    return merged, to_api(value)


def kubernetes_settings(
    env: EnvArgument,
    init_env: EnvArgument | None = None,
    resources: dict[str, Any] | None = None,
) -> KubernetesExtras:
    """The JobSpec's Kubernetes-only settings from the split arguments."""
    return KubernetesExtras(
        env=list(env.refs),
        env_from=list(env.sources),
        init_env=list(init_env.refs) if init_env else [],
        init_env_from=list(init_env.sources) if init_env else [],
        resources=resources or None,
    )


def _first_line(error: Exception) -> str:
    lines = str(error).splitlines()
    return " ".join(lines[:3])
