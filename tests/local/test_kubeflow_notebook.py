"""Kubeflow V1's notebook flow on the local backend, with offline stand-ins: the BERT notebook
(Fine-Tune-BERT-LLM.ipynb) creates a job from a function, follows it, then fine-tunes with
`train()`; here the function all-reduces over every process and imports a package that the job
installs from a package index on 127.0.0.1. One function job, shared by the tests of this
module, and the seed's BERT job run for real (torchrun, gloo)."""

from __future__ import annotations

import importlib.util
import io
import json
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubeflow_methods import Ctx, cases_for, run_case
from local_jobs import bert_job, status_of, the_job_dir
from package_index import PROBE_MODULE, PROBE_VALUE, package_index

from kubetune.contract.layout import PACKAGES_DIR

JOB_TIMEOUT = 400
NAME = "allreduce"
MASTER, WORKER = f"{NAME}-master-0", f"{NAME}-worker-0"
WORKERS, PROCS = 2, 2
ENV = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "PET_MASTER_ADDR",
    "PET_MASTER_PORT",
    "PET_NNODES",
    "PET_NODE_RANK",
    "PET_NPROC_PER_NODE",
)


def train_func(parameters):
    import json
    import os

    import kubetune_probe
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    total = torch.tensor([float(rank + 1)])
    dist.all_reduce(total)
    report = {
        "rank": rank,
        "world_size": dist.get_world_size(),
        "sum": total.item(),
        "probe": kubetune_probe.VALUE,
        "greeting": parameters["greeting"],
        "cwd": os.getcwd(),
        "env": {key: os.environ.get(key) for key in parameters["env"]},
    }
    print("all-reduce " + json.dumps(report), flush=True)
    dist.destroy_process_group()


@dataclass
class Notebook:
    """The client, the index, and what each step of the flow returned or printed."""

    client: Any
    home: Path
    index: str
    conditions: list[Any]
    running: Any
    pod_names: list[str]
    followed: dict[str, str]
    printed: str
    done: Any


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Notebook]:
    """The notebook's first half, on a home of this module's own."""
    from kubetune.training import TrainingClient

    home = tmp_path_factory.mktemp("kubetune-home")
    with (
        pytest.MonkeyPatch.context() as patch,
        package_index(tmp_path_factory.mktemp("index")) as index,
    ):
        patch.setenv("KUBETUNE_HOME", str(home))
        client = TrainingClient()
        try:
            client.create_job(
                name=NAME,
                train_func=train_func,
                parameters={"greeting": "hello from the notebook", "env": list(ENV)},
                num_workers=WORKERS,
                num_procs_per_worker=PROCS,
                resources_per_worker={"cpu": 1},
                packages_to_install=["packaging", "kubetune-probe==1.0"],
                pip_index_url=index,
            )
            conditions = client.get_job_conditions(NAME)
            running = client.wait_for_job_conditions(
                NAME,
                expected_conditions={"Running"},
                wait_timeout=JOB_TIMEOUT,
                polling_interval=0.5,
            )
            pod_names = client.get_job_pod_names(NAME)
            printed = io.StringIO()
            with redirect_stdout(printed):
                logs, _ = client.get_job_logs(NAME, follow=True)
            done = client.wait_for_job_conditions(
                NAME, wait_timeout=JOB_TIMEOUT, polling_interval=0.5
            )
            yield Notebook(
                client, home, index, conditions, running, pod_names, logs, printed.getvalue(), done
            )
        finally:
            for job in client.list_job_reports():
                client.delete_job(job.name)


def all_reduce_reports(text: str) -> list[dict[str, Any]]:
    return [
        json.loads(line.split("all-reduce ", 1)[1])
        for line in text.splitlines()
        if "all-reduce {" in line
    ]


