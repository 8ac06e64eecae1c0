"""`kubetune`: run and follow fine-tuning jobs from the command line.

    kubetune train JOB.yaml [--follow]       create a job from a job file (see kubetune.jobfile)
    kubetune tune EXPERIMENT.yaml [--follow] create a hyperparameter search (kubetune.katib.cli)
    kubetune list                            the jobs (and experiments) of the namespace
    kubetune status NAME [--json]            conditions, progress, times, outputs of a job or experiment
    kubetune trials NAME [--json]            an experiment's trials: values, status, objective
    kubetune logs NAME [-f]                  initializer and worker logs, each line attributed
    kubetune delete NAME [--keep-outputs]    stop a job (or an experiment and its trials) and remove it
    kubetune render FILE.yaml [--api ...]    the Kubernetes objects a job or experiment file becomes
    kubetune predict NAME [TEXT ...]         a finished job's model answers (stdin lines without TEXT)
    kubetune chat NAME                       talk with a finished causal-LM job's model
    kubetune ui [--host H] [--port N] [--backend B] [--open]   the job dashboard in the browser

`-n/--namespace` applies to every command, before or after its name. Jobs run locally unless
KUBETUNE_BACKEND=kubernetes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from kubetune import __version__
from kubetune.contract.conditions import Condition

if TYPE_CHECKING:
    from kubetune.contract.records import ProgressRecord
    from kubetune.jobfile import JobFile
    from kubetune.training.api.training_client import TrainingClient
    from kubetune.training.job import JobReport

EXIT_FAILED = 1
EXIT_BROKEN_PIPE = 141  # as for a process ended by SIGPIPE: the reader (e.g. `head`) left
EXIT_INTERRUPTED = 130
# Without a terminal (a pipe, a CI log) progress prints as plain lines, at most this often.
PLAIN_PROGRESS_INTERVAL = 15.0


def main(argv: list[str] | None = None) -> int:
    """Runs one `kubetune` command; returns the process exit code."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "texts", None), list):
        # `predict NAME --json TEXT`: texts after an option (argparse takes them only before)
        args.texts += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        code: int = args.run(args)
        sys.stdout.flush()  # a reader that left shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        _silence_output()
        return EXIT_BROKEN_PIPE
    except (ValueError, RuntimeError, TimeoutError, FileNotFoundError) as e:
        print(f"kubetune: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("kubetune: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _silence_output() -> None:
    """Points stdout and stderr at /dev/null, so that nothing more is written into a closed pipe
    (Python would report the failed final flush with a traceback)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # not a real file
            os.dup2(devnull, stream.fileno())
    os.close(devnull)


def build_parser() -> argparse.ArgumentParser:
    """The `kubetune` command line: its commands and their options."""
    parser = argparse.ArgumentParser(
        prog="kubetune",
        description="Fine-tune Hugging Face models on distributed PyTorch workers, locally or on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"kubetune {__version__}")
    namespace_help = "the job namespace (default: 'default', or the job file's)"
    parser.add_argument("-n", "--namespace", help=namespace_help)
    # Every command also takes -n after its name; SUPPRESS keeps the one given before it.
    with_namespace = argparse.ArgumentParser(add_help=False)
    with_namespace.add_argument("-n", "--namespace", default=argparse.SUPPRESS, help=namespace_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[with_namespace], **kwargs)

    train = command("train", help="create a job from a job YAML file")
    train.add_argument("job_file", metavar="JOB.yaml")
    train.add_argument(
        "-f", "--follow", action="store_true", help="stream logs and progress until the job ends"
    )
    train.set_defaults(run=cmd_train)

    listing = command("list", help="list the jobs of the namespace")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=cmd_list)

    status = command("status", help="show one job's (or experiment's) conditions and outputs")
    status.add_argument("name")
    status.add_argument("--json", action="store_true", help="print JSON")
    _add_kind_flags(status)
    status.set_defaults(run=cmd_status)

    logs = command("logs", help="print a job's logs (initializer and every worker)")
    logs.add_argument("name")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the job ends"
    )
    logs.set_defaults(run=cmd_logs)

    delete = command("delete", help="stop a job and remove its files")
    delete.add_argument("name")
    delete.add_argument(
        "--keep-outputs", action="store_true", help="keep the trained model, metrics and plots"
    )
    _add_kind_flags(delete)
    delete.set_defaults(run=cmd_delete)

    render = command(
        "render", help="print the Kubernetes objects of a job file as YAML (contacts no cluster)"
    )
    render.add_argument("job_file", metavar="JOB.yaml")
    render.add_argument(
        "--api",
        choices=("pytorchjob", "trainjob"),
        default="pytorchjob",
        help="PyTorchJob (Training Operator V1, default) or TrainJob (Kubeflow Trainer V2)",
    )
    render.set_defaults(run=cmd_render)
    add_inference_commands(command)
    add_ui_command(command)
    from kubetune.katib.cli import add_commands as add_experiment_commands

    add_experiment_commands(command)
    return parser


def _add_kind_flags(parser: argparse.ArgumentParser) -> None:
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--job", action="store_true", help="NAME is a job (when an experiment has it too)")  # fmt: skip
    kind.add_argument("--experiment", action="store_true", help="NAME is an experiment")


def _is_experiment(args: argparse.Namespace) -> bool:
    """Whether NAME means an experiment: --experiment, else an experiment of that name exists
    and no job (ValueError when both do and neither flag says which)."""
    if args.job or args.experiment:
        return bool(args.experiment)
    from kubetune.katib.cli import client as katib_client
    from kubetune.katib.cli import experiment_exists

    if not experiment_exists(katib_client(args.namespace), args.name):
        return False
    try:
        _client(args).get_job_report(args.name)
    except (RuntimeError, ValueError):
        return True
    raise ValueError(
        f"both a job and an experiment are named {args.name!r}: add --job or --experiment"
    )


def _client(args: argparse.Namespace, **kwargs: Any) -> TrainingClient:
    from kubetune.training import TrainingClient

    return TrainingClient(namespace=args.namespace, **kwargs)


# --- commands ------------------------------------------------------------------------------------


def _load(job_file: str, args: argparse.Namespace, client: TrainingClient) -> JobFile:
    """The job the job file describes, checked once (as train() checks it), in the namespace of
    -n, else of the file, else of the client. Checking its values imports transformers and peft,
    which takes seconds: a line on stderr says so first."""
    from kubetune.jobfile import read_job_file

    def say() -> None:
        print(
            f"kubetune: checking {job_file} (loading transformers and peft) ...",
            file=sys.stderr,
            flush=True,
        )

    return read_job_file(
        job_file, namespace=args.namespace, default_namespace=client.namespace, on_read=say
    )


def cmd_train(args: argparse.Namespace) -> int:
    """`kubetune train JOB.yaml`: creates the job (and follows it with -f)."""
    client = _client(args)
    job = _load(args.job_file, args, client)
    client.backend.create_job(job.spec, job.secrets)
    name, namespace = job.spec.name, job.spec.namespace
    print(f"job {namespace}/{name} created ({client.backend.name} backend)")
    if not args.follow:
        print(f"follow it with: kubetune -n {namespace} logs -f {name}")
        return 0
    return follow(client, name, namespace)


def cmd_list(args: argparse.Namespace) -> int:
    """`kubetune list`: a table of the namespace's jobs."""
    client = _client(args)
    jobs = client.list_job_reports()
    if args.json:
        print(json.dumps([j.to_dict() for j in jobs], indent=2))
        return 0
    from kubetune.katib.cli import client as katib_client
    from kubetune.katib.cli import print_experiments

    if not jobs:
        print(f"no jobs in namespace {client.namespace}")
        print_experiments(katib_client(args.namespace))
        return 0
    rows = [("NAME", "STATUS", "STEP", "LOSS", "RESTARTS", "CREATED")]
    for job in jobs:
        progress = job.progress_record
        step = f"{progress.step}/{progress.total_steps or '?'}" if progress else "-"
        loss = _number(progress.loss if progress else None)
        rows.append(
            (job.name, _status_cell(job), step, loss, str(job.restarts), job.creation_time or "-")
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    print_experiments(katib_client(args.namespace))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """`kubetune status NAME`: one job's (or experiment's) conditions, progress, times and outputs."""
    if _is_experiment(args):
        from kubetune.katib.cli import client as katib_client
        from kubetune.katib.cli import print_status

        print_status(katib_client(args.namespace).get_experiment_report(args.name), args.json)
        return 0
    client = _client(args)
    job = client.get_job_report(args.name)
    if args.json:
        print(json.dumps(job.to_dict(), indent=2))
        return 0
    print(f"job:         {job.namespace}/{job.name} ({job.backend})")
    print(f"status:      {_status_cell(job)}" + (f": {job.message}" if job.message else ""))
    print(f"restarts:    {job.restarts}")
    print(f"created:     {job.creation_time or '-'}")
    print(f"started:     {job.start_time or '-'}")
    print(f"completed:   {job.completion_time or '-'}")
    progress = job.progress_record
    if progress is not None:
        print(f"progress:    {_progress_text(progress)}")
    print(f"outputs:     {job.output_dir or '-'}")
    print("conditions:")
    for c in job.conditions:
        print(
            f"  {c.type:<11} {c.status:<5} {c.last_transition_time or '':<20} {c.reason}: {c.message}"
        )
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    """`kubetune logs NAME`: the job's log lines, each with its source."""
    client = _client(args)
    for line in client.stream_job_logs(args.name, follow=args.follow):
        print(line, flush=args.follow)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    """`kubetune delete NAME`: stops the job and removes it (outputs kept if asked), or an experiment with its trials."""
    if _is_experiment(args):
        from kubetune.katib.cli import client as katib_client

        katib = katib_client(args.namespace)
        katib.delete_experiment(args.name)
        print(f"experiment {katib.namespace}/{args.name} deleted, with its trials")
        return 0
    client = _client(args)
    kept = client.kept_outputs_path(args.name) if args.keep_outputs else None
    client.delete_job(args.name, keep_outputs=args.keep_outputs)
    print(f"job {client.namespace}/{args.name} deleted")
    if kept is not None:
        print(f"outputs kept in {kept}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    """`kubetune render FILE.yaml`: the Kubernetes objects of a job file or an experiment file as YAML, contacting no cluster."""
    from kubetune.jobfile import read_yaml
    from kubetune.katib.experiment_file import is_experiment_file

    if is_experiment_file(read_yaml(Path(args.job_file))):
        if args.api != "pytorchjob":
            raise ValueError(
                f"{args.job_file}: --api {args.api}: an experiment's trials are rendered as "
                "PyTorchJobs (the trial template Katib runs); allowed for an experiment file: "
                "--api pytorchjob"
            )
        from kubetune.katib.cli import load as load_experiment

        kwargs = load_experiment(args.job_file)
        if args.namespace:
            kwargs["namespace"] = args.namespace
        from kubetune.katib.api.katib_client import KatibClient

        objects = KatibClient(namespace=args.namespace, backend="kubernetes").tune(
            **kwargs, dry_run=True
        )
        sys.stdout.write(_yaml_documents(objects))
        return 0
    from kubetune.training.backends.kubernetes import manifests

    client = _client(args, backend="kubernetes", api=args.api)
    job = _load(args.job_file, args, client)
    objects = client.backend.render(job.spec, job.secrets)
    for warning in manifests.paths_pods_cannot_read(job.spec):
        print(f"kubetune: warning: {warning}", file=sys.stderr)
    sys.stdout.write(_yaml_documents(objects))
    return 0


def _yaml_documents(objects: list[dict[str, Any]]) -> str:
    try:
        from kubetune.training.backends.kubernetes.manifests import render_yaml
    except ImportError:
        import yaml

        return str(yaml.safe_dump_all(objects, sort_keys=False))
    return str(render_yaml(objects))


# --- kubetune predict / chat: trying a finished job's model (kubetune/inference) -----------------


def add_inference_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Adds `kubetune predict` and `kubetune chat` through `command`."""
    from kubetune.inference.generation import DEFAULT_MAX_NEW_TOKENS

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "name", help="the job (a finished or deleted one), or a run's output directory"
        )
        parser.add_argument(
            "--max-new-tokens",
            type=int,
            default=DEFAULT_MAX_NEW_TOKENS,
            help=f"causal LMs: the most tokens generated per answer (default {DEFAULT_MAX_NEW_TOKENS})",
        )
        parser.add_argument(
            "--base-model",
            help="a LoRA adapter's base model, when the one it records cannot be loaded here",
        )

    predict = command(
        "predict",
        help="answer with a finished job's model: labels with scores, generated text, answers",
    )
    common(predict)
    predict.add_argument(
        "texts", nargs="*", metavar="TEXT", help="the inputs (default: each line of stdin)"
    )
    predict.add_argument("--context", help="question answering: the text the answers come from")
    predict.add_argument("--json", action="store_true", help="print one JSON object per input")
    predict.set_defaults(run=cmd_predict)

    chat = command(
        "chat", help="talk with a finished causal-LM job's model (/exit or Ctrl-D quits)"
    )
    common(chat)
    chat.add_argument("--system", help="a system message opening the conversation")
    chat.set_defaults(run=cmd_chat)


def _job_pipeline(args: argparse.Namespace) -> tuple[Any, Any]:
    """The pipeline of the job (or output directory) `args.name` names, and its FinalModel."""
    from kubetune.inference.final_model import final_model_of
    from kubetune.inference.pipelines import load_pipeline

    if args.max_new_tokens < 1:
        raise ValueError(f"--max-new-tokens={args.max_new_tokens}: must be 1 or more")
    client = _client(args)
    final = final_model_of(client.backend, args.name, client.namespace)
    kind = "adapter on " + str(args.base_model or final.base_model) if final.adapter else "model"
    print(f"kubetune: {final.origin}: loading its {kind} ({final.folder}) ...", file=sys.stderr)
    _quiet_transformers()
    try:
        return load_pipeline(final, base_model=args.base_model), final
    except OSError as e:
        raise RuntimeError(str(e)) from e


def _quiet_transformers() -> None:
    """No loading bars, warnings or deprecation notices from transformers and PEFT unless
    TRANSFORMERS_VERBOSITY asks."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    if "TRANSFORMERS_VERBOSITY" not in os.environ:
        transformers_logging.set_verbosity_error()
        warnings.filterwarnings("ignore", category=FutureWarning)


def cmd_predict(args: argparse.Namespace) -> int:
    """`kubetune predict NAME [TEXT ...]`: one answer per input (each stdin line without TEXT)."""
    from kubetune.inference.answers import answer, answer_json, answer_text

    pipe, final = _job_pipeline(args)
    texts = args.texts or (line.rstrip("\n") for line in sys.stdin)
    for text in texts:
        if not text.strip():
            continue
        output = answer(
            pipe,
            final.transformer_type,
            text,
            context=args.context,
            max_new_tokens=args.max_new_tokens,
        )
        line = (
            answer_json(text, output) if args.json else answer_text(final.transformer_type, output)
        )
        print(line, flush=True)
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    """`kubetune chat NAME`: a conversation with a causal LM until /exit or end of input."""
    from kubetune.contract.spec import TransformerType
    from kubetune.inference.chat import chat
    from kubetune.inference.final_model import final_model_of

    client = _client(args)
    final = final_model_of(client.backend, args.name, client.namespace)
    if final.transformer_type != TransformerType.CAUSAL_LM:
        raise ValueError(
            f"{final.origin}: chat needs an AutoModelForCausalLM, and its model is an "
            f"{final.transformer_type} (try kubetune predict {args.name} TEXT)"
        )
    pipe, _ = _job_pipeline(args)
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401  (line editing and history in input())
    print("/exit or Ctrl-D quits, /reset starts a new conversation", file=sys.stderr)
    chat(pipe, system=args.system, max_new_tokens=args.max_new_tokens)
    return 0


# --- kubetune ui: the job dashboard (kubetune/ui) ----------------------------------------------

UI_TOKEN_ENV = "KUBETUNE_UI_TOKEN"


def add_ui_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Adds `kubetune ui` through `command` (which makes a subcommand's parser)."""
    ui = command(
        "ui", help="serve the job dashboard (live progress, loss curves, logs) in the browser"
    )
    ui.add_argument(
        "--host",
        default="127.0.0.1",
        help=f"address to listen on (default 127.0.0.1; any other requires a token: ${UI_TOKEN_ENV} or a new one, printed)",
    )
    ui.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one)")
    ui.add_argument(
        "--backend",
        choices=("local", "kubernetes"),
        help="whose jobs to show (default: $KUBETUNE_BACKEND, else kubernetes inside a pod, else local)",
    )
    ui.add_argument("--open", action="store_true", help="open the dashboard in the web browser")
    ui.set_defaults(run=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> int:
    """`kubetune ui`: serves the dashboard until interrupted."""
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port={args.port}: must be 0 (any free port) to 65535")
    try:
        from kubetune.ui.server import serve
        from kubetune.ui.source import make_source
    except ImportError as e:
        raise RuntimeError(
            f"kubetune ui needs the ui extra: pip install 'kubetune[ui]' (missing: {e.name})"
        ) from None
    source = make_source(args.backend, namespace=args.namespace)
    serve(
        source,
        host=args.host,
        port=args.port,
        token=os.environ.get(UI_TOKEN_ENV) or None,
        open_browser=args.open,
    )
    return 0


# --- following a job -----------------------------------------------------------------------------


def follow(client: TrainingClient, name: str, namespace: str) -> int:
    """Prints the job's logs and its progress (a live bar on a terminal, plain lines otherwise)
    until it ends.

    Returns:
        0 when the job succeeded, EXIT_FAILED when it failed, EXIT_INTERRUPTED on Ctrl-C (the
        job keeps running).
    """
    bar = ProgressBar(name)

    def refresh() -> None:
        bar.update(client.get_job_report(name, namespace))

    started = time.monotonic()
    try:
        for line in client.stream_job_logs(name, namespace, follow=True, on_poll=refresh):
            bar.write(str(line))
    except KeyboardInterrupt:
        bar.close()
        print(
            f"\nstopped following; the job keeps running. `kubetune -n {namespace} logs -f {name}` "
            f"follows it again, `kubetune -n {namespace} delete {name}` stops it.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    job = client.get_job_report(name, namespace)
    bar.update(job)
    bar.close()
    took = _duration(time.monotonic() - started)
    restarts = f", {job.restarts} restart(s)" if job.restarts else ""
    print(f"job {namespace}/{name} {job.status} after {took}{restarts}: {job.message}")
    if job.status == Condition.SUCCEEDED:
        print(f"outputs: {job.output_dir}")
        return 0
    print(f"logs: kubetune -n {namespace} logs {name}", file=sys.stderr)
    return EXIT_FAILED


class ProgressBar:
    """The job's training steps with loss and ETA, on `stream` (stderr by default).

    When stdout and `stream` are terminals: a tqdm bar, log lines printing above it.
    Otherwise (a pipe, a CI log):
    plain lines such as `NAME: step 40/100, loss=0.41, eta=1:10`, at most one every
    `interval` seconds, and the last state when closing.
    """

    def __init__(
        self,
        name: str,
        stream: IO[str] | None = None,
        interval: float = PLAIN_PROGRESS_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.stream = stream if stream is not None else sys.stderr
        self.live = _is_terminal(self.stream) and _is_terminal(sys.stdout)
        self.interval = interval
        self.clock = clock
        self.bar: Any = None
        self.shown: tuple[Any, ...] = ()
        self.pending: str | None = None  # a plain line not printed yet
        self.printed_at: float | None = None

    def update(self, job: JobReport) -> None:
        """Shows the job's latest progress (nothing before it reported its total steps)."""
        progress = job.progress_record
        if progress is None or not progress.total_steps or progress.total_steps <= 0:
            return
        step, total = progress.step, progress.total_steps
        shown = (step, total, progress.loss, job.restarts)
        if shown == self.shown:
            return
        self.shown = shown
        postfix = {"loss": _number(progress.loss)}
        if progress.eta_seconds is not None:
            postfix["eta"] = _duration(progress.eta_seconds)
        if job.restarts:
            postfix["restarts"] = str(job.restarts)
        if not self.live:
            self._plain(step, total, postfix)
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                desc=self.name,
                unit="step",
                file=self.stream,
                dynamic_ncols=True,
                mininterval=0.5,
            )
        self.bar.total = total
        self.bar.n = min(step, total)
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()

    def _plain(self, step: int, total: int, postfix: dict[str, str]) -> None:
        self.pending = f"{self.name}: step {step}/{total}, " + ", ".join(
            f"{key}={value}" for key, value in postfix.items()
        )
        now = self.clock()
        if self.printed_at is None or now - self.printed_at >= self.interval or step >= total:
            self._print_pending()
            self.printed_at = now

    def _print_pending(self) -> None:
        if self.pending is not None:
            print(self.pending, file=self.stream, flush=True)
            self.pending = None

    def write(self, text: str) -> None:
        """Prints a log line (above the bar, when there is one)."""
        if self.bar is None:
            print(text, flush=True)
        else:
            self.bar.write(text, file=sys.stdout)

    def close(self) -> None:
        """Prints the last state (plain lines) or closes the bar."""
        self._print_pending()
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _status_cell(job: JobReport) -> str:
    """The job's status; a job waiting in the local queue shows 'Queued N/M' (its place)."""
    if job.status == Condition.CREATED and job.queue is not None:
        return f"Queued {job.queue.position}/{job.queue.waiting}"
    return str(job.status)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _progress_text(progress: ProgressRecord) -> str:
    parts = [f"step {progress.step}/{progress.total_steps or '?'}"]
    parts.append(f"epoch {_number(progress.epoch)}")
    if progress.loss is not None:
        parts.append(f"loss {_number(progress.loss)}")
    if progress.eta_seconds is not None:
        parts.append(f"ETA {_duration(progress.eta_seconds)}")
    parts.append(str(progress.status))
    return ", ".join(parts)


def _number(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.4g}"
    return "-"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


if __name__ == "__main__":
    sys.exit(main())
