"""The backend against a real HTTP server speaking the Kubernetes REST paths (fake_apiserver):
create in order with owner references, status mapping, wait, logs (with follow), delete,
rollback of a create that fails half-way, and the errors users see."""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

import pytest

from kubetune.contract.records import progress_log_line
from kubetune.training.backends.kubernetes.backend import PROGRESS_TAIL_LINES
from kubetune.training.job import LogLine
from tests.kubernetes.fake_apiserver import FakeApiServer
from tests.kubernetes.k8s_helpers import MODEL_TOKEN, S3_SECRET

PYTORCHJOBS = "pytorchjobs"
CORE_PLURALS = ("secrets", "configmaps", "persistentvolumeclaims")


def condition(
    type_: str, status: str = "True", reason: str = "", message: str = ""
) -> dict[str, Any]:
    return {
        "type": type_,
        "status": status,
        "reason": reason or type_,
        "message": message or f"job is {type_.lower()}",
        "lastTransitionTime": "2026-01-01T00:01:00Z",
    }


CREATED = {"conditions": [condition("Created")]}
RUNNING = {
    "conditions": [condition("Created"), condition("Running")],
    "startTime": "2026-01-01T00:01:00Z",
}
SUCCEEDED = {
    "conditions": [condition("Created"), condition("Running", "False"), condition("Succeeded")],
    "startTime": "2026-01-01T00:01:00Z",
    "completionTime": "2026-01-01T00:09:00Z",
}
FAILED = {
    "conditions": [
        condition("Created"),
        condition("Running", "False"),
        condition(
            "Failed",
            reason="BackoffLimitExceeded",
            message="PyTorchJob fine-tune-bert has failed because it has reached the specified backoff limit",
        ),
    ]
}


def stored_kinds(server: FakeApiServer) -> list[str]:
    return sorted(plural for (plural, _, _) in server.objects)


# --- create ------------------------------------------------------------------------------------


def test_train_creates_objects_in_order_owned_by_the_job(
    apiserver: FakeApiServer, make_client: Any, secret_params: dict[str, Any]
) -> None:
    client = make_client()
    assert client.train(**secret_params) is None  # as Kubeflow's train()
    posts = [path.rsplit("/", 1)[-1] for method, path in apiserver.requests if method == "POST"]
    assert posts == ["secrets", "configmaps", "persistentvolumeclaims", "pytorchjobs"]
    job = apiserver.objects[(PYTORCHJOBS, "default", "fine-tune-bert")]
    for plural, name in zip(
        CORE_PLURALS,
        ("fine-tune-bert-secrets", "fine-tune-bert-spec", "fine-tune-bert-workspace"),
        strict=True,
    ):
        (owner,) = apiserver.objects[(plural, "default", name)]["metadata"]["ownerReferences"]
        assert owner["uid"] == job["metadata"]["uid"]
        assert (owner["kind"], owner["name"]) == ("PyTorchJob", "fine-tune-bert")
    secret = apiserver.objects[("secrets", "default", "fine-tune-bert-secrets")]
    assert MODEL_TOKEN in {base64.b64decode(v).decode() for v in secret["data"].values()}
    everything_else = json.dumps(
        [o for (p, _, _), o in apiserver.objects.items() if p != "secrets"]
    )
    assert MODEL_TOKEN not in everything_else and S3_SECRET not in everything_else