def test_the_kubeflow_notebook_flow(
    notebook: Notebook, tiny_model: Path, sentiment_data: Path
) -> None:
    import transformers
    from peft import LoraConfig

    from kubetune.storage_initializer.hugging_face import (
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )
    from kubetune.storage_initializer.local import LocalDatasetParams
    from kubetune.training import KubeflowOrgV1JobCondition, KubeflowOrgV1PyTorchJob

    # create_job -> get_job_conditions -> wait_for_job_conditions({"Running"})
    assert all(isinstance(c, KubeflowOrgV1JobCondition) for c in notebook.conditions)
    assert notebook.conditions[0].type == "Created" and notebook.conditions[0].status == "True"
    assert isinstance(notebook.running, KubeflowOrgV1PyTorchJob)
    assert [c.type for c in notebook.running.status.conditions][:2] == ["Created", "Running"]
    # get_job_pod_names: worker 0 is the Master replica's pod, worker 1 the first Worker's.
    assert notebook.pod_names == [MASTER, WORKER]
    # logs, _ = get_job_logs(name, follow=True): the master pod's lines, printed as they came.
    assert list(notebook.followed) == [MASTER]
    printed = notebook.printed.splitlines()
    assert printed and all(line.startswith(f"[Pod {MASTER}]: ") for line in printed)
    assert [line.split("]: ", 1)[1] for line in printed] == notebook.followed[MASTER].splitlines()
    # The package step is the master pod's init container: its lines come first.
    assert "packaging: packaging " in printed[0] and "is installed, skipped" in printed[0]
    assert "installing kubetune-probe==1.0 from" in notebook.followed[MASTER]
    ranks = sorted(r["rank"] for r in all_reduce_reports(notebook.followed[MASTER]))
    assert ranks == [0, 1]  # the master pod holds node rank 0: global ranks 0 and 1
    # wait_for_job_conditions(name) -> Succeeded
    assert notebook.done.status.conditions[-1].type == "Succeeded"
    assert notebook.done.status.replica_statuses["Master"].succeeded == 1
    assert notebook.done.status.replica_statuses["Worker"].succeeded == 1

    # train() of the seed's BERT example (Kubeflow's BERT notebook), prefix swapped, with a
    # tiny local BERT instead of bert-base-cased, a local CSV instead of Yelp, no GPU, and
    # transformers 5's eval_strategy instead of evaluation_strategy.
    name, client, home = "fine-tune-bert", notebook.client, notebook.home
    returned = client.train(
        name=name,
        num_workers=2,
        num_procs_per_worker=1,
        model_provider_parameters=HuggingFaceModelParams(
            model_uri=str(tiny_model),
            transformer_type=transformers.AutoModelForSequenceClassification,
        ),
        storage_config={"access_modes": ["ReadWriteOnce"]},
        dataset_provider_parameters=LocalDatasetParams(path=str(sentiment_data)),
        trainer_parameters=HuggingFaceTrainerParams(
            training_parameters=transformers.TrainingArguments(
                output_dir="test_trainer",
                save_strategy="no",
                eval_strategy="no",
                do_eval=False,
                disable_tqdm=True,
                log_level="info",
            ),
            lora_config=LoraConfig(r=8, lora_alpha=8, lora_dropout=0.1, bias="none"),
        ),
        resources_per_worker={"cpu": 1, "memory": "1G"},
    )
    assert returned is None  # as Kubeflow's train()
    assert client.is_job_created(name)
    # Kubernetes semantics: the name is taken while the job exists.
    with pytest.raises(RuntimeError, match="already exists"):
        client.train(**bert_job(name, tiny_model, sentiment_data))

    client.wait_for_job_conditions(name, wait_timeout=JOB_TIMEOUT, polling_interval=0.5)
    pytorchjob = client.get_job(name)
    assert pytorchjob.status.conditions[-1].type == "Succeeded"
    master = pytorchjob.spec.pytorch_replica_specs["Master"].template.spec
    assert [c.name for c in master.init_containers] == ["storage-initializer"]
    assert pytorchjob.spec.pytorch_replica_specs["Worker"].replicas == 1
    assert pytorchjob.status.start_time <= pytorchjob.status.completion_time
    annotations = pytorchjob.metadata.annotations
    assert json.loads(annotations["kubetune.io/progress"])["status"] == "done"
    assert annotations["kubetune.io/restarts"] == "0"

    # kubetune's own view of the same job
    report = client.get_job_report(name)
    assert (report.name, report.namespace, report.backend) == (name, "default", "local")
    assert report.status == "Succeeded" and report.restarts == 0
    assert report.creation_time <= report.start_time <= report.completion_time
    assert report.progress is not None
    assert report.progress["step"] == report.progress["total_steps"] > 0
    assert annotations["kubetune.io/output-dir"] == report.output_dir
    output_dir = Path(report.output_dir)
    assert output_dir.is_relative_to(the_job_dir(home, name).path)
    from peft import AutoPeftModelForSequenceClassification

    model = AutoPeftModelForSequenceClassification.from_pretrained(output_dir / "model")
    assert model.config.num_labels == 2

    # Logs by pod: the storage initializer's lines belong to the master pod, before its trainer's.
    logs, _ = client.get_job_logs(name, is_master=False)
    assert list(logs) == [f"{name}-master-0", f"{name}-worker-0"]
    master_log = logs[f"{name}-master-0"]
    assert master_log.index("kubetune.storage_initializer") < master_log.index("Running training")
    assert "Running training" in logs[f"{name}-worker-0"]
    # The logged values are the same on both nodes: only the main process prints them.
    assert master_log.count("'train_runtime'") == 1
    assert "'train_runtime'" not in logs[f"{name}-worker-0"]
    lines = list(client.stream_job_logs(name))
    assert {line.source for line in lines} == {"initializer", "worker-0", "worker-1"}
    status = status_of(home, name)
    assert status.attempts[-1].exit_codes == {"worker-0": 0, "worker-1": 0}
    assert status.initializer is not None and status.initializer.exit_code == 0
    assert sorted(j.metadata.name for j in client.list_jobs()) == [NAME, name]

    client.delete_job(name)
    assert not the_job_dir(home, name).path.exists()
    with pytest.raises(RuntimeError, match="not found"):
        client.get_job(name)


