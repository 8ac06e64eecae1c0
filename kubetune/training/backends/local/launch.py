"""How a local job's processes are started: command lines, ports, threads and GPUs per worker.

Each worker is one torchrun agent standing in for one node (`--nnodes=num_workers
--node-rank=i`), with a static rendezvous on a free port of 127.0.0.1 chosen per attempt, so
two jobs never share a port and ranks follow the worker index (worker-0 holds rank 0).
"""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import psutil

from kubetune.contract.quantities import gpu_key, parse_quantity, usable_cores
from kubetune.contract.records import FAILURE_FILE_ENV, LaunchPlan
from kubetune.contract.secrets import TRAINER_SECRET_ENV_VARS, without_secrets

LOCALHOST = "127.0.0.1"
JOB_UID_ENV = "KUBETUNE_JOB_UID"
TRAINER_MODULE = "kubetune.runtime"
ENTRY_MODULE = "kubetune.training.backends.local.entry"
# torchelastic's structured error file: each process's (set by torchrun), and the agent's reply.
ERROR_FILE_ENV = "TORCHELASTIC_ERROR_FILE"
# torchrun prefixes each line a process prints with this (`${rank}`: the global rank).
LOG_PREFIX_ENV = "TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE"
LOG_PREFIX = "[rank${rank}] "


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that is free on `host` now (the OS picks it, so concurrent jobs differ)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def visible_gpus() -> list[str]:
    """The GPU ids this machine offers, honouring CUDA_VISIBLE_DEVICES; [] on a CPU machine.

    Counted without importing torch: CUDA_VISIBLE_DEVICES if set, else the NVIDIA driver's
    /proc entries, else `nvidia-smi -L`.
    """
    declared = os.environ.get("CUDA_VISIBLE_DEVICES")
    if declared is not None:
        return [d.strip() for d in declared.split(",") if d.strip() and d.strip() != "-1"]
    proc = Path("/proc/driver/nvidia/gpus")
    if proc.is_dir():
        return [str(i) for i in range(len(list(proc.iterdir())))]
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.TimeoutExpired):
            return []
        return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
    return []


