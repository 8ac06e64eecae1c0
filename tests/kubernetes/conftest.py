"""Fixtures of the Kubernetes backend tests: the seed's example as train() arguments, the CRD
schemas from ../shared/k8s, and the fake API server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune.training import TrainingClient
from tests.kubernetes.fake_apiserver import FakeApiServer
from tests.kubernetes.k8s_helpers import MODEL_TOKEN, S3_ACCESS, S3_SECRET, load_crd_schema


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
