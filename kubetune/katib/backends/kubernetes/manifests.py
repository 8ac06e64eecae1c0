"""Pure builders of a Katib Experiment and the objects its trials share: data in, dicts out.

A fine-tuning experiment `NAME` becomes, in creation order:

- Secret `NAME-secrets` (only when there are secrets), ConfigMap `NAME-spec` (the JobSpec that
  every trial shares, the searched fields left out) and PersistentVolumeClaim `NAME-workspace`
  (one workspace for all trials: the storage initializer of the first trial fetches the model
  and dataset, the others find them there, and the tokenised data is cached there once), made
  as for a job (kubetune.training.backends.kubernetes.manifests);
- the `kubeflow.org/v1beta1` Experiment, whose trial template is the PyTorchJob kubetune renders
  for the same `train()` call, with two changes: its containers run `python -m
  kubetune.katib.trial` in front of the trainer (kubetune.katib.trial), and they carry the
  trial's values as `KUBETUNE_PARAMETER_<name>=${trialParameters.<name>}` environment variables,
  which that entry point writes into the trial's copy of the JobSpec.

The trial's own name reaches it through the trial parameter `kubetuneTrialName`, which refers to
`${trialSpec.Name}`. A custom objective's trial is the PyTorchJob of `create_job(train_func=...)`,
its program called with `${trialParameters.<name>}` where the search spaces were (Katib's way).
Every command and argument of the trial's containers is one plain shell word: Katib's StdOut
collector joins them with spaces into a `sh -c` line.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from typing import Any

from kubetune.contract.spec import JobSpec
from kubetune.katib import metrics
from kubetune.katib.constants import constants
from kubetune.katib.request import FUNCTION_FORM, ExperimentRequest
from kubetune.katib.space import FUNCTION_PARAMETERS, without_searched
from kubetune.training.backends.kubernetes import manifests as job_manifests
from kubetune.training.images import Images

EXPERIMENT_PLURAL = constants.EXPERIMENT_PLURAL
TRIAL_NAME_PARAMETER = "kubetuneTrialName"
TRIAL_NAME_REFERENCE = "${trialSpec.Name}"
TRIAL_NAME_ENV = "KUBETUNE_TRIAL_NAME"
SEARCH_SPACE_ENV = "KUBETUNE_SEARCH_SPACE"
PARAMETER_ENV_PREFIX = "KUBETUNE_PARAMETER_"
TRIAL_COMMAND = ["python", "-m", "kubetune.katib.trial"]
# Each trial's own workspace inside the shared volume: WORKSPACE_DIR/trials/<trial>/.
TRIALS_DIR = "trials"
# Katib's defaults for a PyTorchJob trial (its webhook sets the same).
SUCCESS_CONDITION = 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
FAILURE_CONDITION = 'status.conditions.#(type=="Failed")#|#(status=="True")#'
PRIMARY_POD_LABELS = {"training.kubeflow.org/job-role": "master"}


def placeholder(name: str) -> str:
    """Where Katib puts a trial's value of parameter `name`."""
    return "${trialParameters." + name + "}"


def parameter_env(name: str) -> str:
    """The environment variable that carries parameter `name` into a fine-tuning trial."""
    return PARAMETER_ENV_PREFIX + name


def trial_workspace(root: str, trial: str) -> str:
    """A trial's workspace inside the experiment's shared one."""
    return f"{root.rstrip('/')}/{TRIALS_DIR}/{trial}"


def shared_spec(request: ExperimentRequest) -> JobSpec:
    """The JobSpec every trial starts from: the experiment's, without the searched fields
    (each trial's values come with it)."""
    _, _, trainer = request.job.fine_tuning
    return dataclasses.replace(request.job, trainer=without_searched(trainer, request.parameters))


def experiment_objects(
    request: ExperimentRequest, secrets: dict[str, str], images: Images
) -> list[dict[str, Any]]:
    """Every object of the experiment in creation order: [Secret,] ConfigMap, PVC, Experiment
    for fine-tuning; the Experiment alone for a custom objective."""
    experiment = build_experiment(request, images, sorted(secrets))
    if request.form == FUNCTION_FORM:
        return [experiment]
    spec = shared_spec(request)
    shared = [job_manifests.build_secret(spec, secrets)] if secrets else []
    shared += [job_manifests.build_configmap(spec), job_manifests.build_pvc(spec)]
    for obj in shared:
        obj["metadata"]["labels"][constants.EXPERIMENT_LABEL] = request.name
    return [*shared, experiment]


def build_experiment(
    request: ExperimentRequest, images: Images, secret_keys: list[str]
) -> dict[str, Any]:
    """The Katib Experiment (API form)."""
    return {
        "apiVersion": constants.API_VERSION,
        "kind": constants.EXPERIMENT_KIND,
        "metadata": {
            "name": request.name,
            "namespace": request.namespace,
            "labels": {job_manifests.MANAGED_BY_LABEL: job_manifests.MANAGED_BY},
        },
        "spec": {
            **request.spec(),
            "metricsCollectorSpec": metrics_collector(request),
            "trialTemplate": trial_template(request, images, secret_keys),
        },
    }


def metrics_collector(request: ExperimentRequest) -> dict[str, Any]:
    """StdOut with kubetune's filters for fine-tuning (the `kubetune-metric` lines of the trial's
    final metrics, and the Trainer's printed logs); the user's kind for a custom objective."""
    if request.form == FUNCTION_FORM:
        return {"collector": {"kind": request.metrics_collector_kind}}
    return {
        "collector": {"kind": "StdOut"},
        "source": {"filter": {"metricsFormat": [metrics.KUBETUNE_FILTER, metrics.HF_LOGS_FILTER]}},
    }


