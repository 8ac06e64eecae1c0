"""No access token or S3 secret in any file under the workspace, in the log output, or in the
process arguments while the initializer runs; not even when it fails with --verbose."""

from __future__ import annotations

import os
import secrets as random_secrets
import subprocess
import time
from pathlib import Path
from typing import Any

from kubetune.contract import layout
from kubetune.contract.secrets import DATASET_TOKEN_ENV, MODEL_TOKEN_ENV
from kubetune.storage_initializer.s3 import S3DatasetParams
from tests.storage_initializer.si_helpers import BUCKET, CLI, HUB_REPO, make_spec, upload_tree


def _run_watching_cmdline(
    spec: Any, workspace: Path, env: dict[str, str], *extra: str
) -> tuple[int, str, str, list[bytes]]:
    """Runs the CLI, sampling /proc/<pid>/cmdline until it exits; returns (code, stdout, stderr, samples)."""
    spec_file = workspace.parent / "spec.json"
    spec_file.write_text(spec.to_json())
    process = subprocess.Popen(
        [*CLI, "--spec", str(spec_file), "--workspace", str(workspace), *extra],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    samples: list[bytes] = []
    cmdline = Path(f"/proc/{process.pid}/cmdline")
    while process.poll() is None:
        try:
            samples.append(cmdline.read_bytes())
        except OSError:
            break
        time.sleep(0.05)
    out, err = process.communicate(timeout=300)
    return process.returncode, out.decode(), err.decode(), [s for s in samples if s]


def _secret_env(access_key: str, secret_key: str) -> dict[str, str]:
    return {
        MODEL_TOKEN_ENV: "hf_" + random_secrets.token_hex(16),
        DATASET_TOKEN_ENV: "hf_" + random_secrets.token_hex(16),
    } | ({"KUBETUNE_S3_ACCESS_KEY": access_key, "KUBETUNE_S3_SECRET_KEY": secret_key})


def test_no_secret_in_workspace_logs_or_argv(
    moto_auth: Any, offline_hub: Path, tmp_path: Path
) -> None:
    from tests.tiny_models import sentiment_csv

    server, access_key, secret_key = moto_auth
    sentiment_csv(tmp_path / "src" / "secret-test" / "reviews.csv", n=40)
    upload_tree(
        server.client(access_key=access_key, secret_key=secret_key), BUCKET, tmp_path / "src", ""
    )
    params = S3DatasetParams(
        endpoint_url=server.url,
        bucket_name=BUCKET,
        file_key="secret-test/reviews.csv",
        access_key=access_key,
        secret_key=secret_key,
    )
    spec, secret_vars = make_spec(
        f"hf://{HUB_REPO}", params, model_token="hf_" + random_secrets.token_hex(16)
    )
    env = _secret_env(access_key, secret_key) | secret_vars
    values = [v.encode() for v in env.values()]
    workspace = tmp_path / "ws"

    code, out, err, samples = _run_watching_cmdline(spec, workspace, env, "--verbose")

    assert code == 0, err
    assert (workspace / layout.MARKER_FILE).is_file()
    assert samples, "the process was never observed running"
    files = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file() and not p.is_symlink() and "src" not in p.parts
    ]
    assert any(p.name == "dataset_dict.json" for p in files) and any(
        p.name == "model.safetensors" for p in files
    )
    for value in values:
        assert all(value not in sample for sample in samples), (
            "a secret appeared in the process arguments"
        )
        assert value.decode() not in out and value.decode() not in err, (
            "a secret appeared in the log output"
        )
        for path in files:
            assert value not in path.read_bytes(), f"a secret appeared in {path}"


def test_no_secret_in_failure_output(moto_auth: Any, offline_hub: Path, tmp_path: Path) -> None:
    server, access_key, _ = moto_auth
    wrong_secret = "wrong-" + random_secrets.token_hex(16)
    params = S3DatasetParams(
        endpoint_url=server.url,
        bucket_name=BUCKET,
        file_key="secret-test/missing.csv",
        access_key=access_key,
        secret_key=wrong_secret,
    )
    spec, secret_vars = make_spec(
        f"hf://{HUB_REPO}", params, model_token="hf_" + random_secrets.token_hex(16)
    )
    env = _secret_env(access_key, wrong_secret) | secret_vars

    code, out, err, samples = _run_watching_cmdline(spec, tmp_path / "ws", env, "--verbose")

    assert code == 1
    assert "SignatureDoesNotMatch" in err.splitlines()[-1]
    for value in env.values():
        assert value not in out and value not in err
        assert all(value.encode() not in sample for sample in samples)
    for path in (tmp_path / "ws").rglob("*"):
        if path.is_file():
            assert not any(value.encode() in path.read_bytes() for value in env.values())
