"""Bad inputs to every params class raise one ValueError naming the field; good ones pass."""

from __future__ import annotations

from typing import Any

import pytest
import transformers
from peft import LoraConfig

from kubetune.params.job import build_job_spec
from kubetune.storage_initializer.hugging_face import (
    HuggingFaceDatasetParams,
    HuggingFaceModelParams,
    HuggingFaceTrainerParams,
)
from kubetune.storage_initializer.local import LocalDatasetParams
from kubetune.storage_initializer.s3 import S3DatasetParams

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


def args(**kw: Any) -> transformers.TrainingArguments:
    return transformers.TrainingArguments(**{"output_dir": "o", **kw})


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
        "env var takes a secret's name",
        lambda: job(env_vars={"KUBETUNE_S3_ACCESS_KEY": "x"}),
        "env_vars",
    ),
    (
        "initializer env var takes a secret's name",
        lambda: job(init_env_vars={"KUBETUNE_S3_ACCESS_KEY": "x"}),
        "init_env_vars",
    ),
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
    # issue 13, item 7: a relative output_dir stays inside the job's outputs folder
    (
        "output_dir escapes the job",
        lambda: trainer(training_parameters=args(output_dir="../../../../tmp/x")),
        "training_parameters.output_dir",
    ),
    (
        "output_dir is the parent",
        lambda: trainer(training_parameters=args(output_dir="out/../..")),
        "training_parameters.output_dir",
    ),
    # item 10: a credential of the wrong type (never echoed: test_credentials_are_never_echoed)
    ("access_token not a string", lambda: model(access_token=12345), "access_token"),
    ("dataset access_token not a string", lambda: dataset(access_token=["x"]), "access_token"),
    ("s3 access_key not a string", lambda: s3(access_key=1, secret_key="SK"), "access_key"),
    ("s3 secret_key not a string", lambda: s3(access_key="AK", secret_key=2), "secret_key"),
    (
        "hub_token not a string",
        lambda: trainer(training_parameters=args(hub_token=12345)),
        "training_parameters.hub_token",
    ),
    # item 13: every number is bounded
    ("num_workers 5000", lambda: job(num_workers=5000), "num_workers"),
    ("num_workers 10^23", lambda: job(num_workers=10**23), "num_workers"),
    ("num_procs_per_worker 5000", lambda: job(num_procs_per_worker=5000), "num_procs_per_worker"),
    ("max_restarts negative", lambda: job(max_restarts=-1), "max_restarts"),
    ("max_restarts 10^6", lambda: job(max_restarts=10**6), "max_restarts"),
    ("max_restarts text", lambda: job(max_restarts="3"), "max_restarts"),
    (
        "cpu a billion",
        lambda: job(resources_per_worker={"cpu": 1000000000}),
        "resources_per_worker",
    ),
    ("cpu zero", lambda: job(resources_per_worker={"cpu": 0}), "resources_per_worker"),
    (
        "cpu infinite",
        lambda: job(resources_per_worker={"cpu": float("inf")}),
        "resources_per_worker",
    ),
    ("cpu nan", lambda: job(resources_per_worker={"cpu": float("nan")}), "resources_per_worker"),
    (
        "cpu text Infinity",
        lambda: job(resources_per_worker={"cpu": "Infinity"}),
        "resources_per_worker",
    ),
    ("cpu with spaces", lambda: job(resources_per_worker={"cpu": " 2"}), "resources_per_worker"),
    (
        "cpu with underscore",
        lambda: job(resources_per_worker={"cpu": "1_000"}),
        "resources_per_worker",
    ),
    ("memory 100Pi", lambda: job(resources_per_worker={"memory": "100Pi"}), "resources_per_worker"),
    ("memory 1e30", lambda: job(resources_per_worker={"memory": "1e30"}), "resources_per_worker"),
    ("gpu 1000", lambda: job(resources_per_worker={"gpu": 1000}), "resources_per_worker"),
    (
        "extended resource 10^7",
        lambda: job(resources_per_worker={"example.com/fpga": 10**7}),
        "resources_per_worker",
    ),
    ("storage 10Pi", lambda: job(storage_config={"size": "10Pi"}), "storage_config"),
    ("storage zero", lambda: job(storage_config={"size": 0}), "storage_config"),
    ("max_length 10^20", lambda: trainer(max_length=10**20), "max_length"),
    ("max_length text 1e20", lambda: trainer(max_length="1e20"), "max_length"),
    ("num_labels a billion", lambda: model(num_labels=10**9), "num_labels"),
    # item 15: TrainingArguments values of the wrong type, named before anything is created
    (
        "learning_rate text",
        lambda: trainer(training_parameters=args(learning_rate="fast")),
        "training_parameters.learning_rate",
    ),
    (
        "max_steps text",
        lambda: trainer(training_parameters=args(max_steps="ten")),
        "training_parameters.max_steps",
    ),
    (
        "num_train_epochs text",
        lambda: trainer(training_parameters=args(num_train_epochs="three")),
        "training_parameters.num_train_epochs",
    ),
    # item 16: an evaluation strategy without an evaluation split
    (
        "eval_strategy without eval_split (hf)",
        lambda: job(trainer_parameters=trainer(training_parameters=args(eval_strategy="epoch"))),
        "training_parameters.eval_strategy",
    ),
    (
        "eval_strategy without eval_split (s3)",
        lambda: job(
            dataset_provider_parameters=s3(),
            trainer_parameters=trainer(training_parameters=args(eval_strategy="steps")),
        ),
        "training_parameters.eval_strategy",
    ),
    (
        "eval_strategy without eval_split (local)",
        lambda: job(
            dataset_provider_parameters=LocalDatasetParams(path="/data/x.csv"),
            trainer_parameters=trainer(training_parameters=args(eval_strategy="epoch")),
        ),
        "training_parameters.eval_strategy",
    ),
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
    from kubetune.contract.uris import parse_model_uri

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

    from kubetune.params import validation

    try:
        ReadInstruction.from_spec(split)
        datasets_accepts = True
    except (ValueError, AssertionError):
        datasets_accepts = False
    assert (validation.split_expression("split", split) is None) == datasets_accepts


