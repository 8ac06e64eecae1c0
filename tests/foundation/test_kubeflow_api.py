"""Kubeflow 1.9's TrainingClient API as a whole, without running a job: the signatures against the
reference file, the module paths and names Kubeflow's examples import, the backend choice,
and the functions `create_job` refuses before creating anything."""

from __future__ import annotations

import inspect
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kubetune.training import TrainingClient
from kubetune.training.api import training_client
from tests.kubeflow_methods import KUBEFLOW_METHODS, covered_methods, reference_signatures

# Reference defaults as kubetune has them.
DEFAULTS = {
    "None": None,
    "True": True,
    "False": False,
    "1": 1,
    "600": 600,
    "15": 15,
    "constants.DEFAULT_TIMEOUT": 120,
    "constants.PYTORCHJOB_KIND": "PyTorchJob",
    "constants.DEFAULT_PIP_INDEX_URL": "https://pypi.org/simple",
    "{constants.JOB_CONDITION_SUCCEEDED}": {"Succeeded"},
}
# Where kubetune's default differs, and why (docs/migrating-from-kubeflow.md says the same).
DIFFERENT_DEFAULTS = {
    # Kubeflow computes it once at import; kubetune when the client is made, per backend.
    ("__init__", "namespace"): None,
    # A partial storage_config takes kubetune's defaults (ReadWriteMany for several workers).
    ("train", "storage_config"): None,
}


def test_every_signature_is_kubeflows_with_kubetunes_options_keyword_only(shared_dir: Path):
    reference = reference_signatures(shared_dir)
    assert set(reference) == {"__init__", *KUBEFLOW_METHODS}
    for method, expected in reference.items():
        params = list(inspect.signature(getattr(TrainingClient, method)).parameters.values())[1:]
        kubeflows, ours = params[: len(expected)], params[len(expected) :]
        assert [p.name for p in kubeflows] == [name for name, _ in expected], method
        assert all(p.kind is p.POSITIONAL_OR_KEYWORD for p in kubeflows), method
        assert all(p.kind is p.KEYWORD_ONLY for p in ours), (method, ours)
        for param, (name, default) in zip(kubeflows, expected, strict=True):
            if default is None:
                assert param.default is param.empty, (method, name)
            elif (method, name) in DIFFERENT_DEFAULTS:
                assert param.default == DIFFERENT_DEFAULTS[(method, name)], (method, name)
            else:
                assert param.default == DEFAULTS[default], (method, name, param.default)


def test_the_method_table_calls_every_method_in_both_forms():
    forms = covered_methods()
    assert {m: forms.get(m) for m in KUBEFLOW_METHODS} == {
        m: {"positional", "keyword"} for m in KUBEFLOW_METHODS
    }


