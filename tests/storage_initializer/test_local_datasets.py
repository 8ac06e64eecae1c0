"""Local datasets go through the same loaders: a save_to_disk Dataset folder, a folder of
split files, a single JSON Lines file; the source is never written to."""

from __future__ import annotations

import json
from pathlib import Path

from kubetune.storage_initializer.initialize import initialize
from kubetune.storage_initializer.local import LocalDatasetParams
from tests.storage_initializer.si_helpers import load_workspace_dataset, make_spec
from tests.tiny_models import sentiment_csv, sentiment_rows


def _snapshot(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*")}


def test_save_to_disk_dataset_folder_is_read_not_written(tiny_model: Path, tmp_path: Path) -> None:
    import datasets

    source = tmp_path / "saved"
    datasets.Dataset.from_list(sentiment_rows(50)).save_to_disk(str(source))
    before = _snapshot(source)
    spec, _ = make_spec(
        str(tiny_model),
        LocalDatasetParams(path=str(source), split="train[:80%]", eval_split="train[80%:]"),
    )

    initialize(spec, tmp_path / "ws", env={})

    data = load_workspace_dataset(tmp_path / "ws")
    assert (data["train"].num_rows, data["eval"].num_rows) == (40, 10)
    assert data["eval"][0] == sentiment_rows(50)[40]
    assert _snapshot(source) == before, "the source folder was modified (cache files?)"


def test_folder_of_split_files(tiny_model: Path, tmp_path: Path) -> None:
    sentiment_csv(tmp_path / "files" / "train.csv", n=30, seed=1)
    sentiment_csv(tmp_path / "files" / "test.csv", n=12, seed=2)
    before = _snapshot(tmp_path / "files")
    spec, _ = make_spec(
        str(tiny_model),
        LocalDatasetParams(
            path=str(tmp_path / "files"), split="train+test[:2]", eval_split="test[2:]"
        ),
    )

    initialize(spec, tmp_path / "ws", env={})

    data = load_workspace_dataset(tmp_path / "ws")
    assert (data["train"].num_rows, data["eval"].num_rows) == (32, 10)
    assert _snapshot(tmp_path / "files") == before


def test_single_jsonl_file_without_train_name(tiny_model: Path, tmp_path: Path) -> None:
    rows = sentiment_rows(9)
    path = tmp_path / "reviews.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec, _ = make_spec(str(tiny_model), LocalDatasetParams(path=str(path), split="train[-3:]"))

    initialize(spec, tmp_path / "ws", env={})

    data = load_workspace_dataset(tmp_path / "ws")
    assert list(data) == ["train"]
    assert [data["train"][i] for i in range(3)] == rows[-3:]