SECRET_VALUE = 987654321987


@pytest.mark.parametrize(
    "build",
    [
        lambda: model(access_token=SECRET_VALUE),
        lambda: dataset(access_token=SECRET_VALUE),
        lambda: s3(access_key=SECRET_VALUE, secret_key="SK"),
        lambda: s3(access_key="AK", secret_key=SECRET_VALUE),
        lambda: trainer(training_parameters=args(hub_token=SECRET_VALUE)),
        lambda: job(env_vars={"WANDB_API_KEY": SECRET_VALUE}),
    ],
    ids=["model token", "dataset token", "s3 access key", "s3 secret key", "hub_token", "env var"],
)
def test_credentials_of_the_wrong_type_are_never_echoed(build: Any) -> None:
    with pytest.raises(ValueError) as raised:
        build()
    assert str(SECRET_VALUE) not in str(raised.value), str(raised.value)
    assert "int" in str(raised.value)  # what was wrong is still said


def test_error_messages_stay_short_for_huge_numbers() -> None:
    with pytest.raises(ValueError) as raised:
        job(num_workers=10**5000)
    assert len(str(raised.value)) < 300 and "num_workers" in str(raised.value)


@pytest.mark.parametrize(
    ("value", "number"),
    [
        (2, 2.0),
        (0.5, 0.5),
        ("500m", 0.5),
        ("10G", 10e9),
        ("4Gi", 4 * 2**30),
        ("1e3", 1e3),
        ("+1", 1.0),
    ],
)
def test_one_quantity_parser_for_validation_and_the_local_backend(
    value: Any, number: float
) -> None:
    from kubetune.contract import quantities
    from kubetune.params import validation
    from kubetune.training.backends.local import launch

    assert launch.parse_quantity is quantities.parse_quantity
    assert validation.parse_quantity is quantities.parse_quantity
    assert quantities.parse_quantity(value) == number


@pytest.mark.parametrize(
    "value", ["10 GB", "1K", "nan", "Infinity", " 5", "1_000", "-1", True, None]
)
def test_what_kubernetes_refuses_is_not_a_quantity(value: Any) -> None:
    from kubetune.contract import quantities

    assert not quantities.is_quantity(value)


def test_numbers_at_their_bounds_pass() -> None:
    from kubetune.params import validation as v

    spec, _ = job(
        num_workers=v.MAX_WORKERS,
        num_procs_per_worker=v.MAX_PROCS_PER_WORKER,
        max_restarts=v.MAX_RESTARTS,
        resources_per_worker={"cpu": v.MAX_CPU, "memory": "64Ti", "gpu": v.MAX_GPUS},
        storage_config={"size": "1Pi"},
        trainer_parameters=trainer(max_length=v.MAX_LENGTH),
    )
    assert spec.num_workers == v.MAX_WORKERS


def test_eval_strategy_with_an_eval_split_passes() -> None:
    spec, _ = job(
        dataset_provider_parameters=dataset(eval_split="test"),
        trainer_parameters=trainer(training_parameters=args(eval_strategy="epoch")),
    )
    assert spec.trainer.training_arguments["eval_strategy"] == "epoch"


@pytest.mark.parametrize("output_dir", ["out", "a/b/../c", "./out", "/tmp/absolute-outputs"])
def test_output_dirs_inside_the_job_or_absolute_pass(output_dir: str) -> None:
    spec, _ = job(trainer_parameters=trainer(training_parameters=args(output_dir=output_dir)))
    assert spec.trainer.training_arguments["output_dir"] == output_dir
