"""Bad inputs to every params class raise one ValueError naming the field; good ones pass."""

from __future__ import annotations

from typing import Any

import pytest
import transformers
from peft import LoraConfig

from kubetune.storage_initializer.hugging_face import (
    HuggingFaceDatasetParams,
    HuggingFaceModelParams,
    HuggingFaceTrainerParams,
)
from kubetune.storage_initializer.local import LocalDatasetParams
from kubetune.storage_initializer.s3 import S3DatasetParams
from kubetune.training.spec import build_job_spec

SEQ = "AutoModelForSequenceClassification"
S3_OK: dict[str, Any] = {
    "endpoint_url": "http://127.0.0.1:9000",
    "bucket_name": "data",
    "file_key": "train.csv",
}


def model(**kw: Any) -> HuggingFaceModelParams:
    return HuggingFaceModelParams(**{"model_uri": "hf://org/name", "transformer_type": SEQ, **kw})


def dataset(**kw: Any) -> HuggingFaceDatasetParams:
    return HuggingFaceDatasetParams(**{"repo_id": "imdb", **kw})


def s3(**kw: Any) -> S3DatasetParams:
    return S3DatasetParams(**{**S3_OK, **kw})


def trainer(**kw: Any) -> HuggingFaceTrainerParams:
    return HuggingFaceTrainerParams(
        **{"training_parameters": transformers.TrainingArguments(output_dir="o"), **kw}
    )


def job(**kw: Any) -> Any:
    args: dict[str, Any] = {
        "name": "job",
        "model_provider_parameters": model(),
        "dataset_provider_parameters": dataset(),
        "trainer_parameters": trainer(),
        **kw,
    }
    return build_job_spec(**args)