def test_train_func_workers_form_one_process_group(notebook: Notebook) -> None:
    logs, _ = notebook.client.get_job_logs(NAME, is_master=False)
    assert list(logs) == [MASTER, WORKER]
    reports = {r["rank"]: r for r in all_reduce_reports("".join(logs.values()))}
    world = WORKERS * PROCS
    assert sorted(reports) == list(range(world))
    for rank, report in reports.items():
        assert report["sum"] == world * (world + 1) / 2  # 1 + 2 + ... + world, on every rank
        assert report["world_size"] == world
        assert report["probe"] == PROBE_VALUE  # the package the job installed
        assert report["greeting"] == "hello from the notebook"
        env = report["env"]
        node, local = divmod(rank, PROCS)
        assert (env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"]) == (
            str(rank),
            str(local),
            str(world),
        )
        assert (env["PET_NODE_RANK"], env["PET_NNODES"], env["PET_NPROC_PER_NODE"]) == (
            str(node),
            str(WORKERS),
            str(PROCS),
        )
        assert env["MASTER_ADDR"] == env["PET_MASTER_ADDR"] == "127.0.0.1"
        assert env["MASTER_PORT"] == env["PET_MASTER_PORT"]
    # Ranks 0-1 ran in the master pod, 2-3 in the worker pod.
    assert sorted(r["rank"] for r in all_reduce_reports(logs[WORKER])) == [2, 3]


def test_packages_go_to_a_folder_of_the_jobs_own(notebook: Notebook) -> None:
    workspace = the_job_dir(notebook.home, NAME).workspace
    reports = all_reduce_reports(notebook.client.get_job_logs(NAME, is_master=False)[0][WORKER])
    assert {r["cwd"] for r in reports} == {str(workspace)}
    assert (workspace / PACKAGES_DIR / PROBE_MODULE / "__init__.py").is_file()
    assert not (workspace / PACKAGES_DIR / "packaging").exists()  # installed already: skipped
    assert importlib.util.find_spec(PROBE_MODULE) is None  # this environment is untouched
    job = notebook.client.get_job(NAME)
    (container,) = job.spec.pytorch_replica_specs["Master"].template.spec.containers
    assert "def train_func(parameters):" in container.args[0]  # as on Kubernetes


def test_a_pip_failure_fails_the_job_with_pips_error(notebook: Notebook) -> None:
    client = notebook.client
    client.create_job(
        name="missing-package",
        train_func=train_func,
        parameters={"greeting": "never", "env": []},
        packages_to_install=["kubetune-no-such-package"],
        pip_index_url=notebook.index,
    )
    with pytest.raises(RuntimeError) as failed:
        client.wait_for_job_conditions(
            "missing-package", wait_timeout=JOB_TIMEOUT, polling_interval=0.5
        )
    message = str(failed.value)
    assert "package installation exited with code 1" in message, message
    assert "No matching distribution found for kubetune-no-such-package" in message, message
    assert client.get_job_pods("missing-package")[0].status.phase == "Failed"
    client.delete_job("missing-package")


@pytest.mark.parametrize("case", cases_for("local"))
def test_kubeflow_method(
    case: Any, notebook: Notebook, tiny_model: Path, sentiment_data: Path
) -> None:
    params = bert_job("positional-train", tiny_model, sentiment_data)
    ctx = Ctx("local", notebook.client, NAME, "default", MASTER, WORKER, params)
    run_case(case, ctx)
    assert [j.name for j in notebook.client.list_job_reports()] == [NAME]  # nothing was created
