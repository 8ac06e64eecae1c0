"""JobSpec: JSON round-trip, secrets split out, TrainingArguments/LoraConfig rebuilt equal."""

from __future__ import annotations

import json
import string
import warnings
from pathlib import Path
from typing import Any

import pytest
import transformers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from peft import LoraConfig

from kubetune.contract.problems import InvalidJob
from kubetune.contract.spec import DATASET_SPECS, JobSpec, TransformerType, UnknownFieldsWarning
from kubetune.contract.uris import SourceKind
from kubetune.params.job import build_job_spec
from kubetune.runtime.arguments import rebuild_lora_config, rebuild_training_arguments
from kubetune.storage_initializer.hugging_face import (
    HuggingFaceDatasetParams,
    HuggingFaceModelParams,
    HuggingFaceTrainerParams,
)
from kubetune.storage_initializer.local import LocalDatasetParams
from kubetune.storage_initializer.s3 import S3DatasetParams

DATA = Path(__file__).parent / "data"
SECRET = st.text(
    alphabet=string.ascii_letters + string.digits + "_-", min_size=12, max_size=40
).map(lambda s: "SECRET" + s)
NAME = st.from_regex(r"[a-z][a-z0-9-]{0,20}[a-z0-9]", fullmatch=True)
# A Hub repo name has no '--' (the Hub keeps it for its cache folders).
REPO_NAME = st.from_regex(r"[a-z](-?[a-z0-9]){0,20}", fullmatch=True)
SPLIT = st.sampled_from([None, "train", "train[:3000]", "train[10%:]", "train+test"])


@st.composite
def datasets(draw: st.DrawFn) -> tuple[object, list[str]]:
    kind = draw(st.sampled_from(["hf", "s3", "local"]))
    if kind == "hf":
        token = draw(st.none() | SECRET)
        params = HuggingFaceDatasetParams(
            repo_id=draw(NAME), access_token=token, split=draw(SPLIT), eval_split=draw(SPLIT)
        )
        return params, [token] if token else []
    if kind == "s3":
        keys = draw(st.none() | st.tuples(SECRET, SECRET))
        params = S3DatasetParams(
            endpoint_url="http://127.0.0.1:9000",
            bucket_name=draw(NAME).ljust(3, "x"),
            file_key=draw(NAME) + "/train.csv",
            access_key=keys[0] if keys else None,
            secret_key=keys[1] if keys else None,
            split=draw(SPLIT),
        )
        return params, list(keys or [])
    return LocalDatasetParams(path="/data/" + draw(NAME), split=draw(SPLIT)), []


@st.composite
def jobs(draw: st.DrawFn) -> tuple[JobSpec, dict[str, str], list[str]]:
    token = draw(st.none() | SECRET)
    hub_token = draw(st.none() | SECRET)
    dataset, dataset_secrets = draw(datasets())
    # An evaluation strategy needs an eval split (checked before creation).
    strategies = ["no", "steps", "epoch"] if getattr(dataset, "eval_split", None) else ["no"]
    args = transformers.TrainingArguments(
        output_dir=draw(NAME),
        learning_rate=draw(st.floats(1e-7, 1.0, allow_nan=False)),
        logging_steps=draw(st.sampled_from([0.01, 0.1, 1, 10, 500])),
        save_steps=draw(st.sampled_from([0.25, 0.5, 100])),
        num_train_epochs=draw(st.floats(0.1, 10.0, allow_nan=False)),
        per_device_train_batch_size=draw(st.integers(1, 64)),
        eval_strategy=draw(st.sampled_from(strategies)),
        hub_token=hub_token,
        weight_decay=draw(st.floats(0, 0.5, allow_nan=False)),
    )
    lora = draw(
        st.none()
        | st.builds(
            LoraConfig,
            r=st.integers(1, 64),
            lora_alpha=st.integers(1, 64),
            lora_dropout=st.floats(0, 0.5, allow_nan=False),
            bias=st.sampled_from(["none", "all", "lora_only"]),
            target_modules=st.none()
            | st.lists(
                st.sampled_from(["query", "key", "value", "dense"]), min_size=1, unique=True
            ),
        )
    )
    spec, secrets = build_job_spec(
        name=draw(NAME),
        namespace=draw(NAME),
        num_workers=draw(st.integers(1, 8)),
        num_procs_per_worker=draw(st.integers(1, 8) | st.just("auto")),
        resources_per_worker=draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "cpu": st.sampled_from([1, "500m", 4]),
                    "memory": st.sampled_from(["10G", "4Gi"]),
                    "gpu": st.integers(0, 8),
                },
            )
        ),
        model_provider_parameters=HuggingFaceModelParams(
            model_uri="hf://org/" + draw(REPO_NAME),
            transformer_type="AutoModelForSequenceClassification",
            access_token=token,
            num_labels=draw(st.none() | st.integers(1, 100)),
        ),
        dataset_provider_parameters=dataset,
        trainer_parameters=HuggingFaceTrainerParams(
            training_parameters=args,
            lora_config=lora,
            max_length=draw(st.none() | st.integers(8, 4096)),
        ),
        env_vars=draw(
            st.dictionaries(
                st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True),
                st.text(max_size=20),
                max_size=3,
            )
        ),
    )
    return spec, secrets, [t for t in (token, hub_token) if t] + dataset_secrets


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(jobs())
def test_job_spec_round_trips_through_json_without_secrets(
    job: tuple[JobSpec, dict[str, str], list[str]],
) -> None:
    spec, secrets, secret_values = job
    text = spec.to_json()
    assert JobSpec.from_json(text) == spec
    assert JobSpec.from_json(JobSpec.from_json(text).to_json()).to_json() == text
    for value in secret_values:
        assert value not in text
        assert value in secrets.values()


