"""`python -m kubetune.katib.trial COMMAND...`: runs one fine-tuning trial of a Katib Experiment.

It stands in front of the trainer command in each container of the trial's PyTorchJob
(`torchrun -m kubetune.runtime --spec SPEC --workspace ROOT`):

1. reads the shared JobSpec (SPEC) and writes the trial's copy, with the trial's name and its
   values: each parameter of $KUBETUNE_SEARCH_SPACE comes as $KUBETUNE_PARAMETER_<name> (text,
   as Katib substitutes it) and goes to its TrainingArguments or LoraConfig field, typed;
2. makes the trial's workspace, ROOT/trials/<trial>/, whose model, dataset, initializer marker
   and preprocessing cache are links to ROOT's (fetched once, by the first trial's storage
   initializer; the links may wait for it);
3. runs COMMAND on the trial's spec and workspace (SIGTERM is passed on);
4. once it succeeded, prints the trial's final metrics (its metrics.json) as
   `kubetune-metric NAME=VALUE` lines, which the Experiment's StdOut collector reads.

Exit status: COMMAND's; 2 when the trial's values or spec cannot be read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from kubetune.contract import layout
from kubetune.contract.layout import OutputDir
from kubetune.contract.spec import JobSpec
from kubetune.katib.backends.kubernetes.manifests import (
    SEARCH_SPACE_ENV,
    TRIAL_NAME_ENV,
    parameter_env,
    trial_workspace,
)
from kubetune.katib.metrics import metric_line
from kubetune.katib.space import Parameter, set_values

PROG = "kubetune.katib.trial"
SPEC_FILE = "spec.json"


class TrialError(Exception):
    """The trial's values or spec cannot be read."""


def trial_spec(shared: JobSpec, trial: str, environ: Mapping[str, str]) -> JobSpec:
    """The trial's JobSpec: the shared one named after the trial, with a uid of its own (so a
    restarted pod resumes only its own checkpoints) and the trial's values."""
    try:
        space = [Parameter.from_dict(p) for p in json.loads(environ[SEARCH_SPACE_ENV])]
    except (KeyError, ValueError, TypeError) as e:
        raise TrialError(f"${SEARCH_SPACE_ENV} is missing or not a search space: {e}") from None
    values = {}
    for parameter in space:
        key = parameter_env(parameter.name)
        if key not in environ:
            raise TrialError(f"${key} is missing: the trial has no value of {parameter.name}")
        try:
            values[parameter.name] = parameter.value(environ[key])
        except ValueError as e:
            raise TrialError(f"${key}: {e}") from None
    try:
        _, _, trainer = shared.fine_tuning
        trainer = set_values(trainer, space, values)
    except ValueError as e:
        raise TrialError(f"--spec: {e}") from None
    uid = hashlib.sha256(f"{shared.uid or ''}/{trial}".encode()).hexdigest()[:32]
    return dataclasses.replace(shared, name=trial, uid=uid, trainer=trainer)


def replaced_option(command: list[str], option: str, value: str) -> list[str]:
    """`command` with the value after `option` replaced (TrialError when it has none)."""
    if option not in command or command.index(option) + 1 >= len(command):
        raise TrialError(f"the trainer command {command} has no {option} VALUE")
    at = command.index(option) + 1
    return [*command[:at], value, *command[at + 1 :]]


def option_value(command: list[str], option: str) -> str:
    """The value after `option` in `command` (TrialError when it has none)."""
    if option not in command or command.index(option) + 1 >= len(command):
        raise TrialError(f"the trainer command {command} has no {option} VALUE")
    return command[command.index(option) + 1]


def prepare(command: list[str], environ: Mapping[str, str]) -> tuple[list[str], Path]:
    """Writes the trial's spec and workspace; returns the command to run and that workspace."""
    trial = environ.get(TRIAL_NAME_ENV)
    if not trial:
        raise TrialError(f"${TRIAL_NAME_ENV} is not set: this runs inside a Katib trial")
    spec_path = Path(option_value(command, "--spec"))
    root = Path(option_value(command, "--workspace"))
    try:
        shared = JobSpec.from_json(spec_path.read_text())
    except (OSError, ValueError) as e:
        raise TrialError(f"--spec {spec_path}: cannot be read: {e}") from None
    spec = trial_spec(shared, trial, environ)
    own = Path(trial_workspace(str(root), trial))
    own.mkdir(parents=True, exist_ok=True)
    layout.link_shared(own, root)
    own_spec = own / SPEC_FILE
    layout.write_text_atomic(own_spec, spec.to_json())
    command = replaced_option(command, "--spec", str(own_spec))
    return replaced_option(command, "--workspace", str(own)), own


def print_metrics(own: Path, spec: JobSpec) -> None:
    """Prints every number of the trial's metrics.json as a `kubetune-metric` line."""
    found = layout.read_json(OutputDir(spec.output_path(own)).metrics)
    for name, value in sorted((found or {}).items()):
        if isinstance(value, int | float) and not isinstance(value, bool):
            print(metric_line(name, value), flush=True)


def main(argv: list[str] | None = None) -> int:
    """Runs the entry point; returns the exit status (see the module docstring)."""
    command = list(sys.argv[1:] if argv is None else argv)
    if not command:
        print(f"usage: python -m {PROG} COMMAND... (with --spec and --workspace)", file=sys.stderr)
        return 2
    try:
        command, own = prepare(command, os.environ)
    except TrialError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    process = subprocess.Popen(command)

    def forward(signum: int, frame: FrameType | None) -> None:
        process.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    code = process.wait()
    if code == 0:
        print_metrics(own, JobSpec.from_json((own / SPEC_FILE).read_text()))
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
