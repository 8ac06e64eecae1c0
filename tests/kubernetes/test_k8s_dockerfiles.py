"""The images' Dockerfiles parse as Dockerfile instructions and install this package with a pinned
torch. (Building them needs a Docker engine, which the test machines lack.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from kubetune.training.images import default_images

IMAGES = Path(__file__).resolve().parents[2] / "images"
DOCKERFILES = ("storage-initializer.Dockerfile", "trainer.Dockerfile", "trainer-cuda.Dockerfile")
INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip
JSON_FORM = {"CMD", "ENTRYPOINT", "SHELL"}


def parse(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs: comments dropped, backslash continuations joined.
    Raises ValueError for a line that is no instruction."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() not in INSTRUCTIONS or keyword != keyword.upper():
            raise ValueError(f"line {number}: {keyword!r} is not a Dockerfile instruction")
        if not arguments.strip():
            raise ValueError(f"line {number}: {keyword} without arguments")
        instructions.append((keyword, arguments.strip()))
    if pending:
        raise ValueError("the file ends in a line continuation")
    return instructions


def test_parser_rejects_broken_files() -> None:
    with pytest.raises(ValueError, match="not a Dockerfile instruction"):
        parse("FROM python:3.11\npip install .\n")
    with pytest.raises(ValueError, match="continuation"):
        parse("FROM python:3.11\nRUN pip install \\\n")
    assert parse("# c\nFROM a:1\nRUN x \\\n  && y\n") == [("FROM", "a:1"), ("RUN", "x  && y")]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_is_valid_and_installs_this_package(name: str) -> None:
    instructions = parse((IMAGES / name).read_text())
    keywords = [k for k, _ in instructions]
    assert keywords[0] in ("FROM", "ARG") and "FROM" in keywords
    (base,) = [a for k, a in instructions if k == "FROM"]
    image = base.split()[0]
    assert re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"FROM {image}: needs an explicit tag"
    assert not image.endswith(":latest")
    copied = " ".join(a for k, a in instructions if k == "COPY")
    for needed in ("pyproject.toml", "README.md", "kubetune"):
        assert needed in copied, f"{name} does not COPY {needed}"
    runs = " ".join(a for k, a in instructions if k == "RUN")
    assert re.search(r"pip install -c constraints\.txt (torch==\S+ )?\.", runs), "installs ."
    assert "torch==2.13.0" in runs, "torch is pinned"
    for keyword, arguments in instructions:
        if keyword in JSON_FORM:
            assert isinstance(json.loads(arguments), list), f"{keyword} in JSON (exec) form"
    ignore = (IMAGES / f"{name}.dockerignore").read_text().split()
    assert "*" in ignore and "!kubetune/" in ignore


def test_torch_pin_matches_the_repository_constraint() -> None:
    constraints = (IMAGES.parent / "constraints.txt").read_text()
    (pin,) = re.findall(r"^torch==(\S+)$", constraints, re.MULTILINE)
    for name in DOCKERFILES:
        assert f"torch=={pin}" in (IMAGES / name).read_text()


def test_default_image_names_match_the_dockerfiles() -> None:
    cpu, gpu = default_images(gpu=False), default_images(gpu=True)
    assert cpu.initializer.rsplit("/", 1)[-1].split(":")[0] + ".Dockerfile" in DOCKERFILES
    assert cpu.trainer.rsplit("/", 1)[-1].split(":")[0] + ".Dockerfile" in DOCKERFILES
    assert gpu.trainer.endswith("-cuda") and "trainer-cuda.Dockerfile" in DOCKERFILES


@pytest.mark.parametrize("name", ["trainer.Dockerfile", "trainer-cuda.Dockerfile"])
def test_trainer_images_run_the_runtime_and_keep_its_old_name(name: str) -> None:
    """New images start `kubetune.runtime`, as rendered manifests do; the build checks that
    `kubetune.trainer` (what manifests rendered before the move call) still imports."""
    from kubetune.training.backends.kubernetes.manifests import TRAINER_COMMAND

    instructions = parse((IMAGES / name).read_text())
    (command,) = [json.loads(a) for k, a in instructions if k == "CMD"]
    assert command[:3] == TRAINER_COMMAND == ["torchrun", "-m", "kubetune.runtime"]
    runs = " ".join(a for k, a in instructions if k == "RUN")
    assert "import kubetune.runtime.run, kubetune.trainer.__main__" in runs
