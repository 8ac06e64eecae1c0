"""Rendered objects (train(..., dry_run=True)) against the real CRD schemas and the Kubernetes
core schema, and what each object must say: commands, replicas, resources, env, secrets."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetune import __version__
from kubetune.contract.secrets import (
    DATASET_TOKEN_ENV,
    MODEL_TOKEN_ENV,
    S3_ACCESS_KEY_ENV,
    S3_SECRET_KEY_ENV,
)
from kubetune.contract.spec import DatasetMixSpec, JobSpec
from kubetune.training import TrainingClient
from kubetune.training.backends.kubernetes import manifests, render_yaml
from kubetune.training.backends.kubernetes.backend import KubernetesBackend
from tests.kubernetes.k8s_helpers import (
    DATASET_TOKEN,
    MODEL_TOKEN,
    S3_ACCESS,
    S3_SECRET,
    by_kind,
    core_errors,
    crd_errors,
    render,
)

APIS = ("pytorchjob", "trainjob")
JOB_KIND = {"pytorchjob": "PyTorchJob", "trainjob": "TrainJob"}


def pod_templates(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t: r["template"] for t, r in job["spec"]["pytorchReplicaSpecs"].items()}


# --- schemas -----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("num_workers", [1, 2, 4])
def test_rendered_jobs_validate_against_the_crd_schemas(
    api: str, num_workers: int, seed_params: dict[str, Any], crd_validators: dict[str, Any]
) -> None:
    objects = render(api, seed_params, num_workers=num_workers)
    job = objects[-1]
    assert job["kind"] == JOB_KIND[api]
    assert crd_errors(crd_validators, job) == []
    for obj in objects[:-1]:
        assert core_errors(obj) is None, obj["kind"]
    if api == "pytorchjob":  # the pod templates are core PodTemplateSpecs too
        for template in pod_templates(job).values():
            assert core_errors(template) is None


def test_seed_example_with_secrets_validates(
    secret_params: dict[str, Any], crd_validators: dict[str, Any]
) -> None:
    for api in APIS:
        objects = render(api, secret_params)
        assert [o["kind"] for o in objects] == [
            "Secret",
            "ConfigMap",
            "PersistentVolumeClaim",
            JOB_KIND[api],
        ]
        assert crd_errors(crd_validators, objects[-1]) == []
        for obj in objects[:-1]:
            assert core_errors(obj) is None, obj["kind"]


def test_the_schema_checks_can_fail(
    seed_params: dict[str, Any], crd_validators: dict[str, Any]
) -> None:
    objects = by_kind(render("pytorchjob", seed_params))
    job = copy.deepcopy(objects["PyTorchJob"])
    job["spec"]["pytorchReplicaSpecs"]["Worker"]["replicas"] = "three"
    job["spec"]["runPolicy"]["backofLimit"] = 3  # a typo: pruned by the server, an error here
    errors = crd_errors(crd_validators, job)
    assert any("replicas" in e for e in errors) and any("backofLimit" in e for e in errors)

    trainjob = copy.deepcopy(by_kind(render("trainjob", seed_params))["TrainJob"])
    trainjob["spec"]["trainer"]["numNodes"] = "4"
    assert any("numNodes" in e for e in crd_errors(crd_validators, trainjob))

    pvc = copy.deepcopy(objects["PersistentVolumeClaim"])
    pvc["spec"]["accessModes"] = "ReadWriteMany"
    assert core_errors(pvc) is not None
    configmap = copy.deepcopy(objects["ConfigMap"])
    configmap["metadata"]["lables"] = {}
    assert core_errors(configmap) is not None
    template = copy.deepcopy(pod_templates(objects["PyTorchJob"])["Master"])
    del template["spec"]["containers"][0]["name"]
    assert core_errors(template) is not None


def test_trainjob_patches_target_the_torch_distributed_runtime(
    seed_params: dict[str, Any], shared_dir: Path
) -> None:
    runtime = yaml.safe_load(
        (shared_dir / "k8s" / "clustertrainingruntime_torch_distributed.yaml").read_text()
    )
    trainjob = by_kind(render("trainjob", seed_params))["TrainJob"]
    assert trainjob["spec"]["runtimeRef"]["name"] == runtime["metadata"]["name"]
    assert trainjob["spec"]["runtimeRef"]["kind"] == runtime["kind"]
    runtime_jobs = {
        j["name"]: j["template"]["spec"]["template"]["spec"]
        for j in runtime["spec"]["template"]["spec"]["replicatedJobs"]
    }
    (patch,) = trainjob["spec"]["runtimePatches"]
    for replicated in patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]:
        assert replicated["name"] in runtime_jobs
        runtime_containers = {c["name"] for c in runtime_jobs[replicated["name"]]["containers"]}
        pod = replicated["template"]["spec"]["template"]["spec"]
        assert {c["name"] for c in pod["containers"]} <= runtime_containers
        assert {v["name"] for v in pod["volumes"]} == {"workspace", "job-spec"}
    trainer = trainjob["spec"]["trainer"]
    assert trainer["numNodes"] == 4 and trainer["numProcPerNode"] == 2
    assert {"name": "KUBETUNE_PROGRESS_LOG", "value": "1"} in trainer["env"]
    assert trainer["resourcesPerNode"]["limits"] == {
        "nvidia.com/gpu": "2",
        "cpu": "5",
        "memory": "10G",
    }
    script = trainer["command"][-1]
    assert "python -m kubetune.storage_initializer --spec /etc/kubetune/spec.json" in script
    assert "exec torchrun -m kubetune.runtime --spec /etc/kubetune/spec.json" in script


# --- what the PyTorchJob says ------------------------------------------------------------------


@pytest.mark.parametrize("num_workers", [1, 2, 4])
def test_pytorchjob_replicas_commands_and_mounts(
    num_workers: int, seed_params: dict[str, Any]
) -> None:
    objects = by_kind(render("pytorchjob", seed_params, num_workers=num_workers))
    job = objects["PyTorchJob"]
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1
    if num_workers == 1:
        assert "Worker" not in replicas
    else:
        assert replicas["Worker"]["replicas"] == num_workers - 1
    assert job["spec"]["nprocPerNode"] == "2"
    assert job["spec"]["runPolicy"]["backoffLimit"] == 3
    for replica_type, replica in replicas.items():
        assert replica["restartPolicy"] == "OnFailure"
        pod = replica["template"]["spec"]
        (container,) = pod["containers"]
        assert container["name"] == "pytorch"
        assert container["command"] + container["args"] == [
            "torchrun",
            "-m",
            "kubetune.runtime",
            "--spec",
            "/etc/kubetune/spec.json",
            "--workspace",
            "/workspace",
        ]
        assert container["resources"]["requests"] == {
            "nvidia.com/gpu": "2",
            "cpu": "5",
            "memory": "10G",
        }
        assert container["resources"]["limits"] == container["resources"]["requests"]
        claim = {v["name"]: v for v in pod["volumes"]}["workspace"]["persistentVolumeClaim"]
        assert claim["claimName"] == objects["PersistentVolumeClaim"]["metadata"]["name"]
        assert {m["mountPath"] for m in container["volumeMounts"]} == {
            "/workspace",
            "/etc/kubetune",
        }
        if replica_type == "Master":
            (init,) = pod["initContainers"]
            assert init["command"] + init["args"] == [
                "python",
                "-m",
                "kubetune.storage_initializer",
                "--spec",
                "/etc/kubetune/spec.json",
                "--workspace",
                "/workspace",
            ]
            assert {m["mountPath"] for m in init["volumeMounts"]} == {"/workspace", "/etc/kubetune"}
        else:
            assert "initContainers" not in pod
    pvc = objects["PersistentVolumeClaim"]["spec"]
    assert pvc["accessModes"] == (["ReadWriteOnce"] if num_workers == 1 else ["ReadWriteMany"])
    spec = json.loads(objects["ConfigMap"]["data"]["spec.json"])
    assert spec["num_workers"] == num_workers and spec["name"] == "fine-tune-bert"


def test_env_labels_annotations_queue_and_storage_reach_the_objects(
    seed_params: dict[str, Any],
) -> None:
    objects = by_kind(
        render(
            "pytorchjob",
            seed_params,
            env_vars={"WANDB_MODE": "offline"},
            init_env_vars={"HF_ENDPOINT": "https://mirror.example.com"},
            labels={"team": "nlp"},
            annotations={"example.com/owner": "alice"},
            queue_name="gpu-queue",
            storage_config={
                "size": "50Gi",
                "storage_class": "nfs",
                "access_modes": ["ReadWriteMany"],
            },
            max_restarts=5,
            resources_per_worker={"cpu": 2, "memory": "4Gi"},
        )
    )
    job = objects["PyTorchJob"]
    assert job["metadata"]["labels"]["team"] == "nlp"
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu-queue"
    assert job["metadata"]["annotations"]["example.com/owner"] == "alice"
    assert (
        job["metadata"]["annotations"]["kubetune.io/output-dir"]
        == "/workspace/outputs/test_trainer"
    )
    assert job["spec"]["runPolicy"]["backoffLimit"] == 5
    for template in pod_templates(job).values():
        assert template["metadata"]["labels"]["team"] == "nlp"
        assert template["metadata"]["annotations"]["example.com/owner"] == "alice"
        env = {e["name"]: e.get("value") for e in template["spec"]["containers"][0]["env"]}
        assert env["WANDB_MODE"] == "offline" and "HF_ENDPOINT" not in env
        assert env["KUBETUNE_PROGRESS_LOG"] == "1"  # progress.json stays in the volume
        resources = template["spec"]["containers"][0]["resources"]
        assert resources["limits"] == {"cpu": "2", "memory": "4Gi"}
    init_env = {
        e["name"]: e.get("value")
        for e in pod_templates(job)["Master"]["spec"]["initContainers"][0]["env"]
    }
    assert init_env == {"HF_ENDPOINT": "https://mirror.example.com"}
    pvc = objects["PersistentVolumeClaim"]["spec"]
    assert pvc == {
        "accessModes": ["ReadWriteMany"],
        "resources": {"requests": {"storage": "50Gi"}},
        "storageClassName": "nfs",
    }
    # CPU-only jobs get the CPU trainer image
    assert pod_templates(job)["Master"]["spec"]["containers"][0]["image"].endswith(
        f"/trainer:{__version__}"
    )


# --- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_no_secret_value_outside_the_secret_data(api: str, secret_params: dict[str, Any]) -> None:
    objects = render(api, secret_params)
    secret = objects[0]
    assert secret["kind"] == "Secret"
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == {
        MODEL_TOKEN_ENV: MODEL_TOKEN,
        S3_ACCESS_KEY_ENV: S3_ACCESS,
        S3_SECRET_KEY_ENV: S3_SECRET,
    }
    outside = copy.deepcopy(objects)
    del outside[0]["data"]
    text = json.dumps(outside) + render_yaml(outside)
    for value in (MODEL_TOKEN, S3_ACCESS, S3_SECRET, DATASET_TOKEN):
        for form in (value, base64.b64encode(value.encode()).decode()):
            assert form not in text
    # the initializer reads each secret through a secretKeyRef to the job's Secret
    job_text = json.dumps(objects[-1])
    for key in decoded:
        assert (
            json.dumps({"secretKeyRef": {"name": secret["metadata"]["name"], "key": key}})
            in job_text
        )


def test_dataset_token_goes_to_the_secret(seed_params: dict[str, Any]) -> None:
    from kubetune.storage_initializer.hugging_face import HuggingFaceDatasetParams

    objects = render(
        "pytorchjob",
        seed_params,
        dataset_provider_parameters=HuggingFaceDatasetParams(
            repo_id="org/private", access_token=DATASET_TOKEN
        ),
    )
    assert list(objects[0]["data"]) == [DATASET_TOKEN_ENV]
    assert DATASET_TOKEN not in json.dumps(objects[1:])


def test_without_secrets_there_is_no_secret(seed_params: dict[str, Any]) -> None:
    objects = render("pytorchjob", seed_params)
    assert [o["kind"] for o in objects] == ["ConfigMap", "PersistentVolumeClaim", "PyTorchJob"]
    assert "secretKeyRef" not in json.dumps(objects)


# --- images, YAML, no cluster needed -----------------------------------------------------------


def test_images_are_versioned_and_read_from_the_environment_at_render_time(
    seed_params: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STORAGE_INITIALIZER_IMAGE", raising=False)
    monkeypatch.delenv("TRAINER_TRANSFORMER_IMAGE", raising=False)
    client_made_before = KubernetesBackend(api="pytorchjob")
    template = pod_templates(by_kind(render("pytorchjob", seed_params))["PyTorchJob"])["Master"]
    assert template["spec"]["containers"][0]["image"].endswith(f"/trainer:{__version__}-cuda")
    assert template["spec"]["initContainers"][0]["image"].endswith(
        f"/storage-initializer:{__version__}"
    )
    monkeypatch.setenv("STORAGE_INITIALIZER_IMAGE", "registry.example.com/init:1")
    monkeypatch.setenv("TRAINER_TRANSFORMER_IMAGE", "registry.example.com/trainer:2")
    from kubetune.params.job import build_job_spec

    spec, secrets = build_job_spec(**seed_params)
    for api in APIS:
        client_made_before.api = api
        text = json.dumps(client_made_before.render(spec, secrets))
        assert "registry.example.com/trainer:2" in text
        assert ":latest" not in text
    job = client_made_before.render(spec, secrets)[-1]
    assert job["spec"]["trainer"]["image"] == "registry.example.com/trainer:2"
    client_made_before.api = "pytorchjob"
    master = pod_templates(client_made_before.render(spec, secrets)[-1])["Master"]["spec"]
    assert master["initContainers"][0]["image"] == "registry.example.com/init:1"


def test_render_yaml_round_trips(seed_params: dict[str, Any]) -> None:
    objects = render("pytorchjob", seed_params)
    text = render_yaml(objects)
    assert list(yaml.safe_load_all(text)) == objects
    assert text.count("\n---\n") == len(objects) - 1


def test_render_needs_no_kubeconfig_but_api_calls_say_what_is_missing(
    seed_params: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    from kubetune.training import TrainingClient

    client = TrainingClient(backend="kubernetes")
    assert client.namespace == "default"
    objects = client.train(**seed_params, dry_run=True)
    assert objects[-1]["kind"] == "PyTorchJob"
    with pytest.raises(RuntimeError, match=r"no Kubernetes configuration found.*KUBECONFIG"):
        client.get_job("fine-tune-bert")


def test_namespace_comes_from_the_kubeconfig_context(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "a", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}},
                    {"name": "b", "context": {"cluster": "c", "user": "u", "namespace": "team-b"}},
                ],
                "current-context": "a",
            }
        )
    )
    assert KubernetesBackend(config_file=str(kubeconfig)).namespace == "team-a"
    assert KubernetesBackend(config_file=str(kubeconfig), context="b").namespace == "team-b"
    assert KubernetesBackend(config_file=str(kubeconfig), namespace="x").namespace == "x"


def test_unknown_api_is_refused() -> None:
    with pytest.raises(ValueError, match=r"api='tfjob': allowed: pytorchjob, trainjob"):
        KubernetesBackend(api="tfjob")


def test_builders_are_pure(seed_params: dict[str, Any]) -> None:
    from kubetune.params.job import build_job_spec
    from kubetune.training.images import Images

    spec, secrets = build_job_spec(**seed_params)
    images = Images(initializer="i:1", trainer="t:1")
    first = manifests.build_objects(spec, secrets, images, "pytorchjob")
    assert manifests.build_objects(spec, secrets, images, "pytorchjob") == first
    assert spec.to_json() == first[0]["data"]["spec.json"]


@pytest.mark.parametrize(("rank", "runs_initializer"), [("0", True), ("1", False)])
def test_trainjob_node_script_runs_initializer_on_node_0_then_torchrun(
    rank: str, runs_initializer: bool, seed_params: dict[str, Any], tmp_path: Path
) -> None:
    """Runs the TrainJob's node command under sh with stub `python`/`torchrun` that record
    their arguments and the initializer's environment (values with quotes and `$`)."""
    import subprocess

    tricky = 'it\'s $HOME "quoted"'
    trainjob = by_kind(render("trainjob", seed_params, init_env_vars={"TRICKY": tricky}))[
        "TrainJob"
    ]
    shell, flag, script = trainjob["spec"]["trainer"]["command"]
    record = tmp_path / "calls.txt"
    for program in ("python", "torchrun"):
        stub = tmp_path / program
        stub.write_text(f'#!/bin/sh\necho "{program} $* TRICKY=${{TRICKY:-unset}}" >> {record}\n')
        stub.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "PET_NODE_RANK": rank, "HOME": "/home/x"}
    subprocess.run([shell, flag, script], env=env, check=True, timeout=30)
    calls = record.read_text().splitlines()
    torchrun = "torchrun -m kubetune.runtime --spec /etc/kubetune/spec.json --workspace /workspace TRICKY=unset"
    initializer = (
        "python -m kubetune.storage_initializer --spec /etc/kubetune/spec.json "
        f"--workspace /workspace TRICKY={tricky}"
    )
    assert calls == ([initializer, torchrun] if runs_initializer else [torchrun])


