"""`kubetune`: run and follow fine-tuning jobs from the command line.

    kubetune train JOB.yaml [--follow]       create a job from a job file (see kubetune.jobfile)
    kubetune list                            the jobs of the namespace
    kubetune status NAME [--json]            conditions, progress, times, outputs of one job
    kubetune logs NAME [-f]                  initializer and worker logs, each line attributed
    kubetune delete NAME [--keep-outputs]    stop a job and remove it
    kubetune render JOB.yaml [--api ...]     the Kubernetes objects a job file becomes (no cluster)
    kubetune ui [--host H] [--port N] [--backend B] [--open]   the job dashboard in the browser

`--namespace` applies to every command. Jobs run locally unless KUBETUNE_BACKEND=kubernetes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Iterator
from typing import Any

from kubetune import __version__

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Runs one `kubetune` command; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
        return code
    except (ValueError, RuntimeError, TimeoutError, FileNotFoundError) as e:
        print(f"kubetune: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("kubetune: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubetune",
        description="Fine-tune Hugging Face models on distributed PyTorch workers, locally or on Kubernetes.",
    )
    parser.add_argument("--version", action="version", version=f"kubetune {__version__}")
    parser.add_argument(
        "-n", "--namespace", help="the job namespace (default: 'default', or the job file's)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="create a job from a job YAML file")
    train.add_argument("job_file", metavar="JOB.yaml")
    train.add_argument(
        "-f", "--follow", action="store_true", help="stream logs and progress until the job ends"
    )
    train.set_defaults(run=cmd_train)

    listing = commands.add_parser("list", help="list the jobs of the namespace")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(run=cmd_list)

    status = commands.add_parser("status", help="show one job's conditions, progress and outputs")
    status.add_argument("name")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(run=cmd_status)

    logs = commands.add_parser("logs", help="print a job's logs (initializer and every worker)")
    logs.add_argument("name")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing until the job ends"
    )
    logs.set_defaults(run=cmd_logs)

    delete = commands.add_parser("delete", help="stop a job and remove its files")
    delete.add_argument("name")
    delete.add_argument(
        "--keep-outputs", action="store_true", help="keep the trained model, metrics and plots"
    )
    delete.set_defaults(run=cmd_delete)

    render = commands.add_parser(
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
    add_ui_command(commands)
    return parser


def _client(args: argparse.Namespace, **kwargs: Any) -> Any:
    from kubetune.training.client import TrainingClient

    return TrainingClient(namespace=args.namespace, **kwargs)


# --- commands ------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> int:
    from kubetune.jobfile import load_job_file

    kwargs = load_job_file(args.job_file)
    if args.namespace:
        kwargs["namespace"] = args.namespace
    client = _client(args)
    namespace = kwargs.get("namespace") or client.namespace
    name = client.train(**kwargs)
    print(f"job {namespace}/{name} created ({client.backend.name} backend)")
    if not args.follow:
        print(f"follow it with: kubetune -n {namespace} logs -f {name}")
        return 0
    return follow(client, name, namespace)


def cmd_list(args: argparse.Namespace) -> int:
    client = _client(args)
    jobs = client.list_jobs()
    if args.json:
        print(json.dumps([j.to_dict() for j in jobs], indent=2))
        return 0
    if not jobs:
        print(f"no jobs in namespace {client.namespace}")
        return 0
    rows = [("NAME", "STATUS", "STEP", "LOSS", "RESTARTS", "CREATED")]
    for job in jobs:
        progress = job.progress or {}
        step = (
            f"{progress['step']}/{progress.get('total_steps', '?')}" if "step" in progress else "-"
        )
        loss = _number(progress.get("loss"))
        rows.append((job.name, job.status, step, loss, str(job.restarts), job.creation_time or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    client = _client(args)
    job = client.get_job(args.name)
    if args.json:
        print(json.dumps(job.to_dict(), indent=2))
        return 0
    print(f"job:         {job.namespace}/{job.name} ({job.backend})")
    print(f"status:      {job.status}" + (f": {job.message}" if job.message else ""))
    print(f"restarts:    {job.restarts}")
    print(f"created:     {job.creation_time or '-'}")
    print(f"started:     {job.start_time or '-'}")
    print(f"completed:   {job.completion_time or '-'}")
    if job.progress:
        print(f"progress:    {_progress_text(job.progress)}")
    print(f"outputs:     {job.output_dir or '-'}")
    print("conditions:")
    for c in job.conditions:
        print(
            f"  {c.type:<11} {c.status:<5} {c.last_transition_time or '':<20} {c.reason}: {c.message}"
        )
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    client = _client(args)
    for line in client.get_job_logs(args.name, follow=args.follow):
        print(line, flush=args.follow)
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    client = _client(args)
    kept = None
    if args.keep_outputs and hasattr(client.backend, "kept_outputs_path"):
        kept = client.backend.kept_outputs_path(args.name, client.namespace)
    client.delete_job(args.name, keep_outputs=args.keep_outputs)
    print(f"job {client.namespace}/{args.name} deleted")
    if kept is not None:
        print(f"outputs kept in {kept}")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from kubetune.jobfile import load_job_file

    kwargs = load_job_file(args.job_file)
    if args.namespace:
        kwargs["namespace"] = args.namespace
    client = _client(args, backend="kubernetes", api=args.api)
    objects = client.train(**kwargs, dry_run=True)
    sys.stdout.write(_yaml_documents(objects))
    return 0


def _yaml_documents(objects: list[dict[str, Any]]) -> str:
    try:
        from kubetune.training.backends.kubernetes.manifests import render_yaml
    except ImportError:
        import yaml

        return str(yaml.safe_dump_all(objects, sort_keys=False))
    return str(render_yaml(objects))


# --- kubetune ui: the job dashboard (kubetune/ui) ----------------------------------------------

UI_TOKEN_ENV = "KUBETUNE_UI_TOKEN"


def add_ui_command(commands: Any) -> None:
    ui = commands.add_parser(
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
        help="whose jobs to show (default: $KUBETUNE_BACKEND, else local)",
    )
    ui.add_argument("--open", action="store_true", help="open the dashboard in the web browser")
    ui.set_defaults(run=cmd_ui)


def cmd_ui(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port={args.port}: must be 0 (any free port) to 65535")
    try:
        from kubetune.ui.server import serve
        from kubetune.ui.source import make_source
    except ImportError as e:
        raise RuntimeError(
            f"kubetune ui needs the ui extra: pip install 'kubetune[ui]' (missing: {e.name})"
        ) from None
    backend = args.backend or os.environ.get("KUBETUNE_BACKEND") or "local"
    options = {"namespace": args.namespace} if backend == "kubernetes" and args.namespace else {}
    serve(
        make_source(backend, **options),
        host=args.host,
        port=args.port,
        token=os.environ.get(UI_TOKEN_ENV) or None,
        open_browser=args.open,
    )
    return 0


# --- following a job -----------------------------------------------------------------------------


def follow(client: Any, name: str, namespace: str) -> int:
    """Prints the job's logs and a live progress bar until it ends; 0 when it succeeded."""
    bar = ProgressBar(name)

    def refresh() -> None:
        bar.update(client.get_job(name, namespace))

    started = time.monotonic()
    try:
        for line in _follow_lines(client, name, namespace, refresh):
            bar.write(str(line))
    except KeyboardInterrupt:
        bar.close()
        print(
            f"\nstopped following; the job keeps running. `kubetune -n {namespace} logs -f {name}` "
            f"follows it again, `kubetune -n {namespace} delete {name}` stops it.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    job = client.get_job(name, namespace)
    bar.update(job)
    bar.close()
    took = _duration(time.monotonic() - started)
    restarts = f", {job.restarts} restart(s)" if job.restarts else ""
    print(f"job {namespace}/{name} {job.status} after {took}{restarts}: {job.message}")
    if job.status == "Succeeded":
        print(f"outputs: {job.output_dir}")
        return 0
    print(f"logs: kubetune -n {namespace} logs {name}", file=sys.stderr)
    return EXIT_FAILED


def _follow_lines(client: Any, name: str, namespace: str, refresh: Any) -> Iterator[Any]:
    backend = client.backend
    if hasattr(backend, "follow_job_logs"):
        return backend.follow_job_logs(name, namespace, on_poll=refresh)
    return _refreshing(client.get_job_logs(name, namespace, follow=True), refresh)


def _refreshing(lines: Iterator[Any], refresh: Any) -> Iterator[Any]:
    last = 0.0
    for line in lines:
        yield line
        if time.monotonic() - last > 1.0:
            refresh()
            last = time.monotonic()


class ProgressBar:
    """A tqdm bar of the job's training steps with loss and ETA; log lines print above it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.bar: Any = None
        self.shown: tuple[Any, ...] = ()

    def update(self, job: Any) -> None:
        progress = job.progress or {}
        total = progress.get("total_steps")
        step = progress.get("step")
        if not isinstance(total, int) or not isinstance(step, int) or total <= 0:
            return
        shown = (step, total, progress.get("loss"), job.restarts)
        if shown == self.shown:
            return
        self.shown = shown
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                desc=self.name,
                unit="step",
                file=sys.stderr,
                dynamic_ncols=True,
                mininterval=0.5,
            )
        self.bar.total = total
        self.bar.n = min(step, total)
        postfix = {"loss": _number(progress.get("loss"))}
        eta = progress.get("eta_seconds")
        if isinstance(eta, int | float):
            postfix["eta"] = _duration(eta)
        if job.restarts:
            postfix["restarts"] = str(job.restarts)
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()

    def write(self, text: str) -> None:
        if self.bar is None:
            print(text, flush=True)
        else:
            self.bar.write(text, file=sys.stdout)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _progress_text(progress: dict[str, Any]) -> str:
    parts = [f"step {progress.get('step', '?')}/{progress.get('total_steps', '?')}"]
    if progress.get("epoch") is not None:
        parts.append(f"epoch {_number(progress['epoch'])}")
    if progress.get("loss") is not None:
        parts.append(f"loss {_number(progress['loss'])}")
    if isinstance(progress.get("eta_seconds"), int | float):
        parts.append(f"ETA {_duration(progress['eta_seconds'])}")
    if progress.get("status"):
        parts.append(str(progress["status"]))
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
