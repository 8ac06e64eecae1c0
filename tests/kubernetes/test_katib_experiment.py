"""Hyperparameter search on Kubernetes: the Katib Experiment kubetune renders for Katib's LLM
example (its trial template is the PyTorchJob of the same train() call, valid against the
PyTorchJob CRD once Katib substitutes the values), the KatibClient over the fake API server, and
the trial entry point that runs in the trial's pods."""

from __future__ import annotations

import base64
import copy
import json
import re
import subprocess
import sys
from typing import Any

import pytest

from kubetune.katib import KatibClient, TrainerResources, search
from kubetune.katib.api.katib_client import to_model
from kubetune.katib.backends.kubernetes import manifests
from kubetune.katib.metrics import parse_lines
from kubetune.training import TrainingClient
from tests.kubernetes.fake_apiserver import FakeApiServer
from tests.kubernetes.k8s_helpers import MODEL_TOKEN, S3_SECRET, crd_errors

SAMPLE = {"learning_rate": "3.1e-05", "r": "16", "kubetuneTrialName": "llama-x7k2m9pq"}


def llm_example(**overrides: Any) -> dict[str, Any]:
    """Katib's documented LLM example, prefix swapped (the hub ids as on Katib's page, a token
    for the model), with 2 workers per trial."""
    import transformers
    from peft import LoraConfig

    from kubetune.storage_initializer.hugging_face import (
        HuggingFaceDatasetParams,
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )

    return {
        "name": "llama",
        "model_provider_parameters": HuggingFaceModelParams(
            model_uri="hf://meta-llama/Llama-3.2-1B",
            transformer_type=transformers.AutoModelForSequenceClassification,
            access_token=MODEL_TOKEN,
        ),
        "dataset_provider_parameters": HuggingFaceDatasetParams(
            repo_id="imdb", split="train[:1000]"
        ),
        "trainer_parameters": HuggingFaceTrainerParams(
            training_parameters=transformers.TrainingArguments(
                output_dir="results",
                save_strategy="no",
                learning_rate=search.double(min=1e-05, max=5e-05),
                num_train_epochs=3,
            ),
            lora_config=LoraConfig(
                r=search.int(min=8, max=32), lora_alpha=8, lora_dropout=0.1, bias="none"
            ),
        ),
        "objective_metric_name": "train_loss",
        "objective_type": "minimize",
        "algorithm_name": "random",
        "max_trial_count": 10,
        "parallel_trial_count": 2,
        "resources_per_trial": TrainerResources(
            num_workers=2,
            num_procs_per_worker=1,
            resources_per_worker={"cpu": "4", "memory": "10G"},
        ),
        **overrides,
    }


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = KatibClient(backend="kubernetes", namespace="kubeflow").tune(
        **llm_example(), dry_run=True
    )
    return objects


def placeholders(obj: Any) -> set[str]:
    return set(re.findall(r"\$\{trialParameters\.(.+?)\}", json.dumps(obj)))


def test_the_experiment_and_the_objects_its_trials_share(rendered):
    assert [o["kind"] for o in rendered] == [
        "Secret",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Experiment",
    ]
    experiment = rendered[-1]
    model = to_model(experiment, "V1beta1Experiment")  # Katib's own model class holds it
    spec = model.spec
    assert (model.metadata.name, model.metadata.namespace) == ("llama", "kubeflow")
    assert (spec.objective.type, spec.objective.objective_metric_name) == ("minimize", "train_loss")
    assert spec.algorithm.algorithm_name == "random"
    assert (spec.max_trial_count, spec.parallel_trial_count) == (10, 2)
    assert [
        (p.name, p.parameter_type, p.feasible_space.min, p.feasible_space.max)
        for p in spec.parameters
    ] == [
        ("learning_rate", "double", "1e-05", "5e-05"),
        ("r", "int", "8", "32"),
    ]
    template = spec.trial_template
    assert template.primary_container_name == "pytorch"
    assert template.primary_pod_labels == {"training.kubeflow.org/job-role": "master"}
    assert (
        template.success_condition == 'status.conditions.#(type=="Succeeded")#|#(status=="True")#'
    )
    assert template.failure_condition == 'status.conditions.#(type=="Failed")#|#(status=="True")#'
    assert spec.metrics_collector_spec.collector.kind == "StdOut"
    # Katib's webhook: every placeholder is a trial parameter, every trial parameter is used,
    # and each refers to a search parameter or the trial's own name.
    names = {p.name for p in template.trial_parameters}
    assert placeholders(experiment["spec"]["trialTemplate"]["trialSpec"]) == names
    references = {p.reference for p in template.trial_parameters}
    assert references == {"learning_rate", "r", "${trialSpec.Name}"}
    # The shared objects are named after the experiment, the PVC readable by parallel trials.
    _, configmap, pvc = rendered[:3]
    assert [o["metadata"]["name"] for o in rendered[:3]] == [
        "llama-secrets",
        "llama-spec",
        "llama-workspace",
    ]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    shared = json.loads(configmap["data"]["spec.json"])
    assert "learning_rate" not in shared["trainer"]["training_arguments"]
    assert "r" not in shared["trainer"]["lora_config"]
    assert shared["trainer"]["training_arguments"]["save_strategy"] == "no"