@pytest.mark.parametrize("api", APIS)
def test_a_dataset_mix_reaches_the_initializer_whole(
    api: str, secret_params: dict[str, Any], crd_validators: dict[str, Any]
) -> None:
    """Every dataset of a mix in the spec the init container reads, each dataset's credentials
    through the Secret, a local part warned about; the job still validates."""
    from kubetune import MixedDataset
    from kubetune.storage_initializer.hugging_face import HuggingFaceDatasetParams
    from kubetune.storage_initializer.local import LocalDatasetParams

    parts = [
        MixedDataset(
            HuggingFaceDatasetParams(repo_id="org/private", access_token=DATASET_TOKEN), weight=3
        ),
        MixedDataset(secret_params["dataset_provider_parameters"], weight=1),
        MixedDataset(LocalDatasetParams(path="/data/extra.jsonl"), weight=1, num_samples=50),
    ]
    client = TrainingClient(backend="kubernetes", api=api)
    objects = client.train(**{**secret_params, "dataset_provider_parameters": parts}, dry_run=True)
    kinds = by_kind(objects)
    assert crd_errors(crd_validators, objects[-1]) == []
    spec = JobSpec.from_json(kinds["ConfigMap"]["data"][manifests.SPEC_KEY])
    assert isinstance(spec.dataset, DatasetMixSpec)
    assert [p.source.describe() for p in spec.dataset.parts] == [
        "dataset hf://org/private",
        "dataset s3://datasets/yelp/train.csv",
        "dataset /data/extra.jsonl",
    ]
    assert sorted(kinds["Secret"]["data"]) == sorted(
        [MODEL_TOKEN_ENV, DATASET_TOKEN_ENV, S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV]
    )
    # the initializer's container (PyTorchJob: the master's init container) reads each of them
    initializer = objects[-1]
    if api == "pytorchjob":
        initializer = pod_templates(objects[-1])["Master"]["spec"]["initContainers"][0]
    secret_name = manifests.secret_name("fine-tune-bert")
    for key in (DATASET_TOKEN_ENV, S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV):
        reference = {"secretKeyRef": {"name": secret_name, "key": key}}
        assert json.dumps(reference) in json.dumps(initializer), key
    for value in (DATASET_TOKEN, S3_ACCESS, S3_SECRET):
        assert value not in json.dumps(objects[1:])
    (warning,) = manifests.paths_pods_cannot_read(spec)[-1:]
    assert "local.path='/data/extra.jsonl' is on this machine" in warning
