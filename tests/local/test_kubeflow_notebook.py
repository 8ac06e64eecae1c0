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

from kubetune.contract.layout import PACKAGES_DIR
from kubetune.contract.records import read_failure
from kubetune.training.backends.local.jobdir import job_dir
from tests.kubeflow_methods import Ctx, cases_for, run_case
from tests.local.local_jobs import bert_job, status_of, the_job_dir
from tests.package_index import PROBE_MODULE, PROBE_VALUE, package_index

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


def test_create_job_then_its_conditions_running_and_pod_names(notebook: Notebook) -> None:
    from kubetune.training import KubeflowOrgV1JobCondition, KubeflowOrgV1PyTorchJob

    # create_job -> get_job_conditions -> wait_for_job_conditions({"Running"})
    assert all(isinstance(c, KubeflowOrgV1JobCondition) for c in notebook.conditions)
    assert notebook.conditions[0].type == "Created" and notebook.conditions[0].status == "True"
    assert isinstance(notebook.running, KubeflowOrgV1PyTorchJob)
    assert [c.type for c in notebook.running.status.conditions][:2] == ["Created", "Running"]
    # get_job_pod_names: worker 0 is the Master replica's pod, worker 1 the first Worker's.
    assert notebook.pod_names == [MASTER, WORKER]


def test_followed_logs_print_the_master_pods_lines_as_they_come(notebook: Notebook) -> None:
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


def test_the_function_job_succeeds_with_every_replica(notebook: Notebook) -> None:
    # wait_for_job_conditions(name) -> Succeeded
    assert notebook.done.status.conditions[-1].type == "Succeeded"
    assert notebook.done.status.replica_statuses["Master"].succeeded == 1
    assert notebook.done.status.replica_statuses["Worker"].succeeded == 1


BERT = "fine-tune-bert"


@dataclass
class BertRun:
    """The notebook's second half: train() of the seed's BERT example, run to its end."""

    returned: Any
    created: bool
    taken: str


@pytest.fixture(scope="module")
def bert(notebook: Notebook, tiny_model: Path, sentiment_data: Path) -> BertRun:
    """train() of the seed's BERT example (Kubeflow's BERT notebook), prefix swapped, with a
    tiny local BERT instead of bert-base-cased, a local CSV instead of Yelp, no GPU, and
    transformers 5's eval_strategy instead of evaluation_strategy; waited on until it ends.
    test_deleting_the_bert_job, last of the tests using it, deletes the job."""
    import transformers
    from peft import LoraConfig

    from kubetune.storage_initializer.hugging_face import (
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )
    from kubetune.storage_initializer.local import LocalDatasetParams

    client = notebook.client
    returned = client.train(
        name=BERT,
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
    created = client.is_job_created(BERT)
    # Kubernetes semantics: the name is taken while the job exists.
    with pytest.raises(RuntimeError) as taken:
        client.train(**bert_job(BERT, tiny_model, sentiment_data))
    client.wait_for_job_conditions(BERT, wait_timeout=JOB_TIMEOUT, polling_interval=0.5)
    return BertRun(returned, created, str(taken.value))


def test_train_returns_none_and_the_name_stays_taken(bert: BertRun) -> None:
    assert bert.returned is None  # as Kubeflow's train()
    assert bert.created
    assert "already exists" in bert.taken


def test_get_job_is_the_finished_pytorchjob(notebook: Notebook, bert: BertRun) -> None:
    pytorchjob = notebook.client.get_job(BERT)
    assert pytorchjob.status.conditions[-1].type == "Succeeded"
    master = pytorchjob.spec.pytorch_replica_specs["Master"].template.spec
    assert [c.name for c in master.init_containers] == ["storage-initializer"]
    assert pytorchjob.spec.pytorch_replica_specs["Worker"].replicas == 1
    assert pytorchjob.status.start_time <= pytorchjob.status.completion_time
    annotations = pytorchjob.metadata.annotations
    assert json.loads(annotations["kubetune.io/progress"])["status"] == "done"
    assert annotations["kubetune.io/restarts"] == "0"
    assert annotations["kubetune.io/output-dir"] == notebook.client.get_job_report(BERT).output_dir


def test_kubetunes_report_of_the_finished_job(notebook: Notebook, bert: BertRun) -> None:
    report = notebook.client.get_job_report(BERT)
    assert (report.name, report.namespace, report.backend) == (BERT, "default", "local")
    assert report.status == "Succeeded" and report.restarts == 0
    assert report.creation_time <= report.start_time <= report.completion_time
    assert report.progress is not None
    assert report.progress["step"] == report.progress["total_steps"] > 0
    assert (report.num_workers, report.num_procs_per_worker) == (2, 1)
    output_dir = Path(report.output_dir)
    assert output_dir.is_relative_to(the_job_dir(notebook.home, BERT).path)
    from peft import AutoPeftModelForSequenceClassification

    model = AutoPeftModelForSequenceClassification.from_pretrained(output_dir / "model")
    assert model.config.num_labels == 2


def test_logs_by_pod_put_the_initializer_first_and_print_values_once(
    notebook: Notebook, bert: BertRun
) -> None:
    client = notebook.client
    logs, _ = client.get_job_logs(BERT, is_master=False)
    assert list(logs) == [f"{BERT}-master-0", f"{BERT}-worker-0"]
    master_log = logs[f"{BERT}-master-0"]
    assert master_log.index("kubetune.storage_initializer") < master_log.index("Running training")
    assert "Running training" in logs[f"{BERT}-worker-0"]
    # The logged values are the same on both nodes: only the main process prints them.
    assert master_log.count("'train_runtime'") == 1
    assert "'train_runtime'" not in logs[f"{BERT}-worker-0"]
    lines = list(client.stream_job_logs(BERT))
    assert {line.source for line in lines} == {"initializer", "worker-0", "worker-1"}


def test_the_local_status_records_every_process(notebook: Notebook, bert: BertRun) -> None:
    status = status_of(notebook.home, BERT)
    assert status.attempts[-1].exit_codes == {"worker-0": 0, "worker-1": 0}
    assert status.initializer is not None and status.initializer.exit_code == 0
    assert sorted(j.metadata.name for j in notebook.client.list_jobs()) == [NAME, BERT]


def test_deleting_the_bert_job(notebook: Notebook, bert: BertRun) -> None:
    client = notebook.client
    client.delete_job(BERT)
    assert not the_job_dir(notebook.home, BERT).path.exists()
    with pytest.raises(RuntimeError, match="not found"):
        client.get_job(BERT)


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
    # The step said why in a failure record (its log text is the fallback only).
    job = job_dir(client.backend.home, "default", "missing-package")
    record = read_failure(job.failure_path("initializer"))
    assert record is not None and record.component == "kubetune.function_job"
    assert record.message in message
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