def plan_launch(
    num_workers: int,
    num_procs_per_worker: int | str,
    resources: dict[str, Any],
    gpus: list[str] | None = None,
    cores: int | None = None,
    memory_bytes: int | None = None,
) -> LaunchPlan:
    """Maps the job's resources onto this machine; one ValueError naming every request that can
    never fit (more CPUs, memory or GPUs than the machine has).

    gpu: GPUs per worker (none when not requested, as on Kubernetes). cpu: cores per worker (in
    all, no more than the machine has), split over its processes as threads (at least one each;
    the cores of those threads are what is reserved, up to every core: such a job runs alone).
    Without cpu the job reserves its share of the machine: every core for a job without GPUs,
    cores x (its GPUs / the machine's GPUs) for a GPU job. memory: reserved, never more than the
    machine has (it is not limited locally).
    """
    gpus = visible_gpus() if gpus is None else gpus
    cores = usable_cores() if cores is None else cores
    memory_bytes = psutil.virtual_memory().total if memory_bytes is None else memory_bytes
    warnings: list[str] = []
    problems: list[str] = []

    asked_key = gpu_key(resources) or "gpu"
    per_worker_gpus = int(parse_quantity(resources.get(asked_key, 0)))
    if per_worker_gpus * num_workers > len(gpus):
        problems.append(
            f"resources_per_worker[{asked_key!r}]={resources.get(asked_key)!r}: {num_workers} worker(s) x "
            f"{per_worker_gpus} GPU(s) = {per_worker_gpus * num_workers} GPU(s) asked, but this "
            f"machine has {len(gpus)} visible GPU(s)"
            + (
                " (CUDA_VISIBLE_DEVICES limits them)"
                if "CUDA_VISIBLE_DEVICES" in os.environ
                else ""
            )
        )

    if num_procs_per_worker == "auto":
        procs = per_worker_gpus or max(1, cores // num_workers)
    else:
        procs = int(num_procs_per_worker)
    processes = procs * num_workers
    if "cpu" in resources:
        worker_cpus = parse_quantity(resources["cpu"])
        threads = max(1, math.floor(worker_cpus / procs))
        if worker_cpus * num_workers > cores:
            problems.append(
                f"resources_per_worker['cpu']={resources['cpu']!r}: {num_workers} worker(s) ask "
                f"for {worker_cpus * num_workers:g} CPU core(s), but this machine has {cores}"
            )
        # A process runs at least one thread, so a worker holds at least one core per process
        # (up to the whole machine).
        cpus = min(float(cores), max(worker_cpus, threads * procs) * num_workers)
    else:
        share = cores
        if gpus and per_worker_gpus:
            share = max(1, cores * per_worker_gpus * num_workers // len(gpus))
        threads = max(1, share // processes)
        cpus = float(min(cores, threads * processes))
    if threads * processes > cores:
        warnings.append(
            f"{num_workers} worker(s) x {procs} process(es) on {cores} CPU core(s): each process "
            f"runs {threads} thread(s) and they share the cores; the job runs alone"
        )

    memory = 0.0
    if "memory" in resources:
        memory = parse_quantity(resources["memory"]) * num_workers
        if memory > memory_bytes:
            problems.append(
                f"resources_per_worker['memory']={resources['memory']!r}: {num_workers} worker(s) ask "
                f"for {memory / 2**30:.1f} GiB in all, but this machine has "
                f"{memory_bytes / 2**30:.1f} GiB"
            )
    if problems:
        raise ValueError(
            "this machine cannot run the job (a local job must fit on this machine; ask for less, "
            "or run it on Kubernetes): " + "; ".join(problems)
        )
    return LaunchPlan(
        num_workers=num_workers,
        procs_per_worker=procs,
        threads=threads,
        gpus_per_worker=per_worker_gpus,
        cpus=cpus,
        memory=memory,
        warnings=warnings,
    )


def initializer_command(spec_path: Path, workspace: Path) -> list[str]:
    """The storage initializer's command line (no secrets: they travel in the environment)."""
    return [
        sys.executable,
        "-m",
        "kubetune.storage_initializer",
        "--spec",
        str(spec_path),
        "--workspace",
        str(workspace),
    ]


def agent_command(
    spec_path: Path,
    workspace: Path,
    *,
    num_workers: int,
    node_rank: int,
    procs_per_worker: int | str,
    port: int,
    log_dir: Path,
    program: list[str] | None = None,
) -> list[str]:
    """The torchrun agent command line of worker `node_rank` (one simulated node).

    Each of its processes runs `program` (`-m MODULE ARGS...`; default: kubetune.runtime on the
    job's spec and workspace) through kubetune's rank entry point (`entry.py`: it dies with its
    agent and records how it ended). torchrun keeps its files (error files, each rank's output)
    in `log_dir`, inside the job folder, and tees each rank's output into the worker log with the
    rank as line prefix.
    """
    program = program or [
        "-m",
        TRAINER_MODULE,
        "--spec",
        str(spec_path),
        "--workspace",
        str(workspace),
    ]
    if program[0] != "-m":
        raise ValueError(f"program={program!r}: must be ['-m', MODULE, ARGS...]")
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        f"--nnodes={num_workers}",
        f"--node-rank={node_rank}",
        f"--nproc-per-node={procs_per_worker}",
        "--rdzv-backend=static",
        f"--master-addr={LOCALHOST}",
        f"--master-port={port}",
        # The supervisor restarts the whole worker group (all agents) itself.
        "--max-restarts=0",
        "--monitor-interval=0.5",
        f"--log-dir={log_dir}",
        "--tee=3",
        "-m",
        ENTRY_MODULE,
        *program[1:],
    ]


def loopback_interface() -> str | None:
    """The name of the interface holding 127.0.0.1 ('lo' on Linux), for gloo."""
    for name, addresses in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == LOCALHOST for a in addresses):
            return name
    return None


def initializer_env(
    base: Mapping[str, str],
    init_env: dict[str, str],
    secrets: dict[str, str],
    threads: int = 1,
    failure_file: Path | None = None,
) -> dict[str, str]:
    """The storage initializer's environment: the supervisor's, `threads` threads (the job's
    cores), the job's init_env_vars, the secrets it needs (every secret but those only the
    runtime uses) and where it records its failure (`failure_file`)."""
    env = without_secrets(base)
    if failure_file is not None:
        env[FAILURE_FILE_ENV] = str(failure_file)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    env.update(init_env)
    env.update({k: v for k, v in secrets.items() if k not in TRAINER_SECRET_ENV_VARS})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def worker_env(
    base: Mapping[str, str],
    user_env: dict[str, str],
    *,
    gpu_slice: str,
    threads: int,
    error_file: Path | None = None,
    secrets: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of one torchrun agent (and so of its processes).

    The supervisor's environment without secrets, but for those the trainer needs
    (contract.secrets.TRAINER_SECRET_ENV_VARS); the job's env_vars; its GPU slice and thread count; the
    agent's torchelastic reply file (`error_file`) and the rank as log line prefix. The user's
    env_vars win over the defaults.
    """
    env = without_secrets(base)
    env.update({k: v for k, v in (secrets or {}).items() if k in TRAINER_SECRET_ENV_VARS})
    env["CUDA_VISIBLE_DEVICES"] = gpu_slice
    env["OMP_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault(LOG_PREFIX_ENV, LOG_PREFIX)
    if error_file is not None:
        env[ERROR_FILE_ENV] = str(error_file)
    interface = loopback_interface()
    if interface and "GLOO_SOCKET_IFNAME" not in base:
        # Every rank is on this machine: keep gloo off interfaces the hostname may resolve to.
        env["GLOO_SOCKET_IFNAME"] = interface
    env.update(user_env)
    return env
