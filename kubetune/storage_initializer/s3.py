"""The seed's import path of `S3DatasetParams` (it lives in `kubetune.params.s3`); importing it
loads none of the storage initializer's fetch code."""

from kubetune.params.s3 import S3DatasetParams

__all__ = ["S3DatasetParams"]