BAD_INPUTS = [
    # (id, constructor, field named in the message)
    ("model_uri empty", lambda: model(model_uri=""), "model_uri"),
    ("model_uri None", lambda: model(model_uri=None), "model_uri"),
    ("model_uri spaces", lambda: model(model_uri="org/my model"), "model_uri"),
    ("model_uri hf:// only", lambda: model(model_uri="hf://"), "model_uri"),
    ("model_uri http scheme", lambda: model(model_uri="http://example.com/model"), "model_uri"),
    ("model_uri relative path", lambda: model(model_uri="./models/bert"), "model_uri"),
    ("model_uri three parts", lambda: model(model_uri="hf://a/b/c"), "model_uri"),
    ("model_uri bad revision", lambda: model(model_uri="hf://org/name@"), "model_uri"),
    ("model_uri file relative", lambda: model(model_uri="file://models/bert"), "model_uri"),
    ("model_uri s3 no prefix", lambda: model(model_uri="s3://bucket"), "model_uri"),
    (
        "transformer_type unknown class",
        lambda: model(transformer_type=transformers.AutoModel),
        "transformer_type",
    ),
    (
        "transformer_type unknown name",
        lambda: model(transformer_type="AutoModelForSeq2SeqLM"),
        "transformer_type",
    ),
    ("transformer_type None", lambda: model(transformer_type=None), "transformer_type"),
    ("num_labels zero", lambda: model(num_labels=0), "num_labels"),
    ("num_labels negative", lambda: model(num_labels=-3), "num_labels"),
    ("num_labels string", lambda: model(num_labels="2"), "num_labels"),
    ("num_labels bool", lambda: model(num_labels=True), "num_labels"),
    (
        "num_labels on causal LM",
        lambda: model(transformer_type="AutoModelForCausalLM", num_labels=2),
        "num_labels",
    ),
    (
        "num_labels on QA",
        lambda: model(transformer_type="AutoModelForQuestionAnswering", num_labels=2),
        "num_labels",
    ),
    (
        "revision conflicts with uri",
        lambda: model(model_uri="hf://org/name@v1", revision="v2"),
        "revision",
    ),
    ("access_token empty", lambda: model(access_token=""), "access_token"),
    ("repo_id empty", lambda: dataset(repo_id=""), "repo_id"),
    ("repo_id blank", lambda: dataset(repo_id="   "), "repo_id"),
    ("repo_id None", lambda: dataset(repo_id=None), "repo_id"),
    ("split unclosed bracket", lambda: dataset(split="train[:3000"), "split"),
    ("split words in slice", lambda: dataset(split="train[a:b]"), "split"),
    ("split mixed percent", lambda: dataset(split="train[10%:200]"), "split"),
    ("split over 100 percent", lambda: dataset(split="train[:150%]"), "split"),
    ("split empty term", lambda: dataset(split="train+"), "split"),
    ("split empty string", lambda: dataset(split=""), "split"),
    ("eval_split bad", lambda: dataset(eval_split="test[::2]"), "eval_split"),
    ("s3 endpoint ftp", lambda: s3(endpoint_url="ftp://host/x"), "endpoint_url"),
    ("s3 endpoint no host", lambda: s3(endpoint_url="http://"), "endpoint_url"),
    ("s3 endpoint empty", lambda: s3(endpoint_url=""), "endpoint_url"),
    ("s3 bucket upper case", lambda: s3(bucket_name="MyBucket"), "bucket_name"),
    ("s3 bucket too short", lambda: s3(bucket_name="ab"), "bucket_name"),
    ("s3 bucket underscore", lambda: s3(bucket_name="my_bucket"), "bucket_name"),
    ("s3 bucket ip address", lambda: s3(bucket_name="192.168.1.1"), "bucket_name"),
    ("s3 bucket double dot", lambda: s3(bucket_name="my..bucket"), "bucket_name"),
    ("s3 bucket trailing dash", lambda: s3(bucket_name="bucket-"), "bucket_name"),
    ("s3 key empty", lambda: s3(file_key=""), "file_key"),
    ("s3 key escapes", lambda: s3(file_key="data/../../etc/passwd"), "file_key"),
    ("s3 access without secret", lambda: s3(access_key="AK"), "secret_key"),
    ("s3 secret without access", lambda: s3(secret_key="SK"), "access_key"),
    ("s3 split bad", lambda: s3(split="train[:x]"), "split"),
    ("local path empty", lambda: LocalDatasetParams(path=""), "path"),
    ("local split bad", lambda: LocalDatasetParams(path="/data", split="train[1:2:3]"), "split"),
    (
        "training_parameters dict",
        lambda: trainer(training_parameters={"output_dir": "o"}),
        "training_parameters",
    ),
    ("lora_config dict", lambda: trainer(lora_config={"r": 8}), "lora_config"),
    ("max_length zero", lambda: trainer(max_length=0), "max_length"),
    ("columns not mapping", lambda: trainer(columns=["text"]), "columns"),
    ("packing not bool", lambda: trainer(packing="yes"), "packing"),
    ("length_grouping not bool", lambda: trainer(length_grouping=0), "length_grouping"),
    (
        "merge_adapter without lora",
        lambda: trainer(lora_config=None, merge_adapter=True),
        "merge_adapter",
    ),
    ("job name upper case", lambda: job(name="Fine-Tune"), "name"),
    ("job name starts with digit", lambda: job(name="1job"), "name"),
    ("job name underscore", lambda: job(name="fine_tune"), "name"),
    ("job name too long", lambda: job(name="a" * 64), "name"),
    ("num_workers zero", lambda: job(num_workers=0), "num_workers"),
    ("num_workers float", lambda: job(num_workers=1.5), "num_workers"),
    ("num_procs_per_worker zero", lambda: job(num_procs_per_worker=0), "num_procs_per_worker"),
    ("num_procs_per_worker word", lambda: job(num_procs_per_worker="many"), "num_procs_per_worker"),
    ("resource unknown key", lambda: job(resources_per_worker={"cpus": 2}), "resources_per_worker"),
    (
        "resource bad memory",
        lambda: job(resources_per_worker={"memory": "10 GB"}),
        "resources_per_worker",
    ),
    (
        "resource negative cpu",
        lambda: job(resources_per_worker={"cpu": -1}),
        "resources_per_worker",
    ),
    (
        "resource fractional gpu",
        lambda: job(resources_per_worker={"gpu": "0.5"}),
        "resources_per_worker",
    ),
    ("storage bad size", lambda: job(storage_config={"size": "lots"}), "storage_config"),
    (
        "storage bad access mode",
        lambda: job(storage_config={"access_modes": ["ReadWriteAll"]}),
        "storage_config",
    ),
    ("env var bad name", lambda: job(env_vars={"1BAD": "x"}), "env_vars"),
    ("env var not string", lambda: job(env_vars={"GOOD": 1}), "env_vars"),
    (
        "model params wrong type",
        lambda: job(model_provider_parameters="bert"),
        "model_provider_parameters",
    ),
    (
        "dataset params wrong type",
        lambda: job(dataset_provider_parameters={"repo_id": "x"}),
        "dataset_provider_parameters",
    ),
    ("namespace bad", lambda: job(namespace="Team A"), "namespace"),
]


