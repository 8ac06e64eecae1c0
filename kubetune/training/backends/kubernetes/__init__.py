"""The Kubernetes backend: pure manifest builders plus API calls through the official client.

`render_yaml(objects)` turns `train(..., dry_run=True)`'s objects into multi-document YAML.
"""

from __future__ import annotations

from kubetune.training.backends.kubernetes.manifests import render_yaml

__all__ = ["render_yaml"]