def test_the_trial_template_is_the_pytorchjob_of_the_same_train_call(rendered, crd_validators):
    import transformers
    from peft import LoraConfig

    from kubetune.storage_initializer.hugging_face import HuggingFaceTrainerParams

    trial = manifests.substitute(rendered[-1]["spec"]["trialTemplate"]["trialSpec"], SAMPLE)
    trial["metadata"]["name"] = SAMPLE["kubetuneTrialName"]  # Katib names the trial's job
    trial["metadata"]["namespace"] = "kubeflow"
    assert crd_errors(crd_validators, trial) == []

    example = llm_example()
    arguments = {
        k: example[k] for k in ("model_provider_parameters", "dataset_provider_parameters")
    }
    job_objects = TrainingClient(backend="kubernetes").train(
        name="llama",
        namespace="kubeflow",
        num_workers=2,
        num_procs_per_worker=1,
        resources_per_worker={"cpu": "4", "memory": "10G"},
        trainer_parameters=HuggingFaceTrainerParams(
            training_parameters=transformers.TrainingArguments(
                output_dir="results", save_strategy="no", learning_rate=3.1e-05, num_train_epochs=3
            ),
            lora_config=LoraConfig(r=16, lora_alpha=8, lora_dropout=0.1, bias="none"),
        ),
        storage_config={"access_modes": ["ReadWriteMany"]},
        dry_run=True,
        **arguments,
    )
    job = copy.deepcopy(job_objects[-1])
    # What the trial changes: its name and job label, its output folder (its own workspace in
    # the shared volume), and its containers' entry point with the trial's values.
    job["metadata"]["name"] = SAMPLE["kubetuneTrialName"]
    for labels in [job["metadata"]["labels"]] + [
        r["template"]["metadata"]["labels"] for r in job["spec"]["pytorchReplicaSpecs"].values()
    ]:
        labels["kubetune.io/job-name"] = SAMPLE["kubetuneTrialName"]
    job["metadata"]["annotations"]["kubetune.io/output-dir"] = (
        f"/workspace/trials/{SAMPLE['kubetuneTrialName']}/outputs/results"
    )
    for replica, template in zip(
        job["spec"]["pytorchReplicaSpecs"].values(),
        trial["spec"]["pytorchReplicaSpecs"].values(),
        strict=True,
    ):
        ours, theirs = (
            replica["template"]["spec"]["containers"][0],
            template["template"]["spec"]["containers"][0],
        )
        assert theirs["command"] == ["python", "-m", "kubetune.katib.trial"]
        assert theirs["args"] == [*ours["command"], *ours["args"]]
        assert theirs["args"][:3] == ["torchrun", "-m", "kubetune.runtime"]  # the runtime's name
        env = {e["name"]: e.get("value") for e in theirs["env"]}
        assert env["KUBETUNE_PARAMETER_learning_rate"] == "3.1e-05"
        assert env["KUBETUNE_PARAMETER_r"] == "16"
        assert env["KUBETUNE_TRIAL_NAME"] == SAMPLE["kubetuneTrialName"]
        assert theirs["env"][4:] == ours["env"]
        for key in ("command", "args", "env"):
            ours[key] = theirs[key]
    assert trial == job


