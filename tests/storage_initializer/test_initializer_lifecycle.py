"""Idempotent and atomic: a rerun with the same spec reuses the workspace without network, a
changed spec replaces it, a run killed half-way through a large S3 object leaves no marker and
the next run completes."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from kubetune.contract import layout
from kubetune.storage_initializer.errors import InitializerError
from kubetune.storage_initializer.initialize import STAGING_PREFIX, completed, initialize
from kubetune.storage_initializer.local import LocalDatasetParams
from kubetune.storage_initializer.s3 import S3DatasetParams
from kubetune.storage_initializer.s3_fetch import MAX_BANDWIDTH_ENV
from tests.s3_server import MotoServer
from tests.storage_initializer.si_helpers import (
    BUCKET,
    CLI,
    HUB_REPO,
    load_workspace_dataset,
    make_spec,
    upload_tree,
)


def test_rerun_reuses_workspace_without_network(tiny_model: Path, tmp_path: Path) -> None:
    from tests.tiny_models import sentiment_csv

    sentiment_csv(tmp_path / "src" / "reviews.csv", n=20)
    with MotoServer() as server:
        server.client().create_bucket(Bucket=BUCKET)
        upload_tree(
            server.client(),
            BUCKET,
            tmp_path / "src",
            "",
            public=True,
        )
        spec, _ = make_spec(
            str(tiny_model),
            S3DatasetParams(endpoint_url=server.url, bucket_name=BUCKET, file_key="reviews.csv"),
        )
        first = initialize(spec, tmp_path / "ws", env={})
    marker = tmp_path / "ws" / layout.MARKER_FILE
    written = marker.stat().st_mtime_ns

    # The endpoint is gone: only a run that does not touch the network can succeed.
    again = initialize(spec, tmp_path / "ws", env={})
    assert again.reused is True and first.reused is False
    assert (
        again.marker.fingerprint == first.marker.fingerprint
        and marker.stat().st_mtime_ns == written
    )
    assert completed(spec, tmp_path / "ws") is not None
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(spec.to_json())
    cli = subprocess.run(
        [*CLI, "--spec", str(spec_file), "--workspace", str(tmp_path / "ws")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0, cli.stderr
    assert "already initialized" in cli.stderr

    # A different dataset split needs the network: the run fails, and the old marker is gone
    # (it vouched for a different spec), so a trainer cannot start on the wrong data.
    changed, _ = make_spec(
        str(tiny_model),
        S3DatasetParams(
            endpoint_url=server.url, bucket_name=BUCKET, file_key="reviews.csv", split="train[:5]"
        ),
    )
    with pytest.raises(InitializerError, match="cannot reach the S3 endpoint"):
        initialize(changed, tmp_path / "ws", env={})
    assert not marker.exists()


def test_changed_spec_replaces_contents(
    offline_hub: Path, tiny_model: Path, tmp_path: Path
) -> None:
    from tests.tiny_models import sentiment_csv

    data = sentiment_csv(tmp_path / "reviews.csv", n=30)
    in_place, _ = make_spec(str(tiny_model), LocalDatasetParams(path=str(data)))
    initialize(in_place, tmp_path / "ws", env={})
    assert (tmp_path / "ws" / layout.MODEL_LINK_FILE).exists()
    (tmp_path / "ws" / f"{STAGING_PREFIX}stale").mkdir()  # as a killed run leaves it

    from_hub, _ = make_spec(
        f"hf://{HUB_REPO}",
        LocalDatasetParams(path=str(data), split="train[:10]", eval_split="train[10:]"),
    )
    summary = initialize(from_hub, tmp_path / "ws", env={})

    assert not (tmp_path / "ws" / layout.MODEL_LINK_FILE).exists(), (
        "a stale model.path would shadow model/"
    )
    assert (
        layout.Workspace(Path(tmp_path / "ws")).model_path() == tmp_path / "ws" / layout.MODEL_DIR
    )
    loaded = load_workspace_dataset(tmp_path / "ws")
    assert (loaded["train"].num_rows, loaded["eval"].num_rows) == (10, 20)
    assert summary.marker.dataset.splits == {"train": 10, "eval": 20}
    assert (
        completed(in_place, tmp_path / "ws") is None
        and completed(from_hub, tmp_path / "ws") is not None
    )
    assert not list((tmp_path / "ws").glob(STAGING_PREFIX + "*"))


def _big_csv(path: Path, rows: int) -> Path:
    words = ["the", "film", "was", "good", "and", "the", "plot", "was", "very", "fine", "indeed"]
    with path.open("w") as f:
        f.write("text,label\n")
        for i in range(rows):
            f.write(f"{' '.join(words[i % 5 :] + words[: i % 5])} number {i},{i % 2}\n")
    return path


def test_killed_run_leaves_no_marker_and_next_run_completes(
    moto_open: Any, tiny_model: Path, tmp_path: Path
) -> None:
    rows = 160_000
    big = _big_csv(tmp_path / "big.csv", rows)
    size = big.stat().st_size
    assert size > 8 * 1024 * 1024
    moto_open.client().upload_file(
        str(big), BUCKET, "large/big.csv", ExtraArgs={"ACL": "public-read"}
    )
    spec, _ = make_spec(
        str(tiny_model),
        S3DatasetParams(endpoint_url=moto_open.url, bucket_name=BUCKET, file_key="large/big.csv"),
    )
    workspace = tmp_path / "ws"
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(spec.to_json())

    # Throttled so that "half-way" is a moment the test can catch, not a race.
    env = {**os.environ, MAX_BANDWIDTH_ENV: str(size // 4)}
    process = subprocess.Popen(
        [*CLI, "--spec", str(spec_file), "--workspace", str(workspace)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    partial, killed = 0, False
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            assert not (workspace / layout.MARKER_FILE).exists()
            downloads = [p for p in workspace.glob(f"{STAGING_PREFIX}*/raw/**/*") if p.is_file()]
            # Bytes actually written (parts land at their offsets, so st_size can run ahead).
            partial = max((p.stat().st_blocks * 512 for p in downloads), default=0)
            if size // 3 <= partial < size * 9 // 10:
                process.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
    assert process.stderr is not None
    stderr = process.stderr.read().decode()
    process.stderr.close()
    assert killed and process.returncode == -signal.SIGKILL, (
        f"not caught mid-download (written={partial}): {stderr}"
    )
    assert 0 < partial < size
    assert not (workspace / layout.MARKER_FILE).exists()
    assert not (workspace / layout.DATASET_DIR).exists()
    assert list(workspace.glob(STAGING_PREFIX + "*")), (
        "the killed run's staging folder should be what it left"
    )

    summary = initialize(spec, workspace, env={})

    assert summary.reused is False
    assert layout.read_json(workspace / layout.MARKER_FILE)["dataset"]["splits"] == {"train": rows}
    assert load_workspace_dataset(workspace)["train"].num_rows == rows
    assert not list(workspace.glob(STAGING_PREFIX + "*"))


def test_sigterm_cleans_up_staging(moto_open: Any, tiny_model: Path, tmp_path: Path) -> None:
    big = _big_csv(tmp_path / "big.csv", 40_000)
    moto_open.client().upload_file(
        str(big), BUCKET, "large/term.csv", ExtraArgs={"ACL": "public-read"}
    )
    spec, _ = make_spec(
        str(tiny_model),
        S3DatasetParams(endpoint_url=moto_open.url, bucket_name=BUCKET, file_key="large/term.csv"),
    )
    workspace = tmp_path / "ws"
    (tmp_path / "spec.json").write_text(spec.to_json())
    env = {**os.environ, MAX_BANDWIDTH_ENV: str(big.stat().st_size // 8)}
    process = subprocess.Popen(
        [*CLI, "--spec", str(tmp_path / "spec.json"), "--workspace", str(workspace)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not [
        p for p in workspace.glob(f"{STAGING_PREFIX}*/raw/**/*") if p.is_file()
    ]:
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM
    assert not (workspace / layout.MARKER_FILE).exists()
    assert not list(workspace.glob(STAGING_PREFIX + "*"))


def test_hub_dataset_downloads_stay_in_the_workspace_unless_a_cache_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import datasets.config

    from kubetune.storage_initializer.dataset_fetch import hub_cache_dir

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    assert hub_cache_dir({}, tmp_path) == str(tmp_path / "hf-datasets-cache")
    assert hub_cache_dir({"HF_HOME": "/srv/hf"}, tmp_path) is None
    assert hub_cache_dir({"HF_DATASETS_CACHE": "/srv/hf/datasets"}, tmp_path) is None
    assert hub_cache_dir({"HF_HUB_OFFLINE": "1"}, tmp_path) is None
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    assert hub_cache_dir({}, tmp_path) is None
