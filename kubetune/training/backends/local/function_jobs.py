"""How the local backend runs a function job (`create_job(train_func=...)`).

Its package step stands where a fine-tuning job's storage initializer stands (the master pod's
init container), and each torchrun worker process runs the function's program instead of
kubetune.runtime:

    python -m kubetune.training.backends.local.function_jobs install --spec S --workspace W
    python -m kubetune.training.backends.local.function_jobs run --spec S --workspace W

`install` skips the packages already installed in this environment (in a version the
requirement allows) and pip-installs the others from the job's index into a folder of the job's
own (WORKSPACE/.kubetune-packages), never into the environment; a pip failure ends the step with
pip's error (also as a FailureRecord), and the job fails with it. `run` puts that folder first on the import path, changes
to the workspace and runs the program: the function's source and its call.
"""

from __future__ import annotations

import argparse
import linecache
import os
import subprocess
import sys
from pathlib import Path

from kubetune.contract.layout import Workspace
from kubetune.contract.records import FailureRecord, write_failure
from kubetune.contract.spec import FunctionSpec, JobSpec

MODULE = "kubetune.training.backends.local.function_jobs"
PROG = "kubetune.function_job"


def init_command(spec: JobSpec, spec_path: Path, workspace: Path) -> list[str] | None:
    """The package step's command line of a function job; None for a fine-tuning job."""
    if spec.function is None:
        return None
    return [
        sys.executable,
        "-m",
        MODULE,
        "install",
        "--spec",
        str(spec_path),
        "--workspace",
        str(workspace),
    ]


def worker_program(spec: JobSpec, spec_path: Path, workspace: Path) -> list[str] | None:
    """What torchrun runs in each worker process of a function job (after torchrun's own
    options); None for a fine-tuning job."""
    if spec.function is None:
        return None
    return ["-m", MODULE, "run", "--spec", str(spec_path), "--workspace", str(workspace)]


def _function(spec_path: Path) -> FunctionSpec:
    """The function section of the job spec in `spec_path`.

    Raises:
        ValueError: the spec is not a function job's.
    """
    function = JobSpec.from_json(spec_path.read_text()).function
    if function is None:
        raise ValueError(f"{spec_path}: not the spec of a create_job(train_func=...) job")
    return function


def missing_packages(requirements: list[str]) -> tuple[list[str], list[str]]:
    """(requirements not satisfied in this environment, lines saying which were skipped and why)."""
    from importlib import metadata

    from packaging.requirements import Requirement

    missing, skipped = [], []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            skipped.append(f"{text}: not for this platform (marker), skipped")
            continue
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(text)
            continue
        if requirement.specifier.contains(version, prereleases=True):
            skipped.append(f"{text}: {requirement.name} {version} is installed, skipped")
        else:
            missing.append(text)
    return missing, skipped


def install(spec_path: Path, workspace: Path) -> int:
    """The package step; returns its exit code."""
    function = _function(spec_path)
    requirements = list(function.packages)
    if not requirements:
        print(f"{PROG}: no packages to install")
        return 0
    missing, skipped = missing_packages(requirements)
    for line in skipped:
        print(f"{PROG}: {line}")
    if not missing:
        return 0
    target = Workspace(workspace).packages_dir
    index = function.pip_index_url
    print(f"{PROG}: installing {' '.join(missing)} from {index} into {target}", flush=True)
    command = [
        sys.executable, "-m", "pip", "install", "--target", str(target), "--index-url", index,
        "--no-input", "--no-warn-script-location", "--disable-pip-version-check", *missing,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    sys.stdout.write(result.stdout)
    sys.stdout.write(result.stderr)
    if result.returncode != 0:
        errors = [line.strip() for line in result.stderr.splitlines() if line.startswith("ERROR")]
        reason = (
            " | ".join(errors[-3:]) or (result.stderr.strip().splitlines() or ["no output"])[-1]
        )
        failure = FailureRecord(
            PROG,
            f"pip install {' '.join(missing)} from {index} failed "
            f"(exit code {result.returncode}): {reason}",
        )
        write_failure(failure, os.environ)
        print(failure.line, flush=True)
        return 1
    return 0


def run(spec_path: Path, workspace: Path) -> None:
    """Runs the function's program in this process, as a script run as __main__."""
    function = _function(spec_path)
    packages = Workspace(workspace).packages_dir
    if packages.is_dir():
        sys.path.insert(0, str(packages))
        os.environ["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(packages), os.environ.get("PYTHONPATH")) if p
        )
    workspace.mkdir(parents=True, exist_ok=True)
    os.chdir(workspace)
    if function.program is None:
        raise ValueError(f"{spec_path}: the job has no program (it runs an image's own command)")
    program = function.program
    filename = str(workspace / f"{function.name}.py")
    # Tracebacks show the function's lines without a file on disk.
    linecache.cache[filename] = (len(program), None, program.splitlines(True), filename)
    code = compile(program, filename, "exec")
    exec(code, {"__name__": "__main__", "__file__": filename, "__builtins__": __builtins__})


def main(argv: list[str] | None = None) -> int:
    """Runs the package step ('install') or the program ('run'); returns the exit status."""
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    parser.add_argument("step", choices=("install", "run"))
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--workspace", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.step == "install":
        return install(args.spec, args.workspace)
    run(args.spec, args.workspace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