def test_no_secret_outside_the_secret():
    objects = KatibClient(backend="kubernetes").tune(
        **llm_example(
            dataset_provider_parameters=_s3_dataset(),
            env_per_trial={"WANDB_MODE": "offline"},
        ),
        dry_run=True,
    )
    secret = objects[0]
    assert secret["kind"] == "Secret"
    assert base64.b64decode(secret["data"]["KUBETUNE_HF_MODEL_TOKEN"]).decode() == MODEL_TOKEN
    assert base64.b64decode(secret["data"]["KUBETUNE_S3_SECRET_KEY"]).decode() == S3_SECRET
    for obj in objects[1:]:
        text = json.dumps(obj)
        for value in (MODEL_TOKEN, S3_SECRET):
            assert value not in text and base64.b64encode(value.encode()).decode() not in text
    initializer = objects[-1]["spec"]["trialTemplate"]["trialSpec"]["spec"]["pytorchReplicaSpecs"][
        "Master"
    ]["template"]["spec"]["initContainers"][0]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for e in initializer["env"]
        if "valueFrom" in e
    }
    assert refs == {
        "KUBETUNE_HF_MODEL_TOKEN": "llama-secrets",
        "KUBETUNE_S3_ACCESS_KEY": "llama-secrets",
        "KUBETUNE_S3_SECRET_KEY": "llama-secrets",
    }


def _s3_dataset() -> Any:
    from kubetune.storage_initializer.s3 import S3DatasetParams
    from tests.kubernetes.k8s_helpers import S3_ACCESS

    return S3DatasetParams(
        endpoint_url="https://s3.example.com",
        bucket_name="datasets",
        file_key="imdb/train.csv",
        access_key=S3_ACCESS,
        secret_key=S3_SECRET,
    )


def test_every_container_command_survives_katibs_sh_c_wrapping(rendered):
    """Katib's StdOut collector joins the primary container's command and args with spaces into
    one `sh -c` line: each must be one plain shell word."""
    job = rendered[-1]["spec"]["trialTemplate"]["trialSpec"]
    for replica in job["spec"]["pytorchReplicaSpecs"].values():
        for container in replica["template"]["spec"]["containers"]:
            assert manifests.shell_words(container) == []


def test_the_collector_reads_what_the_trial_prints(rendered):
    filters = rendered[-1]["spec"]["metricsCollectorSpec"]["source"]["filter"]["metricsFormat"]
    printed = [
        "[rank0]:{'loss': 0.6931, 'grad_norm': 1.25, 'learning_rate': 3.1e-05, 'epoch': 0.5}",
        "[rank0]:{'train_runtime': 4.2, 'train_loss': 0.6917, 'epoch': 1.0}",
        "kubetune-metric train_loss=0.6917",
        "kubetune-metric eval_accuracy=0.75",
        "WORLD_SIZE=2 train_loss_scale=3",
    ]
    found = parse_lines(printed, ["train_loss", "eval_accuracy"], filters)
    assert [(m.name, m.value) for m in found] == [
        ("train_loss", "0.6917"),
        ("train_loss", "0.6917"),
        ("eval_accuracy", "0.75"),
    ]
    for pattern in filters:  # Katib's rule: two top-level groups, name and value
        assert re.compile(pattern).groups >= 2


def objective(parameters):
    print(f"result={4 * int(parameters['a']) - float(parameters['b']) ** 2}")


def test_a_custom_objective_is_called_with_katibs_placeholders(crd_validators):
    (experiment,) = KatibClient(backend="kubernetes").tune(
        name="tune-test",
        objective=objective,
        parameters={"a": search.int(min=10, max=20), "b": search.double(min=0.1, max=0.2)},
        objective_metric_name="result",
        max_trial_count=4,
        resources_per_trial={"cpu": "100m"},
        dry_run=True,
    )
    job = experiment["spec"]["trialTemplate"]["trialSpec"]
    container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    script = container["args"][0]
    assert "objective({'a': '${trialParameters.a}', 'b': '${trialParameters.b}'})" in script
    last = script.rstrip("\n").splitlines()[-1]
    assert last.startswith("python -u ") and "exec" not in last
    assert experiment["spec"]["metricsCollectorSpec"] == {"collector": {"kind": "StdOut"}}
    filled = manifests.substitute(job, {"a": "12", "b": "0.15"})
    filled["metadata"]["name"] = "tune-test-abc"
    assert crd_errors(crd_validators, filled) == []
    assert (
        "objective({'a': '12', 'b': '0.15'})"
        in filled["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0][
            "args"
        ][0]
    )


# --- the KatibClient over the fake API server --------------------------------------------------


@pytest.fixture
def katib(apiserver: FakeApiServer) -> KatibClient:
    return KatibClient(
        backend="kubernetes", client_configuration=apiserver.configuration(), namespace="default"
    )


