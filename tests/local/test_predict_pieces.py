"""Finding and loading a job's final model without running a job: the clear errors for jobs not
found, not finished, failed or without a model (job folders written as the local backend leaves
them); kept outputs found by name; output folders of every task answered by `kubetune predict`
(tiny models saved as a run saves them); the chat loop and streamed generation."""

from __future__ import annotations

import io
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from kubetune import cli
from kubetune.contract import layout
from kubetune.contract.layout import OutputDir
from kubetune.inference.final_model import ModelNotAvailable, final_model_in, find_final_model
from kubetune.training.backends.local.backend import LocalBackend
from tests import tiny_models as tm
from tests.ui.ui_jobs import stop_stand_ins, write_job


@pytest.fixture
def backend(tmp_path: Path) -> Any:
    yield LocalBackend(home=tmp_path / "home")
    stop_stand_ins()


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (
            "running",
            "job default/x is Running, step 12/40: its final model is saved when it succeeds",
        ),
        ("queued", "job default/x is Created: its final model is saved when it succeeds"),
        (
            "failed",
            "job default/x Failed (worker-1 exited with code 1: out of memory): it saved no final model",
        ),
        ("succeeded", "job default/x: no model saved in"),  # an empty model/ folder
    ],
)
def test_a_job_without_a_final_model_is_named_with_its_state(backend, state, expected):
    write_job(backend.home, "x", state=state, steps=0 if state == "queued" else 12)
    with pytest.raises(ModelNotAvailable, match=re.escape(expected)):
        find_final_model(backend, "x", "default")


def test_a_job_not_found_says_nothing_was_kept(backend):
    with pytest.raises(ModelNotAvailable) as error:
        find_final_model(backend, "ghost", "default")
    assert "job default/ghost not found" in str(error.value)
    assert "no outputs of a job of that name were kept (`kubetune delete --keep-outputs`" in str(
        error.value
    )


def saved_run(out: Path, transformer_type: str, make_model: Any, **metrics: Any) -> Path:
    """An output directory as a run leaves it: model/ and metrics.json."""
    make_model(out / layout.OUTPUT_MODEL_DIR)
    layout.write_json_atomic(
        out / layout.METRICS_FILE, {"transformer_type": transformer_type, **metrics}
    )
    return out


def test_the_newest_kept_outputs_of_that_name_are_found(backend, tmp_path):
    kept = backend.home / "kept-outputs" / "default"
    older = saved_run(
        kept / "x-11111111", "AutoModelForSequenceClassification", tm.tiny_bert_classifier
    )
    newer = kept / "x-22222222"
    older.rename(newer)  # the same model, now in the newer folder
    (kept / "x-11111111").mkdir()
    os.utime(kept / "x-11111111", (time.time() - 60, time.time() - 60))
    (kept / "x-y-33333333").mkdir()  # job x-y's, not x's
    os.utime(kept / "x-y-33333333", (time.time() + 60, time.time() + 60))
    assert [o.root.name for o in backend.kept_outputs("x", "default")] == [
        "x-22222222",
        "x-11111111",
    ]
    final = find_final_model(backend, "x", "default")
    assert final.folder == newer / "model" and not final.adapter
    assert final.origin == f"job default/x (deleted; its outputs kept in {newer})"


def test_the_merged_model_is_preferred_and_an_adapters_base_is_recorded(tmp_path):
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    layout.write_json_atomic(
        out / "model" / layout.ADAPTER_CONFIG_FILE,
        {"base_model_name_or_path": "s3://models/bert", "revision": None},
    )
    layout.write_json_atomic(out / "model" / layout.LABELS_FILE, ["neg", "pos"])
    layout.write_json_atomic(
        out / layout.METRICS_FILE, {"transformer_type": "AutoModelForSequenceClassification"}
    )
    adapter = final_model_in(OutputDir(out), "job default/x")
    assert adapter.adapter and adapter.base_model == "s3://models/bert"
    assert adapter.labels == ["neg", "pos"]
    from kubetune.inference.pipelines import load_model

    with pytest.raises(
        ModelNotAvailable, match=r"base model is in S3 \(s3://models/bert\).*--base-model"
    ):
        load_model(adapter)
    tm.tiny_bert_classifier(out / "merged_model")
    merged = final_model_in(OutputDir(out), "job default/x")
    assert merged.folder == out / "merged_model" and not merged.adapter


def predict(path: Path, *args: str, capsys: Any) -> list[str]:
    assert cli.main(["predict", "--json", str(path), *args]) == 0, capsys.readouterr().err
    return [json.loads(line)["output"] for line in capsys.readouterr().out.splitlines()]


