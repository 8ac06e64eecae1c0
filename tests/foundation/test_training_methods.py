"""TRL's methods and the causal-LM options on the client side: which config class is which
method, the config recorded field by field and rebuilt equal (bf16 off unless asked), the rules
(one ValueError naming field, value and what is allowed, before anything is created), job files'
`method:` key, and the Kubernetes objects carrying the same spec."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import transformers
from peft import LoraConfig
from trl import DPOConfig, KTOConfig, SFTConfig
from trl.experimental.orpo import ORPOConfig

from kubetune.contract.causal_lm import (
    DataFormat,
    LossOn,
    TrainingMethod,
    config_class,
    method_of,
)
from kubetune.contract.spec import JobSpec
from kubetune.jobfile import JobFileError, load_job_file, read_job_file
from kubetune.params.job import build_job_spec
from kubetune.runtime.arguments import rebuild_training_arguments
from kubetune.storage_initializer.hugging_face import (
    HuggingFaceModelParams,
    HuggingFaceTrainerParams,
)
from kubetune.storage_initializer.local import LocalDatasetParams

CAUSAL = "AutoModelForCausalLM"
SEQ = "AutoModelForSequenceClassification"
CONFIGS = {
    TrainingMethod.SFT: SFTConfig,
    TrainingMethod.DPO: DPOConfig,
    TrainingMethod.ORPO: ORPOConfig,
    TrainingMethod.KTO: KTOConfig,
}


def spec_of(arguments: Any, transformer_type: str = CAUSAL, **trainer: Any) -> JobSpec:
    spec, _ = build_job_spec(
        name="job",
        model_provider_parameters=HuggingFaceModelParams("org/m", transformer_type),
        dataset_provider_parameters=LocalDatasetParams("/data/x.jsonl"),
        trainer_parameters=HuggingFaceTrainerParams(arguments, LoraConfig(r=4), **trainer),
    )
    return JobSpec.from_json(spec.to_json())


def test_each_config_class_is_its_method_and_trl_is_not_imported_to_tell() -> None:
    for method, cls in CONFIGS.items():
        assert config_class(method) is cls
        assert method_of(cls("o", bf16=False)) is method
    assert method_of(transformers.TrainingArguments("o")) is None
    assert config_class(None) is transformers.TrainingArguments
    code = (
        "import sys; from kubetune.contract.causal_lm import method_of; "
        "print(method_of(object()), 'trl' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "False"]


@pytest.mark.parametrize(
    ("method", "fields"),
    [
        (
            TrainingMethod.SFT,
            {"packing": True, "max_length": 64, "completion_only_loss": True, "eos_token": "</s>"},
        ),
        (
            TrainingMethod.DPO,
            {"beta": 0.25, "loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, 0.5]},
        ),
        (TrainingMethod.ORPO, {"beta": 0.2, "max_length": 128}),
        (TrainingMethod.KTO, {"desirable_weight": 1.5, "learning_rate": 5e-3}),
    ],
)
def test_a_trl_config_is_recorded_as_set_and_rebuilt_equal(
    method: TrainingMethod, fields: dict[str, Any]
) -> None:
    arguments = CONFIGS[method](
        output_dir="out", bf16=False, activation_checkpointing=False, logging_steps=0.1, **fields
    )
    spec = spec_of(arguments)
    trainer = spec.trainer
    assert trainer is not None and trainer.method is method
    assert json.loads(spec.to_json())["trainer"]["method"] == method.value
    # Only what was set travels (bf16=False is where kubetune records from): values exact.
    assert trainer.training_arguments == {
        "output_dir": "out",
        "activation_checkpointing": False,
        "logging_steps": 0.1,
        **fields,
    }
    rebuilt = rebuild_training_arguments(trainer)
    assert type(rebuilt) is CONFIGS[method] and rebuilt == arguments
    assert rebuilt.bf16 is False


def test_bf16_travels_only_when_asked_for_and_a_cpu_worker_rebuilds_the_default() -> None:
    asked = spec_of(DPOConfig("out", bf16=True, use_cpu=True)).trainer
    assert asked is not None and asked.training_arguments["bf16"] is True
    default = spec_of(KTOConfig("out", bf16=False)).trainer
    assert default is not None and "bf16" not in default.training_arguments
    # TRL's own default (bf16 on) refuses a machine without a GPU; the rebuild does not.
    with pytest.raises(ValueError, match="bf16"):
        KTOConfig("out")
    assert rebuild_training_arguments(default).bf16 is False


def test_a_plain_job_spec_has_no_method_keys() -> None:
    spec = spec_of(transformers.TrainingArguments("out"))
    assert spec.trainer is not None and spec.trainer.method is None
    assert not {"method", "data_format", "chat_template", "loss_on"} & set(
        json.loads(spec.to_json())["trainer"]
    )


def test_the_causal_lm_options_travel() -> None:
    trainer = spec_of(
        transformers.TrainingArguments("out"),
        data_format="sharegpt",
        chat_template="{{ messages }}",
        loss_on="completion",
    ).trainer
    assert trainer is not None
    assert trainer.data_format is DataFormat.SHAREGPT and trainer.loss_on is LossOn.COMPLETION
    assert trainer.chat_template == "{{ messages }}"


def test_a_bad_method_in_a_spec_is_named() -> None:
    data = spec_of(transformers.TrainingArguments("out")).to_dict()
    data["trainer"]["method"] = "ppo"
    data["trainer"]["loss_on"] = "prompt"
    with pytest.raises(ValueError) as raised:
        JobSpec.from_dict(data)
    assert "trainer.method='ppo': must be null or one of sft, dpo, orpo, kto" in str(raised.value)
    assert "trainer.loss_on='prompt'" in str(raised.value)


# --- the rules ----------------------------------------------------------------------------------


def test_a_trl_config_for_a_model_that_is_no_causal_lm_is_refused_before_creation() -> None:
    with pytest.raises(ValueError) as raised:
        spec_of(DPOConfig("out", bf16=False), SEQ, chat_template="{{ x }}")
    message = str(raised.value)
    assert message.count("\n  - ") == 2, message  # one error listing both
    assert (
        "training_parameters=DPOConfig: TRL's DPO trains causal LMs only, and "
        f"transformer_type={SEQ}; allowed: transformers.TrainingArguments, or "
        f"transformer_type={CAUSAL}"
    ) in message
    assert f"chat_template='{{{{ x }}}}': applies to {CAUSAL} only" in message


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (
            lambda: HuggingFaceTrainerParams(SFTConfig("o", bf16=False), packing=True),
            "packing=True: with SFTConfig, set training_parameters.packing=True",
        ),
        (
            lambda: HuggingFaceTrainerParams(DPOConfig("o", bf16=False), packing=True),
            "packing=True: DPOConfig does not pack samples; allowed: False",
        ),
        (
            lambda: HuggingFaceTrainerParams(KTOConfig("o", bf16=False), max_length=64),
            "max_length=64: with KTOConfig, set training_parameters.max_length",
        ),
        (
            lambda: HuggingFaceTrainerParams(SFTConfig("o", bf16=False), loss_on="assistant"),
            "loss_on='assistant': with SFTConfig, TRL's options choose the tokens: "
            "training_parameters.completion_only_loss, assistant_only_loss",
        ),
        (
            lambda: HuggingFaceTrainerParams(ORPOConfig("o", bf16=False), data_format="alpaca"),
            "data_format='alpaca': ORPOConfig reads preference data",
        ),
        (
            lambda: HuggingFaceTrainerParams(transformers.TrainingArguments("o"), loss_on="prompt"),
            "loss_on='prompt': must be one of 'completion', 'assistant', 'all' or None",
        ),
        (
            lambda: HuggingFaceTrainerParams(
                transformers.TrainingArguments("o"), data_format="csv"
            ),
            "data_format='csv': must be one of 'text', 'prompt_completion', 'alpaca', 'sharegpt', "
            "'messages' or None",
        ),
        (
            lambda: HuggingFaceTrainerParams(
                transformers.TrainingArguments("o"), data_format="text", loss_on="completion"
            ),
            "loss_on='completion': plain text (data_format='text') has no answer",
        ),
        (
            lambda: HuggingFaceTrainerParams(transformers.TrainingArguments("o"), chat_template=""),
            "chat_template='': must be a non-empty string or None",
        ),
        (
            lambda: HuggingFaceTrainerParams(transformers.Seq2SeqTrainingArguments("o")),
            "training_parameters=Seq2SeqTrainingArguments: must be a transformers.TrainingArguments "
            "or a TRL config (trl.SFTConfig, trl.DPOConfig, trl.experimental.orpo.ORPOConfig, "
            "trl.KTOConfig)",
        ),
    ],
    ids=[
        "sft packing",
        "dpo packing",
        "kto max_length",
        "sft loss_on",
        "orpo data_format",
        "loss_on unknown",
        "data_format unknown",
        "text with completion loss",
        "empty chat template",
        "another TrainingArguments class",
    ],
)
def test_options_a_method_replaces_or_does_not_know_are_named(build: Any, expected: str) -> None:
    with pytest.raises(ValueError) as raised:
        build()
    assert expected in str(raised.value)


# --- job files ------------------------------------------------------------------------------------


def job_file(tmp_path: Path, trainer: str, transformer_type: str = CAUSAL) -> Path:
    (tmp_path / "prefs.jsonl").write_text('{"prompt": "p", "chosen": "a", "rejected": "b"}\n')
    path = tmp_path / "job.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: prefs
            model_provider_parameters: {{model_uri: org/model, transformer_type: {transformer_type}}}
            dataset_provider_parameters: {{local: {{path: prefs.jsonl}}}}
            trainer_parameters:
            """
        )
        + textwrap.indent(textwrap.dedent(trainer), "  ")
    )
    return path


