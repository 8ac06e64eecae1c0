"""Search spaces, what tune() refuses (all at once, before anything is created), experiment
files, and reading metrics as Katib's collector does."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from kubetune.jobfile import JobFileError
from kubetune.katib import KatibClient, search
from kubetune.katib.experiment_file import experiment_kwargs, is_experiment_file
from kubetune.katib.metrics import metric_line, objective_value, observation, parse_lines
from kubetune.katib.request import MIXED_FORMS
from kubetune.katib.space import Parameter, parameter_from_spec, take_spaces_from_trainer


def test_categorical_puts_its_values_in_the_list_and_katibs_own_is_read_as_meant():
    spec = search.categorical([8, 16, 32])
    assert spec.feasible_space.list == [8, 16, 32] and spec.feasible_space.distribution is None
    from kubeflow.katib import search as katib_search

    theirs = katib_search.categorical([8, 16, 32])  # katib#2625: the values land in distribution
    assert theirs.feasible_space.list is None
    parameter, problems = parameter_from_spec("r", theirs, "lora_config", "r")
    assert problems == [] and parameter is not None and parameter.choices == (8, 16, 32)
    assert parameter.value("16") == 16 and parameter.to_api()["feasibleSpace"] == {
        "list": ["8", "16", "32"]
    }


def test_values_as_katib_hands_them_become_the_fields_types():
    lr, _ = parameter_from_spec("lr", search.double(1e-05, 5e-05), "training_arguments", "lr")
    r, _ = parameter_from_spec("r", search.int(8, 32, step=8), "lora_config", "r")
    flag, _ = parameter_from_spec("b", search.categorical([True, False]), "lora_config", "b")
    assert lr is not None and r is not None and flag is not None
    assert lr.value("3.1e-05") == 3.1e-05 and lr.text(3.1e-05) == "3.1e-05"
    assert r.value("16") == 16 and r.value("16.0") == 16 and r.grid() == [8, 16, 24, 32]
    assert flag.value("False") is False
    with pytest.raises(ValueError, match="not an integer"):
        r.value("16.5")
    with pytest.raises(ValueError, match="not one of"):
        flag.value("maybe")
    assert Parameter.from_dict(r.to_dict()) == r


def test_search_spaces_leave_the_users_objects_as_they_are():
    import transformers
    from peft import LoraConfig

    from kubetune.storage_initializer.hugging_face import HuggingFaceTrainerParams

    given = HuggingFaceTrainerParams(
        training_parameters=transformers.TrainingArguments(
            output_dir="out", learning_rate=search.double(1e-5, 5e-5)
        ),
        lora_config=LoraConfig(r=search.int(8, 32), lora_alpha=8),
    )
    sampled, parameters, problems = take_spaces_from_trainer(given)
    assert problems == []
    assert [(p.name, p.section) for p in parameters] == [
        ("learning_rate", "training_arguments"),
        ("r", "lora_config"),
    ]
    assert sampled.training_parameters.learning_rate == 1e-5 and sampled.lora_config.r == 8
    assert type(given.training_parameters.learning_rate).__name__ == "V1beta1ParameterSpec"
    assert type(given.lora_config.r).__name__ == "V1beta1ParameterSpec"


def objective(parameters):
    print(f"loss={parameters['x']}")


def test_tune_reports_every_problem_at_once_before_creating_anything(tmp_path):
    client = KatibClient(home=tmp_path)
    with pytest.raises(ValueError) as found:
        client.tune(
            name="Bad_Name",
            objective=objective,
            parameters={
                "x": search.double(min=2, max=1),
                "y": search.int(min=1.5, max=3),
                "z": search.categorical([]),
                "w": search.double(min=0, max=1, distribution="logUniform"),
            },
            objective_metric_name="has space",
            objective_type="maximise",
            max_trial_count=2,
            parallel_trial_count=3,
            max_failed_trial_count=-1,
            algorithm_name="annealing",
            metrics_collector_config={"kind": "Prometheus"},
        )
    message = str(found.value)
    for expected in (
        "name='Bad_Name'",
        "parameters.x: search.double(min=2, max=1): min must be less than max",
        "parameters.y: search.int(min=1.5, max=3): min='1.5' is not an integer",
        "parameters.z: search.categorical needs a non-empty list",
        "parameters.w: search.double(min=0, max=1): a logUniform distribution needs min > 0",
        "objective_metric_name='has space'",
        "objective_type='maximise': allowed: minimize, maximize",
        "parallel_trial_count=3: cannot exceed max_trial_count=2",
        "max_failed_trial_count=-1",
        "algorithm_name='annealing'",
        "metrics_collector_config={'kind': 'Prometheus'}",
    ):
        assert expected in message, (expected, message)
    assert not (tmp_path / "experiments").exists()
    with pytest.raises(ValueError, match="Invalid configuration"):
        client.tune(name="x", objective_metric_name="loss")
    assert MIXED_FORMS.startswith("Invalid configuration for creating a Katib Experiment")
    with pytest.raises(ValueError, match=r"Please specify name for the Experiment\."):
        client.tune(name="", objective=objective, parameters={"x": search.int(1, 2)})


def closure_maker():
    scale = 2

    def scaled(parameters):
        print(f"loss={scale * float(parameters['x'])}")

    return scaled


def test_a_custom_objective_that_cannot_travel_is_refused(tmp_path):
    with pytest.raises(ValueError, match="objective=scaled: it is a closure over scale"):
        KatibClient(home=tmp_path).tune(
            name="closure",
            objective=closure_maker(),
            parameters={"x": search.double(0, 1)},
            objective_metric_name="loss",
        )


EXPERIMENT_FILE = """
name: bert-search
resources_per_worker: {cpu: 1, memory: 1G}
model_provider_parameters: {model_uri: ./model, transformer_type: AutoModelForSequenceClassification}
dataset_provider_parameters: {local: {path: data.csv}}
trainer_parameters:
  training_parameters:
    output_dir: out
    learning_rate: {double: {min: 1.0e-5, max: 5.0e-4, distribution: logUniform}}
    warmup_steps: {int: {min: 0, max: 4, step: 2}}
    lr_scheduler_type: {categorical: [linear, cosine]}
  lora_config:
    r: {int: {min: 4, max: 16}}