def trial(name: str, experiment: str, values: dict[str, str], loss: str | None) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [{"type": "Succeeded" if loss else "Running", "status": "True"}]
    }
    if loss:
        status["observation"] = {
            "metrics": [{"name": "train_loss", "min": loss, "max": loss, "latest": loss}]
        }
    return {
        "apiVersion": "kubeflow.org/v1beta1",
        "kind": "Trial",
        "metadata": {
            "name": name,
            "namespace": "default",
            "labels": {"katib.kubeflow.org/experiment": experiment},
        },
        "spec": {"parameterAssignments": [{"name": k, "value": v} for k, v in values.items()]},
        "status": status,
    }


def test_tune_creates_the_experiment_and_its_shared_objects_owned_by_it(katib, apiserver):
    katib.tune(**llm_example(namespace="default"))
    experiment = apiserver.objects[("experiments", "default", "llama")]
    uid = experiment["metadata"]["uid"]
    for plural, name in (
        ("secrets", "llama-secrets"),
        ("configmaps", "llama-spec"),
        ("persistentvolumeclaims", "llama-workspace"),
    ):
        owners = apiserver.objects[(plural, "default", name)]["metadata"]["ownerReferences"]
        assert owners == [
            {
                "apiVersion": "kubeflow.org/v1beta1",
                "kind": "Experiment",
                "name": "llama",
                "uid": uid,
                "controller": False,
            }
        ]
    posts = [path for method, path in apiserver.requests if method == "POST"]
    assert posts[-1].endswith("/experiments")  # the Experiment last: its trials find the rest
    with pytest.raises(RuntimeError, match="already exists"):
        katib.tune(**llm_example(namespace="default"))

    apiserver.objects[("experiments", "default", "llama")]["status"] = {
        "conditions": [
            {"type": "Created", "status": "True", "reason": "ExperimentCreated"},
            {"type": "Running", "status": "True", "reason": "ExperimentRunning"},
        ],
        "currentOptimalTrial": {
            "bestTrialName": "llama-aaa",
            "parameterAssignments": [
                {"name": "learning_rate", "value": "2e-05"},
                {"name": "r", "value": "9"},
            ],
            "observation": {
                "metrics": [{"name": "train_loss", "min": "0.61", "max": "0.61", "latest": "0.61"}]
            },
        },
    }
    for obj in (
        trial("llama-aaa", "llama", {"learning_rate": "2e-05", "r": "9"}, "0.61"),
        trial("llama-bbb", "llama", {"learning_rate": "4e-05", "r": "30"}, None),
        trial("other-ccc", "other", {"x": "1"}, "0.1"),
    ):
        apiserver.objects[("trials", "default", obj["metadata"]["name"])] = obj
    assert katib.is_experiment_running("llama") and not katib.is_experiment_succeeded("llama")
    assert [t.metadata.name for t in katib.list_trials("llama")] == ["llama-aaa", "llama-bbb"]
    (detail,) = katib.get_success_trial_details("llama")
    assert detail["name"] == "llama-aaa" and detail["metrics"][0].min == "0.61"
    optimal = katib.get_optimal_hyperparameters("llama")
    assert optimal.best_trial_name == "llama-aaa"
    report = katib.get_experiment_report("llama")
    assert report.best is not None and report.best.objective == 0.61
    assert [t.status for t in report.trials] == ["Succeeded", "Running"]

    katib.edit_experiment_budget("llama", max_trial_count=20)
    assert apiserver.objects[("experiments", "default", "llama")]["spec"]["maxTrialCount"] == 20
    katib.delete_experiment("llama")
    assert apiserver.names("experiments") == [] and apiserver.names("configmaps") == []
    assert apiserver.names("persistentvolumeclaims") == [] and apiserver.names("secrets") == []
    with pytest.raises(RuntimeError, match="NotFound"):
        katib.get_experiment("llama")


def test_a_cluster_without_katib_says_how_to_install_it(katib, apiserver):
    apiserver.crds.discard("experiments")
    with pytest.raises(
        RuntimeError,
        match=r"Experiment \(kubeflow.org/v1beta1\) CRD is not installed.*katib-standalone",
    ):
        katib.tune(**llm_example(namespace="default"))
    # all or nothing: what was created before the Experiment is gone again
    assert apiserver.names("configmaps") == [] and apiserver.names("secrets") == []


# --- the trial entry point (python -m kubetune.katib.trial) ------------------------------------


STAND_IN = """
import json, sys
from pathlib import Path
args = sys.argv[1:]
spec = json.loads(Path(args[args.index("--spec") + 1]).read_text())
workspace = Path(args[args.index("--workspace") + 1])
out = workspace / "outputs" / spec["trainer"]["training_arguments"]["output_dir"]
out.mkdir(parents=True)
(out / "metrics.json").write_text(json.dumps({"train_loss": 0.5 + spec["trainer"]["lora_config"]["r"] / 100, "epoch": 1.0, "lora": True}))
print("trained " + json.dumps({"trainer": spec["trainer"], "name": spec["name"], "uid": spec["uid"]}))
"""