def test_trainjob_is_created_and_mapped(
    apiserver: FakeApiServer, make_client: Any, seed_params: dict[str, Any]
) -> None:
    client = make_client(api="trainjob")
    client.train(**seed_params)
    assert ("trainjobs", "default", "fine-tune-bert") in apiserver.objects
    assert client.get_job_report("fine-tune-bert").status == "Created"
    apiserver.script_status(
        "trainjobs",
        "fine-tune-bert",
        [
            {
                "jobsStatus": [
                    {
                        "name": "node",
                        "active": 4,
                        "ready": 0,
                        "succeeded": 0,
                        "failed": 0,
                        "suspended": 0,
                    }
                ]
            },
            {
                "jobsStatus": [
                    {
                        "name": "node",
                        "active": 4,
                        "ready": 4,
                        "succeeded": 0,
                        "failed": 0,
                        "suspended": 0,
                    }
                ],
                "trainerStatus": {
                    "progressPercentage": 40,
                    "estimatedRemainingSeconds": 90,
                    "metrics": [{"name": "loss", "value": "0.52"}],
                },
            },
            {"conditions": [condition("Complete", reason="JobSetCompleted", message="done")]},
        ],
    )
    first = client.get_job_report("fine-tune-bert")
    assert first.status == "Running" and first.progress is None
    second = client.get_job_report("fine-tune-bert")
    assert second.progress is not None
    assert second.progress["progress_percentage"] == 40 and second.progress["loss"] == "0.52"
    done = client.wait_for_job_conditions("fine-tune-bert", polling_interval=0.01, wait_timeout=30)
    # Kubeflow V1's models have no TrainJob: it comes back as the API's dict.
    assert done["kind"] == "TrainJob" and client.is_job_succeeded(job=done)
    assert client.get_job_report("fine-tune-bert").completion_time == "2026-01-01T00:01:00Z"


def test_trainjob_failure_raises_with_the_reason(
    apiserver: FakeApiServer, make_client: Any, seed_params: dict[str, Any]
) -> None:
    client = make_client(api="trainjob")
    client.train(**seed_params)
    apiserver.set_status(
        "trainjobs",
        "fine-tune-bert",
        {
            "conditions": [
                condition("Failed", reason="TrainerFailed", message="node-0 exited with 1")
            ]
        },
    )
    with pytest.raises(RuntimeError, match="node-0 exited with 1"):
        client.wait_for_job_conditions("fine-tune-bert", polling_interval=0.01, wait_timeout=30)


# --- status and wait ---------------------------------------------------------------------------


def test_get_job_and_wait_follow_scripted_transitions(
    apiserver: FakeApiServer, make_client: Any, seed_params: dict[str, Any]
) -> None:
    client = make_client()
    client.train(**seed_params)
    apiserver.script_status(PYTORCHJOBS, "fine-tune-bert", [CREATED, RUNNING, RUNNING, SUCCEEDED])
    job = client.get_job_report("fine-tune-bert")
    assert job.backend == "kubernetes" and job.status == "Created"
    assert job.output_dir == "/workspace/outputs/test_trainer"
    assert job.creation_time is not None
    seen: list[str] = []
    done = client.wait_for_job_conditions(
        "fine-tune-bert",
        polling_interval=0.01,
        wait_timeout=30,
        callback=lambda j: seen.append(j.status.conditions[-1].type),
    )
    assert seen == ["Running", "Running", "Succeeded"]
    assert client.is_job_succeeded(job=done) and client.is_job_succeeded("fine-tune-bert")
    assert done.status.completion_time == datetime.datetime(2026, 1, 1, 0, 9, tzinfo=datetime.UTC)
    assert [c.type for c in done.status.conditions] == ["Created", "Running", "Succeeded"]


def test_a_failed_job_makes_wait_raise_with_the_reason(
    apiserver: FakeApiServer, make_client: Any, seed_params: dict[str, Any]
) -> None:
    client = make_client()
    client.train(**seed_params)
    apiserver.script_status(PYTORCHJOBS, "fine-tune-bert", [RUNNING, FAILED])
    with pytest.raises(RuntimeError, match="reached the specified backoff limit"):
        client.wait_for_job_conditions("fine-tune-bert", polling_interval=0.01, wait_timeout=30)
    assert client.is_job_failed("fine-tune-bert")


