"""Task pieces without training: metrics, column detection, packing, label alignment (the
causal-LM formats are in test_instruction_formats.py)."""

from __future__ import annotations

import pytest

from kubetune.runtime.errors import TrainerError
from kubetune.runtime.tasks import TaskSettings, metrics, task_for
from kubetune.runtime.tasks.base import IGNORE_INDEX
from kubetune.runtime.tasks.causal_lm import CausalCollator, pack
from kubetune.runtime.tasks.labels import column_labels, label_set
from kubetune.runtime.tasks.token_classification import align_to_subwords
from tests import tiny_models as tm


def test_entities_follow_iob_rules():
    assert metrics.entities(["B-PER", "I-PER", "O", "B-LOC"]) == {("PER", 0, 1), ("LOC", 3, 3)}
    # IOB1: an I- after O starts an entity; a type change ends one.
    assert metrics.entities(["I-PER", "I-LOC", "O"]) == {("PER", 0, 0), ("LOC", 1, 1)}
    assert metrics.entities(["B-PER", "B-PER"]) == {("PER", 0, 0), ("PER", 1, 1)}


def test_entity_scores_count_whole_entities_only():
    truth = [["B-PER", "I-PER", "O", "B-LOC"]]
    half_right = [["B-PER", "O", "O", "B-LOC"]]  # the PER span is cut short: a miss and a false hit
    scores = metrics.entity_scores(half_right, truth)
    assert scores["precision"] == pytest.approx(0.5)
    assert scores["recall"] == pytest.approx(0.5)
    assert scores["accuracy"] == pytest.approx(0.75)
    assert metrics.entity_scores(truth, truth)["f1"] == 1.0


def test_classification_and_squad_metrics():
    assert metrics.accuracy([1, 0, 1, 1], [1, 0, 0, 1]) == 0.75
    # class 0: tp 1, fp 0, fn 1 -> 2/3; class 1: tp 2, fp 1, fn 0 -> 4/5
    assert metrics.macro_f1([1, 0, 1, 1], [1, 0, 0, 1]) == pytest.approx((2 / 3 + 4 / 5) / 2)
    scores = metrics.squad_scores(["The Paris", "in rome now"], [["paris"], ["rome", "oslo"]])
    assert scores["exact_match"] == pytest.approx(50.0)
    assert scores["f1"] == pytest.approx(100 * (1 + 0.5) / 2)


def test_first_subword_carries_the_label():
    assert align_to_subwords([None, 0, 0, 1, None], [3, 5]) == [
        IGNORE_INDEX,
        3,
        IGNORE_INDEX,
        5,
        IGNORE_INDEX,
    ]


def test_string_labels_get_ids_and_num_labels_is_checked():
    labels = label_set(["pos", "neg", "pos"], None, None, "label")
    assert labels.names == ["neg", "pos"] and labels.ids == {"neg": 0, "pos": 1}
    assert len(label_set([0, 2, 1], None, None, "label").names) == 3
    with pytest.raises(TrainerError, match="num_labels=2"):
        label_set([0, 2, 1], None, 2, "label")


def test_a_train_split_of_a_single_class_is_refused():
    from datasets import ClassLabel, Dataset, Features, Value

    def split(labels: list, names: list[str] | None = None) -> Dataset:
        features = (
            Features({"text": Value("string"), "label": ClassLabel(names=names)}) if names else None
        )
        return Dataset.from_list([{"text": "x", "label": v} for v in labels], features=features)

    for train, eval in [
        (split([1, 1, 1]), None),  # ids 0..max name a class that never occurs
        (split(["pos", "pos"]), split(["neg"])),  # the eval split's other class does not help
        (split([0, 0], ["neg", "pos"]), None),  # a ClassLabel names both, the data holds one
    ]:
        with pytest.raises(
            TrainerError, match="column 'label': the train split has only the class"
        ):
            column_labels(train, eval, "label", None)
    assert column_labels(split([0, 1, 1]), None, "label", None).names == ["0", "1"]


def test_missing_column_names_it_and_lists_the_dataset_columns():
    task = task_for("AutoModelForSequenceClassification", TaskSettings(columns={"text": "review"}))
    with pytest.raises(TrainerError) as error:
        task.resolve_columns(["sentence", "stars"])
    assert "columns['text']='review'" in str(error.value)
    assert "['sentence', 'stars']" in str(error.value)
    task = task_for("AutoModelForSequenceClassification", TaskSettings(columns={"label": "stars"}))
    assert task.resolve_columns(["sentence", "stars"]) == {
        "text": "sentence",
        "text_pair": None,
        "label": "stars",
    }


def test_packing_keeps_samples_whole_with_their_own_positions_and_padding():
    packed = pack(
        {"input_ids": [[1, 2, 3], [4, 5], [6, 7, 8]], "labels": [[-100, 2, 3], [4, 5], [6, 7, 8]]},
        block=5,
    )
    assert packed["input_ids"] == [[1, 2, 3, 4, 5], [6, 7, 8]]
    assert packed["position_ids"] == [[0, 1, 2, 0, 1], [0, 1, 2]]
    # A sample's first token is no target: it would be predicted from the previous sample.
    assert packed["labels"] == [[-100, 2, 3, -100, 5], [-100, 7, 8]]
    collated = CausalCollator(pad_token_id=0)(
        [{key: values[i] for key, values in packed.items()} for i in (0, 1)]
    )
    # No attention mask: transformers keeps attention inside each sample from position_ids;
    # the padding gets positions of its own, a sample of its own.
    assert "attention_mask" not in collated
    assert collated["position_ids"].tolist() == [[0, 1, 2, 0, 1], [0, 1, 2, 0, 1]]
    assert collated["labels"][1].tolist() == [-100, 7, 8, -100, -100]

    rows = [{"input_ids": [5] * 3, "labels": [5] * 3}, {"input_ids": [6] * 9, "labels": [6] * 9}]
    batch = CausalCollator(pad_token_id=0)(rows)
    assert batch["input_ids"].shape == (2, 9)  # the longest, not max_length
    assert batch["labels"][0, 3:].eq(IGNORE_INDEX).all() and batch["attention_mask"][0].sum() == 3
    # On a GPU (pad_multiple() == 8) the longest is rounded up for the tensor cores.
    assert CausalCollator(pad_token_id=0, multiple=8)(rows)["input_ids"].shape == (2, 16)


