"""Parameter class for datasets in local files or folders."""

from __future__ import annotations

import os
from dataclasses import dataclass

from kubetune.contract.problems import Problems
from kubetune.params import validation

DATA_FILE_SUFFIXES = (
    ".csv",
    ".json",
    ".jsonl",
    ".parquet",
    ".txt",
    ".csv.gz",
    ".json.gz",
    ".jsonl.gz",
)


@dataclass
class LocalDatasetParams:
    """A dataset on this machine's disk (or a volume every worker mounts).

    `path`: a CSV, JSON, JSONL, Parquet or text file, a folder of such files (split names taken
    from file names such as 'train.csv' and 'test.csv'), or a `save_to_disk` folder.
    `split`/`eval_split`: split expressions to train and evaluate on.
    """

    path: str
    split: str | None = None
    eval_split: str | None = None

    def __post_init__(self) -> None:
        problems = Problems("LocalDatasetParams")
        if not isinstance(self.path, str | os.PathLike) or not str(self.path).strip():
            problems.add(f"path={self.path!r}: must be a non-empty path to a data file or folder")
        else:
            self.path = os.fspath(self.path)
            if not os.path.isabs(self.path):
                self.path = os.path.abspath(self.path)
            if os.path.isfile(self.path) and not self.path.lower().endswith(DATA_FILE_SUFFIXES):
                problems.add(
                    f"path={self.path!r}: unsupported file type; allowed: {', '.join(DATA_FILE_SUFFIXES)}, "
                    "or a folder of them, or a save_to_disk folder"
                )
        problems.add(validation.split_expression("split", self.split))
        problems.add(validation.split_expression("eval_split", self.eval_split))
        problems.raise_if_any()
