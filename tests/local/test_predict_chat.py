"""One real 2-process causal-LM job on a concatenation of two local chat files: every sample of
the mix is seen exactly once per epoch across the ranks; then `kubetune predict`, `kubetune chat`
(in a pseudo-terminal) and `pipeline_for_job` answer from its LoRA adapter, before and after
`delete --keep-outputs`, as plain transformers + PEFT would."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubetune import cli
from kubetune.contract import layout
from kubetune.training import TrainingClient
from kubetune.training.backends.local.jobdir import job_dir
from tests import tiny_models as tm
from tests.local.terminal import Terminal

NAME = "chat-mix"
PROMPT = "bob lives in rome . where bob lives ?"
KUBETUNE = Path(sys.executable).parent / "kubetune"
A_ROWS, B_ROWS = tm.chat_rows(24), tm.chat_rows(8, seed=1)


@dataclass
class ChatJob:
    home: Path
    client: TrainingClient
    base_model: Path
    trace: Path
    reply: str  # the adapter's answer to PROMPT, computed with plain transformers + PEFT


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def reference_reply(adapter: Path, base: Path) -> str:
    """Greedy reply to PROMPT through the chat template, as a user of transformers + PEFT gets it."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter).eval()
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": PROMPT}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    generated = model.generate(**inputs, max_new_tokens=64)
    new = generated[0, inputs["input_ids"].shape[1] :]
    return str(tokenizer.decode(new, skip_special_tokens=True)).strip()


@pytest.fixture(scope="module")
def chat_job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChatJob]:
    """The job, trained to its end (2 processes, LoRA, 2 epochs of 4 steps of 8 samples)."""
    import transformers
    from peft import LoraConfig

    from kubetune import HuggingFaceModelParams, HuggingFaceTrainerParams, LocalDatasetParams

    root = tmp_path_factory.mktemp("chat-job")
    home, trace = root / "home", root / "trace"
    base = tm.tiny_llama(root / "tiny-llama")
    client = TrainingClient(backend="local", home=home)
    client.train(
        name=NAME,
        num_procs_per_worker=2,
        model_provider_parameters=HuggingFaceModelParams(str(base), "AutoModelForCausalLM"),
        dataset_provider_parameters=[
            LocalDatasetParams(str(write_jsonl(root / "a.jsonl", A_ROWS))),
            LocalDatasetParams(str(write_jsonl(root / "b.jsonl", B_ROWS))),
        ],
        trainer_parameters=HuggingFaceTrainerParams(
            training_parameters=transformers.TrainingArguments(
                output_dir="out",
                per_device_train_batch_size=4,
                num_train_epochs=2,
                learning_rate=3e-2,
                logging_steps=1,
                save_strategy="no",
                report_to="none",
                disable_tqdm=True,
            ),
            lora_config=LoraConfig(r=8, lora_alpha=16),
        ),
        env_vars={"KUBETUNE_TRACE_SAMPLES": str(trace)},
    )
    try:
        client.wait_for_job_conditions(NAME, wait_timeout=300, polling_interval=1)
    except RuntimeError:
        pytest.fail("\n".join(str(line) for line in client.stream_job_logs(NAME))[-6000:])
    adapter = Path(client.get_job_report(NAME).output_dir or "") / layout.OUTPUT_MODEL_DIR
    yield ChatJob(home, client, base, trace, reference_reply(adapter, base))
    if job_dir(home, "default", NAME).path.exists():
        client.delete_job(NAME)


@pytest.fixture
def at_home(chat_job: ChatJob, monkeypatch: pytest.MonkeyPatch) -> ChatJob:
    """The CLI, run in this process, sees the job's KUBETUNE_HOME."""
    monkeypatch.setenv("KUBETUNE_HOME", str(chat_job.home))
    return chat_job


def test_every_sample_of_the_concatenation_is_seen_once_per_epoch_across_ranks(chat_job):
    import datasets

    workspace = job_dir(chat_job.home, "default", NAME).workspace
    mixed = datasets.load_from_disk(str(workspace / layout.DATASET_DIR))["train"]
    assert [row["messages"] for row in mixed] == [r["messages"] for r in A_ROWS + B_ROWS]
    assert (workspace / layout.DATASETS_DIR / "1").is_dir()  # each dataset in its own folder
    ranks = [
        [int(i) for i in (chat_job.trace / f"rank-{r}.txt").read_text().split()] for r in (0, 1)
    ]
    per_epoch = len(mixed) // 2
    assert [len(seen) for seen in ranks] == [2 * per_epoch, 2 * per_epoch]
    for epoch in (0, 1):
        window = slice(epoch * per_epoch, (epoch + 1) * per_epoch)
        assert sorted(ranks[0][window] + ranks[1][window]) == list(range(len(mixed))), epoch


def predicted(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    assert cli.main(["predict", NAME, *args]) == 0, capsys.readouterr().err
    return capsys.readouterr().out.splitlines()


def chatted(chat_job: ChatJob, quit_with: str) -> str:
    """The reply of `kubetune chat` to PROMPT, typed in a pseudo-terminal; `quit_with` ends it."""
    terminal = Terminal(
        [str(KUBETUNE), "chat", NAME],
        env={**os.environ, "KUBETUNE_HOME": str(chat_job.home)},
    )
    # the prompt starts a line ('> ' alone shows up inside replies: '<|end|> ')
    terminal.read_until("\n> ", 1, timeout=120)
    terminal.type(PROMPT + "\n")
    terminal.read_until("\n> ", 2, timeout=60)
    terminal.type(quit_with)
    assert terminal.wait(timeout=30) == 0, terminal.transcript
    assert "/exit or Ctrl-D quits" in terminal.transcript
    # after the echo of the typed line: the streamed reply, then the next prompt
    return terminal.transcript.split(PROMPT + "\n", 1)[1].split("\n> ", 1)[0].strip()


def test_predict_and_the_pipeline_answer_as_transformers_does(at_home, capsys):
    from kubetune import pipeline_for_job

    assert at_home.reply  # the adapter generates something
    assert predicted(capsys, PROMPT) == [at_home.reply]
    pipe = pipeline_for_job(NAME, client=at_home.client)
    assert pipe.task == "text-generation"
    generated = pipe(PROMPT, max_new_tokens=4, do_sample=False, return_full_text=False)
    assert len(generated[0]["generated_text"].split()) == 4


def test_chat_streams_the_same_reply_and_exits_on_exit(chat_job):
    assert chatted(chat_job, "/exit\n") == chat_job.reply


def test_after_delete_keep_outputs_predict_and_chat_answer_from_the_kept_adapter(
    at_home, capsys, monkeypatch
):
    import io

    assert cli.main(["delete", NAME, "--keep-outputs"]) == 0
    assert "outputs kept in" in capsys.readouterr().out
    assert not job_dir(at_home.home, "default", NAME).path.exists()
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PROMPT}\n\n{PROMPT}\n"))
    assert predicted(capsys) == [at_home.reply, at_home.reply]  # one answer per stdin line
    assert chatted(at_home, "\x04") == at_home.reply  # Ctrl-D quits too