def test_the_trial_entry_point_runs_the_trainer_with_the_trials_values(rendered, tmp_path):
    """What runs in a trial's pod: the shared spec from the ConfigMap, the values from Katib's
    substitution; a stand-in for the trainer gets the trial's spec and workspace, and the entry
    point prints its final metrics as the Experiment's collector reads them."""
    root = tmp_path / "workspace"
    root.mkdir()
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(rendered[1]["data"]["spec.json"])
    job = manifests.substitute(rendered[-1]["spec"]["trialTemplate"]["trialSpec"], SAMPLE)
    container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    command = [sys.executable, "-c", STAND_IN, "--spec", str(spec_file), "--workspace", str(root)]
    out = subprocess.run(
        [sys.executable, "-m", "kubetune.katib.trial", *command],
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    line = next(line for line in out.stdout.splitlines() if line.startswith("trained "))
    trained = json.loads(line.removeprefix("trained "))
    trainer = trained["trainer"]
    assert trainer["training_arguments"]["learning_rate"] == 3.1e-05
    assert trainer["lora_config"]["r"] == 16 and isinstance(trainer["lora_config"]["r"], int)
    assert trainer["training_arguments"]["save_strategy"] == "no"  # the shared spec's
    assert trained["name"] == SAMPLE["kubetuneTrialName"]
    assert trained["uid"] != json.loads(spec_file.read_text())["uid"]
    own = root / "trials" / SAMPLE["kubetuneTrialName"]
    for link in ("dataset", "model", ".kubetune-initialized", ".kubetune-cache"):
        assert (own / link).is_symlink() and (own / link).resolve() == (root / link).resolve()
    filters = rendered[-1]["spec"]["metricsCollectorSpec"]["source"]["filter"]["metricsFormat"]
    found = parse_lines(out.stdout.splitlines(), ["train_loss", "epoch"], filters)
    assert [(m.name, float(m.value)) for m in found] == [("epoch", 1.0), ("train_loss", 0.66)]


def test_the_trial_entry_point_refuses_a_value_outside_its_type(rendered, tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(rendered[1]["data"]["spec.json"])
    job = manifests.substitute(
        rendered[-1]["spec"]["trialTemplate"]["trialSpec"], {**SAMPLE, "r": "16.5"}
    )
    container = job["spec"]["pytorchReplicaSpecs"]["Master"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "kubetune.katib.trial",
            "true",
            "--spec",
            str(spec_file),
            "--workspace",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert out.returncode == 2
    assert "KUBETUNE_PARAMETER_r: r='16.5': not an integer" in out.stderr
    assert not (tmp_path / "trials").exists()


def test_job_logs_of_a_trial_come_from_its_primary_pods_collector(katib, apiserver):
    """As Katib's get_job_logs: the trial's master pod, the metrics collector's container for a
    StdOut-collected trial (the training's output goes there)."""
    found = trial("llama-aaa", "llama", {"r": "9"}, "0.61")
    found["spec"].update(
        primaryPodLabels={"training.kubeflow.org/job-role": "master"},
        primaryContainerName="pytorch",
        metricsCollector={"collector": {"kind": "StdOut"}},
    )
    apiserver.objects[("trials", "default", "llama-aaa")] = found
    for name, role in (("llama-aaa-master-0", "master"), ("llama-aaa-worker-0", "worker")):
        apiserver.objects[("pods", "default", name)] = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": "default",
                "labels": {
                    "katib.kubeflow.org/trial": "llama-aaa",
                    "training.kubeflow.org/job-role": role,
                },
            },
        }
    apiserver.write_log(
        "llama-aaa-master-0",
        "metrics-logger-and-collector",
        "step 1",
        "kubetune-metric train_loss=0.61",
    )
    apiserver.write_log("llama-aaa-worker-0", "metrics-logger-and-collector", "not this pod")
    assert list(katib.get_job_logs("llama", "llama-aaa")) == [
        "step 1",
        "kubetune-metric train_loss=0.61",
    ]
    apiserver.close_log("llama-aaa-master-0", "metrics-logger-and-collector")
    assert (
        list(katib.get_job_logs("llama", "llama-aaa", follow=True))[-1]
        == "kubetune-metric train_loss=0.61"
    )
    with pytest.raises(ValueError, match="Trial name is required"):
        katib.get_job_logs("llama", "")
