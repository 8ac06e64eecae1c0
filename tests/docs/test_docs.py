"""README.md and docs/ stay true: their Python blocks and shell lines run as written.

A fenced `python` block runs in a fresh interpreter; a `bash`/`sh` block runs in bash with the
project's .venv first on PATH. Blocks of one file run in order, from the repository root, with
their own KUBETUNE_HOME, so a later block sees the jobs an earlier one created. A block that
cannot run here (needs a cluster, a Docker engine, the Hub) is preceded by
`<!-- not run: REASON -->`; a test checks every such comment gives a reason.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
RUNNABLE = {
    "python": "python",
    "bash": "shell",
    "sh": "shell",
    "shell": "shell",
    "console": "shell",
}
NOT_RUN = re.compile(r"<!--\s*not run:(?P<reason>.*?)-->")
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<code>.*?)^```", re.S | re.M)


@dataclass
class Block:
    page: Path
    line: int
    kind: str
    code: str
    not_run: str | None


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        kind = RUNNABLE.get(match.group("lang"))
        if kind is None:
            continue
        before = text[: match.start()].rstrip().splitlines()[-1:] or [""]
        reason = NOT_RUN.search(before[0])
        found.append(
            Block(
                page,
                text[: match.start()].count("\n") + 1,
                kind,
                match.group("code"),
                reason.group("reason").strip() if reason else None,
            )
        )
    return found


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["KUBETUNE_HOME"] = str(home)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HF_HUB_OFFLINE"] = "1"
    return env


def _run(block: Block, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = (
        [sys.executable, "-c", block.code]
        if block.kind == "python"
        else ["bash", "-euo", "pipefail", "-c", block.code]
    )
    # A session of its own, so a timeout stops everything the block started, not just bash.
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        stderr += "\n(killed after 900 s)"
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def test_every_skipped_block_says_why() -> None:
    for page in PAGES:
        for block in blocks(page):
            if block.not_run is not None:
                assert len(block.not_run) > 10, (
                    f"{page.name}:{block.line}: a not-run block needs a reason"
                )


@pytest.mark.parametrize(
    "page", [p for p in PAGES if any(b.not_run is None for b in blocks(p))], ids=lambda p: p.name
)
def test_page_blocks_run(page: Path, tmp_path: Path) -> None:
    env = _env(tmp_path / "kubetune-home")
    try:
        for block in blocks(page):
            if block.not_run is not None:
                continue
            result = _run(block, env)
            assert result.returncode == 0, (
                f"{page.relative_to(REPO)}:{block.line} ({block.kind}) exited {result.returncode}\n"
                f"--- code ---\n{block.code}\n--- stdout ---\n{result.stdout[-3000:]}\n--- stderr ---\n{result.stderr[-3000:]}"
            )
    finally:
        # Stop whatever jobs the page started and left behind.
        subprocess.run(
            [
                sys.executable,
                "-c",
                "from kubetune import TrainingClient as C; c = C(); [c.delete_job(j.metadata.name) for j in c.list_jobs()]",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            timeout=120,
        )


def test_api_reference_is_in_sync_with_the_code() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "docs" / "gen_api.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


MODULE_PATH = re.compile(r"\bkubetune(?:\.[A-Za-z_]\w*)+")
FILE_PATH = re.compile(
    r"`((?:contract|params|training|storage_initializer|runtime|trainer|ui)/[\w/.]*)`"
)


def named_in_docs() -> list[tuple[str, str]]:
    """(page, dotted kubetune name) for every name the README and docs/ mention."""
    found = []
    for page in PAGES:
        for name in sorted(set(MODULE_PATH.findall(page.read_text()))):
            if not name.startswith("kubetune.io"):  # annotations and labels, not modules
                found.append((page.name, name))
    return found


@pytest.mark.parametrize(("page", "name"), named_in_docs())
def test_every_module_path_in_the_docs_exists(page: str, name: str) -> None:
    import importlib
    import importlib.util

    def is_module(dotted: str) -> bool:
        try:
            return importlib.util.find_spec(dotted) is not None
        except ModuleNotFoundError:  # a name inside a module, not a submodule
            return False

    module, attribute = name, None
    while not is_module(module):
        module, _, attribute = module.rpartition(".")
    assert attribute is None or hasattr(importlib.import_module(module), attribute), (
        f"{page}: {name}"
    )


def test_the_architecture_page_names_files_that_exist() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    paths = FILE_PATH.findall(text)
    assert len(paths) > 20
    missing = [p for p in paths if not (REPO / "kubetune" / p).exists()]
    assert missing == []