def test_a_job_file_names_the_method_next_to_its_config(tmp_path: Path) -> None:
    path = job_file(
        tmp_path,
        """\
        method: dpo
        training_parameters: {output_dir: out, beta: 0.3, max_length: 64, learning_rate: 5e-3}
        lora_config: {r: 4}
        """,
    )
    arguments = load_job_file(path)["trainer_parameters"].training_parameters
    assert type(arguments) is DPOConfig and arguments.beta == 0.3 and arguments.bf16 is False
    assert arguments.learning_rate == 5e-3  # YAML's text '5e-3' became a number
    spec = read_job_file(path).spec
    assert spec.trainer is not None and spec.trainer.method is TrainingMethod.DPO
    assert spec.trainer.training_arguments == {
        "output_dir": "out",
        "beta": 0.3,
        "max_length": 64,
        "learning_rate": 5e-3,
    }


def test_a_job_files_method_problems_are_all_named(tmp_path: Path) -> None:
    path = job_file(
        tmp_path,
        """\
        method: ppo
        training_parameters: {output_dir: out, beta: high}
        """,
    )
    with pytest.raises(JobFileError) as raised:
        load_job_file(path)
    message = str(raised.value)
    assert (
        "trainer_parameters.method='ppo': not a training method; allowed: sft, dpo, orpo, kto"
        in message
    )
    # Without a method, the fields are TrainingArguments', which has no beta.
    assert "training_parameters.beta: unknown key of TrainingArguments" in message
    path = job_file(
        tmp_path,
        """\
        method: kto
        packing: true
        training_parameters: {output_dir: out, desirable_weight: heavy}
        """,
        SEQ,
    )
    with pytest.raises(JobFileError) as raised:
        load_job_file(path)
    message = str(raised.value)
    assert "training_parameters.desirable_weight='heavy': must be a number" in message
    assert "packing=True: KTOConfig does not pack samples" in message
    assert "training_parameters=KTOConfig: TRL's KTO trains causal LMs only" in message


