"""Parsing of model URIs: `hf://org/name[@revision]`, bare `org/name`, local paths, `s3://bucket/prefix`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from kubetune import validation

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?$")
_REVISION = re.compile(r"^[\w./-]{1,255}$")

URI_FORMS = (
    "'hf://org/name[@revision]', 'org/name', 'name', an absolute local path '/path/to/model' "
    "or 'file:///path/to/model', or 's3://bucket/prefix'"
)


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: the Hub (`hf`), a local folder (`local`) or an S3 prefix (`s3`)."""

    kind: Literal["hf", "local", "s3"]
    location: str
    revision: str | None = None
    bucket: str | None = None


def parse_model_uri(uri: str) -> ModelSource:
    """Parses a model URI; raises ValueError naming the URI and the allowed forms."""
    problem = _problem(uri)
    if problem:
        raise ValueError(problem)
    return _parse(uri)


def model_uri_problem(field: str, uri: object) -> str | None:
    """The validation message for a bad model URI, or None."""
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
        bucket_problem = validation.s3_bucket("bucket", bucket)
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
        return ModelSource("local", uri[len("file://") :])
    if uri.startswith("/"):
        return ModelSource("local", uri)
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        return ModelSource("s3", prefix, bucket=bucket)
    repo, _, revision = uri.removeprefix("hf://").partition("@")
    return ModelSource("hf", repo, revision or None)