@pytest.mark.parametrize(
    ("build", "field"), [(b, f) for _, b, f in BAD_INPUTS], ids=[i for i, _, _ in BAD_INPUTS]
)
def test_bad_input_raises_one_value_error_naming_the_field(build: Any, field: str) -> None:
    with pytest.raises(ValueError) as raised:
        build()
    message = str(raised.value)
    assert f"{field}=" in message or f"{field}[" in message or f"{field}:" in message, message


def test_all_problems_are_reported_at_once() -> None:
    with pytest.raises(ValueError) as raised:
        S3DatasetParams(endpoint_url="ftp://x", bucket_name="B", file_key="", access_key="AK")
    message = str(raised.value)
    assert "4 problems" in message
    for field in ("endpoint_url", "bucket_name", "file_key", "secret_key"):
        assert field in message
    assert "AK" not in message.replace("access_key", ""), "a secret value leaked into the error"


@pytest.mark.parametrize(
    ("uri", "kind", "location", "revision"),
    [
        ("hf://google-bert/bert-base-cased", "hf", "google-bert/bert-base-cased", None),
        ("hf://org/name@v1.0", "hf", "org/name", "v1.0"),
        ("bert-base-uncased", "hf", "bert-base-uncased", None),
        ("org/name", "hf", "org/name", None),
        ("/models/bert", "local", "/models/bert", None),
        ("file:///models/bert", "local", "/models/bert", None),
        ("s3://models/team/bert", "s3", "team/bert", None),
    ],
)
def test_model_uri_forms(uri: str, kind: str, location: str, revision: str | None) -> None:
    from kubetune.storage_initializer.uris import parse_model_uri

    source = parse_model_uri(uri)
    assert (source.kind, source.location, source.revision) == (kind, location, revision)
    model(model_uri=uri)


@pytest.mark.parametrize(
    "split",
    [
        "train",
        "train[:3000]",
        "train[10%:]",
        "train+test",
        "test[-500:]",
        "train[:50%](pct1_dropremainder)",
        "validation_matched",
    ],
)
def test_valid_splits_pass(split: str) -> None:
    dataset(split=split)


def test_transformer_type_by_name_becomes_the_class() -> None:
    params = model(transformer_type="AutoModelForTokenClassification", num_labels=9)
    assert params.transformer_type is transformers.AutoModelForTokenClassification


def test_lora_default_and_none() -> None:
    assert isinstance(trainer().lora_config, LoraConfig)
    assert trainer(lora_config=None).lora_config is None


def test_repr_hides_secrets() -> None:
    text = repr(model(access_token="hf_secret123")) + repr(
        s3(access_key="AKIA123", secret_key="sk-456")
    )
    assert "hf_secret123" not in text and "AKIA123" not in text and "sk-456" not in text


def test_job_level_good_values_pass() -> None:
    spec, _ = job(
        num_procs_per_worker="auto",
        resources_per_worker={"cpu": "500m", "memory": "10G", "gpu": 2, "example.com/fpga": 1},
        storage_config={
            "size": "20Gi",
            "storage_class": "standard",
            "access_modes": ["ReadWriteOnce"],
        },
    )
    assert spec.resources_per_worker["cpu"] == "500m"


@pytest.mark.parametrize(
    "split",
    [
        "train",
        "train[:3000]",
        "train[10%:]",
        "train+test",
        "test[-500:]",
        "train[:50%](closest)",
        "a.b",
        "train[:3000",
        "train[a:b]",
        "train[10%:200]",
        "train+",
        "x y",
        "train[1:2:3]",
    ],
)
def test_split_check_agrees_with_the_datasets_parser(split: str) -> None:
    from datasets import ReadInstruction

    from kubetune import validation

    try:
        ReadInstruction.from_spec(split)
        datasets_accepts = True
    except (ValueError, AssertionError):
        datasets_accepts = False
    assert (validation.split_expression("split", split) is None) == datasets_accepts
