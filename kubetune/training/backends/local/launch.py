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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from kubetune.validation import parse_quantity

LOCALHOST = "127.0.0.1"
JOB_UID_ENV = "KUBETUNE_JOB_UID"
GPU_KEYS = ("gpu", "nvidia.com/gpu")


def free_port(host: str = LOCALHOST) -> int:
    """A TCP port that is free on `host` now (the OS picks it, so concurrent jobs differ)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


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


@dataclass(frozen=True)
class LaunchPlan:
    """Per-worker settings derived from `resources_per_worker` and this machine.

    `gpu_slices[i]`: the CUDA_VISIBLE_DEVICES value of worker i ('' hides every GPU).
    `threads`: OMP_NUM_THREADS of each training process. `warnings`: things the user should know.
    """

    gpu_slices: list[str]
    threads: int
    procs_per_worker: int
    warnings: list[str]


def plan_launch(
    num_workers: int,
    num_procs_per_worker: int | str,
    resources: dict[str, Any],
    gpus: list[str] | None = None,
    cores: int | None = None,
    memory_bytes: int | None = None,
) -> LaunchPlan:
    """Maps the job's resources onto this machine; ValueError when it cannot hold them.

    gpu: each worker sees its own slice of the visible GPUs (none when not requested, as on
    Kubernetes). cpu: threads per worker, split over its processes (default: this machine's
    cores split over all processes). memory: compared with this machine's, a warning when larger.
    """
    gpus = visible_gpus() if gpus is None else gpus
    cores = usable_cores() if cores is None else cores
    memory_bytes = psutil.virtual_memory().total if memory_bytes is None else memory_bytes
    warnings: list[str] = []

    gpu_key = next((k for k in GPU_KEYS if k in resources), "gpu")
    per_worker_gpus = int(parse_quantity(resources.get(gpu_key, 0)))
    if per_worker_gpus * num_workers > len(gpus):
        raise ValueError(
            f"resources_per_worker[{gpu_key!r}]={resources.get(gpu_key)!r}: {num_workers} worker(s) x "
            f"{per_worker_gpus} GPU(s) = {per_worker_gpus * num_workers} GPU(s) asked, but this "
            f"machine has {len(gpus)} visible GPU(s)"
            + (
                " (CUDA_VISIBLE_DEVICES limits them)"
                if "CUDA_VISIBLE_DEVICES" in os.environ
                else ""
            )
        )
    gpu_slices = [
        ",".join(gpus[i * per_worker_gpus : (i + 1) * per_worker_gpus]) for i in range(num_workers)
    ]

    if num_procs_per_worker == "auto":
        procs = per_worker_gpus or max(1, cores // num_workers)
    else:
        procs = int(num_procs_per_worker)
    if "cpu" in resources:
        worker_cpus = parse_quantity(resources["cpu"])
        threads = max(1, math.floor(worker_cpus / procs))
        if worker_cpus * num_workers > cores:
            warnings.append(
                f"resources_per_worker['cpu']={resources['cpu']!r}: {num_workers} worker(s) ask for "
                f"{worker_cpus * num_workers:g} cores, this machine has {cores}; they will share them"
            )
    else:
        threads = max(1, cores // (num_workers * procs))

    if "memory" in resources:
        asked = parse_quantity(resources["memory"]) * num_workers
        if asked > memory_bytes:
            warnings.append(
                f"resources_per_worker['memory']={resources['memory']!r}: {num_workers} worker(s) ask "
                f"for {asked / 2**30:.1f} GiB in all, this machine has {memory_bytes / 2**30:.1f} GiB; "
                "the job may run out of memory (memory is not limited locally)"
            )
    return LaunchPlan(gpu_slices, threads, procs, warnings)


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
    program: list[str] | None = None,
) -> list[str]:
    """The torchrun agent command line of worker `node_rank` (one simulated node); each of its
    processes runs `program` (default: kubetune.trainer on the job's spec and workspace)."""
    program = program or [
        "-m",
        "kubetune.trainer",
        "--spec",
        str(spec_path),
        "--workspace",
        str(workspace),
    ]
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
        *program,
    ]


def loopback_interface() -> str | None:
    """The name of the interface holding 127.0.0.1 ('lo' on Linux), for gloo."""
    for name, addresses in psutil.net_if_addrs().items():
        if any(a.family == socket.AF_INET and a.address == LOCALHOST for a in addresses):
            return name
    return None


def worker_env(
    base: dict[str, str],
    user_env: dict[str, str],
    *,
    gpu_slice: str,
    threads: int,
) -> dict[str, str]:
    """The environment of one torchrun agent: the supervisor's (which holds the secrets), the
    job's env_vars, its GPU slice and thread count. The user's env_vars win over the defaults."""
    env = dict(base)
    env["CUDA_VISIBLE_DEVICES"] = gpu_slice
    env["OMP_NUM_THREADS"] = str(threads)
    env["MKL_NUM_THREADS"] = str(threads)
    env["PYTHONUNBUFFERED"] = "1"
    interface = loopback_interface()
    if interface and "GLOO_SOCKET_IFNAME" not in base:
        # Every rank is on this machine: keep gloo off interfaces the hostname may resolve to.
        env["GLOO_SOCKET_IFNAME"] = interface
    env.update(user_env)
    return env