objective_metric_name: train_loss
objective_type: minimize
algorithm_name: tpe
algorithm_settings: {random_state: 7}
max_trial_count: 8
parallel_trial_count: 2
early_stopping: {min_trials_required: 2}
"""


def write_files(folder: Path) -> Path:
    (folder / "model").mkdir()
    (folder / "data.csv").write_text("text,label\ngood,1\n")
    path = folder / "experiment.yaml"
    path.write_text(EXPERIMENT_FILE)
    return path


def test_an_experiment_file_searches_fields_a_python_search_space_cannot_hold(tmp_path):
    import yaml

    path = write_files(tmp_path)
    data = yaml.safe_load(path.read_text())
    assert is_experiment_file(data)
    kwargs = experiment_kwargs(data, tmp_path)
    names = [(p.name, p.parameter_type, p.section) for p in kwargs["search_parameters"]]
    assert names == [
        ("learning_rate", "double", "training_arguments"),
        ("warmup_steps", "int", "training_arguments"),
        ("lr_scheduler_type", "categorical", "training_arguments"),
        ("r", "int", "lora_config"),
    ]
    assert kwargs["search_parameters"][0].log
    assert kwargs["resources_per_trial"].resources_per_worker == {"cpu": 1, "memory": "1G"}
    assert kwargs["algorithm_settings"] == {"random_state": 7}
    experiment = KatibClient(backend="kubernetes").tune(**kwargs, dry_run=True)[-1]
    assert [p["name"] for p in experiment["spec"]["parameters"]] == [n for n, _, _ in names]
    assert experiment["spec"]["earlyStopping"] == {
        "algorithmName": "medianstop",
        "algorithmSettings": [{"name": "min_trials_required", "value": "2"}],
    }


def test_an_experiment_file_lists_every_problem_with_its_key_path(tmp_path):
    import yaml

    data = yaml.safe_load(
        textwrap.dedent(
            """
            name: bad
            labels: {a: b}
            model_provider_parameters: {model_uri: ./missing, transformer_type: AutoModelForSequenceClassification}
            dataset_provider_parameters: {local: {path: data.csv}}
            trainer_parameters:
              training_parameters:
                output_dir: out
                learning_rate: {double: {min: 1, maximum: 2}}
                num_train_epochs: {uniform: [1, 2]}
              lora_config:
                r: {categorical: 8}
            objective_metric_name: train_loss
            """
        )
    )
    (tmp_path / "data.csv").write_text("text,label\ngood,1\n")
    with pytest.raises(JobFileError) as found:
        experiment_kwargs(data, tmp_path, source="bad.yaml")
    message = str(found.value)
    for expected in (
        "labels: not an experiment key",
        "trainer_parameters.training_parameters.learning_rate.double: unknown keys ['maximum']",
        "trainer_parameters.lora_config.r.categorical: must be a list of values",
        "model_provider_parameters.model_uri='./missing'",
        "training_parameters.num_train_epochs",
    ):
        assert expected in message, (expected, message)


def test_metrics_are_read_as_katibs_stdout_collector_reads_them():
    lines = [
        "2026-01-31T12:00:00Z epoch 1: loss=0.5 accuracy=0.8",
        "noise without metrics",
        "epoch 2: loss = 0.4, accuracy=0.9 loss-scale=2",
        "loss=",
        metric_line("loss", 0.3),
    ]
    found = parse_lines(lines, ["loss", "accuracy"])
    assert [(m.time, m.name, m.value) for m in found] == [
        ("2026-01-31T12:00:00Z", "loss", "0.5"),
        ("2026-01-31T12:00:00Z", "accuracy", "0.8"),
        ("0001-01-01T00:00:00Z", "loss", "0.4"),
        ("0001-01-01T00:00:00Z", "accuracy", "0.9"),
        ("0001-01-01T00:00:00Z", "loss", "0.3"),
    ]
    metrics = observation(found, ["loss", "accuracy", "f1"])
    assert metrics == [
        {"name": "loss", "min": "0.3", "max": "0.5", "latest": "0.3"},
        {"name": "accuracy", "min": "0.8", "max": "0.9", "latest": "0.9"},
    ]
    assert objective_value(metrics, "loss", "min") == 0.3
    assert objective_value(metrics, "accuracy", "max") == 0.9
    assert observation(found, ["f1"]) == [
        {"name": "f1", "min": "unavailable", "max": "unavailable", "latest": "unavailable"}
    ]
    assert objective_value(observation(found, ["f1"]), "f1", "min") is None