def test_training_arguments_and_lora_rebuild_equal_with_exact_values() -> None:
    args = transformers.TrainingArguments(
        output_dir="out",
        logging_steps=0.01,
        save_steps=0.25,
        eval_strategy="steps",
        eval_steps=0.1,
        learning_rate=3e-5,
        report_to=[],
    )
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=["query", "value"], task_type="SEQ_CLS")
    spec, _ = build_job_spec(
        name="exact",
        model_provider_parameters=HuggingFaceModelParams(
            "org/m", "AutoModelForSequenceClassification"
        ),
        dataset_provider_parameters=HuggingFaceDatasetParams("imdb", eval_split="test"),
        trainer_parameters=HuggingFaceTrainerParams(args, lora),
    )
    recorded = json.loads(spec.to_json())["trainer"]
    assert recorded["training_arguments"]["logging_steps"] == 0.01
    assert recorded["training_arguments"]["save_steps"] == 0.25
    # Only what the user set travels (plus output_dir), not the whole to_dict().
    assert set(recorded["training_arguments"]) == {
        "output_dir",
        "logging_steps",
        "save_steps",
        "eval_strategy",
        "eval_steps",
        "learning_rate",
    }
    assert set(recorded["lora_config"]) == {"r", "lora_alpha", "target_modules", "task_type"}
    rebuilt = JobSpec.from_json(spec.to_json())
    assert rebuild_training_arguments(rebuilt.trainer) == args
    assert rebuild_training_arguments(rebuilt.trainer).logging_steps == 0.01
    assert rebuild_lora_config(rebuilt.trainer) == lora
    assert (
        rebuild_training_arguments(rebuilt.trainer, output_dir="/abs/out").output_dir == "/abs/out"
    )


def causal_lm_spec(**trainer: Any) -> JobSpec:
    spec, _ = build_job_spec(
        name="causal",
        model_provider_parameters=HuggingFaceModelParams("org/m", "AutoModelForCausalLM"),
        dataset_provider_parameters=LocalDatasetParams("/data/x.jsonl"),
        trainer_parameters=HuggingFaceTrainerParams(
            transformers.TrainingArguments(output_dir="o"), **trainer
        ),
    )
    return JobSpec.from_json(spec.to_json())


def test_full_fine_tuning_records_no_lora() -> None:
    spec = causal_lm_spec(lora_config=None)
    assert rebuild_lora_config(spec.trainer) is None
    assert spec.trainer.lora_config is None
    assert spec.trainer.length_grouping is True  # the default


def test_length_grouping_off_travels() -> None:
    assert causal_lm_spec(length_grouping=False).trainer.length_grouping is False


def seed_like_spec() -> JobSpec:
    spec, _ = build_job_spec(
        name="x",
        model_provider_parameters=HuggingFaceModelParams("org/m", "AutoModelForMaskedLM"),
        dataset_provider_parameters=HuggingFaceDatasetParams("imdb"),
        trainer_parameters=HuggingFaceTrainerParams(transformers.TrainingArguments(output_dir="o")),
    )
    return spec


def test_unknown_spec_keys_from_a_newer_client_are_left_out_with_a_warning() -> None:
    spec = seed_like_spec()
    data = spec.to_dict()
    data["surprise"] = 1
    data["trainer"]["new_knob"] = True
    data["dataset"]["streaming"] = True
    with pytest.warns(UnknownFieldsWarning) as caught:
        read = JobSpec.from_dict(data)
    assert read == spec
    said = " ".join(str(w.message) for w in caught)
    for key in ("surprise", "trainer.new_knob", "dataset.streaming"):
        assert key in said, said


def test_a_mistyped_field_is_named_with_its_value() -> None:
    data = seed_like_spec().to_dict()
    data["num_workers"] = "2"
    data["trainer"]["packing"] = "yes"
    with pytest.raises(InvalidJob) as raised:
        JobSpec.from_dict(data)
    assert "num_workers='2': must be an integer" in str(raised.value)
    assert "trainer.packing='yes': must be true or false" in str(raised.value)


@pytest.mark.parametrize("kind", ["hf", "s3", "local", "function"])
def test_specs_written_by_the_code_before_the_contract_still_load(kind: str) -> None:
    """spec.json files and ConfigMaps written before the typed contract (main at 5b96571, by
    tests/foundation/data/gen_main_specs.py) load without a warning and are written back the same."""
    text = (DATA / f"main-spec-{kind}.json").read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownFieldsWarning)
        spec = JobSpec.from_json(text)
    assert spec.to_json() + "\n" == text
    if kind == "function":
        assert spec.function is not None and spec.function.entrypoint == "torchrun"
        assert spec.model is None and spec.output_path("/w") == Path("/w")
        return
    model, dataset, trainer = spec.fine_tuning
    assert model.transformer_type == TransformerType.SEQUENCE_CLASSIFICATION
    assert model.hub_revision == "v1" and model.num_labels == 5
    assert dataset.kind == kind and isinstance(dataset, DATASET_SPECS[SourceKind(kind)])
    assert trainer.resume_from_checkpoint == "checkpoint-5" and trainer.eval_strategy == "steps"
    assert trainer.uses_lora and trainer.merge_adapter and not trainer.length_grouping
    assert spec.output_path("/w") == Path("/w/outputs/out")
    assert spec.kubernetes.env[0]["name"] == "TOKEN" and spec.storage is not None
    assert spec.storage.storage_class == "fast"
