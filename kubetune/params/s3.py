"""Parameter class for datasets in S3-compatible object storage (the seed's API)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from kubetune.contract.problems import Problems
from kubetune.contract.uris import s3_bucket_problem
from kubetune.params import validation


@dataclass
class S3DatasetParams:
    """A dataset object (or prefix) in an S3-compatible bucket.

    `endpoint_url`: http(s) URL of the S3 service. `bucket_name`, `file_key`: the object, or a
    prefix ending in '/' holding data files or a `save_to_disk` folder. `region_name`: bucket
    region. `access_key`/`secret_key`: credentials (secrets: both or neither; when neither, the
    standard AWS credential chain applies). `split`/`eval_split`: split expressions applied after
    loading.
    """

    endpoint_url: str
    bucket_name: str
    file_key: str
    region_name: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    split: str | None = None
    eval_split: str | None = None

    def __post_init__(self) -> None:
        problems = Problems("S3DatasetParams")
        problems.add(_endpoint_problem(self.endpoint_url))
        problems.add(s3_bucket_problem("bucket_name", self.bucket_name))
        problems.add(validation.object_key("file_key", self.file_key))
        problems.add(validation.optional_str("region_name", self.region_name))
        problems.add(validation.secret_str("access_key", self.access_key))
        problems.add(validation.secret_str("secret_key", self.secret_key))
        if (self.access_key is None) != (self.secret_key is None):
            given, missing = (
                ("access_key", "secret_key")
                if self.secret_key is None
                else ("secret_key", "access_key")
            )
            problems.add(
                f"{missing}=None: {given} is set, so {missing} is required too (give both or neither)"
            )
        problems.add(validation.split_expression("split", self.split))
        problems.add(validation.split_expression("eval_split", self.eval_split))
        problems.raise_if_any()

    def __repr__(self) -> str:
        hidden = {
            k: ("'***'" if getattr(self, k) else "None") for k in ("access_key", "secret_key")
        }
        return (
            f"S3DatasetParams(endpoint_url={self.endpoint_url!r}, bucket_name={self.bucket_name!r}, "
            f"file_key={self.file_key!r}, region_name={self.region_name!r}, access_key={hidden['access_key']}, "
            f"secret_key={hidden['secret_key']}, split={self.split!r}, eval_split={self.eval_split!r})"
        )


def _endpoint_problem(url: object) -> str | None:
    if not isinstance(url, str) or not url.strip():
        return f"endpoint_url={url!r}: must be an http:// or https:// URL such as 'https://s3.amazonaws.com'"
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        return f"endpoint_url={url!r}: scheme must be http or https"
    if not parsed.hostname:
        return f"endpoint_url={url!r}: has no host; expected e.g. 'https://s3.amazonaws.com'"
    return None