def test_no_known_causal_format_lists_the_columns():
    task = task_for("AutoModelForCausalLM", TaskSettings())
    with pytest.raises(TrainerError, match=r"the dataset has columns \['body', 'id'\]"):
        task.resolve_columns(["body", "id"])


def test_unknown_transformer_type():
    with pytest.raises(TrainerError, match="AutoModelForSequenceClassification"):
        task_for("AutoModelForSpeech", TaskSettings())


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    from transformers import AutoTokenizer, BertForMaskedLM

    path = tm.tiny_bert_masked_lm(tmp_path_factory.mktemp("bert"))
    return AutoTokenizer.from_pretrained(path), BertForMaskedLM.from_pretrained(path)


def test_text_pairs_and_string_labels_with_inferred_num_labels(bert):
    from datasets import Dataset

    from kubetune.runtime.tasks.base import MapCache

    tokenizer, model = bert
    rows = [
        {"sentence1": "bob lives in oslo", "sentence2": "bob is in oslo", "label": "entailment"},
        {"sentence1": "bob lives in oslo", "sentence2": "bob is in rome", "label": "contradiction"},
        {"sentence1": "bob lives in oslo", "sentence2": "alice likes rome", "label": "neutral"},
    ]
    train = Dataset.from_list(rows)
    task = task_for("AutoModelForSequenceClassification", TaskSettings())
    assert task.resolve_columns(train.column_names) == {
        "text": "sentence1",
        "text_pair": "sentence2",
        "label": "label",
    }
    kwargs = task.model_kwargs(train, None)
    assert kwargs["num_labels"] == 3 and kwargs["id2label"] == {
        0: "contradiction",
        1: "entailment",
        2: "neutral",
    }
    prepared = task.prepare(train, None, tokenizer, model, MapCache(None, "test"))
    first = prepared.train[0]
    assert tokenizer.convert_ids_to_tokens(first["input_ids"]).count("[SEP]") == 2
    assert prepared.train["labels"][:] == [1, 0, 2]
    pair = [prepared.train[0], prepared.train[2]]
    batch = prepared.collator(pair)
    # Padded to the longest of the batch (no GPU here, so not rounded up), never to max_length.
    assert batch["input_ids"].shape[1] == max(len(x["input_ids"]) for x in pair)


def test_long_contexts_are_split_with_stride_and_answers_located(bert):
    from datasets import Dataset

    from kubetune.runtime.tasks.base import MapCache

    tokenizer, model = bert
    filler = " ".join(["the film was very good ."] * 6)
    context = f"{filler} bob lives in lima . {filler}"
    start = context.index("lima")
    rows = [
        {
            "question": "where bob lives ?",
            "context": context,
            "answers": {"text": ["lima"], "answer_start": [start]},
        }
    ]
    task = task_for("AutoModelForQuestionAnswering", TaskSettings(max_length=32))
    task.resolve_columns(["question", "context", "answers"])
    prepared = task.prepare(Dataset.from_list(rows), None, tokenizer, model, MapCache(None, "test"))
    features = prepared.train
    assert len(features) > 1 and all(len(ids) <= 32 for ids in features["input_ids"])
    located = [
        tokenizer.convert_ids_to_tokens(
            f["input_ids"][f["start_positions"] : f["end_positions"] + 1]
        )
        for f in features
        if f["start_positions"] > 0
    ]
    assert located and all(tokens == ["lima"] for tokens in located)


def test_threads_are_shared_between_local_processes(monkeypatch):
    import os

    import torch

    from kubetune.runtime.startup import configure_threads

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    try:
        assert (
            configure_threads()
            == max(1, len(os.sched_getaffinity(0)) // 2)
            == torch.get_num_threads()
        )
        monkeypatch.setenv("OMP_NUM_THREADS", "3")
        assert configure_threads() is None
    finally:
        torch.set_num_threads(before)


def test_packing_fills_max_length_blocks_and_keeps_the_prompt_mask(tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kubetune.runtime.tasks.base import MapCache

    path = tm.tiny_llama(tmp_path / "llama")
    tokenizer, model = (
        AutoTokenizer.from_pretrained(path),
        AutoModelForCausalLM.from_pretrained(path),
    )
    rows = tm.prompt_completion_rows(20)
    task = task_for("AutoModelForCausalLM", TaskSettings(max_length=16, packing=True))
    task.resolve_columns(["prompt", "completion"])
    prepared = task.prepare(
        Dataset.from_list(rows), None, tokenizer, model, MapCache(tmp_path / "cache", "t")
    )
    lengths = [len(ids) for ids in prepared.train["input_ids"]]
    assert all(n == 16 for n in lengths[:-1]) and 0 < lengths[-1] <= 16
    assert sum(lengths) == 20 * 8  # '<s> say w :' + 'w w . </s>' per row, nothing dropped
    labels = [t for row in prepared.train["labels"] for t in row]
    assert labels.count(IGNORE_INDEX) == 20 * 4
    assert list((tmp_path / "cache").glob("t-*.arrow"))
