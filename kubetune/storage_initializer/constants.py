"""Where the storage initializer puts the model and the dataset, as Kubeflow V1 names it.

On Kubernetes the job's workspace volume is mounted at `INIT_CONTAINER_MOUNT_PATH` in every
pod; on the local backend a path under it (e.g. `TrainingArguments(output_dir="/workspace")`,
as Kubeflow's TinyLlama example has it) means the same place inside the job's own workspace.
"""

from __future__ import annotations

from kubetune.contract import layout

INIT_CONTAINER_MOUNT_PATH = layout.MOUNT_PATH
VOLUME_PATH_DATASET = f"{INIT_CONTAINER_MOUNT_PATH}/{layout.DATASET_DIR}"
VOLUME_PATH_MODEL = f"{INIT_CONTAINER_MOUNT_PATH}/{layout.MODEL_DIR}"