def test_predict_answers_from_output_folders_of_every_task(tmp_path, capsys):
    from PIL import Image
    from transformers import AutoModelForQuestionAnswering, AutoModelForTokenClassification

    base = tm.tiny_bert_masked_lm(tmp_path / "mlm")

    def derived(cls: Any, **settings: Any) -> Any:
        def make(path: Path) -> None:
            cls.from_pretrained(base, **settings).save_pretrained(path)
            tm.tiny_tokenizer(path, tm.WIDE_VOCAB)

        return make

    qa = saved_run(
        tmp_path / "qa", "AutoModelForQuestionAnswering", derived(AutoModelForQuestionAnswering)
    )
    context = "the film bob lives in oslo . " * 60  # longer than one window
    (answer,) = predict(qa, "where bob lives ?", "--context", context, capsys=capsys)
    assert answer["answer"] and answer["answer"] == context[answer["start"] : answer["end"]]
    assert 0 < answer["score"] <= 1
    assert cli.main(["predict", str(qa), "where ?"]) == 1
    assert "give it (--context TEXT)" in capsys.readouterr().err

    labels = {0: "O", 1: "B-PER", 2: "B-LOC"}
    ner = saved_run(
        tmp_path / "ner",
        "AutoModelForTokenClassification",
        derived(AutoModelForTokenClassification, num_labels=3, id2label=labels),
    )
    (entities,) = predict(ner, "bob lives in oslo", capsys=capsys)
    assert {e["entity_group"] for e in entities} <= {"PER", "LOC"}  # O is left out

    (fills,) = predict(
        saved_run(tmp_path / "fill", "AutoModelForMaskedLM", lambda p: tm.tiny_bert_masked_lm(p)),
        "a [MASK] film",
        capsys=capsys,
    )
    assert len(fills) == 5 and all(f["sequence"].startswith("a ") for f in fills)

    image = tmp_path / "red.png"
    Image.new("RGB", (8, 8), (200, 10, 10)).save(image)
    vit = saved_run(tmp_path / "vit", "AutoModelForImageClassification", tm.tiny_vit)
    (scores,) = predict(vit, str(image), capsys=capsys)
    assert abs(sum(s["score"] for s in scores) - 1) < 1e-4


def test_predict_continues_text_without_a_chat_template_and_names_a_missing_folder(
    tmp_path, capsys
):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    llm = saved_run(
        tmp_path / "llm", "AutoModelForCausalLM", lambda p: tm.tiny_llama(p, chat_template=False)
    )
    prompts = ["bob lives in", "rome", "a good film"]
    assert cli.main(["predict", str(llm), "--max-new-tokens", "3", *prompts]) == 0
    lines = capsys.readouterr().out.splitlines()
    model = AutoModelForCausalLM.from_pretrained(llm / "model")
    tokenizer = AutoTokenizer.from_pretrained(llm / "model")
    expected = []
    for prompt in prompts:
        inputs = tokenizer(prompt, return_tensors="pt")
        new = model.generate(**inputs, max_new_tokens=3)[0, inputs["input_ids"].shape[1] :]
        expected.append(tokenizer.decode(new, skip_special_tokens=True).strip())
    assert lines == expected and any(expected)
    assert cli.main(["chat", str(llm)]) == 1
    assert "has no chat template" in capsys.readouterr().err
    assert cli.main(["predict", str(tmp_path / "nothing-here"), "x"]) == 1
    assert "no such output directory" in capsys.readouterr().err


def test_the_chat_loop_keeps_the_conversation_and_streams_each_reply(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from kubetune.inference.chat import chat
    from kubetune.inference.generation import generate_text

    path = tm.tiny_llama(tmp_path / "llm")
    model, tokenizer = (
        AutoModelForCausalLM.from_pretrained(path),
        AutoTokenizer.from_pretrained(path),
    )

    class Writes(io.StringIO):
        count = 0

        def write(self, text: str) -> int:
            self.count += 1
            return super().write(text)

    streamed = Writes()
    reply = generate_text(model, tokenizer, [{"role": "user", "content": "hi"}], 5, out=streamed)
    assert streamed.getvalue() == reply + "\n" or streamed.getvalue().strip() == reply
    assert streamed.count > 2  # piece by piece, then the newline

    typed = iter(["bob ?", "/reset", "", "alice ?", "/exit", "never read"])
    pipe = type("Pipe", (), {"model": model, "tokenizer": tokenizer})()
    conversation = chat(
        pipe,
        read=lambda prompt: next(typed),
        out=io.StringIO(),
        system="be brief",
        max_new_tokens=3,
    )
    assert [m["role"] for m in conversation] == ["system", "user", "assistant"]
    assert conversation[1]["content"] == "alice ?"  # /reset started over
    assert next(typed) == "never read"
