"""Fixtures of the dashboard tests: job YAML for real tiny jobs, the headless Chromium, and the
folder the browser tests write their screenshots to."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Where the browser tests save their screenshots: docs/images/ui with `make test` (so the docs
# show the page as it is), a temporary folder otherwise.
SCREENSHOTS_ENV = "KUBETUNE_UI_SCREENSHOTS"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def job_yaml(tiny_model: Path, sentiment_data: Path) -> Any:
    """job_yaml(name, **training) -> the text of a job file: the tiny BERT on 48 rows (16 to
    evaluate on), 1 worker x 1 process, LoRA merged at the end; `training` adds or overrides
    TrainingArguments fields."""

    def make(name: str, **training: Any) -> str:
        import yaml

        job = {
            "name": name,
            "num_workers": 1,
            "resources_per_worker": {"cpu": 1, "memory": "1G"},
            "model_provider_parameters": {
                "model_uri": str(tiny_model),
                "transformer_type": "AutoModelForSequenceClassification",
            },
            "dataset_provider_parameters": {
                "local": {
                    "path": str(sentiment_data),
                    "split": "train[:48]",
                    "eval_split": "train[48:]",
                }
            },
            "trainer_parameters": {
                "training_parameters": {
                    "output_dir": "out",
                    "save_strategy": "no",
                    "per_device_train_batch_size": 8,
                    "logging_steps": 1,
                    "disable_tqdm": True,
                    "log_level": "info",
                    "report_to": "none",
                    **training,
                },
                "lora_config": {"r": 8, "lora_alpha": 8},
                "merge_adapter": True,
            },
        }
        return str(yaml.safe_dump(job, sort_keys=False))

    return make


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    folder = Path(chosen).resolve() if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (never a downloaded browser build)."""
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: the browser tests use Debian's chromium package "
            "(`apt-get install chromium`; .ci/run installs it)"
        )
    playwright_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is missing: pip install -e '.[dev]'"
    )
    profile = tempfile.mkdtemp(prefix="kubetune-ui-chromium-")
    with playwright_api.sync_playwright() as playwright:
        # Playwright gives the browser a fresh profile folder of its own (--user-data-dir).
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=CHROMIUM_FLAGS,
            env={**os.environ, "HOME": profile},
        )
        try:
            yield launched
        finally:
            launched.close()
            shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def context(browser: Any, ui: Any) -> Iterator[Any]:
    """A browser context on the module's dashboard (its `ui` fixture: a started UIServer)."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=ui.url)
    yield ctx
    ctx.close()


@pytest.fixture
def watched(context: Any) -> Iterator[Any]:
    """A new page of the module's dashboard; the test fails if it logged an unexpected error."""
    from tests.ui.ui_browser import Watched

    page = context.new_page()
    w = Watched(page)
    yield w
    page.close()
    assert not w.unexpected(), f"console errors: {w.unexpected()}"
