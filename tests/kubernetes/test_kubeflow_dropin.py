"""Kubeflow 1.9's TrainingClient on the Kubernetes backend, against the fake API server: every
method in Kubeflow's keyword and positional forms (tests/kubeflow_methods.py), the objects of
Kubeflow's notebooks, function jobs (validated against the CRD; their container script run for
real with bash and pip), and the per-request timeout."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest

from tests.kubeflow_methods import Ctx, cases_for, run_case
from tests.kubernetes.fake_apiserver import FakeApiServer
from tests.kubernetes.k8s_helpers import core_errors, crd_errors
from tests.package_index import PROBE_VALUE, package_index

NAME = "fine-tune-bert"
MASTER, WORKER = f"{NAME}-master-0", f"{NAME}-worker-0"
SUCCEEDED = {
    "conditions": [
        {"type": "Created", "status": "True", "reason": "PyTorchJobCreated", "message": "created"},
        {"type": "Running", "status": "False", "reason": "PyTorchJobRunning", "message": "ran"},
        {
            "type": "Succeeded",
            "status": "True",
            "reason": "PyTorchJobSucceeded",
            "message": "PyTorchJob fine-tune-bert is successfully completed.",
            "lastTransitionTime": "2026-01-01T00:09:00Z",
        },
    ],
    "replicaStatuses": {"Master": {"succeeded": 1}, "Worker": {"succeeded": 1}},
    "startTime": "2026-01-01T00:01:00Z",
    "completionTime": "2026-01-01T00:09:00Z",
}


def finished_job(apiserver: FakeApiServer, client: Any, params: dict[str, Any]) -> None:
    """The seed's job with 2 workers, Succeeded: a master (init container and trainer) and a
    worker pod with logs, and events of the job and the master."""
    client.train(**{**params, "num_workers": 2})
    apiserver.set_status("pytorchjobs", NAME, SUCCEEDED)
    job = apiserver.objects[("pytorchjobs", "default", NAME)]
    apiserver.add_pod(MASTER, job, {"storage-initializer": "terminated"}, {"pytorch": "terminated"})
    apiserver.add_pod(WORKER, job, {}, {"pytorch": "terminated"})
    apiserver.write_log(MASTER, "storage-initializer", "model fetched", "dataset fetched")
    apiserver.write_log(MASTER, "pytorch", "rank 0 step 1", "rank 0 done")
    apiserver.write_log(WORKER, "pytorch", "rank 1 done")
    apiserver.add_event("PyTorchJob", NAME, f"Created pod: {MASTER}", "2026-01-01T00:01:00Z")
    apiserver.add_event("Pod", MASTER, "Started container pytorch", "2026-01-01T00:02:00Z")
    apiserver.add_event("Pod", MASTER, "an event of an earlier pod", "2025-12-31T00:00:00Z")


@pytest.fixture
def ctx(apiserver: FakeApiServer, make_client: Any, seed_params: dict[str, Any]) -> Ctx:
    client = make_client()
    finished_job(apiserver, client, seed_params)
    return Ctx("kubernetes", client, NAME, "default", MASTER, WORKER, seed_params, apiserver)


@pytest.mark.parametrize("case", cases_for("kubernetes"))
def test_kubeflow_method(case: Any, ctx: Ctx) -> None:
    run_case(case, ctx)


def test_the_notebook_sees_the_storage_initializer_and_the_volumes(ctx: Ctx) -> None:
    # Fine-Tune-BERT-LLM.ipynb, "Get the PyTorchJob containers", prefix swapped.
    pytorchjob = ctx.client.get_job(NAME)
    master = pytorchjob.spec.pytorch_replica_specs["Master"].template.spec
    assert [c.name for c in master.init_containers] == ["storage-initializer"]
    assert [v.name for v in master.volumes] == ["workspace", "job-spec"]
    assert pytorchjob.status.conditions[-1].type == "Succeeded"
    assert (
        pytorchjob.metadata.annotations["kubetune.io/output-dir"]
        == "/workspace/outputs/test_trainer"
    )
    # to_dict() works on the whole object, as on Kubeflow's own objects.
    assert pytorchjob.to_dict()["spec"]["pytorch_replica_specs"]["Master"]["replicas"] == 1


def test_logs_by_pod_with_the_init_container_first_and_follow_prints(ctx: Ctx) -> None:
    logs, events = ctx.client.get_job_logs(NAME, is_master=False, verbose=True)
    assert logs == {
        MASTER: "model fetched\ndataset fetched\nrank 0 step 1\nrank 0 done\n",
        WORKER: "rank 1 done\n",
    }
    assert events == {
        f"pytorchjob/{NAME}": [f"2026-01-01 00:01:00 Created pod: {MASTER}"],
        f"pod/{MASTER}": ["2026-01-01 00:02:00 Started container pytorch"],
    }
    for pod in (MASTER, WORKER):
        ctx.server.close_log(pod, "pytorch")
    ctx.server.close_log(MASTER, "storage-initializer")
    printed = io.StringIO()
    with redirect_stdout(printed):
        followed, _ = ctx.client.get_job_logs(NAME, follow=True)
    assert followed == {MASTER: logs[MASTER]}
    assert printed.getvalue().splitlines() == [
        f"[Pod {MASTER}]: {line}" for line in logs[MASTER].splitlines()
    ]


def test_wait_logs_a_status_line_per_poll_at_debug_level(
    ctx: Ctx, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="kubetune.training.api.training_client"):
        ctx.client.wait_for_job_conditions(NAME, polling_interval=0.01)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].split() == ["NAME", "STATE", "TIME"]
    assert lines[1].split()[:2] == [NAME, "Succeeded"] and "2026-01-01" in lines[1]


def test_waiting_for_running_returns_a_job_that_has_run_already(ctx: Ctx) -> None:
    # Kubeflow would poll until wait_timeout: Running is False once the job has Succeeded.
    job = ctx.client.wait_for_job_conditions(
        NAME, expected_conditions={"Running"}, wait_timeout=5, polling_interval=0.1
    )
    assert not ctx.client.is_job_running(job=job) and ctx.client.is_job_succeeded(job=job)
    with pytest.raises(TimeoutError):  # Restarting it never was
        ctx.client.wait_for_job_conditions(
            NAME, expected_conditions={"Restarting"}, wait_timeout=0.2, polling_interval=0.1
        )


def test_timeout_is_the_seconds_one_request_may_take(ctx: Ctx) -> None:
    ctx.server.delay("GET", "pytorchjobs", 1.0)
    with pytest.raises(
        TimeoutError, match=f"get PyTorchJob default/{NAME}.*did not answer in time"
    ):
        ctx.client.get_job(NAME, timeout=0.2)
    assert ctx.client.get_job(NAME, timeout=5).metadata.name == NAME


def test_env_refs_and_resource_requirements_validate_against_the_crd(
    make_client: Any, seed_params: dict[str, Any], crd_validators: dict[str, Any]
) -> None:
    from kubernetes.client import (
        V1ConfigMapEnvSource,
        V1EnvFromSource,
        V1EnvVar,
        V1EnvVarSource,
        V1ResourceRequirements,
        V1SecretKeySelector,
    )

    secret_ref = V1EnvVarSource(secret_key_ref=V1SecretKeySelector(name="hub", key="token"))
    params = {k: v for k, v in seed_params.items() if k != "resources_per_worker"}
    objects = make_client().train(
        **params,
        env_vars=[V1EnvVar(name="A", value="1"), {"name": "B", "value": "2"}],
        init_env_vars=[
            V1EnvVar(name="HF_TOKEN", value_from=secret_ref),
            V1EnvFromSource(config_map_ref=V1ConfigMapEnvSource(name="proxy")),
        ],
        resources_per_worker=V1ResourceRequirements(
            requests={"cpu": "4", "nvidia.com/gpu": "1"}, limits={"nvidia.com/gpu": "1"}
        ),
        dry_run=True,
    )
    job = objects[-1]
    assert crd_errors(crd_validators, job) == []
    master = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]
    assert core_errors(master) is None
    (trainer,) = master["spec"]["containers"]
    (init,) = master["spec"]["initContainers"]
    assert {"name": "A", "value": "1"} in trainer["env"] and {"name": "B", "value": "2"} in trainer[
        "env"
    ]
    assert trainer["resources"] == {
        "requests": {"cpu": "4", "nvidia.com/gpu": "1"},
        "limits": {"nvidia.com/gpu": "1"},
    }
    assert {
        "name": "HF_TOKEN",
        "valueFrom": {"secretKeyRef": {"name": "hub", "key": "token"}},
    } in init["env"]
    assert init["envFrom"] == [{"configMapRef": {"name": "proxy"}}]
    # The GPU of a V1ResourceRequirements chooses the CUDA trainer image, as a dict's does.
    assert trainer["image"].endswith("-cuda")


# --- function jobs -----------------------------------------------------------------------------


def reports(parameters):
    import json
    import os

    import kubetune_probe

    keys = ("RANK", "WORLD_SIZE")
    shown = {
        "probe": kubetune_probe.VALUE,
        "text": parameters["text"],
        "env": {k: os.environ.get(k) for k in keys},
    }
    print("report " + json.dumps(shown))


def test_a_function_job_is_kubeflows_pytorchjob_and_its_script_runs(
    make_client: Any, crd_validators: dict[str, Any], tmp_path: Path
) -> None:
    text = "it's $HOME `date` \\n 'quoted' \"double\""
    with package_index(tmp_path / "index") as index:
        (job,) = make_client().create_job(
            name="reports",
            train_func=reports,
            parameters={"text": text},
            packages_to_install=["kubetune-probe==1.0"],
            pip_index_url=index,
            env_vars={"EXTRA": "1"},
            resources_per_worker={"cpu": 1},
            dry_run=True,
        )
        assert crd_errors(crd_validators, job) == []
        replicas = job["spec"]["pytorchReplicaSpecs"]
        assert list(replicas) == ["Master"]  # one worker: a Master alone, as Kubeflow makes it
        template = replicas["Master"]["template"]
        assert core_errors(template) is None
        assert template["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
        (container,) = template["spec"]["containers"]
        assert container["name"] == "pytorch" and container["command"] == ["bash", "-c"]
        assert "initContainers" not in template["spec"] and "volumes" not in template["spec"]
        assert {"name": "EXTRA", "value": "1"} in container["env"]
        (script,) = container["args"]
        assert "python -u " in script  # one worker, no num_procs_per_worker: python, as Kubeflow

        # Run the container's script here, as the pod would (its pip installs into a folder).
        target = tmp_path / "site"
        env = {
            **os.environ,
            "PIP_TARGET": str(target),
            "PYTHONPATH": str(target),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "RANK": "0",
            "WORLD_SIZE": "1",
        }
        ran = subprocess.run(
            ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120
        )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (line,) = [line for line in ran.stdout.splitlines() if line.startswith("report ")]
    import json

    shown = json.loads(line.removeprefix("report "))
    assert shown == {"probe": PROBE_VALUE, "text": text, "env": {"RANK": "0", "WORLD_SIZE": "1"}}


def test_function_jobs_with_several_workers_run_torchrun(
    make_client: Any, crd_validators: dict[str, Any]
) -> None:
    (job,) = make_client().create_job(
        name="reports", train_func=reports, parameters={"text": "x"}, num_workers=3, dry_run=True
    )
    assert crd_errors(crd_validators, job) == []
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert (replicas["Master"]["replicas"], replicas["Worker"]["replicas"]) == (1, 2)
    (script,) = replicas["Worker"]["template"]["spec"]["containers"][0]["args"]
    assert "exec torchrun " in script and "pip install" not in script


def test_create_job_of_a_trainjob_client_is_refused(make_client: Any) -> None:
    with pytest.raises(ValueError, match="api='pytorchjob'"):
        make_client(api="trainjob").create_job(name="x", train_func=reports, parameters={})


# --- Kubeflow's TinyLlama notebook (train_api_hf_dataset.ipynb) ---------------------------------


def tinyllama_training_arguments(**extra: Any) -> Any:
    from transformers import TrainingArguments

    from kubetune.storage_initializer.constants import INIT_CONTAINER_MOUNT_PATH

    return TrainingArguments(
        num_train_epochs=1,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=1,
        gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        warmup_steps=0.02,
        learning_rate=1,
        lr_scheduler_type="cosine",
        bf16=False,
        logging_steps=0.01,
        output_dir=INIT_CONTAINER_MOUNT_PATH,
        optim="sgd",
        save_steps=0.01,
        save_total_limit=3,
        disable_tqdm=False,
        resume_from_checkpoint=True,
        remove_unused_columns=True,
        **extra,
    )


def test_ddp_backend_nccl_fails_in_a_process_torchrun_did_not_start() -> None:
    # What docs/migrating-from-kubeflow.md says of the TinyLlama notebook's ddp_backend="nccl".
    import torch

    if torch.cuda.is_available():
        pytest.skip("checked on CPU-only machines, as the docs say")
    from accelerate.state import PartialState

    try:
        with pytest.raises(ValueError, match="Default process group has not been initialized"):
            tinyllama_training_arguments(ddp_backend="nccl")
    finally:
        PartialState._reset_state()  # the failed set-up leaves accelerate's shared state half made


def test_the_tinyllama_notebook_runs_without_ddp_backend(
    apiserver: FakeApiServer, make_client: Any, crd_validators: dict[str, Any]
) -> None:
    import transformers
    from peft import LoraConfig

    from kubetune.storage_initializer.hugging_face import (
        HuggingFaceDatasetParams,
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )
    from kubetune.training import constants

    client = make_client()
    client.train(
        name="huggingface-test",
        num_workers=2,
        num_procs_per_worker=1,
        model_provider_parameters=HuggingFaceModelParams(
            model_uri="hf://TinyLlama/TinyLlama-1.1B-Chat-v1.0",
            transformer_type=transformers.AutoModelForCausalLM,
        ),
        dataset_provider_parameters=HuggingFaceDatasetParams(repo_id="imdatta0/ultrachat_1k"),
        trainer_parameters=HuggingFaceTrainerParams(
            lora_config=LoraConfig(
                r=8, lora_alpha=8, lora_dropout=0.1, bias="none", task_type="CAUSAL_LM"
            ),
            training_parameters=tinyllama_training_arguments(),
        ),
        resources_per_worker={"gpu": 1, "cpu": 8, "memory": "8Gi"},
    )
    job = apiserver.objects[("pytorchjobs", "default", "huggingface-test")]
    assert crd_errors(crd_validators, job) == []
    # output_dir=INIT_CONTAINER_MOUNT_PATH: the workspace's outputs/, next to model/ and dataset/
    assert job["metadata"]["annotations"]["kubetune.io/output-dir"] == "/workspace/outputs"
    # The notebook's last cell: no pod yet, so no logs.
    assert client.get_job_logs(name="huggingface-test", job_kind=constants.PYTORCHJOB_KIND) == (
        {},
        {},
    )
