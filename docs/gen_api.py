"""Writes docs/api.md, the Python API reference, from the public classes' signatures and docstrings.

python docs/gen_api.py           # rewrite docs/api.md
python docs/gen_api.py --check   # exit 1 if docs/api.md is out of date (a test runs this)
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
from pathlib import Path

import kubetune

TARGET = Path(__file__).with_name("api.md")
SECTIONS = [
    (
        "Parameter classes",
        [
            "HuggingFaceModelParams",
            "HuggingFaceDatasetParams",
            "HuggingFaceTrainerParams",
            "S3DatasetParams",
            "LocalDatasetParams",
            "DatasetMix",
            "MixedDataset",
        ],
    ),
    ("Client", ["TrainingClient"]),
    ("Trying a finished job's model", ["pipeline_for_job"]),
    ("kubetune's view of a job", ["JobReport", "JobCondition", "LogLine"]),
    (
        "Hyperparameter search (Katib's SDK, see hyperparameter-search.md)",
        ["KatibClient", "TrainerResources", "ExperimentReport", "TrialReport"],
    ),
    ("Job record", ["JobSpec"]),
]
IMPORT_PATHS = {
    "HuggingFaceModelParams": "kubetune.storage_initializer.hugging_face",
    "HuggingFaceDatasetParams": "kubetune.storage_initializer.hugging_face",
    "HuggingFaceTrainerParams": "kubetune.storage_initializer.hugging_face",
    "S3DatasetParams": "kubetune.storage_initializer.s3",
    "LocalDatasetParams": "kubetune.storage_initializer.local",
    "TrainingClient": "kubetune.training",
    "KatibClient": "kubetune.katib",
    "TrainerResources": "kubetune.katib",
    "ExperimentReport": "kubetune.katib",
    "TrialReport": "kubetune.katib",
    "pipeline_for_job": "kubetune",
}


def _signature(obj: object) -> str:
    try:
        text = str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "(...)"
    text = text.replace("'", "")
    if dataclasses.is_dataclass(obj):
        for field in dataclasses.fields(obj):
            if field.default_factory is not dataclasses.MISSING:
                factory = getattr(field.default_factory, "__name__", "factory")
                text = text.replace("<factory>", f"{factory}()", 1)
    return text


SECTIONS_OF_DOCSTRINGS = ("Args:", "Returns:", "Raises:")


def _doc(obj: object) -> str:
    """The docstring, its Args/Returns/Raises sections as Markdown lists."""
    text = inspect.cleandoc(inspect.getdoc(obj) or "").strip()
    lines: list[str] = []
    section = None
    for line in text.splitlines():
        if line.strip() in SECTIONS_OF_DOCSTRINGS:
            section = line.strip()[:-1]
            lines += ["", f"**{section}**", ""]
        elif section and line.startswith("    ") and not line.startswith("        "):
            name, colon, rest = line.strip().partition(": ")
            if section == "Returns" or not colon:
                lines.append(f"- {line.strip()}")
            else:
                lines.append(f"- `{name}`: {rest}")
        elif section and line.startswith("        "):
            lines[-1] += " " + line.strip()
        else:
            section = None if not line.strip() else section
            lines.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _methods(cls: type) -> list[tuple[str, object]]:
    own = []
    for name, member in vars(cls).items():
        if isinstance(member, classmethod | staticmethod):
            member = member.__func__
        if name.startswith("_") or not callable(member) or isinstance(member, type):
            continue
        own.append((name, member))
    return own


def render() -> str:
    lines = [
        "# Python API reference",
        "",
        "Generated from the code by `python docs/gen_api.py`; a test fails when this page and the code differ.",
        "Every name below is also importable from `kubetune` itself.",
        "",
        "Kubeflow's methods return Kubeflow's and the Kubernetes client's model classes:",
        "`KubeflowOrgV1PyTorchJob` and `KubeflowOrgV1JobCondition` (from `kubetune.training` or",
        "`kubetune.training.models`, which re-exports the `kubeflow-training` package's models) and",
        "`V1Pod`; Kubeflow's constants are in `kubetune.training.constants`.",
        "",
    ]
    for title, names in SECTIONS:
        lines += [f"## {title}", ""]
        for name in names:
            obj = getattr(kubetune, name)
            where = IMPORT_PATHS.get(name, obj.__module__)
            lines += [
                f"### `{name}`",
                "",
                f"`from {where} import {name}`",
                "",
                "```text",
                f"{name}{_signature(obj)}",
                "```",
                "",
            ]
            if _doc(obj):
                lines += [_doc(obj), ""]
            for method, member in _methods(obj):
                if name not in ("TrainingClient", "KatibClient") and method not in (
                    "to_json",
                    "from_json",
                    "output_path",
                ):
                    continue
                lines += [
                    f"#### `{name}.{method}`",
                    "",
                    "```text",
                    f"{method}{_signature(member)}",
                    "```",
                    "",
                ]
                if _doc(member):
                    lines += [_doc(member), ""]
    lines += [
        "## `TRANSFORMER_TYPES`",
        "",
        "The six model classes a job can fine-tune (given as class or name):",
        "",
    ]
    lines += [f"- `{t.__name__}`" for t in kubetune.TRANSFORMER_TYPES.__args__]
    return "\n".join(lines) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run python docs/gen_api.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
