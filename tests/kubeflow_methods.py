"""Every public method of Kubeflow 1.9's `TrainingClient`, called in Kubeflow's keyword and
positional forms, with the return types and the exceptions Kubeflow documents, on either backend.

`CASES` is the table; `run_case(case, ctx)` calls one case against a job that exists and has
Succeeded (`ctx.name`, with a master and one worker pod) and checks the outcome for the backend.
`REFERENCE` (shared/reference/kubeflow-v1.9-training-client.md) is parsed by `reference_signatures`
so that a test compares our signatures with Kubeflow's.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

KUBEFLOW_METHODS = (
    "train",
    "create_job",
    "get_job",
    "list_jobs",
    "get_job_conditions",
    "is_job_created",
    "is_job_running",
    "is_job_restarting",
    "is_job_succeeded",
    "is_job_failed",
    "wait_for_job_conditions",
    "get_job_pods",
    "get_job_pod_names",
    "get_job_logs",
    "update_job",
    "delete_job",
)


@dataclass
class Ctx:
    """What a case needs: a client, a Succeeded job (`name`) with pods `master` and `worker`,
    train() parameters for a new job, and (on Kubernetes) the fake API server."""

    backend: str
    client: Any
    name: str
    namespace: str
    master: str
    worker: str
    params: dict[str, Any]
    server: Any = None
    seen: list[Any] = field(default_factory=list)

    def job(self) -> Any:
        return self.client.get_job(self.name)


Check = Callable[[Any, Ctx], None]


@dataclass
class Case:
    """`call(ctx)` -> (method name, args, kwargs); `expect[backend]`: a check of the result or
    the exception class and a pattern its message must match."""

    id: str
    call: Callable[[Ctx], tuple[str, tuple[Any, ...], dict[str, Any]]]
    expect: dict[str, Check | tuple[type[Exception], str]]


def run_case(case: Case, ctx: Ctx) -> None:
    method, args, kwargs = case.call(ctx)
    expected = case.expect.get(ctx.backend, case.expect.get("both"))
    assert expected is not None, f"{case.id}: no expectation for {ctx.backend}"
    if isinstance(expected, tuple):
        error, pattern = expected
        with pytest.raises(error, match=pattern):
            getattr(ctx.client, method)(*args, **kwargs)
    else:
        expected(getattr(ctx.client, method)(*args, **kwargs), ctx)


# --- checks ------------------------------------------------------------------------------------


def _models() -> Any:
    from kubetune.training import models

    return models


def is_pytorchjob(named: str = "") -> Check:
    def check(result: Any, ctx: Ctx) -> None:
        assert isinstance(result, _models().KubeflowOrgV1PyTorchJob), type(result)
        assert result.metadata.name == (named or ctx.name)
        assert result.status.conditions[-1].type == "Succeeded"

    return check


def is_none(then: Callable[[Ctx], None] | None = None) -> Check:
    def check(result: Any, ctx: Ctx) -> None:
        assert result is None
        if then is not None:
            then(ctx)

    return check


def is_bool(value: bool) -> Check:
    def check(result: Any, ctx: Ctx) -> None:
        assert result is value

    return check


def are_conditions(result: Any, ctx: Ctx) -> None:
    assert result and all(isinstance(c, _models().KubeflowOrgV1JobCondition) for c in result)
    assert result[0].type == "Created" and result[-1].type == "Succeeded"


def are_jobs(result: Any, ctx: Ctx) -> None:
    assert isinstance(result, list)
    assert all(isinstance(j, _models().KubeflowOrgV1PyTorchJob) for j in result)
    assert ctx.name in [j.metadata.name for j in result]


def are_pods(*which: str) -> Check:
    def check(result: Any, ctx: Ctx) -> None:
        from kubernetes.client import V1Pod

        assert all(isinstance(p, V1Pod) for p in result)
        assert [p.metadata.name for p in result] == [getattr(ctx, w) for w in which]
        for pod in result:
            assert pod.metadata.labels["training.kubeflow.org/job-name"] == ctx.name
            assert pod.status.phase == "Succeeded"

    return check


def are_names(*which: str) -> Check:
    def check(result: Any, ctx: Ctx) -> None:
        assert result == [getattr(ctx, w) for w in which]

    return check


def are_logs(*which: str, events: bool = False) -> Check:
    def check(result: Any, ctx: Ctx) -> None:
        assert isinstance(result, tuple) and len(result) == 2
        logs, found_events = result
        assert list(logs) == [getattr(ctx, w) for w in which]
        assert all(isinstance(text, str) and text for text in logs.values())
        if events:
            assert f"pytorchjob/{ctx.name}" in found_events
            assert all(isinstance(e, str) for lines in found_events.values() for e in lines)
        else:
            assert found_events == {}

    return check


def called_back(result: Any, ctx: Ctx) -> None:
    is_pytorchjob()(result, ctx)
    assert [j.metadata.name for j in ctx.seen] == [ctx.name]


def _stored(ctx: Ctx, name: str) -> dict[str, Any]:
    return ctx.server.objects[("pytorchjobs", ctx.namespace, name)]


def _created(name: str, container_check: Callable[[dict[str, Any]], bool]) -> Callable[[Ctx], None]:
    def then(ctx: Ctx) -> None:
        master = _stored(ctx, name)["spec"]["pytorchReplicaSpecs"]["Master"]
        assert container_check(master["template"]["spec"]), master

    return then


def _suspended(ctx: Ctx) -> None:
    assert _stored(ctx, ctx.name)["spec"]["runPolicy"]["suspend"] is True


def _deleted_with(grace: int | None) -> Callable[[Ctx], None]:
    def then(ctx: Ctx) -> None:
        assert ("pytorchjobs", ctx.namespace, ctx.name) not in ctx.server.objects
        (deletion,) = [d for d in ctx.server.delete_bodies if d["path"][0] == "pytorchjobs"]
        if grace is not None:
            assert deletion["body"]["gracePeriodSeconds"] == grace

    return then


# --- arguments ---------------------------------------------------------------------------------


def suspended(ctx: Ctx) -> Any:
    job = ctx.job()
    job.spec.run_policy.suspend = True
    return job


def delete_options() -> Any:
    from kubernetes.client import V1DeleteOptions

    return V1DeleteOptions(grace_period_seconds=0)


def env_list() -> list[Any]:
    from kubernetes.client import V1EnvVar, V1EnvVarSource, V1SecretKeySelector

    return [
        V1EnvVar(name="PLAIN", value="1"),
        V1EnvVar(
            name="FROM_SECRET",
            value_from=V1EnvVarSource(secret_key_ref=V1SecretKeySelector(name="s", key="k")),
        ),
    ]


def resources() -> Any:
    from kubernetes.client import V1ResourceRequirements

    return V1ResourceRequirements(requests={"cpu": "1"}, limits={"cpu": "2", "memory": "2Gi"})


def a_function(parameters):
    print("hello", parameters["who"])


def a_job_object(name: str) -> Any:
    from kubernetes.client import V1Container, V1ObjectMeta, V1PodSpec, V1PodTemplateSpec

    models = _models()
    template = V1PodTemplateSpec(
        spec=V1PodSpec(containers=[V1Container(name="pytorch", image="example.com/train:1")])
    )
    return models.KubeflowOrgV1PyTorchJob(
        api_version="kubeflow.org/v1",
        kind="PyTorchJob",
        metadata=V1ObjectMeta(name=name),
        spec=models.KubeflowOrgV1PyTorchJobSpec(
            run_policy=models.KubeflowOrgV1RunPolicy(clean_pod_policy="None"),
            pytorch_replica_specs={
                "Master": models.KubeflowOrgV1ReplicaSpec(replicas=1, template=template)
            },
        ),
    )


def _has_function(spec: dict[str, Any]) -> bool:
    (container,) = spec["containers"]
    return container["command"] == ["bash", "-c"] and "def a_function" in container["args"][0]


def _has_env_refs(spec: dict[str, Any]) -> bool:
    (container,) = spec["containers"]
    (init,) = spec["initContainers"]
    by_name = {e["name"]: e for e in container["env"]}
    return (
        by_name["PLAIN"]["value"] == "1"
        and by_name["FROM_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "s"
        and container["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
        and container["resources"]["requests"] == {"cpu": "1"}
        and {"name": "INIT", "value": "x"} in init["env"]
    )


LOCAL_ONLY_ON_K8S = (ValueError, "Kubernetes|kubernetes")

CASES = [
    # train
    Case(
        "train-positional",
        lambda c: (
            "train",
            (
                "positional-train",
                c.namespace,
                1,
                1,
                resources(),
                c.params["model_provider_parameters"],
                c.params["dataset_provider_parameters"],
                c.params["trainer_parameters"],
                {"INIT": "x"},
                env_list(),
                {"size": "1Gi"},
            ),
            {},
        ),
        {
            "kubernetes": is_none(_created("positional-train", _has_env_refs)),
            "local": (ValueError, r"env_vars: \['FROM_SECRET'\].*local backend"),
        },
    ),
    Case(
        "train-keyword-invalid",
        lambda c: ("train", (), {"name": "Bad_Name", "num_workers": 0}),
        {"both": (ValueError, r"name='Bad_Name'.*\n.*num_workers=0")},
    ),
    # create_job
    Case(
        "create_job-positional-job-object",
        lambda c: ("create_job", (a_job_object("from-object"),), {}),
        {
            "kubernetes": is_none(_created("from-object", lambda s: "containers" in s)),
            "local": LOCAL_ONLY_ON_K8S,
        },
    ),
    Case(
        "create_job-keyword-train_func",
        lambda c: (
            "create_job",
            (),
            {
                "name": "from-function",
                "train_func": a_function,
                "parameters": {"who": "you"},
                "num_workers": 2,
                "base_image": "example.com/torch:1",
                "packages_to_install": ["boto3"],
                "pip_index_url": "https://pypi.example.com/simple",
            },
        ),
        {
            "kubernetes": is_none(_created("from-function", _has_function)),
            "local": None,  # a real local job: tests/local/test_kubeflow_notebook.py
        },
    ),
    Case(
        "create_job-positional-train_func-lambda",
        lambda c: ("create_job", (None, "lambda-job", None, None, None, lambda p: p, {}), {}),
        {"both": (ValueError, "a lambda has no name to call")},
    ),
    Case(
        "create_job-job-and-name",
        lambda c: ("create_job", (a_job_object("x"), "x"), {}),
        {"both": (ValueError, "only `namespace` may be given with `job`")},
    ),
    Case(
        "create_job-nothing",
        lambda c: ("create_job", (), {"name": "x"}),
        {"both": (ValueError, "give `job`")},
    ),
    # get_job, list_jobs
    Case(
        "get_job-positional",
        lambda c: ("get_job", (c.name, c.namespace, "PyTorchJob", 30), {}),
        {"both": is_pytorchjob()},
    ),
    Case(
        "get_job-keyword",
        lambda c: ("get_job", (), {"name": c.name, "namespace": c.namespace, "timeout": 30}),
        {"both": is_pytorchjob()},
    ),
    Case("get_job-missing", lambda c: ("get_job", ("nope",), {}), {"both": (RuntimeError, "nope")}),
    Case(
        "get_job-other-kind",
        lambda c: ("get_job", (c.name,), {"job_kind": "TFJob"}),
        {"both": (ValueError, "job_kind='TFJob'.*allowed: 'PyTorchJob'")},
    ),
    Case(
        "list_jobs-positional",
        lambda c: ("list_jobs", (c.namespace, "PyTorchJob", 30), {}),
        {"both": are_jobs},
    ),
    Case("list_jobs-keyword", lambda c: ("list_jobs", (), {"timeout": 30}), {"both": are_jobs}),
    # conditions
    Case(
        "get_job_conditions-positional",
        lambda c: ("get_job_conditions", (c.name, c.namespace, "PyTorchJob", None, 30), {}),
        {"both": are_conditions},
    ),
    Case(
        "get_job_conditions-keyword-job",
        lambda c: ("get_job_conditions", (), {"job": c.job()}),
        {"both": are_conditions},
    ),
    Case(
        "get_job_conditions-nothing",
        lambda c: ("get_job_conditions", (), {}),
        {"both": (ValueError, "`name` or a `job`")},
    ),
    Case(
        "get_job_conditions-not-a-job",
        lambda c: ("get_job_conditions", (), {"job": {"kind": "TFJob"}}),
        {"both": (ValueError, "KubeflowOrgV1PyTorchJob")},
    ),
    *[
        Case(
            f"{method}-{form}",
            (lambda c, method=method: (method, (c.name, c.namespace, "PyTorchJob", None, 30), {}))
            if form == "positional"
            else (lambda c, method=method: (method, (), {"job": c.job()})),
            {"both": is_bool(value)},
        )
        for method, value in (
            ("is_job_created", True),
            ("is_job_running", False),
            ("is_job_restarting", False),
            ("is_job_succeeded", True),
            ("is_job_failed", False),
        )
        for form in ("positional", "keyword")
    ],
    # wait
    Case(
        "wait_for_job_conditions-positional",
        lambda c: (
            "wait_for_job_conditions",
            (c.name, c.namespace, "PyTorchJob", {"Succeeded"}, 30, 1, None, 30),
            {},
        ),
        {"both": is_pytorchjob()},
    ),
    Case(
        "wait_for_job_conditions-keyword-callback",
        lambda c: (
            "wait_for_job_conditions",
            (),
            {
                "name": c.name,
                "expected_conditions": {"Running", "Succeeded"},
                "polling_interval": 0.1,
                "callback": c.seen.append,
            },
        ),
        {"both": called_back},
    ),
    Case(
        "wait_for_job_conditions-unknown-condition",
        lambda c: ("wait_for_job_conditions", (c.name,), {"expected_conditions": {"Done"}}),
        {"both": (ValueError, "expected_conditions=\\['Done'\\]")},
    ),
    Case(
        "wait_for_job_conditions-timeout",
        lambda c: (
            "wait_for_job_conditions",
            (c.name,),
            {"expected_conditions": {"Failed"}, "wait_timeout": 0.3, "polling_interval": 0.1},
        ),
        {"both": (TimeoutError, "did not reach \\['Failed'\\] within 0.3 s")},
    ),
    # pods
    Case(
        "get_job_pods-positional-master",
        lambda c: ("get_job_pods", (c.name, c.namespace, True, None, None, 30), {}),
        {"both": are_pods("master")},
    ),
    Case(
        "get_job_pods-keyword-worker",
        lambda c: (
            "get_job_pods",
            (),
            {"name": c.name, "replica_type": "worker", "replica_index": 0},
        ),
        {"both": are_pods("worker")},
    ),
    Case(
        "get_job_pods-keyword-Master-type",
        lambda c: ("get_job_pods", (), {"name": c.name, "replica_type": "Master"}),
        {"both": are_pods("master")},
    ),
    Case(
        "get_job_pods-bad-replica-type",
        lambda c: ("get_job_pods", (c.name,), {"replica_type": "ps"}),
        {"both": (ValueError, "replica_type='ps'.*master, worker")},
    ),
    Case(
        "get_job_pod_names-positional",
        lambda c: ("get_job_pod_names", (c.name, c.namespace, False, None, None, 30), {}),
        {"both": are_names("master", "worker")},
    ),
    Case(
        "get_job_pod_names-keyword",
        lambda c: ("get_job_pod_names", (), {"name": c.name, "is_master": True}),
        {"both": are_names("master")},
    ),
    # logs
    Case(
        "get_job_logs-positional",
        lambda c: (
            "get_job_logs",
            (c.name, c.namespace, "PyTorchJob", True, None, None, False, 30, False),
            {},
        ),
        {"both": are_logs("master")},
    ),
    Case(
        "get_job_logs-keyword-all-verbose",
        lambda c: ("get_job_logs", (), {"name": c.name, "is_master": False, "verbose": True}),
        {"both": are_logs("master", "worker", events=True)},
    ),
    Case(
        "get_job_logs-missing",
        lambda c: ("get_job_logs", ("nope",), {}),
        {"both": (RuntimeError, "nope")},
    ),
    # update, delete
    Case(
        "update_job-positional",
        lambda c: ("update_job", (suspended(c), c.name, c.namespace, "PyTorchJob"), {}),
        {
            "kubernetes": is_none(_suspended),
            "local": (RuntimeError, "update_job: the local backend cannot change"),
        },
    ),
    Case(
        "update_job-keyword",
        lambda c: ("update_job", (), {"job": suspended(c), "name": c.name}),
        {
            "kubernetes": is_none(_suspended),
            "local": (RuntimeError, "backend='kubernetes'"),
        },
    ),
    Case(
        "delete_job-positional-options",
        lambda c: ("delete_job", (c.name, c.namespace, "PyTorchJob", delete_options()), {}),
        {"kubernetes": is_none(_deleted_with(0)), "local": None},
    ),
    Case(
        "delete_job-keyword",
        lambda c: ("delete_job", (), {"name": c.name, "job_kind": "PyTorchJob"}),
        {"kubernetes": is_none(_deleted_with(None)), "local": None},
    ),
    Case(
        "delete_job-missing",
        lambda c: ("delete_job", ("nope",), {}),
        {"both": (RuntimeError, "nope")},
    ),
]


def cases_for(backend: str) -> list[Any]:
    """The cases that run on `backend` (None marks a case another test covers there)."""
    return [
        pytest.param(case, id=case.id)
        for case in CASES
        if case.expect.get(backend, case.expect.get("both")) is not None
    ]


def covered_methods() -> dict[str, set[str]]:
    """method -> the forms the table calls it in ('positional' if any positional argument)."""
    params: dict[str, Any] = defaultdict(lambda: None)
    # A stand-in client: the calls only build their arguments here, nothing runs.
    job = SimpleNamespace(spec=SimpleNamespace(run_policy=SimpleNamespace()))
    client = SimpleNamespace(get_job=lambda name: job)
    ctx = Ctx("kubernetes", client, "job", "default", "job-master-0", "job-worker-0", params)
    forms: dict[str, set[str]] = {}
    for case in CASES:
        method, args, _ = case.call(ctx)
        forms.setdefault(method, set()).add("positional" if args else "keyword")
    return forms


# --- Kubeflow's signatures ---------------------------------------------------------------------

REFERENCE = "reference/kubeflow-v1.9-training-client.md"
_SECTION = re.compile(r"^## `(?P<name>\w+)`\n```text\n(?P<body>.*?)\n```", re.S | re.M)


def reference_signatures(shared: Path) -> dict[str, list[tuple[str, str | None]]]:
    """method -> [(parameter, default text or None)] from the reference file."""
    text = (shared / REFERENCE).read_text()
    found = {}
    for match in _SECTION.finditer(text):
        params = []
        for line in match.group("body").splitlines()[1:]:
            line = line.strip().rstrip(",")
            if not line or line.startswith(")"):
                continue
            name = re.match(r"\w+", line)
            assert name is not None, line
            default = line.split(" = ", 1)[1] if " = " in line else None
            params.append((name.group(0), default))
        found[match.group("name")] = params
    return found
