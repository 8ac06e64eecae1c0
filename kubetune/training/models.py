"""Kubeflow Training V1's model classes (`KubeflowOrgV1PyTorchJob`, ...) and the Kubernetes
client's (`V1EnvVar`, `V1ResourceRequirements`, ...), as `kubeflow.training.models` has them.

These are the real classes of the `kubeflow-training` package; importing this module loads
them and the Kubernetes client (about two seconds).
"""

from __future__ import annotations

from kubeflow.training.models import *  # noqa: F403
