"""Dataset mixes as a user gives them (a list of dataset params, MixedDataset, DatasetMix, job
YAML) and as the JobSpec records them: every problem reported at once before anything is
created, credentials split off, the seed taken from the TrainingArguments."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import transformers

from kubetune import DatasetMix, MixedDataset
from kubetune.contract.problems import InvalidJob
from kubetune.contract.secrets import DATASET_TOKEN_ENV, S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV
from kubetune.contract.spec import DatasetMixSpec, JobSpec, LocalDatasetSpec
from kubetune.jobfile import JobFileError, load_job_file, read_job_file
from kubetune.params.job import build_job_spec
from kubetune.storage_initializer.hugging_face import (
    HuggingFaceDatasetParams,
    HuggingFaceModelParams,
    HuggingFaceTrainerParams,
)
from kubetune.storage_initializer.local import LocalDatasetParams
from kubetune.storage_initializer.s3 import S3DatasetParams

TOKEN = "hf_SECRETtoken1234"
S3 = {"access_key": "AKIASECRETKEY", "secret_key": "SECRETsecretSECRET"}


def build(dataset: Any, **training: Any) -> tuple[JobSpec, dict[str, str]]:
    return build_job_spec(
        name="mix",
        model_provider_parameters=HuggingFaceModelParams("org/m", "AutoModelForCausalLM"),
        dataset_provider_parameters=dataset,
        trainer_parameters=HuggingFaceTrainerParams(
            training_parameters=transformers.TrainingArguments(output_dir="out", **training),
            lora_config=None,
        ),
    )


def s3(key: str, **extra: Any) -> S3DatasetParams:
    return S3DatasetParams("http://127.0.0.1:9000", "bucket", key, **extra)


def test_a_mix_of_hub_s3_and_local_round_trips_without_its_credentials():
    spec, secrets = build(
        [
            MixedDataset(HuggingFaceDatasetParams("org/chat", access_token=TOKEN), weight=3),
            MixedDataset(s3("data/b.jsonl", **S3), weight=1.5, num_samples=1000),
            MixedDataset(LocalDatasetParams("/data/c.jsonl", eval_split="train[:10]"), weight=1),
        ],
        data_seed=7,
        seed=3,
    )
    mix = spec.dataset
    assert isinstance(mix, DatasetMixSpec) and mix.weighted and mix.seed == 7
    assert [p.weight for p in mix.parts] == [3, 1.5, 1]
    assert [p.num_samples for p in mix.parts] == [None, 1000, None]
    assert mix.parts[2].source == LocalDatasetSpec(path="/data/c.jsonl", eval_split="train[:10]")
    assert secrets == {
        DATASET_TOKEN_ENV: TOKEN,
        S3_ACCESS_KEY_ENV: S3["access_key"],
        S3_SECRET_KEY_ENV: S3["secret_key"],
    }
    text = spec.to_json()
    assert all(secret not in text for secret in secrets.values())
    assert JobSpec.from_json(text) == spec
    assert json.loads(text)["dataset"]["parts"][1] == {
        "dataset": {
            "kind": "s3",
            "endpoint_url": "http://127.0.0.1:9000",
            "bucket_name": "bucket",
            "file_key": "data/b.jsonl",
            "region_name": None,
            "split": None,
            "eval_split": None,
        },
        "weight": 1.5,
        "num_samples": 1000,
    }


def test_a_plain_list_is_concatenated_with_the_seed_of_the_training_arguments():
    spec, _ = build([LocalDatasetParams("/a.csv"), LocalDatasetParams("/b.csv")], seed=11)
    assert isinstance(spec.dataset, DatasetMixSpec)
    assert not spec.dataset.weighted and spec.dataset.seed == 11
    assert spec.dataset.describe() == "dataset mix of 2 (dataset /a.csv, dataset /b.csv)"


def test_one_params_object_stays_the_seeds_form():
    spec, _ = build(LocalDatasetParams("/a.csv"))
    assert spec.to_dict()["dataset"] == {
        "kind": "local",
        "path": "/a.csv",
        "split": None,
        "eval_split": None,
    }


def test_every_problem_of_a_mix_is_reported_at_once_without_a_credential():
    with pytest.raises(InvalidJob) as error:
        build(
            [
                MixedDataset(HuggingFaceDatasetParams("org/a", access_token=TOKEN), weight=2),
                HuggingFaceDatasetParams("org/b", access_token="hf_OTHERsecret99"),
                "data.csv",
            ],
            eval_strategy="epoch",
        )
    message = str(error.value)
    for expected in (
        "dataset_provider_parameters[2]=str: must be HuggingFaceDatasetParams, S3DatasetParams "
        "or LocalDatasetParams or MixedDataset",
        "dataset_provider_parameters[1]: no weight, while others have one",
    ):
        assert expected in message, message

    with pytest.raises(InvalidJob) as error:
        build(
            [
                HuggingFaceDatasetParams("org/a", access_token=TOKEN),
                HuggingFaceDatasetParams("org/b", access_token="hf_OTHERsecret99"),
            ],
            eval_strategy="epoch",
        )
    message = str(error.value)
    assert "2 problems" in message
    assert (
        "dataset_provider_parameters[1].access_token: differs from "
        "dataset_provider_parameters[0].access_token (values not shown)"
    ) in message
    assert "no dataset of the mix has an eval_split" in message
    assert TOKEN not in message and "OTHERsecret" not in message


def test_the_mix_classes_check_their_own_fields():
    with pytest.raises(ValueError) as error:
        MixedDataset(DatasetMix([LocalDatasetParams("/a.csv")]), weight=-1, num_samples=0)  # type: ignore[arg-type]
    message = str(error.value)
    assert "3 problems" in message
    assert "dataset=DatasetMix: must be HuggingFaceDatasetParams" in message
    assert "weight=-1: must be a number above 0" in message
    assert "num_samples=0: must be an integer from 1" in message
    with pytest.raises(ValueError, match=r"weight=nan: must be a number above 0"):
        MixedDataset(LocalDatasetParams("/a.csv"), weight=float("nan"))
    with pytest.raises(ValueError) as error:
        DatasetMix([LocalDatasetParams("/a.csv")], stopping_strategy="all_exhausted")
    assert "applies to datasets interleaved by weight" in str(error.value)
    with pytest.raises(ValueError, match="must be one of first_exhausted, all_exhausted"):
        DatasetMix([MixedDataset(LocalDatasetParams("/a.csv"), weight=1)], stopping_strategy="x")
    with pytest.raises(ValueError, match="not an empty list"):
        DatasetMix([])


def test_a_mistyped_part_of_a_spec_is_named():
    data = json.loads(build([LocalDatasetParams("/a.csv")])[0].to_json())
    data["dataset"]["parts"][0]["weight"] = "heavy"
    data["dataset"]["parts"].append({"weight": 1})
    with pytest.raises(InvalidJob) as error:
        JobSpec.from_dict(data)
    assert "dataset.parts[0].weight='heavy': must be a number or null" in str(error.value)
    assert "dataset.parts[1].dataset: missing (required)" in str(error.value)


# --- job files ---------------------------------------------------------------------------------

HEADER = """\
name: job
model_provider_parameters: {model_uri: org/model, transformer_type: AutoModelForCausalLM}
trainer_parameters:
  training_parameters: {output_dir: out, seed: 5}