def trial_template(
    request: ExperimentRequest, images: Images, secret_keys: list[str]
) -> dict[str, Any]:
    """The Experiment's `trialTemplate`: a PyTorchJob trial."""
    parameters = [
        {"name": p.name, "reference": p.name, "description": p.where} for p in request.parameters
    ]
    if request.form == FUNCTION_FORM:
        job = _function_trial(request, images)
    else:
        job = _fine_tuning_trial(request, images, secret_keys)
        parameters.append(
            {
                "name": TRIAL_NAME_PARAMETER,
                "reference": TRIAL_NAME_REFERENCE,
                "description": "the trial's name (its workspace and outputs)",
            }
        )
    if request.trial_active_deadline_seconds is not None:
        job["spec"]["runPolicy"]["activeDeadlineSeconds"] = request.trial_active_deadline_seconds
    return {
        "primaryContainerName": job_manifests.PYTORCH_CONTAINER,
        "primaryPodLabels": dict(PRIMARY_POD_LABELS),
        "successCondition": SUCCESS_CONDITION,
        "failureCondition": FAILURE_CONDITION,
        "retain": request.retain_trials,
        "trialParameters": parameters,
        "trialSpec": job,
    }


def _fine_tuning_trial(
    request: ExperimentRequest, images: Images, secret_keys: list[str]
) -> dict[str, Any]:
    spec = shared_spec(request)
    job = job_manifests.build_pytorchjob(spec, images, secret_keys)
    trial = placeholder(TRIAL_NAME_PARAMETER)
    outputs = spec.output_path(trial_workspace(job_manifests.WORKSPACE_DIR, trial))
    _as_trial(job, trial, outputs=str(outputs))
    space = json.dumps([p.to_dict() for p in request.parameters], sort_keys=True)
    env = [
        {"name": TRIAL_NAME_ENV, "value": trial},
        {"name": SEARCH_SPACE_ENV, "value": space},
        *(
            {"name": parameter_env(p.name), "value": placeholder(p.name)}
            for p in request.parameters
        ),
    ]
    for container in _trainer_containers(job):
        container["command"] = list(TRIAL_COMMAND)
        container["args"] = [*job_manifests.TRAINER_COMMAND, *job_manifests.JOB_ARGS]
        container["env"] = [dict(e) for e in env] + container.get("env", [])
    return job


def _function_trial(request: ExperimentRequest, images: Images) -> dict[str, Any]:
    values = {
        p.name: placeholder(p.name) for p in request.parameters if p.section == FUNCTION_PARAMETERS
    }
    function = request.job.function
    assert function is not None
    program = request.function_program(values)
    spec = dataclasses.replace(request.job, function=dataclasses.replace(function, program=program))
    job = job_manifests.build_pytorchjob(spec, images, [])
    _as_trial(job, None, outputs=None)
    for container in _trainer_containers(job):
        # Katib appends its output redirection and completion mark to the script's last line,
        # which must therefore run the program rather than `exec` it.
        head, _, last = container["args"][0].rstrip("\n").rpartition("\n")
        container["args"] = [f"{head}\n{last.removeprefix('exec ')}"]
    return job


def _as_trial(job: dict[str, Any], trial: str | None, outputs: str | None) -> None:
    """Makes a rendered job a trial template: Katib names it (no name or namespace); kubetune's
    job label names the trial."""
    metadata = job["metadata"]
    metadata.pop("name", None)
    metadata.pop("namespace", None)
    annotations = metadata.get("annotations") or {}
    annotations.pop(job_manifests.OUTPUT_DIR_ANNOTATION, None)
    if outputs is not None:
        annotations[job_manifests.OUTPUT_DIR_ANNOTATION] = outputs
    if annotations:
        metadata["annotations"] = annotations
    else:
        metadata.pop("annotations", None)
    labels = [metadata.get("labels") or {}]
    labels += [r["template"]["metadata"].get("labels") or {} for r in _replicas(job)]
    for found in labels:
        if trial is None:
            found.pop(job_manifests.JOB_NAME_LABEL, None)
        else:
            found[job_manifests.JOB_NAME_LABEL] = trial


def _replicas(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["spec"]["pytorchReplicaSpecs"].values())


def _trainer_containers(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        c
        for r in _replicas(job)
        for c in r["template"]["spec"]["containers"]
        if c["name"] == job_manifests.PYTORCH_CONTAINER
    ]


def substitute(obj: Any, values: dict[str, str]) -> Any:
    """`obj` with each `${trialParameters.<name>}` replaced by `values[name]`, as Katib does in
    a trial's spec (on its JSON text)."""
    text = json.dumps(obj)
    for name, value in values.items():
        text = text.replace(placeholder(name), json.dumps(str(value))[1:-1])
    return json.loads(text)


def shell_words(container: dict[str, Any]) -> list[str]:
    """The container's command and arguments that are not one plain shell word (Katib's StdOut
    collector joins them with spaces into a `sh -c` line); [] when all are."""
    words = [*container.get("command", []), *container.get("args", [])]
    if words[:2] in (["sh", "-c"], ["bash", "-c"]):
        return []
    return [w for w in words if shlex.quote(w) != w]
