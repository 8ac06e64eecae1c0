"""Benchmark: kubetune's S3 fetch against a plain boto3 `download_file` loop.

Starts a real S3 endpoint (moto_server on 127.0.0.1), uploads an object set (~200 MB by
default: a few large objects and many small ones, as a dataset of shards plus metadata looks),
then downloads the whole prefix in interleaved rounds with

  - kubetune: `s3_fetch.resolve` + `s3_fetch.download` (what the storage initializer runs: one
    s3transfer manager, parallel across objects and across parts of large objects), and
  - boto3 loop: `client.download_file` for each key in turn (boto3's default TransferConfig).

Prints a table and the ratio (boto3 loop seconds / kubetune seconds; > 1 means kubetune is
faster) and writes benchmarks/results/storage.json.

    python benchmarks/storage.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "storage.json"
sys.path.insert(0, str(REPO))  # the tests package (its S3 server)

from kubetune.storage_initializer import s3_fetch  # noqa: E402
from tests.s3_server import MotoServer  # noqa: E402

BUCKET = "bench"
PREFIX = "objects/"
MB = 1024 * 1024


def object_set(total_mb: int) -> list[tuple[str, int]]:
    """Keys and sizes: 70% of the bytes in 16 MB shards, 30% in 512 KB files."""
    large = max(1, round(total_mb * 0.7 / 16))
    small = max(4, round(total_mb * 0.3 * 2))
    keys = [(f"{PREFIX}shards/part-{i:04d}.bin", 16 * MB) for i in range(large)]
    keys += [(f"{PREFIX}meta/{i // 50:02d}/file-{i:05d}.bin", MB // 2) for i in range(small)]
    return keys


def upload(client: Any, keys: list[tuple[str, int]]) -> None:
    from boto3.s3.transfer import TransferConfig

    client.create_bucket(Bucket=BUCKET)
    config = TransferConfig(max_concurrency=8)
    block = os.urandom(MB)
    with tempfile.TemporaryDirectory() as tmp:
        for size in sorted({s for _, s in keys}):
            path = Path(tmp) / f"{size}.bin"
            with path.open("wb") as f:
                for offset in range(0, size, MB):
                    f.write(block[: min(MB, size - offset)])
        for key, size in keys:
            client.upload_file(str(Path(tmp) / f"{size}.bin"), BUCKET, key, Config=config)


def run_kubetune(url: str, dest: Path) -> int:
    env = {"KUBETUNE_S3_ACCESS_KEY": "bench", "KUBETUNE_S3_SECRET_KEY": "bench-secret"}
    client = s3_fetch.s3_client(url, None, env)
    selection = s3_fetch.resolve(client, BUCKET, PREFIX, "benchmark")
    return s3_fetch.download(client, selection, dest, "kubetune", env)


def run_boto3_loop(url: str, dest: Path) -> int:
    import boto3

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench-secret",
    )
    total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX):
        for item in page.get("Contents", []):
            target = dest / item["Key"][len(PREFIX) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(BUCKET, item["Key"], str(target))
            total += int(item["Size"])
    return total


def timed(fn: Any, url: str, scratch: Path, expected: list[tuple[str, int]]) -> float:
    dest = scratch / "dest"
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    start = time.perf_counter()
    size = fn(url, dest)
    seconds = time.perf_counter() - start
    on_disk = {
        p.relative_to(dest).as_posix(): p.stat().st_size for p in dest.rglob("*") if p.is_file()
    }
    assert on_disk == {k[len(PREFIX) :]: s for k, s in expected}, (
        f"{fn.__name__} fetched the wrong files"
    )
    assert size == sum(s for _, s in expected)
    shutil.rmtree(dest)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="~24 MB instead of ~200 MB, one round")
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="interleaved rounds per method (default 3, quick 1)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    total_mb = 24 if args.quick else 200
    rounds = args.rounds or (1 if args.quick else 3)
    keys = object_set(total_mb)
    nbytes = sum(s for _, s in keys)
    os.environ.setdefault("TQDM_DISABLE", "1")

    methods = {"kubetune": run_kubetune, "boto3 download_file loop": run_boto3_loop}
    times: dict[str, list[float]] = {name: [] for name in methods}
    with tempfile.TemporaryDirectory() as tmp, MotoServer() as server:
        print(
            f"uploading {len(keys)} objects, {nbytes / MB:.0f} MB, to moto_server at {server.url} ...",
            flush=True,
        )
        upload(server.client(), keys)
        for round_ in range(rounds):
            order = list(methods) if round_ % 2 == 0 else list(reversed(methods))
            for name in order:
                seconds = timed(methods[name], server.url, Path(tmp), keys)
                times[name].append(seconds)
                print(f"  round {round_ + 1}: {name:<26} {seconds:6.2f} s", flush=True)

    median = {name: statistics.median(values) for name, values in times.items()}
    ratio = median["boto3 download_file loop"] / median["kubetune"]
    print()
    print(f"{'method':<26} {'median s':>9} {'MB/s':>8}   rounds")
    for name, seconds in median.items():
        print(
            f"{name:<26} {seconds:9.2f} {nbytes / MB / seconds:8.1f}   {', '.join(f'{t:.2f}' for t in times[name])}"
        )
    print(
        f"\nratio (boto3 loop time / kubetune time): {ratio:.2f}x  ({'kubetune faster' if ratio > 1 else 'kubetune not faster'})"
    )

    result = {
        "benchmark": "storage",
        "quick": args.quick,
        "objects": len(keys),
        "bytes": nbytes,
        "rounds": rounds,
        "seconds": times,
        "median_seconds": median,
        "mb_per_s": {name: nbytes / MB / s for name, s in median.items()},
        "ratio_boto3_over_kubetune": ratio,
        "kubetune_max_concurrency": int(
            os.environ.get(s3_fetch.MAX_CONCURRENCY_ENV, s3_fetch.DEFAULT_MAX_CONCURRENCY)
        ),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
        "endpoint": "moto_server on 127.0.0.1 (same machine)",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"wrote {args.output.relative_to(REPO) if args.output.is_relative_to(REPO) else args.output}"
    )


if __name__ == "__main__":
    main()
