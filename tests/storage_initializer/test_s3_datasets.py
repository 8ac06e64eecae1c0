"""S3 datasets from a real endpoint (moto_server): single objects of each format, nested and
top-level keys, prefixes holding a save_to_disk folder or data files; anonymous and signed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kubetune.contract import layout
from kubetune.contract.secrets import S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV
from kubetune.storage_initializer.initialize import initialize
from kubetune.storage_initializer.s3 import S3DatasetParams
from tests.storage_initializer.si_helpers import (
    BUCKET,
    load_workspace_dataset,
    make_spec,
    upload_tree,
)
from tests.tiny_models import sentiment_rows

ROWS = sentiment_rows(64, seed=1)
TOP_ROWS = sentiment_rows(30, seed=2)


def _write_sources(folder: Path) -> Path:
    """Every object layout the tests fetch, as local files to upload (key = relative path)."""
    import datasets

    from tests.tiny_models import sentiment_csv

    sentiment_csv(folder / "reviews" / "reviews.csv", n=64, seed=1)
    sentiment_csv(folder / "top.csv", n=30, seed=2)
    nested = folder / "deep" / "nested" / "path" / "to" / "reviews.jsonl"
    nested.parent.mkdir(parents=True)
    nested.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    (folder / "tables").mkdir()
    datasets.Dataset.from_list(ROWS).to_parquet(str(folder / "tables" / "reviews.parquet"))
    datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_list(ROWS[:40]),
            "test": datasets.Dataset.from_list(ROWS[40:]),
        }
    ).save_to_disk(str(folder / "saved" / "reviews-dict"))
    sentiment_csv(folder / "splits" / "train.csv", n=40, seed=3)
    sentiment_csv(folder / "splits" / "test.csv", n=24, seed=4)
    return folder


@pytest.fixture(scope="session")
def sources(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_sources(tmp_path_factory.mktemp("s3-sources"))


@pytest.fixture(params=["anonymous", "credentials"])
def endpoint(
    request: pytest.FixtureRequest, sources: Path
) -> tuple[str, dict[str, str], dict[str, str]]:
    """(endpoint URL, params credentials, secret env) for an open server or one that checks keys."""
    if request.param == "anonymous":
        server = request.getfixturevalue("moto_open")
        client, creds = server.client(), {}
    else:
        server, access_key, secret_key = request.getfixturevalue("moto_auth")
        client = server.client(access_key=access_key, secret_key=secret_key)
        creds = {"access_key": access_key, "secret_key": secret_key}
    if not client.list_objects_v2(Bucket=BUCKET, Prefix="top.csv").get("KeyCount"):
        upload_tree(client, BUCKET, sources, "", public=not creds)
    return server.url, creds, {}


CASES = [
    # id, file_key, split, eval_split, rows per split, first train row
    ("single-csv", "reviews/reviews.csv", None, None, {"train": 64}, ROWS[0]),
    (
        "nested-jsonl",
        "deep/nested/path/to/reviews.jsonl",
        "train[:48]",
        "train[48:]",
        {"train": 48, "eval": 16},
        ROWS[0],
    ),
    ("parquet", "tables/reviews.parquet", "train[25%:]", None, {"train": 48}, ROWS[16]),
    (
        "save-to-disk-prefix",
        "saved/reviews-dict/",
        None,
        "test",
        {"train": 40, "eval": 24},
        ROWS[0],
    ),
    ("top-level-key", "top.csv", None, None, {"train": 30}, TOP_ROWS[0]),
    (
        "data-files-prefix",
        "splits",
        "train",
        "test[:10]",
        {"train": 40, "eval": 10},
        sentiment_rows(40, seed=3)[0],
    ),
]


@pytest.mark.parametrize(
    ("key", "split", "eval_split", "rows", "first"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_s3_dataset_ends_as_datasetdict(
    endpoint: tuple[str, dict[str, str], dict[str, str]],
    tmp_path: Path,
    tiny_model: Path,
    key: str,
    split: str | None,
    eval_split: str | None,
    rows: dict[str, int],
    first: dict[str, Any],
) -> None:
    url, creds, _ = endpoint
    params = S3DatasetParams(
        endpoint_url=url,
        bucket_name=BUCKET,
        file_key=key,
        split=split,
        eval_split=eval_split,
        **creds,
    )
    spec, secrets = make_spec(str(tiny_model), params)
    assert set(secrets) == ({S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV} if creds else set())

    summary = initialize(spec, tmp_path / "ws", env=secrets)

    data = load_workspace_dataset(tmp_path / "ws")
    assert {name: split.num_rows for name, split in data.items()} == rows
    assert data["train"][0] == first
    assert summary.marker.dataset.splits == rows
    assert summary.marker.dataset.downloaded_bytes > 0
    assert not summary.reused
    marker = layout.read_json(tmp_path / "ws" / layout.MARKER_FILE)
    assert marker["dataset"]["splits"] == rows
    assert not list((tmp_path / "ws").glob(".kubetune-tmp-*")), "staging folder left behind"


def test_prefix_keeps_key_structure_below_prefix(
    moto_open: Any, tmp_path: Path, tiny_model: Path
) -> None:
    """A prefix of nested split folders: no path component is dropped or flattened."""
    from tests.tiny_models import sentiment_csv

    local = tmp_path / "src"
    sentiment_csv(local / "train" / "part-0.csv", n=10, seed=5)
    sentiment_csv(local / "train" / "more" / "part-1.csv", n=7, seed=6)
    sentiment_csv(local / "test" / "part-0.csv", n=5, seed=7)
    upload_tree(moto_open.client(), BUCKET, local, "structure/v1/", public=True)
    params = S3DatasetParams(
        endpoint_url=moto_open.url, bucket_name=BUCKET, file_key="structure/v1/", eval_split="test"
    )
    spec, _ = make_spec(str(tiny_model), params)

    initialize(spec, tmp_path / "ws", env={})

    data = load_workspace_dataset(tmp_path / "ws")
    assert (data["train"].num_rows, data["eval"].num_rows) == (17, 5)