def test_the_module_paths_and_names_kubeflows_examples_import():
    # The import cell of Kubeflow's TinyLlama notebook (train_api_hf_dataset.ipynb), prefix swapped.
    namespace: dict[str, Any] = {}
    exec(
        textwrap.dedent(
            """
            from kubetune.training.api.training_client import TrainingClient
            from kubetune.storage_initializer.s3 import S3DatasetParams
            from kubetune.storage_initializer.hugging_face import (
                HuggingFaceModelParams,
                HuggingFaceTrainerParams,
                HuggingFaceDatasetParams,
            )
            from kubetune.storage_initializer.constants import INIT_CONTAINER_MOUNT_PATH
            from peft import LoraConfig
            import transformers
            from transformers import TrainingArguments
            from kubetune.training import constants
            """
        ),
        namespace,
    )
    assert namespace["TrainingClient"] is TrainingClient
    assert namespace["INIT_CONTAINER_MOUNT_PATH"] == "/workspace"
    constants = namespace["constants"]
    assert constants.PYTORCHJOB_KIND == "PyTorchJob"
    assert constants.JOB_CONDITION_SUCCEEDED == "Succeeded" and constants.DEFAULT_TIMEOUT == 120
    assert constants.JOB_NAME_LABEL == "training.kubeflow.org/job-name"
    assert constants.REPLICA_TYPE_MASTER == "Master" and constants.REPLICA_TYPE_WORKER == "Worker"
    assert constants.STORAGE_INITIALIZER == "storage-initializer"

    import kubeflow.training.models as kubeflow_models

    from kubetune.storage_initializer.constants import VOLUME_PATH_DATASET, VOLUME_PATH_MODEL
    from kubetune.training import KubeflowOrgV1JobCondition, KubeflowOrgV1PyTorchJob, models
    from kubetune.training.constants import constants as inner

    assert (
        inner.PYTORCHJOB_KIND == "PyTorchJob" and inner.JOB_CONDITIONS == constants.JOB_CONDITIONS
    )
    assert KubeflowOrgV1PyTorchJob is kubeflow_models.KubeflowOrgV1PyTorchJob
    assert KubeflowOrgV1JobCondition is kubeflow_models.KubeflowOrgV1JobCondition
    assert models.V1EnvVar is kubeflow_models.V1EnvVar
    assert constants.JOB_MODELS_TYPE is KubeflowOrgV1PyTorchJob
    assert constants.STORAGE_INITIALIZER_VOLUME_MOUNT.mount_path == "/workspace"
    assert (VOLUME_PATH_MODEL, VOLUME_PATH_DATASET) == ("/workspace/model", "/workspace/dataset")
    with pytest.raises(AttributeError):
        import kubetune.training as package

        package.KubeflowOrgV1NoSuchModel  # noqa: B018


# --- the backend -------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("KUBETUNE_BACKEND", raising=False)
    monkeypatch.setattr(training_client, "SERVICE_ACCOUNT_TOKEN", str(tmp_path / "no-token"))
    return tmp_path