def test_train_with_wait_blocks_until_succeeded(
    apiserver: FakeApiServer,
    make_client: Any,
    seed_params: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kubetune.training import TrainingClient

    client = make_client()
    # the status script is installed before the job exists: each GET moves it on
    apiserver.script_status(PYTORCHJOBS, "fine-tune-bert", [RUNNING, SUCCEEDED])
    original = TrainingClient.wait_for_job_conditions

    def fast(self: Any, *args: Any, **kwargs: Any) -> Any:
        return original(self, *args, **{**kwargs, "polling_interval": 0.01})

    monkeypatch.setattr(TrainingClient, "wait_for_job_conditions", fast)
    assert client.train(**seed_params, wait=True, wait_timeout=30) is None
    assert client.is_job_succeeded("fine-tune-bert")


def test_list_jobs_oldest_first_only_kubetunes(
    apiserver: FakeApiServer, make_client: Any, seed_params: dict[str, Any]
) -> None:
    client = make_client()
    client.train(**{**seed_params, "name": "second-job"})
    client.train(**{**seed_params, "name": "a-later-job"})
    apiserver.objects[(PYTORCHJOBS, "default", "not-ours")] = {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "not-ours", "namespace": "default", "labels": {}},
        "spec": {},
    }
    assert [j.name for j in client.list_job_reports()] == ["second-job", "a-later-job"]
    assert client.list_job_reports(namespace="team-a") == []
    # Kubeflow's list_jobs lists every PyTorchJob of the namespace.
    assert sorted(j.metadata.name for j in client.list_jobs()) == [
        "a-later-job",
        "not-ours",
        "second-job",
    ]


def test_get_job_of_a_missing_job_names_it(make_client: Any) -> None:
    with pytest.raises(RuntimeError, match=r"job default/nope not found"):
        make_client().get_job("nope")


# --- create that fails half-way: nothing is left -----------------------------------------------


@pytest.mark.parametrize(
    ("api", "plural", "operator"),
    [
        ("pytorchjob", "pytorchjobs", "Kubeflow Training Operator"),
        ("trainjob", "trainjobs", "Kubeflow Trainer"),
    ],
)
def test_missing_crd_rolls_back_and_names_the_operator(
    api: str,
    plural: str,
    operator: str,
    apiserver: FakeApiServer,
    make_client: Any,
    secret_params: dict[str, Any],
) -> None:
    apiserver.crds.discard(plural)
    with pytest.raises(RuntimeError, match=f"CRD is not installed.*install .*{operator}"):
        make_client(api=api).train(**secret_params)
    assert apiserver.objects == {}
    deleted = [path.rsplit("/", 2)[-2] for method, path in apiserver.requests if method == "DELETE"]
    assert deleted == ["persistentvolumeclaims", "configmaps", "secrets"]


def test_failure_after_the_job_exists_rolls_back_the_job_too(
    apiserver: FakeApiServer, make_client: Any, secret_params: dict[str, Any]
) -> None:
    apiserver.fail("PATCH", "persistentvolumeclaims", 403, "cannot patch persistentvolumeclaims")
    with pytest.raises(RuntimeError, match=r"forbidden.*RBAC permission on persistentvolumeclaims"):
        make_client().train(**secret_params)
    assert apiserver.objects == {}


def test_name_taken_keeps_the_existing_job(
    apiserver: FakeApiServer, make_client: Any, secret_params: dict[str, Any]
) -> None:
    client = make_client()
    client.train(**secret_params)
    before = json.dumps(sorted(apiserver.objects.items()))
    with pytest.raises(RuntimeError, match=r"name is taken.*delete the old job"):
        client.train(**secret_params)
    assert json.dumps(sorted(apiserver.objects.items())) == before


def test_missing_namespace_says_so(make_client: Any, seed_params: dict[str, Any]) -> None:
    with pytest.raises(
        RuntimeError, match=r"namespace 'nowhere' does not exist.*kubectl create namespace"
    ):
        make_client(namespace="nowhere").train(**seed_params)


def test_forbidden_create_says_what_permission_is_missing(
    apiserver: FakeApiServer, make_client: Any, seed_params: dict[str, Any]
) -> None:
    apiserver.fail("POST", "configmaps", 403, 'configmaps is forbidden: User "bob" cannot create')
    with pytest.raises(
        RuntimeError, match=r"forbidden \(configmaps is forbidden.*namespace 'team-a'"
    ):
        make_client(namespace="team-a").train(**seed_params)
    assert apiserver.objects == {}


def test_unreachable_api_server(seed_params: dict[str, Any]) -> None:
    from kubernetes import client as k8s

    from kubetune.training import TrainingClient

    configuration = k8s.Configuration(host="http://127.0.0.1:9")
    configuration.retries = 0
    client = TrainingClient(backend="kubernetes", client_configuration=configuration)
    with pytest.raises(
        RuntimeError, match=r"cannot reach the Kubernetes API server at http://127\.0\.0\.1:9"
    ):
        client.get_job("fine-tune-bert")


