"""Job files that cannot be read safely, or whose values have the wrong type or size, are
refused at once with the file, the place and the field (issue 13: items 13-16)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from kubetune.jobfile import JobFileError, load_job_file

HEADER = """\
name: job
model_provider_parameters: {model_uri: org/model, transformer_type: AutoModelForSequenceClassification}
dataset_provider_parameters: {local: {path: data.csv}}
"""


def job_file(tmp_path: Path, text: str, header: bool = True) -> Path:
    (tmp_path / "data.csv").write_text("text,label\ngood,1\nbad,0\n")
    path = tmp_path / "job.yaml"
    path.write_text((HEADER if header else "") + textwrap.dedent(text))
    return path


def refused(path: Path) -> str:
    with pytest.raises(JobFileError) as raised:
        load_job_file(path)
    message = str(raised.value)
    assert str(path) in message, message
    return message


TRAINER = "trainer_parameters:\n  training_parameters: {output_dir: out}\n"


# --- reading the file (item 14) ----------------------------------------------------------------


def test_duplicate_keys_are_refused_with_their_lines(tmp_path: Path) -> None:
    path = job_file(tmp_path, TRAINER + "num_workers: 1\nnum_workers: 2\n")
    message = refused(path)
    assert f"{path}:7: duplicate key 'num_workers' (first at line 6)" in message


def test_nested_duplicate_keys_are_refused_too(tmp_path: Path) -> None:
    path = job_file(
        tmp_path,
        """\
        trainer_parameters:
          training_parameters:
            output_dir: out
            learning_rate: 0.1
            learning_rate: 0.001
        """,
    )
    assert f"{path}:8: duplicate key 'learning_rate' (first at line 7)" in refused(path)


def test_anchors_and_merges_still_work(tmp_path: Path) -> None:
    path = job_file(
        tmp_path,
        """\
        labels: &common {team: nlp}
        annotations: *common
        trainer_parameters:
          training_parameters: {<<: {output_dir: out, seed: 1}, seed: 2}
        """,
    )
    kwargs = load_job_file(path)
    assert kwargs["annotations"] == {"team": "nlp"}
    assert kwargs["trainer_parameters"].training_parameters.seed == 2


def test_an_alias_bomb_is_refused_without_expanding_it(tmp_path: Path) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    path = job_file(tmp_path, TRAINER + "labels:\n" + "".join(f"  {lv}\n" for lv in levels))
    message = refused(path)
    # a4 is the first level above 100,000 values: 10^5 x's and the lists holding them
    assert f"{path}:11:" in message and "expand to more than 100000 values" in message


def test_an_alias_inside_itself_is_refused(tmp_path: Path) -> None:
    path = job_file(tmp_path, TRAINER + "labels: &loop [*loop]\n")
    assert "refers to the collection that contains it" in refused(path)


def test_deep_nesting_is_refused_with_its_line_not_a_recursion_error(tmp_path: Path) -> None:
    deep = "labels: " + "[" * 5000 + "]" * 5000 + "\n"
    path = job_file(tmp_path, TRAINER + deep)
    message = refused(path)
    assert f"{path}:6: nested more than 32 levels deep" in message


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    path = job_file(tmp_path, TRAINER)
    path.write_bytes(path.read_bytes() + b"labels: {team: caf\xe9}\n")
    assert f"{path}:6:19: not UTF-8 text (byte 0xe9)" in refused(path)


def test_a_nul_character_is_named_with_its_line(tmp_path: Path) -> None:
    path = job_file(tmp_path, TRAINER + "labels: {team: a\x00b}\n")
    assert f"{path}:6: not valid YAML" in refused(path)


def test_a_number_too_long_to_be_meant_is_refused(tmp_path: Path) -> None:
    path = job_file(tmp_path, TRAINER + "num_workers: " + "9" * 5000 + "\n")
    message = refused(path)
    assert f"{path}:6:" in message and "a number of 5000 digits" in message


def test_a_huge_file_is_refused_unread(tmp_path: Path) -> None:
    path = job_file(tmp_path, TRAINER + "# " + "x" * 2**21 + "\n")
    assert "more than 1 MiB" in refused(path)


def test_yaml_errors_give_the_place_but_never_the_text(tmp_path: Path) -> None:
    path = job_file(
        tmp_path,
        TRAINER + "model_provider_parameters: {access_token: hf_secret_value: x}\n",
        header=False,
    )
    message = refused(path)
    assert f"{path}:3:" in message and "not valid YAML" in message
    assert "hf_secret_value" not in message


# --- values (items 13, 15, 16, 7, 9) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "trainer_parameters:\n  training_parameters: {output_dir: out, learning_rate: fast}\n",
            "trainer_parameters.training_parameters.learning_rate='fast': must be a number",
        ),
        (
            "trainer_parameters:\n  training_parameters: {output_dir: out, max_steps: ten}\n",
            "trainer_parameters.training_parameters.max_steps='ten': must be an integer",
        ),
        (
            "trainer_parameters:\n  max_length: 1e20\n  training_parameters: {output_dir: out}\n",
            "max_length='1e20': must be an integer from 1 to 1048576",
        ),
        (
            "trainer_parameters:\n  max_length: 100000000000000000000\n"
            "  training_parameters: {output_dir: out}\n",
            "max_length=100000000000000000000: must be an integer from 1 to 1048576",
        ),
        (
            "trainer_parameters:\n  training_parameters: {output_dir: out, logging_steps: often}\n",
            "trainer_parameters.training_parameters.logging_steps='often': must be a number",
        ),
        (
            "trainer_parameters:\n  training_parameters: {output_dir: out, eval_strategy: sometimes}\n",
            "eval_strategy='sometimes': must be one of 'no', 'steps', 'epoch'",
        ),
        (
            "trainer_parameters:\n  training_parameters: {output_dir: out, fp16: maybe}\n",
            "trainer_parameters.training_parameters.fp16='maybe': must be true or false",
        ),
        (
            "trainer_parameters:\n  training_parameters: {output_dir: out}\n  lora_config: {r: eight}\n",
            "trainer_parameters.lora_config.r='eight': must be an integer",
        ),
        (
            "trainer_parameters:\n  training_parameters: {output_dir: out, eval_strategy: epoch}\n",
            "training_parameters.eval_strategy='epoch': needs an eval split",
        ),
        (
            "trainer_parameters:\n  training_parameters: {output_dir: ../../../../tmp/x}\n",
            "training_parameters.output_dir='../../../../tmp/x': leads out of the job's outputs folder",
        ),
        (TRAINER + "num_workers: 99999999999999999999999\n", "num_workers=99999999999999999999999"),
        (TRAINER + "num_workers: 5000\n", "num_workers=5000: must be an integer from 1 to 1024"),
        (TRAINER + "num_procs_per_worker: 300\n", "num_procs_per_worker=300"),
        (TRAINER + "max_restarts: 100000\n", "max_restarts=100000"),
        (
            TRAINER + "resources_per_worker: {cpu: 1000000000}\n",
            "resources_per_worker['cpu']=1000000000: out of range",
        ),
        (
            TRAINER + "resources_per_worker: {memory: 1000Ti}\n",
            "resources_per_worker['memory']='1000Ti': out of range",
        ),
        (TRAINER + "resources_per_worker: {gpu: 65}\n", "resources_per_worker['gpu']=65"),
        (TRAINER + "storage_config: {size: 2Pi}\n", "storage_config['size']='2Pi'"),
    ],
    ids=[
        "learning_rate fast",
        "max_steps ten",
        "max_length 1e20 text",
        "max_length 1e20 integer",
        "logging_steps text",
        "eval_strategy unknown",
        "fp16 text",
        "lora r text",
        "eval_strategy without eval split",
        "output_dir escapes",
        "num_workers 10^23",
        "num_workers 5000",
        "num_procs_per_worker 300",
        "max_restarts 100000",
        "cpu a billion",
        "memory 1000Ti",
        "gpu 65",
        "storage 2Pi",
    ],
)
def test_bad_values_are_named_before_anything_is_created(
    tmp_path: Path, text: str, expected: str
) -> None:
    assert expected in refused(job_file(tmp_path, text))


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = job_file(
        tmp_path,
        """\
        num_workers: 5000
        trainer_parameters:
          max_length: 0
          training_parameters: {output_dir: ../x, learning_rate: fast, hub_token: 12345, bogus: 1}
          lora_config: {r: eight}
        """,
    )
    message = refused(path)
    for expected in (
        "output_dir='../x': leads out",
        "num_workers=5000",
        "max_length=0",
        "learning_rate='fast'",
        "training_parameters.hub_token: must be a non-empty string or None, not int",
        "bogus: unknown key of TrainingArguments",
        "lora_config.r='eight'",
    ):
        assert expected in message, message
    assert "12345" not in message  # a credential is never echoed


def test_numbers_written_as_yaml_text_become_numbers(tmp_path: Path) -> None:
    # YAML 1.1 reads 1e-5 (no dot) as a string; TrainingArguments would keep the text.
    path = job_file(
        tmp_path,
        "trainer_parameters:\n  training_parameters: {output_dir: out, learning_rate: 1e-5}\n",
    )
    arguments = load_job_file(path)["trainer_parameters"].training_parameters
    assert arguments.learning_rate == 1e-5 and isinstance(arguments.learning_rate, float)


def test_eval_strategy_with_an_eval_split_passes(tmp_path: Path) -> None:
    text = HEADER.replace("{path: data.csv}", "{path: data.csv, eval_split: 'train[:1]'}")
    path = job_file(
        tmp_path,
        text
        + "trainer_parameters:\n  training_parameters: {output_dir: out, eval_strategy: epoch}\n",
        header=False,
    )
    assert load_job_file(path)["trainer_parameters"].training_parameters.eval_strategy == "epoch"


def test_a_hub_token_in_a_job_file_stays_out_of_the_spec(tmp_path: Path) -> None:
    from kubetune.params.job import build_job_spec

    path = job_file(
        tmp_path,
        "trainer_parameters:\n  training_parameters: {output_dir: out, hub_token: hf_abcdef123456}\n",
    )
    kwargs: dict[str, Any] = load_job_file(path)
    spec, secrets = build_job_spec(**kwargs)
    assert "hf_abcdef123456" not in spec.to_json()
    assert "hf_abcdef123456" in secrets.values()


# --- the rules run once per submission (issue 14) ----------------------------------------------


@pytest.fixture
def rule_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Counts the runs of the job-level rules (`params.job.job_problems`)."""
    from kubetune.params import job

    runs: list[str] = []
    real = job.job_problems

    def counted(**arguments: Any) -> list[str]:
        runs.append(str(arguments["name"]))
        return real(**arguments)

    monkeypatch.setattr(job, "job_problems", counted)
    return runs


def test_a_job_file_is_checked_once_and_its_spec_read_back_without_a_check(
    tmp_path: Path, rule_runs: list[str]
) -> None:
    from kubetune.contract.spec import JobSpec
    from kubetune.jobfile import read_job_file

    job = read_job_file(job_file(tmp_path, TRAINER), namespace="team-a")
    assert rule_runs == ["job"] and job.spec.namespace == "team-a"
    assert JobSpec.from_json(job.spec.to_json()) == job.spec  # a worker reads it: no rule runs
    assert rule_runs == ["job"]


def test_train_checks_the_rules_once(tmp_path: Path, rule_runs: list[str]) -> None:
    from kubetune.training import TrainingClient

    kwargs = load_job_file(job_file(tmp_path, TRAINER))
    rule_runs.clear()
    client = TrainingClient(backend="kubernetes", namespace="default")
    objects = client.train(**kwargs, dry_run=True)
    assert objects and rule_runs == ["job"]
