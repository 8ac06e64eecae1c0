"""Credential fields of TrainingArguments (hub_token) travel as secrets: never in the job spec
or its ConfigMap, in the Secret with a secretKeyRef to the trainer containers, and back in
the trainer's TrainingArguments."""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

import pytest
import transformers

from kubetune.contract.secrets import (
    INITIALIZER_SECRET_ENV_VARS,
    MODEL_TOKEN_ENV,
    SECRET_ENV_VARS,
    TRAINER_SECRET_ENV_VARS,
    TRAINING_ARGUMENT_SECRETS,
    initializer_secrets,
    trainer_secrets,
    training_argument_secrets,
)
from kubetune.contract.spec import JobSpec
from kubetune.params.job import build_job_spec
from kubetune.runtime.arguments import rebuild_training_arguments
from kubetune.storage_initializer.hugging_face import (
    HuggingFaceDatasetParams,
    HuggingFaceModelParams,
    HuggingFaceTrainerParams,
)
from kubetune.training.backends.kubernetes import manifests
from kubetune.training.images import default_images

HUB_TOKEN = "hf_push_token_0123456789abcdef"
MODEL_TOKEN = "hf_model_token_fedcba9876543210"
HUB_TOKEN_ENV = TRAINING_ARGUMENT_SECRETS["hub_token"]


def build(num_workers: int = 2) -> tuple[JobSpec, dict[str, str], transformers.TrainingArguments]:
    arguments = transformers.TrainingArguments(
        output_dir="out", push_to_hub=True, hub_model_id="me/model", hub_token=HUB_TOKEN
    )
    spec, secrets = build_job_spec(
        name="pushes",
        num_workers=num_workers,
        model_provider_parameters=HuggingFaceModelParams(
            "org/m", "AutoModelForSequenceClassification", access_token=MODEL_TOKEN
        ),
        dataset_provider_parameters=HuggingFaceDatasetParams("imdb"),
        trainer_parameters=HuggingFaceTrainerParams(arguments),
    )
    return spec, secrets, arguments


def test_hub_token_is_a_secret_not_part_of_the_spec() -> None:
    spec, secrets, arguments = build()
    assert HUB_TOKEN not in spec.to_json()
    assert "hub_token" not in spec.trainer.training_arguments
    assert spec.trainer.training_arguments["push_to_hub"] is True
    assert secrets == {HUB_TOKEN_ENV: HUB_TOKEN, MODEL_TOKEN_ENV: MODEL_TOKEN}
    # The trainer puts it back: the rebuilt arguments equal the user's.
    environ = {HUB_TOKEN_ENV: HUB_TOKEN, "UNRELATED": "x"}
    rebuilt = JobSpec.from_json(spec.to_json())
    assert (
        rebuild_training_arguments(rebuilt.trainer, **training_argument_secrets(environ))
        == arguments
    )
    assert training_argument_secrets({}) == {}


def test_every_credential_field_of_training_arguments_is_a_secret() -> None:
    words = ("token", "secret", "password", "credential", "api_key", "apikey")
    not_credentials = {"include_num_input_tokens_seen", "average_tokens_across_devices"}
    credentials = {
        f.name
        for f in dataclasses.fields(transformers.TrainingArguments)
        if any(w in f.name.lower() for w in words) and f.name not in not_credentials
    }
    assert credentials == set(TRAINING_ARGUMENT_SECRETS)


def test_secret_names_live_in_one_place_and_each_reaches_its_reader() -> None:
    assert set(SECRET_ENV_VARS) == set(INITIALIZER_SECRET_ENV_VARS) | set(TRAINER_SECRET_ENV_VARS)
    assert not set(INITIALIZER_SECRET_ENV_VARS) & set(TRAINER_SECRET_ENV_VARS)
    _, secrets, _ = build()
    assert initializer_secrets(secrets) == {MODEL_TOKEN_ENV: MODEL_TOKEN}
    assert trainer_secrets(secrets) == {HUB_TOKEN_ENV: HUB_TOKEN}


def test_a_spec_that_carries_a_credential_is_refused() -> None:
    spec, _, _ = build()
    data = spec.to_dict()
    data["trainer"]["training_arguments"]["hub_token"] = HUB_TOKEN
    with pytest.raises(ValueError) as raised:
        JobSpec.from_dict(data)
    assert "training_arguments.hub_token" in str(raised.value)
    assert HUB_TOKEN not in str(raised.value)


def secret_refs(container: dict[str, Any]) -> set[str]:
    return {
        e["valueFrom"]["secretKeyRef"]["key"] for e in container.get("env", []) if "valueFrom" in e
    }


def test_pytorchjob_hub_token_reaches_the_trainers_and_model_token_the_initializer() -> None:
    spec, secrets, _ = build(num_workers=2)
    objects = manifests.build_objects(spec, secrets, default_images(gpu=False), "pytorchjob")
    secret, configmap, _, job = objects
    assert secret["kind"] == "Secret"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data[HUB_TOKEN_ENV] == HUB_TOKEN
    assert HUB_TOKEN not in json.dumps(configmap) and HUB_TOKEN not in json.dumps(job)
    replicas = job["spec"]["pytorchReplicaSpecs"]
    for replica in ("Master", "Worker"):
        pod = replicas[replica]["template"]["spec"]
        assert secret_refs(pod["containers"][0]) == {HUB_TOKEN_ENV}
    initializer = replicas["Master"]["template"]["spec"]["initContainers"][0]
    assert secret_refs(initializer) == {MODEL_TOKEN_ENV}


def test_trainjob_node_gets_both_secrets() -> None:
    # The TrainJob runs the initializer and the trainer in the same container.
    spec, secrets, _ = build(num_workers=2)
    job = manifests.build_objects(spec, secrets, default_images(gpu=False), "trainjob")[-1]
    assert secret_refs(job["spec"]["trainer"]) == {HUB_TOKEN_ENV, MODEL_TOKEN_ENV}
    assert HUB_TOKEN not in json.dumps(job)