# --- logs --------------------------------------------------------------------------------------


def job_with_pods(apiserver: FakeApiServer, client: Any, params: dict[str, Any]) -> dict[str, Any]:
    client.train(**{**params, "num_workers": 2})
    job = apiserver.objects[(PYTORCHJOBS, "default", "fine-tune-bert")]
    apiserver.add_pod(
        "fine-tune-bert-master-0",
        job,
        {"storage-initializer": "terminated"},
        {"pytorch": "running"},
    )
    apiserver.add_pod("fine-tune-bert-worker-0", job, {}, {"pytorch": "waiting"})
    apiserver.write_log(
        "fine-tune-bert-master-0", "storage-initializer", "fetching model", "marker written"
    )
    apiserver.write_log("fine-tune-bert-master-0", "pytorch", "step 1 loss 2.0")
    # get_job reports the progress records; the logs leave them out
    apiserver.write_log("fine-tune-bert-master-0", "pytorch", progress_log_line({"step": 1}))
    return job


def test_logs_so_far_from_every_started_container(
    apiserver: FakeApiServer, make_client: Any, seed_params: dict[str, Any]
) -> None:
    client = make_client()
    job_with_pods(apiserver, client, seed_params)
    assert list(client.stream_job_logs("fine-tune-bert")) == [
        LogLine("fine-tune-bert-master-0/storage-initializer", "fetching model"),
        LogLine("fine-tune-bert-master-0/storage-initializer", "marker written"),
        LogLine("fine-tune-bert-master-0/pytorch", "step 1 loss 2.0"),
    ]


def test_follow_streams_new_lines_and_pods_until_the_job_ends(
    apiserver: FakeApiServer, make_client: Any, seed_params: dict[str, Any]
) -> None:
    client = make_client()
    job_with_pods(apiserver, client, seed_params)
    apiserver.close_log("fine-tune-bert-master-0", "storage-initializer")
    apiserver.set_status(PYTORCHJOBS, "fine-tune-bert", RUNNING)
    got: list[LogLine] = []
    for line in client.stream_job_logs("fine-tune-bert", follow=True):
        got.append(line)
        if line.line == "step 1 loss 2.0":
            # the worker starts and writes; the master writes on; then everything ends
            worker = apiserver.objects[("pods", "default", "fine-tune-bert-worker-0")]
            worker["status"]["containerStatuses"][0]["state"] = {"running": {"startedAt": "t"}}
            apiserver.write_log("fine-tune-bert-worker-0", "pytorch", "worker ready")
            apiserver.write_log("fine-tune-bert-master-0", "pytorch", "step 2 loss 1.5")
        if line.line == "worker ready":
            apiserver.write_log("fine-tune-bert-master-0", "pytorch", "saved model")
            apiserver.close_log("fine-tune-bert-master-0", "pytorch")
            apiserver.close_log("fine-tune-bert-worker-0", "pytorch")
            apiserver.set_status(PYTORCHJOBS, "fine-tune-bert", SUCCEEDED)
    by_source: dict[str, list[str]] = {}
    for source, text in got:
        by_source.setdefault(source, []).append(text)
    assert by_source == {
        "fine-tune-bert-master-0/storage-initializer": ["fetching model", "marker written"],
        "fine-tune-bert-master-0/pytorch": ["step 1 loss 2.0", "step 2 loss 1.5", "saved model"],
        "fine-tune-bert-worker-0/pytorch": ["worker ready"],
    }


# --- progress and restarts from the pods -----------------------------------------------------


def running_job_with_pods(apiserver: FakeApiServer, client: Any, params: dict[str, Any]) -> Any:
    job_with_pods(apiserver, client, params)
    apiserver.set_status(PYTORCHJOBS, "fine-tune-bert", RUNNING)
    return client


