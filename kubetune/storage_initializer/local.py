"""The import path of `LocalDatasetParams` beside the seed's (it lives in `kubetune.params.local`);
importing it loads none of the storage initializer's fetch code."""

from kubetune.params.local import LocalDatasetParams

__all__ = ["LocalDatasetParams"]