def test_kubernetes_objects_carry_the_same_spec(tmp_path: Path) -> None:
    from kubetune.training import TrainingClient

    path = job_file(
        tmp_path,
        """\
        method: orpo
        training_parameters: {output_dir: out, beta: 0.2}
        chat_template: "{% for m in messages %}{{ m['content'] }}{% endfor %}"
        """,
    )
    job = read_job_file(path)
    objects = TrainingClient(backend="kubernetes", namespace="default").train(
        **job.kwargs, dry_run=True
    )
    config_map = next(o for o in objects or [] if o["kind"] == "ConfigMap")
    carried = JobSpec.from_json(config_map["data"]["spec.json"])
    assert carried.trainer == job.spec.trainer
    assert carried.trainer is not None and carried.trainer.method is TrainingMethod.ORPO
    assert type(rebuild_training_arguments(carried.trainer)) is ORPOConfig


@pytest.mark.parametrize("method", list(TrainingMethod))
def test_the_example_job_of_each_method_is_a_valid_job(
    tmp_path: Path, method: TrainingMethod
) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    text = (examples / f"tinyllama-{method}.yaml").read_text()
    (tmp_path / "model").mkdir()  # examples/models/tiny-llama is made by prepare_models.py
    text = text.replace("./models/tiny-llama", str(tmp_path / "model"))
    text = text.replace("path: data/", f"path: {examples}/data/")
    (tmp_path / "job.yaml").write_text(text)
    spec = read_job_file(tmp_path / "job.yaml").spec
    assert spec.trainer is not None and spec.trainer.method is method
    assert spec.num_procs_per_worker == 2
    assert type(rebuild_training_arguments(spec.trainer)) is CONFIGS[method]


def test_a_trl_configs_hub_token_travels_as_a_secret() -> None:
    from kubetune.contract.secrets import training_argument_secrets

    token = "hf_SECRETtoken123456"
    spec, secrets = build_job_spec(
        name="job",
        model_provider_parameters=HuggingFaceModelParams("org/m", CAUSAL),
        dataset_provider_parameters=LocalDatasetParams("/data/x.jsonl"),
        trainer_parameters=HuggingFaceTrainerParams(
            KTOConfig("out", bf16=False, hub_token=token, push_to_hub=False)
        ),
    )
    assert token not in spec.to_json() and list(secrets.values()) == [token]
    # The worker reads it from its secret variable, as for TrainingArguments.
    assert spec.trainer is not None
    rebuilt = rebuild_training_arguments(spec.trainer, **training_argument_secrets(secrets))
    assert type(rebuilt) is KTOConfig and rebuilt.hub_token == token
