"""S3 access for the storage initializer: a client, object resolution, parallel downloads.

Credentials come from KUBETUNE_S3_ACCESS_KEY / KUBETUNE_S3_SECRET_KEY in the environment, else
the standard AWS credential chain, else anonymous (unsigned) requests for public buckets.
Downloads go through one s3transfer manager, so many small objects move in parallel and large
ones in parallel ranged parts; the key structure below the prefix is kept as folders.

Tuning through the environment: KUBETUNE_S3_MAX_CONCURRENCY (parallel requests, default 16),
KUBETUNE_S3_MAX_BANDWIDTH (bytes per second, default unlimited).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kubetune.contract.secrets import S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV
from kubetune.storage_initializer.errors import InitializerError, first_line

MAX_CONCURRENCY_ENV = "KUBETUNE_S3_MAX_CONCURRENCY"
MAX_BANDWIDTH_ENV = "KUBETUNE_S3_MAX_BANDWIDTH"
DEFAULT_MAX_CONCURRENCY = 16
PART_SIZE = 8 * 1024 * 1024
DEFAULT_REGION = "us-east-1"

log = logging.getLogger("kubetune.storage_initializer")


@dataclass(frozen=True)
class S3Object:
    """One object to fetch: its key and size in bytes."""

    key: str
    size: int


@dataclass(frozen=True)
class S3Selection:
    """The objects that a key names: one object, or everything below a prefix.

    `base` is the part of each key dropped to form the local path: the object's folder for a
    single object, the prefix (ending in '/') for a prefix.
    """

    bucket: str
    key: str
    base: str
    objects: tuple[S3Object, ...]
    single: bool

    @property
    def total_bytes(self) -> int:
        """The size of every selected object together."""
        return sum(o.size for o in self.objects)


def _int_setting(env: Mapping[str, str], name: str, default: int | None) -> int | None:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise InitializerError(f"environment variable {name}", f"{raw!r} is not an integer >= 1")
    return value


def s3_client(endpoint_url: str | None, region_name: str | None, env: Mapping[str, str]) -> Any:
    """A boto3 S3 client for `endpoint_url`, with credentials from `env` or the AWS chain."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    concurrency = _int_setting(env, MAX_CONCURRENCY_ENV, DEFAULT_MAX_CONCURRENCY) or 1
    config = Config(
        max_pool_connections=concurrency + 4,
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=10,
        read_timeout=60,
    )
    region = region_name or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or DEFAULT_REGION
    session = boto3.session.Session()
    access_key, secret_key = env.get(S3_ACCESS_KEY_ENV), env.get(S3_SECRET_KEY_ENV)
    if access_key and secret_key:
        return session.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )
    if session.get_credentials() is None:
        config = config.merge(Config(signature_version=UNSIGNED))
    return session.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def describe(bucket: str, key: str) -> str:
    """How messages name an object or prefix: 's3://bucket/key'."""
    return f"s3://{bucket}/{key}"