def test_get_job_reads_rank_0s_latest_progress_and_the_restarts(
    apiserver: FakeApiServer, make_client: Any, seed_params: dict[str, Any]
) -> None:
    client = running_job_with_pods(apiserver, make_client(), seed_params)
    running = client.get_job_report("fine-tune-bert")
    assert running.progress == {"step": 1} and running.restarts == 0

    earlier = {"step": 10, "total_steps": 94, "loss": 0.69, "status": "training"}
    latest = {"step": 20, "total_steps": 94, "loss": 0.41, "status": "training"}
    apiserver.write_log(
        "fine-tune-bert-master-0",
        "pytorch",
        progress_log_line(earlier),
        "{'loss': 0.41, 'grad_norm': 1.2}",
        " 20%|##  | 19/94\r 21%|##  | 20/94" + progress_log_line(latest),
        "a line after it",
    )
    worker = apiserver.objects[("pods", "default", "fine-tune-bert-worker-0")]
    worker["status"]["containerStatuses"][0].update(
        state={"running": {"startedAt": "t"}}, restartCount=2
    )
    got = client.get_job_report("fine-tune-bert")
    assert got.progress == latest
    assert got.restarts == 2
    assert got.to_dict()["progress"]["step"] == 20


def test_only_the_end_of_the_log_is_read_for_progress(
    apiserver: FakeApiServer, make_client: Any, seed_params: dict[str, Any]
) -> None:
    client = running_job_with_pods(apiserver, make_client(), seed_params)
    # job_with_pods printed a record at step 1; as many lines as are read back follow it
    apiserver.write_log("fine-tune-bert-master-0", "pytorch", *["noise"] * PROGRESS_TAIL_LINES)
    assert client.get_job_report("fine-tune-bert").progress is None
    assert any(path.endswith("/log") for _, path in apiserver.requests)


def test_unreadable_pods_leave_the_status_standing(
    apiserver: FakeApiServer, make_client: Any, seed_params: dict[str, Any]
) -> None:
    client = running_job_with_pods(apiserver, make_client(), seed_params)
    apiserver.fail("GET", "pods", 403, 'pods is forbidden: cannot list resource "pods"')
    job = client.get_job_report("fine-tune-bert")
    assert job.status == "Running" and job.progress is None and job.restarts == 0


def test_a_created_job_reads_no_pods(
    apiserver: FakeApiServer, make_client: Any, seed_params: dict[str, Any]
) -> None:
    client = make_client()
    client.train(**seed_params)
    apiserver.requests.clear()
    assert client.get_job_report("fine-tune-bert").status == "Created"
    assert not [path for _, path in apiserver.requests if "/pods" in path]


# --- delete ------------------------------------------------------------------------------------


def test_delete_job_removes_everything_in_foreground(
    apiserver: FakeApiServer, make_client: Any, secret_params: dict[str, Any]
) -> None:
    client = make_client()
    job_with_pods(apiserver, client, secret_params)
    client.delete_job("fine-tune-bert")
    assert apiserver.objects == {}
    (job_delete,) = [d for d in apiserver.delete_bodies if d["path"][0] == PYTORCHJOBS]
    assert job_delete["body"]["propagationPolicy"] == "Foreground"
    with pytest.raises(RuntimeError, match="not found"):
        client.delete_job("fine-tune-bert")


def test_the_garbage_collector_alone_removes_owned_objects(
    apiserver: FakeApiServer, make_client: Any, secret_params: dict[str, Any]
) -> None:
    """The owner references are what a `kubectl delete pytorchjob` relies on."""
    make_client().train(**secret_params)
    apiserver._apply("DELETE", PYTORCHJOBS, "default", "fine-tune-bert", None, {}, {})
    assert apiserver.objects == {}


def test_delete_with_keep_outputs_keeps_the_volume(
    apiserver: FakeApiServer, make_client: Any, secret_params: dict[str, Any]
) -> None:
    client = make_client()
    client.train(**secret_params)
    client.delete_job("fine-tune-bert", keep_outputs=True)
    assert list(apiserver.objects) == [
        ("persistentvolumeclaims", "default", "fine-tune-bert-workspace")
    ]
    pvc = apiserver.objects[("persistentvolumeclaims", "default", "fine-tune-bert-workspace")]
    assert "ownerReferences" not in pvc["metadata"]
