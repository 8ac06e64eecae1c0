"""Clear one-line errors: missing bucket, missing key, refused credentials, unknown Hub repo
offline, unreadable file format, empty dataset; and the CLI's exit codes and stderr line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kubetune.contract import layout
from kubetune.storage_initializer.errors import InitializerError
from kubetune.storage_initializer.hugging_face import HuggingFaceDatasetParams
from kubetune.storage_initializer.initialize import initialize
from kubetune.storage_initializer.local import LocalDatasetParams
from kubetune.storage_initializer.s3 import S3DatasetParams
from tests.storage_initializer.si_helpers import BUCKET, CLI, make_spec, run_cli


def _fails(spec: Any, workspace: Path, env: dict[str, str]) -> str:
    with pytest.raises(InitializerError) as caught:
        initialize(spec, workspace, env=env)
    message = str(caught.value)
    assert "\n" not in message
    assert not (workspace / layout.MARKER_FILE).exists()
    assert not list(workspace.glob(".kubetune-tmp-*")), "staging folder left behind after a failure"
    return message


@pytest.fixture(scope="module")
def objects(moto_open: Any) -> str:
    client = moto_open.client()
    client.put_object(Bucket=BUCKET, Key="errors/sheet.xlsx", Body=b"PK\x03\x04", ACL="public-read")
    client.put_object(
        Bucket=BUCKET, Key="errors/broken.parquet", Body=b"not parquet", ACL="public-read"
    )
    client.put_object(
        Bucket=BUCKET, Key="errors/header-only.csv", Body=b"text,label\n", ACL="public-read"
    )
    return str(moto_open.url)


@pytest.mark.parametrize(
    ("bucket", "key", "expected"),
    [
        ("no-such-bucket", "data.csv", "bucket 'no-such-bucket' does not exist"),
        (BUCKET, "errors/missing.csv", "no object with key 'errors/missing.csv'"),
        (BUCKET, "errors/empty-prefix/", "no objects under prefix 'errors/empty-prefix/'"),
        (BUCKET, "errors/sheet.xlsx", "unreadable file format 'sheet.xlsx'; allowed: CSV"),
        (BUCKET, "errors/broken.parquet", "cannot read the data: ArrowInvalid"),
        (BUCKET, "errors/header-only.csv", "empty dataset: the data holds no rows"),
    ],
    ids=[
        "missing-bucket",
        "missing-key",
        "empty-prefix",
        "unknown-format",
        "unreadable-parquet",
        "empty-dataset",
    ],
)
def test_s3_dataset_errors(
    objects: str, tiny_model: Path, tmp_path: Path, bucket: str, key: str, expected: str
) -> None:
    spec, _ = make_spec(
        str(tiny_model), S3DatasetParams(endpoint_url=objects, bucket_name=bucket, file_key=key)
    )
    message = _fails(spec, tmp_path / "ws", {})
    assert message.startswith(f"dataset s3://{bucket}/{key}: ")
    assert expected in message


@pytest.mark.parametrize(
    ("which", "expected"), [("secret", "SignatureDoesNotMatch"), ("access", "InvalidAccessKeyId")]
)
def test_wrong_credentials(
    moto_auth: Any, tiny_model: Path, tmp_path: Path, which: str, expected: str
) -> None:
    server, access_key, secret_key = moto_auth
    server.client(access_key=access_key, secret_key=secret_key).put_object(
        Bucket=BUCKET, Key="x.csv", Body=b"a\n1\n"
    )
    wrong = {"access_key": access_key, "secret_key": "wrong-secret-value-123"}
    if which == "access":
        wrong = {"access_key": "AKIAWRONGWRONGWRONG", "secret_key": secret_key}
    params = S3DatasetParams(endpoint_url=server.url, bucket_name=BUCKET, file_key="x.csv", **wrong)
    spec, secrets = make_spec(str(tiny_model), params)
    message = _fails(spec, tmp_path / "ws", secrets)
    assert expected in message
    assert wrong["secret_key"] not in message and wrong["access_key"] not in message


def test_unknown_hub_model_offline(offline_hub: Path, tmp_path: Path) -> None:
    from tests.tiny_models import sentiment_csv

    data = sentiment_csv(tmp_path / "d.csv", n=4)
    spec, _ = make_spec("hf://kubetune-test/no-such-model", LocalDatasetParams(path=str(data)))
    message = _fails(spec, tmp_path / "ws", {})
    assert message.startswith(
        "model hf://kubetune-test/no-such-model: not in the local Hugging Face cache"
    )


def test_unknown_hub_dataset_offline(tiny_model: Path, tmp_path: Path) -> None:
    spec, _ = make_spec(
        str(tiny_model),
        HuggingFaceDatasetParams(repo_id="kubetune-test/no-such-dataset", split="train[:10]"),
    )
    message = _fails(spec, tmp_path / "ws", {})
    assert message.startswith("dataset hf://kubetune-test/no-such-dataset: ")
    assert "cannot be reached" in message


def test_local_errors(tiny_model: Path, tmp_path: Path) -> None:
    from tests.tiny_models import sentiment_csv

    data = sentiment_csv(tmp_path / "d.csv", n=4)
    spec, _ = make_spec(str(tmp_path / "no-model"), LocalDatasetParams(path=str(data)))
    assert "no such folder" in _fails(spec, tmp_path / "ws", {})
    spec, _ = make_spec(str(tiny_model), LocalDatasetParams(path=str(data), split="validation"))
    assert "split='validation': Unknown split" in _fails(spec, tmp_path / "ws", {})
    (tmp_path / "not-a-model").mkdir()
    (tmp_path / "not-a-model" / "notes.md").write_text("hello")
    spec, _ = make_spec(str(tmp_path / "not-a-model"), LocalDatasetParams(path=str(data)))
    assert "not a model folder: no config.json" in _fails(spec, tmp_path / "ws", {})


def test_cli_failure_is_one_line_with_exit_1(
    moto_open: Any, tiny_model: Path, tmp_path: Path
) -> None:
    spec, _ = make_spec(
        str(tiny_model),
        S3DatasetParams(endpoint_url=moto_open.url, bucket_name="no-such-bucket", file_key="d.csv"),
    )
    result = run_cli(spec, tmp_path / "ws", {})
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        "kubetune.storage_initializer: error: dataset s3://no-such-bucket/d.csv: bucket 'no-such-bucket' does not exist (NoSuchBucket)"
    ]
    assert "Traceback" not in result.stderr

    verbose = run_cli(spec, tmp_path / "ws", {}, "--verbose")
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr
    assert verbose.stderr.rstrip().splitlines()[-1] == errors[0]


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    import subprocess

    missing = subprocess.run([*CLI, "--workspace", str(tmp_path)], capture_output=True, text=True)
    assert missing.returncode == 2 and "--spec" in missing.stderr
    (tmp_path / "bad.json").write_text('{"name": "x"}')
    bad = subprocess.run(
        [*CLI, "--spec", str(tmp_path / "bad.json"), "--workspace", str(tmp_path / "ws")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "bad.json" in bad.stderr
    assert not (tmp_path / "ws").exists()
