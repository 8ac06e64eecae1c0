"""Katib 0.19's SDK constants that kubetune's clone uses, with the same names and values."""

from __future__ import annotations

DEFAULT_TIMEOUT = 120
# How many trials run at once when parallelTrialCount is not set (Katib's default).
DEFAULT_PARALLEL_TRIAL_COUNT = 3
RFC3339_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

KUBEFLOW_GROUP = "kubeflow.org"
KATIB_VERSION = "v1beta1"
API_VERSION = f"{KUBEFLOW_GROUP}/{KATIB_VERSION}"
EXPERIMENT_KIND = "Experiment"
EXPERIMENT_PLURAL = "experiments"
TRIAL_KIND = "Trial"
TRIAL_PLURAL = "trials"
SUGGESTION_PLURAL = "suggestions"

DEFAULT_PRIMARY_CONTAINER_NAME = "training-container"
EXPERIMENT_LABEL = "katib.kubeflow.org/experiment"
TRIAL_LABEL = "katib.kubeflow.org/trial"
CONDITION_STATUS_TRUE = "True"

EXPERIMENT_CONDITION_CREATED = "Created"
EXPERIMENT_CONDITION_RUNNING = "Running"
EXPERIMENT_CONDITION_RESTARTING = "Restarting"
EXPERIMENT_CONDITION_SUCCEEDED = "Succeeded"
EXPERIMENT_CONDITION_FAILED = "Failed"
EXPERIMENT_CONDITIONS = (
    EXPERIMENT_CONDITION_CREATED,
    EXPERIMENT_CONDITION_RUNNING,
    EXPERIMENT_CONDITION_RESTARTING,
    EXPERIMENT_CONDITION_SUCCEEDED,
    EXPERIMENT_CONDITION_FAILED,
)

TRIAL_CONDITION_CREATED = "Created"
TRIAL_CONDITION_RUNNING = "Running"
TRIAL_CONDITION_SUCCEEDED = "Succeeded"
TRIAL_CONDITION_KILLED = "Killed"
TRIAL_CONDITION_FAILED = "Failed"
TRIAL_CONDITION_METRICS_UNAVAILABLE = "MetricsUnavailable"
TRIAL_CONDITION_EARLY_STOPPED = "EarlyStopped"

BASE_IMAGE_TENSORFLOW = "docker.io/tensorflow/tensorflow:2.13.0"
BASE_IMAGE_TENSORFLOW_GPU = "docker.io/tensorflow/tensorflow:2.13.0-gpu"
BASE_IMAGE_PYTORCH = "docker.io/pytorch/pytorch:2.2.1-cuda12.1-cudnn8-runtime"

DEFAULT_DB_MANAGER_ADDRESS = "katib-db-manager.kubeflow:6789"

PVC_DEFAULT_SIZE = "10Gi"
PVC_DEFAULT_ACCESS_MODES = ["ReadWriteOnce", "ReadOnlyMany"]

# The value Katib records when a trial never reported its objective metric.
UNAVAILABLE_METRIC_VALUE = "unavailable"
# Katib's StdOut collector: `name=value` anywhere on a line.
DEFAULT_METRICS_FILTER = r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)"

# Set in every trial kubetune runs: the trial's name (as Katib sets it in trial pods), and on this
# machine the file where report_metrics appends what a custom objective reports.
TRIAL_NAME_ENV = "KATIB_TRIAL_NAME"
METRICS_FILE_ENV = "KUBETUNE_KATIB_METRICS_FILE"
