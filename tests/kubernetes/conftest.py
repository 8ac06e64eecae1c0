"""Fixtures of the Kubernetes backend tests: the seed's example as train() arguments, the CRD
schemas from ../shared/k8s, strict Kubernetes core-schema checks, and the fake API server."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fake_apiserver import FakeApiServer

from kubetune.training import TrainingClient

# Secret values used by the tests; none may appear in a rendered object outside the Secret.
MODEL_TOKEN = "hf_modelTokenValue0123456789"
DATASET_TOKEN = "hf_datasetTokenValue987654321"
S3_ACCESS = "AKIAEXAMPLEACCESS00"
S3_SECRET = "s3SecretKey/With+Chars=0123456789abcd"


@pytest.fixture(scope="session")
def seed_params() -> dict[str, Any]:
    """The seed's fine-tune-bert example (fine-tuning-api.md) as train() keyword arguments."""
    import transformers
    from peft import LoraConfig

    from kubetune.storage_initializer.hugging_face import (
        HuggingFaceDatasetParams,
        HuggingFaceModelParams,
        HuggingFaceTrainerParams,
    )

    return dict(
        name="fine-tune-bert",
        model_provider_parameters=HuggingFaceModelParams(
            model_uri="hf://google-bert/bert-base-cased",
            transformer_type=transformers.AutoModelForSequenceClassification,
        ),
        dataset_provider_parameters=HuggingFaceDatasetParams(
            repo_id="yelp_review_full",
            split="train[:3000]",
        ),
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
        num_workers=4,
        num_procs_per_worker=2,
        resources_per_worker={"gpu": 2, "cpu": 5, "memory": "10G"},
    )


@pytest.fixture(scope="session")
def secret_params(seed_params: dict[str, Any]) -> dict[str, Any]:
    """The seed's example with a private model (token) and an S3 dataset with keys."""
    from kubetune.storage_initializer.hugging_face import HuggingFaceModelParams
    from kubetune.storage_initializer.s3 import S3DatasetParams

    seed_model = seed_params["model_provider_parameters"]
    return {
        **seed_params,
        "model_provider_parameters": HuggingFaceModelParams(
            model_uri=seed_model.model_uri,
            transformer_type=seed_model.transformer_type,
            access_token=MODEL_TOKEN,
        ),
        "dataset_provider_parameters": S3DatasetParams(
            endpoint_url="https://s3.example.com",
            bucket_name="datasets",
            file_key="yelp/train.csv",
            access_key=S3_ACCESS,
            secret_key=S3_SECRET,
        ),
    }


def render(api: str, params: dict[str, Any], **overrides: Any) -> list[dict[str, Any]]:
    """train(..., dry_run=True) through TrainingClient, as the CLI does it."""
    objects: list[dict[str, Any]] = TrainingClient(backend="kubernetes", api=api).train(
        **{**params, **overrides}, dry_run=True
    )
    return objects


def by_kind(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in objects}


# --- CRD schemas -----------------------------------------------------------------------------


def strict(schema: Any) -> Any:
    """The schema with unknown fields rejected wherever the API server would prune them
    (objects with `properties` and no `additionalProperties`/preserve-unknown-fields)."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def load_crd_schema(path: Path) -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: the CRDs are large
    crd = yaml.load(path.read_text(), Loader=loader)
    assert crd["kind"] == "CustomResourceDefinition"
    (version,) = [v for v in crd["spec"]["versions"] if v.get("storage")]
    return strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))


@pytest.fixture(scope="session")
def crd_validators(shared_dir: Path) -> dict[str, Any]:
    """jsonschema validators of PyTorchJob and TrainJob from the CRDs in ../shared/k8s."""
    import jsonschema

    validators = {}
    for kind, file in (
        ("PyTorchJob", "kubeflow.org_pytorchjobs.yaml"),
        ("TrainJob", "trainer.kubeflow.org_trainjobs.yaml"),
    ):
        schema = load_crd_schema(shared_dir / "k8s" / file)
        validators[kind] = jsonschema.validators.validator_for(schema)(schema)
    return validators


def crd_errors(validators: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validators[obj["kind"]].iter_errors(obj)
    ]


# --- Kubernetes core schema ------------------------------------------------------------------


def core_errors(obj: dict[str, Any]) -> str | None:
    """Validates a core object through the kubernetes client's (pydantic) model in strict mode:
    unknown fields, wrong types and missing required fields fail. None when valid."""
    import pydantic
    from kubernetes import client

    model = {
        "Secret": client.V1Secret,
        "ConfigMap": client.V1ConfigMap,
        "PersistentVolumeClaim": client.V1PersistentVolumeClaim,
        "PodTemplateSpec": client.V1PodTemplateSpec,
    }[obj.get("kind", "PodTemplateSpec")]
    data = {k: v for k, v in obj.items() if not (model is client.V1PodTemplateSpec and k == "kind")}
    try:
        model.model_validate(data, strict=True)
    except pydantic.ValidationError as e:
        return str(e)
    return None


# --- the fake API server ---------------------------------------------------------------------


@pytest.fixture
def apiserver() -> Iterator[FakeApiServer]:
    server = FakeApiServer(namespaces=("default", "team-a")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_client(apiserver: FakeApiServer) -> Any:
    """TrainingClient(backend='kubernetes') pointed at the fake API server."""

    def make(api: str = "pytorchjob", namespace: str | None = None) -> TrainingClient:
        client = TrainingClient(
            backend="kubernetes",
            client_configuration=apiserver.configuration(),
            api=api,
            namespace=namespace,
        )
        client.backend.poll_interval = 0.02  # type: ignore[attr-defined]
        return client

    return make