"""


def job_file(tmp_path: Path, datasets: str) -> Path:
    for name in ("a.jsonl", "b.jsonl"):
        (tmp_path / name).write_text('{"text": "x"}\n')
    path = tmp_path / "job.yaml"
    path.write_text(HEADER + textwrap.dedent(datasets))
    return path


def test_a_job_file_takes_a_list_of_datasets_with_weights(tmp_path):
    path = job_file(
        tmp_path,
        """\
        dataset_provider_parameters:
          - local: {path: a.jsonl}
            weight: 3
          - local: {path: b.jsonl, split: "train[:1]"}
            weight: 1
            num_samples: 10
        """,
    )
    job = read_job_file(path)
    mix = job.kwargs["dataset_provider_parameters"]
    assert isinstance(mix, DatasetMix) and mix.stopping_strategy == "first_exhausted"
    assert [p.dataset.path for p in mix.parts] == [
        str(tmp_path / "a.jsonl"),
        str(tmp_path / "b.jsonl"),
    ]
    assert [(p.weight, p.num_samples) for p in mix.parts] == [(3, None), (1, 10)]
    assert isinstance(job.spec.dataset, DatasetMixSpec) and job.spec.dataset.seed == 5


def test_a_job_file_names_the_mix_and_its_stopping_strategy(tmp_path):
    path = job_file(
        tmp_path,
        """\
        dataset_provider_parameters:
          mix:
            stopping_strategy: all_exhausted
            datasets:
              - {local: {path: a.jsonl}, weight: 1}
              - {local: {path: b.jsonl}, weight: 2}
        """,
    )
    mix = load_job_file(path)["dataset_provider_parameters"]
    assert mix.stopping_strategy == "all_exhausted" and mix.weighted


def test_a_job_files_mix_problems_carry_their_key_paths(tmp_path):
    path = job_file(
        tmp_path,
        """\
        dataset_provider_parameters:
          mix:
            stopping_strategy: sometimes
            datasets:
              - {local: {path: a.jsonl}, weight: 0}
              - {local: {path: missing.jsonl}, hf: {repo_id: x}}
              - {local: {path: b.jsonl, splt: train}, num_samples: many}
              - just a name
        """,
    )
    with pytest.raises(JobFileError) as error:
        load_job_file(path)
    message = str(error.value)
    for expected in (
        "dataset_provider_parameters.mix.datasets[0].weight=0: must be a number above 0",
        "dataset_provider_parameters.mix.datasets[1]: must be a mapping with exactly one key "
        "naming the kind (hf, s3, local)",
        "dataset_provider_parameters.mix.datasets[2].num_samples='many'",
        "dataset_provider_parameters.mix.datasets[2].local.splt: unknown key of LocalDatasetParams",
        "dataset_provider_parameters.mix.datasets[3]: must be a mapping such as",
    ):
        assert expected in message, message

    path = job_file(
        tmp_path,
        """\
        dataset_provider_parameters:
          mix:
            stopping_strategy: sometimes
            datasets: [{local: {path: a.jsonl}}]
        """,
    )
    with pytest.raises(JobFileError, match=r"mix\.stopping_strategy='sometimes': must be one of"):
        load_job_file(path)


def test_the_datasets_without_a_weight_are_named_by_their_own_index():
    # A wrong entry before them must not shift the index the message names.
    with pytest.raises(InvalidJob) as error:
        build(
            [
                "data.csv",
                MixedDataset(LocalDatasetParams("/a.csv"), weight=1),
                LocalDatasetParams("/b.csv"),
            ]
        )
    message = str(error.value)
    assert "dataset_provider_parameters[2]: no weight, while others have one" in message, message


def test_a_job_files_mix_is_checked_as_a_whole_beside_a_wrong_entry(tmp_path):
    path = job_file(
        tmp_path,
        """\
        dataset_provider_parameters:
          mix:
            stopping_strategy: sometimes
            datasets:
              - {local: {path: a.jsonl}, weight: 1}
              - {parquet: {path: b.parquet}, weight: 1}
              - {local: {path: b.jsonl}}
        """,
    )
    with pytest.raises(JobFileError) as error:
        load_job_file(path)
    message = str(error.value)
    for expected in (
        "dataset_provider_parameters.mix.datasets[1]: must be a mapping with exactly one key",
        "dataset_provider_parameters.mix.datasets[2]: no weight, while others have one",
        "dataset_provider_parameters.mix.stopping_strategy='sometimes': must be one of",
    ):
        assert expected in message, message
