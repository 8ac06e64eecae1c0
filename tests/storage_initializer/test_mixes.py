"""Dataset mixes: the mixing function on real `datasets.Dataset`s (proportions by weight, both
stopping strategies, concatenation, sample counts, the seed), and the storage initializer
fetching two local datasets into their own folders and mixing them (columns checked first)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubetune.contract import layout
from kubetune.params.mix import DatasetMix, MixedDataset
from kubetune.storage_initializer.errors import InitializerError
from kubetune.storage_initializer.initialize import initialize
from kubetune.storage_initializer.local import LocalDatasetParams
from kubetune.storage_initializer.mixing import mix_train_splits
from tests.storage_initializer.si_helpers import load_workspace_dataset, make_spec

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def tagged(source: str, n: int):
    from datasets import Dataset

    return Dataset.from_dict({"text": [f"{source}{i}" for i in range(n)]})


def sources_of(rows: list[str]) -> dict[str, int]:
    return {s: sum(r.startswith(s) for r in rows) for s in ("a", "b")}


def test_weights_3_to_1_yield_samples_in_that_proportion_without_repeats():
    a, b = tagged("a", 3000), tagged("b", 3000)
    mixed = mix_train_splits(
        [a, b], [3, 1], [None, None], seed=7, stopping_strategy="first_exhausted"
    )
    rows = list(mixed.data["text"])
    counts = sources_of(rows)
    # first_exhausted ends when a (drawn 3 times in 4) runs out: ~4000 rows, ~1000 of b.
    assert counts["a"] == 3000 and mixed.rows_per_part == [counts["a"], counts["b"]]
    share = counts["a"] / len(rows)
    assert 0.72 < share < 0.78, counts  # 0.75 +- 4.4 standard deviations
    assert len(set(rows)) == len(rows)  # no row used twice
    # the two sources are interleaved, not one after the other
    assert "b" in "".join(r[0] for r in rows[:40])


def test_all_exhausted_uses_every_row_and_repeats_the_part_that_runs_out():
    a, b = tagged("a", 600), tagged("b", 600)
    mixed = mix_train_splits(
        [a, b], [3, 1], [None, None], seed=7, stopping_strategy="all_exhausted"
    )
    rows = list(mixed.data["text"])
    counts = sources_of(rows)
    assert set(rows) == {f"a{i}" for i in range(600)} | {f"b{i}" for i in range(600)}
    assert 0.72 < counts["a"] / len(rows) < 0.78, counts
    assert counts["a"] > 600  # a ran out first and started over


def test_the_seed_decides_the_order():
    a, b = tagged("a", 200), tagged("b", 200)

    def order(seed: int) -> list[str]:
        return list(
            mix_train_splits([a, b], [1, 1], [None, None], seed, "first_exhausted").data["text"]
        )

    assert order(1) == order(1)
    assert order(1) != order(2)


def test_concatenation_keeps_every_row_once_and_sample_counts_cut_or_repeat():
    a, b = tagged("a", 10), tagged("b", 4)
    concatenated = mix_train_splits([a, b], None, [None, None], 0, "first_exhausted")
    assert list(concatenated.data["text"]) == [f"a{i}" for i in range(10)] + [
        f"b{i}" for i in range(4)
    ]

    resized = mix_train_splits([a, b], None, [6, 9], 0, "first_exhausted")
    rows = list(resized.data["text"])
    assert resized.rows_per_part == [6, 9]
    assert len(set(rows[:6])) == 6 and set(rows[:6]) < {f"a{i}" for i in range(10)}
    # 9 of 4 rows: every row twice, one more chosen at random
    repeats = sorted(rows[6:].count(f"b{i}") for i in range(4))
    assert repeats == [2, 2, 2, 3]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_two_local_files_are_fetched_into_their_own_folders_and_mixed(tiny_model, tmp_path):
    import datasets

    a = write_jsonl(tmp_path / "a.jsonl", [{"text": f"a{i}", "label": i % 2} for i in range(30)])
    b = write_jsonl(tmp_path / "b.jsonl", [{"text": f"b{i}", "label": 1} for i in range(10)])
    mix = DatasetMix(
        [
            MixedDataset(
                LocalDatasetParams(str(a), split="train[:24]", eval_split="train[24:]"), weight=3
            ),
            MixedDataset(LocalDatasetParams(str(b)), weight=1, num_samples=20),
        ],
        stopping_strategy="all_exhausted",
    )
    spec, _ = make_spec(str(tiny_model), mix)

    done = initialize(spec, tmp_path / "ws", env={})

    workspace = layout.Workspace(tmp_path / "ws")
    data = load_workspace_dataset(workspace.root)
    parts = [datasets.load_from_disk(str(workspace.datasets_dir / str(i))) for i in (0, 1)]
    assert parts[0]["train"].num_rows == 24 and parts[0]["eval"].num_rows == 6
    assert parts[1]["train"].num_rows == 10  # as fetched; its 20 samples are taken in the mix
    train = list(data["train"]["text"])
    assert {r for r in train if r[0] == "a"} == {f"a{i}" for i in range(24)}
    assert {r for r in train if r[0] == "b"} == {f"b{i}" for i in range(10)}
    assert list(data["eval"]["text"]) == [f"a{i}" for i in range(24, 30)]
    marker = done.marker.dataset
    assert marker.kind == "mix" and marker.splits == {"train": len(train), "eval": 6}
    assert [p["rows_in_mix"] for p in marker.details["parts"]] == [
        sum(r[0] == "a" for r in train),
        sum(r[0] == "b" for r in train),
    ]
    # The marker reads back, and a rerun with the same spec fetches nothing.
    assert initialize(spec, tmp_path / "ws", env={}).reused


def test_columns_that_differ_are_named_for_each_dataset(tiny_model, tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "label": 0}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"sentence": "y", "label": 1}])
    spec, _ = make_spec(str(tiny_model), [LocalDatasetParams(str(a)), LocalDatasetParams(str(b))])

    with pytest.raises(InitializerError) as error:
        initialize(spec, tmp_path / "ws", env={})

    message = str(error.value)
    assert message.startswith(f"dataset mix of 2 (dataset {a}, dataset {b})"), message
    assert "columns differ (sentence, text not in every one)" in message
    assert f"dataset {a} has text, label; dataset {b} has sentence, label" in message
    assert not (tmp_path / "ws" / layout.MARKER_FILE).exists()


def test_column_types_are_converted_to_the_first_datasets_or_named(tiny_model, tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", [{"text": "x", "label": 0.5}])
    b = write_jsonl(tmp_path / "b.jsonl", [{"text": "y", "label": 1}])  # int64 -> float64
    spec, _ = make_spec(str(tiny_model), [LocalDatasetParams(str(a)), LocalDatasetParams(str(b))])
    initialize(spec, tmp_path / "ws", env={})
    assert list(load_workspace_dataset(tmp_path / "ws")["train"]["label"]) == [0.5, 1.0]

    c = write_jsonl(tmp_path / "c.jsonl", [{"text": "z", "label": "positive"}])
    spec, _ = make_spec(str(tiny_model), [LocalDatasetParams(str(a)), LocalDatasetParams(str(c))])
    with pytest.raises(
        InitializerError, match=r"label is Value\('string'\) there but Value\('float64'\)"
    ):
        initialize(spec, tmp_path / "ws2", env={})


def test_the_example_mix_is_drawn_3_to_1_without_repeats(tmp_path):
    from kubetune.jobfile import read_job_file
    from tests.local.test_local_cli import prepare_example_model

    prepare_example_model()
    job = read_job_file(EXAMPLES / "sentiment-mix.yaml")

    done = initialize(job.spec, tmp_path / "ws", env={})

    first, second = (p["rows_in_mix"] for p in done.marker.dataset.details["parts"])
    # first_exhausted: the mix ends when one file has given all its rows
    assert (first == 192 or second == 64) and 2.5 < first / second < 3.5, (first, second)

    train = load_workspace_dataset(tmp_path / "ws")["train"]
    assert len(set(train["text"])) == train.num_rows == first + second
