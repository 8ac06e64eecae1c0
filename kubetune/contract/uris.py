"""Where models and datasets come from: the source kinds, and model URIs
(`hf://org/name[@revision]`, bare `org/name`, local paths, `s3://bucket/prefix`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class SourceKind(StrEnum):
    """Where a model or a dataset is fetched from."""

    HF = "hf"  # the Hugging Face Hub
    S3 = "s3"  # an S3-compatible object store
    LOCAL = "local"  # a path on the machine (or a volume) that runs the storage initializer


_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?$")
_REVISION = re.compile(r"^[\w./-]{1,255}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")

URI_FORMS = (
    "'hf://org/name[@revision]', 'org/name', 'name', an absolute local path '/path/to/model' "
    "or 'file:///path/to/model', or 's3://bucket/prefix'"
)


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: a Hub repo, a local folder or an S3 prefix (`location`)."""

    kind: SourceKind
    location: str
    revision: str | None = None
    bucket: str | None = None


def s3_bucket_problem(field: str, value: Any) -> str | None:
    """Why `value` is not a valid S3 bucket name, or None."""
    allowed = (
        "3-63 characters of lower-case letters, digits, '.' and '-', starting and ending with a "
        "letter or digit, no '..', not an IP address"
    )
    if (
        not isinstance(value, str)
        or not _BUCKET.match(value)
        or ".." in value
        or _IPV4.match(value)
    ):
        return f"{field}={value!r}: not a valid S3 bucket name ({allowed})"
    if value.startswith("xn--") or value.endswith("-s3alias") or value.endswith("--ol-s3"):
        return f"{field}={value!r}: reserved S3 bucket prefix or suffix ({allowed})"
    return None


def parse_model_uri(uri: str) -> ModelSource:
    """Parses a model URI.

    Raises:
        ValueError: naming the URI's problem and the allowed forms.
    """
    problem = _problem(uri)
    if problem:
        raise ValueError(problem)
    return _parse(uri)


def model_uri_problem(field: str, uri: object) -> str | None:
    """The validation message for a bad model URI in `field`, or None."""
    if not isinstance(uri, str) or not uri.strip():
        return f"{field}={uri!r}: must be a non-empty model URI: {URI_FORMS}"
    problem = _problem(uri)
    return f"{field}={uri!r}: {problem}" if problem else None


def _problem(uri: str) -> str | None:
    if uri != uri.strip() or any(c.isspace() for c in uri):
        return f"must not contain whitespace; allowed: {URI_FORMS}"
    if uri.startswith("file://"):
        path = uri[len("file://") :]
        return (
            None
            if path.startswith("/") and len(path) > 1
            else f"file:// URIs need an absolute path; allowed: {URI_FORMS}"
        )
    if uri.startswith("/"):
        return None if len(uri) > 1 else f"'/' is not a model folder; allowed: {URI_FORMS}"
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        bucket_problem = s3_bucket_problem("bucket", bucket)
        if bucket_problem:
            return f"{bucket_problem}; allowed: {URI_FORMS}"
        if not prefix or ".." in prefix.split("/"):
            return f"s3:// URIs need a prefix without '..' after the bucket; allowed: {URI_FORMS}"
        return None
    if "://" in uri and not uri.startswith("hf://"):
        return f"unsupported scheme {uri.split('://')[0]!r}; allowed: {URI_FORMS}"
    repo, _, revision = uri.removeprefix("hf://").partition("@")
    if not _REPO_ID.match(repo) or "--" in repo or ".." in repo:
        return f"{repo!r} is not a Hugging Face repo id; allowed: {URI_FORMS}"
    if "@" in uri and not _REVISION.match(revision):
        return (
            f"revision {revision!r} after '@' is not a branch, tag or commit; allowed: {URI_FORMS}"
        )
    return None


def _parse(uri: str) -> ModelSource:
    if uri.startswith("file://"):
        return ModelSource(SourceKind.LOCAL, uri[len("file://") :])
    if uri.startswith("/"):
        return ModelSource(SourceKind.LOCAL, uri)
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        return ModelSource(SourceKind.S3, prefix, bucket=bucket)
    repo, _, revision = uri.removeprefix("hf://").partition("@")
    return ModelSource(SourceKind.HF, repo, revision or None)