def translate_error(error: BaseException, what: str, bucket: str, key: str) -> InitializerError:
    """An InitializerError saying in one line what an S3/botocore failure means for the user."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )
    from botocore.exceptions import (
        ConnectionError as BotoConnectionError,
    )

    if isinstance(error, InitializerError):
        return error
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        code = str(info.get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket":
            return InitializerError(what, f"bucket {bucket!r} does not exist (NoSuchBucket)")
        if code in ("NoSuchKey", "404") or status == 404:
            return InitializerError(
                what, f"no object with key {key!r} in bucket {bucket!r} (NoSuchKey)"
            )
        if code == "InvalidAccessKeyId":
            return InitializerError(
                what, "the S3 access key was not accepted (InvalidAccessKeyId); check access_key"
            )
        if code == "SignatureDoesNotMatch":
            return InitializerError(
                what, "the S3 secret key was not accepted (SignatureDoesNotMatch); check secret_key"
            )
        if code in ("AccessDenied", "403", "AllAccessDisabled") or status == 403:
            return InitializerError(
                what,
                f"access denied to bucket {bucket!r} ({code or status}); check access_key/secret_key "
                "and the bucket policy",
            )
        return InitializerError(
            what, f"S3 error {code or status}: {info.get('Message', first_line(error))}"
        )
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return InitializerError(what, f"no usable S3 credentials: {first_line(error)}")
    if isinstance(error, EndpointConnectionError | BotoConnectionError):
        return InitializerError(what, f"cannot reach the S3 endpoint: {first_line(error)}")
    return InitializerError(what, f"{type(error).__name__}: {first_line(error)}")


def _list(client: Any, bucket: str, prefix: str) -> list[S3Object]:
    paginator = client.get_paginator("list_objects_v2")
    objects = []
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = item["Key"]
            if key.endswith("/"):  # a "folder" marker, not data
                continue
            objects.append(S3Object(key, int(item["Size"])))
    return objects


def resolve(client: Any, bucket: str, key: str, what: str) -> S3Selection:
    """The object `key` names, or the objects below it when it is a prefix ('folder/' or 'folder').

    Raises InitializerError for a missing bucket, a missing key, refused credentials.
    """
    from botocore.exceptions import ClientError

    head_status = None
    prefix = key if key.endswith("/") else key + "/"
    try:
        if not key.endswith("/"):
            try:
                head = client.head_object(Bucket=bucket, Key=key)
                base = key.rsplit("/", 1)[0] + "/" if "/" in key else ""
                return S3Selection(
                    bucket, key, base, (S3Object(key, int(head["ContentLength"])),), True
                )
            except ClientError as error:
                head_status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if head_status not in (403, 404):
                    raise
                # HEAD answers carry no error code; a listing tells a missing bucket, refused
                # credentials, an unreadable object and a prefix apart.
        listed = _list(client, bucket, key)
    except Exception as error:
        raise translate_error(error, what, bucket, key) from error
    if head_status == 403 and any(o.key == key for o in listed):
        raise InitializerError(
            what,
            f"access denied to object {key!r} in bucket {bucket!r}; check access_key/secret_key and the bucket policy",
        )
    objects = [o for o in listed if o.key.startswith(prefix)]
    if not objects:
        if key.endswith("/"):
            raise InitializerError(what, f"no objects under prefix {key!r} in bucket {bucket!r}")
        raise InitializerError(
            what, f"no object with key {key!r} (nor objects below {prefix!r}) in bucket {bucket!r}"
        )
    return S3Selection(bucket, key, prefix, tuple(objects), False)


def local_path(dest: Path, key: str, base: str, what: str) -> Path:
    """Where an object lands: `dest` / the key relative to `base` (refusing '..' and absolute parts)."""
    relative = PurePosixPath(key[len(base) :])
    parts = [p for p in relative.parts if p not in ("", ".")]
    if not parts or ".." in parts or relative.is_absolute():
        raise InitializerError(
            describe("?", key), f"key {key!r} cannot be stored as a file below {base!r}"
        )
    return dest.joinpath(*parts)


def _progress_bar(total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    interactive = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        mininterval=0.2 if interactive else 5.0,
        leave=True,
    )


def download(
    client: Any, selection: S3Selection, dest: Path, what: str, env: Mapping[str, str]
) -> int:
    """Downloads the selected objects into `dest`, keeping key structure below the base; returns bytes."""
    from boto3.s3.transfer import TransferConfig, create_transfer_manager
    from s3transfer.subscribers import BaseSubscriber

    concurrency = _int_setting(env, MAX_CONCURRENCY_ENV, DEFAULT_MAX_CONCURRENCY)
    bandwidth = _int_setting(env, MAX_BANDWIDTH_ENV, None)
    config = TransferConfig(
        multipart_threshold=PART_SIZE,
        multipart_chunksize=PART_SIZE,
        max_concurrency=concurrency,
        max_bandwidth=bandwidth,
        use_threads=True,
    )
    targets = [(obj, local_path(dest, obj.key, selection.base, what)) for obj in selection.objects]
    for _, target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)

    start = time.monotonic()
    with _progress_bar(selection.total_bytes, what) as bar:

        class Progress(BaseSubscriber):
            def __init__(self, size: int) -> None:
                self.size = size

            def on_queued(self, future: Any, **kwargs: Any) -> None:
                future.meta.provide_transfer_size(self.size)

            def on_progress(self, future: Any, bytes_transferred: int, **kwargs: Any) -> None:
                bar.update(bytes_transferred)

        current = selection.key
        try:
            with create_transfer_manager(client, config) as manager:
                futures = [
                    (
                        obj,
                        manager.download(
                            selection.bucket,
                            obj.key,
                            os.fspath(target),
                            subscribers=[Progress(obj.size)],
                        ),
                    )
                    for obj, target in targets
                ]
                for obj, future in futures:
                    current = obj.key
                    future.result()
        except Exception as error:
            raise translate_error(error, what, selection.bucket, current) from error
    seconds = time.monotonic() - start
    size_mb = selection.total_bytes / 1024 / 1024
    log.info(
        "%s: %d objects, %.1f MB in %.1f s (%.1f MB/s)",
        what,
        len(selection.objects),
        size_mb,
        seconds,
        size_mb / max(seconds, 1e-6),
    )
    return selection.total_bytes