def test_the_backend_rule(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.client import Configuration

    kubeconfig = str(clean_env / "kubeconfig")  # read on the first API call, not here
    assert TrainingClient().backend.name == "local"
    assert TrainingClient(kubeconfig).backend.name == "kubernetes"  # Kubeflow's first argument
    assert TrainingClient(None, "a-context").backend.name == "kubernetes"
    assert TrainingClient(None, None, Configuration()).backend.name == "kubernetes"
    token = clean_env / "token"
    token.write_text("a service account token")
    monkeypatch.setattr(training_client, "SERVICE_ACCOUNT_TOKEN", str(token))
    assert TrainingClient().backend.name == "kubernetes"  # inside a pod
    monkeypatch.setenv("KUBETUNE_BACKEND", "local")
    assert TrainingClient(kubeconfig).backend.name == "local"  # the environment beats both
    assert TrainingClient(backend="kubernetes").backend.name == "kubernetes"  # explicit wins
    with pytest.raises(ValueError, match="backend='docker': allowed: local, kubernetes"):
        TrainingClient(backend="docker")


def test_another_job_kind_is_refused_naming_what_is_supported(clean_env: Path) -> None:
    with pytest.raises(ValueError, match=r"job_kind='TFJob': kubetune runs PyTorchJob jobs only"):
        TrainingClient(job_kind="TFJob")
    assert TrainingClient(None, None, None, "team-a", "PyTorchJob").namespace == "team-a"


# --- create_job(train_func=...) refusals --------------------------------------------------------

MODULE_GLOBAL = 3


def reads_a_global(parameters):
    return MODULE_GLOBAL


def takes_nothing():
    print("no parameters")


def make_closure() -> Any:
    factor = 2

    def scaled(parameters):
        return parameters["x"] * factor

    return scaled


def decorated_function() -> Any:
    import functools

    @functools.lru_cache
    def cached(parameters):
        return parameters

    return cached


def unreadable() -> Any:
    namespace: dict[str, Any] = {}
    exec("def made_by_exec(parameters):\n    return parameters\n", namespace)
    return namespace["made_by_exec"]


class Trainer:
    def train(self, parameters):
        return parameters


@pytest.mark.parametrize(
    ("train_func", "parameters", "reason"),
    [
        (lambda p: p, {"x": 1}, "a lambda has no name to call"),
        (make_closure(), {"x": 1}, "a closure over factor"),
        (unreadable(), {"x": 1}, "its source cannot be read"),
        (decorated_function(), {"x": 1}, "cannot be shipped"),
        (Trainer().train, {"x": 1}, "a bound method cannot be shipped"),
        (reads_a_global, {"x": 1}, "reads the global name\\(s\\) MODULE_GLOBAL"),
        (reads_a_global, {"x": object()}, "must hold only Python literals"),
        (reads_a_global, {"x": float("nan")}, "must hold only Python literals"),
        (reads_a_global, ["x"], "must be a dict or None"),
        (takes_nothing, {"x": 1}, "is called as train_func\\(parameters\\)"),
        ("print", None, "must be a function"),
    ],
    ids=[
        "lambda",
        "closure",
        "no-source",
        "decorated",
        "method",
        "global",
        "object-parameter",
        "nan-parameter",
        "list-parameters",
        "signature",
        "not-callable",
    ],
)
def test_functions_that_cannot_travel_are_refused_before_anything_is_created(
    clean_env: Path, train_func: Any, parameters: Any, reason: str
) -> None:
    home = clean_env / "home"
    client = TrainingClient(home=home)
    with pytest.raises(ValueError, match=reason):
        client.create_job(name="refused", train_func=train_func, parameters=parameters)
    assert not home.exists()


def test_every_problem_of_a_function_job_is_reported_at_once(clean_env: Path) -> None:
    client = TrainingClient(home=clean_env / "home")
    with pytest.raises(ValueError) as refused:
        client.create_job(
            name="Bad_Name",
            train_func=make_closure(),
            parameters={"x": object()},
            num_workers=0,
            num_chief_replicas=1,
            packages_to_install=["not a requirement!"],
            pip_index_url="ftp://example.com",
            env_vars=[{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        )
    message = str(refused.value)
    for part in (
        "name='Bad_Name'",
        "num_workers=0",
        "closure over factor",
        "Python literals",
        "num_chief_replicas",
        "'not a requirement!' is not a pip requirement",
        "pip_index_url='ftp://example.com'",
        "env_vars: ['A']: valueFrom/envFrom",
    ):
        assert part in message, (part, message)


def test_a_function_travels_as_its_source_and_one_call() -> None:
    from kubetune.training.functions import program

    text = program(reads_a_global, {"text": "it's $HOME", "n": [1, 2.5, None]})
    namespace: dict[str, Any] = {"MODULE_GLOBAL": 7}
    exec(text.replace("reads_a_global({", "result = reads_a_global({"), namespace)
    assert namespace["result"] == 7
    assert text.startswith("def reads_a_global(parameters):\n")
    assert text.rstrip().endswith("reads_a_global({'text': \"it's $HOME\", 'n': [1, 2.5, None]})")


def test_an_output_dir_under_the_mount_path_lands_in_the_jobs_workspace() -> None:
    from kubetune.contract.layout import output_path

    workspace = Path("/home/me/.kubetune/jobs/default/job/workspace")
    assert output_path(workspace, "/workspace") == workspace / "outputs"  # not over model/
    assert output_path(workspace, "/workspace/tinyllama") == workspace / "tinyllama"
    assert output_path(workspace, "/workspace/../elsewhere") == Path("/workspace/../elsewhere")
    assert output_path(workspace, "/workspacefoo/x") == Path("/workspacefoo/x")
    assert output_path(workspace, "/data/run") == Path("/data/run")
    assert output_path(workspace, "run") == workspace / "outputs" / "run"
    assert output_path("/workspace", "/workspace/run") == Path("/workspace/run")  # in a pod
