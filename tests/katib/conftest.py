"""Fixtures of the hyperparameter-search tests: Katib's LLM example as tune() arguments on
offline stand-ins (a tiny BERT and a small CSV), and that experiment run once on this machine
(shared by the tests that read it: the Python API, the results, the CLI)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kubetune.katib.backends.local.store import experiment_dir
from tests.katib.katib_helpers import LLM_EXAMPLE, LLM_NAMESPACE, llm_example


@pytest.fixture(scope="session")
def llm_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_model: Path, sentiment_data: Path
) -> Iterator[dict[str, Any]]:
    """Katib's LLM example run to its end on this machine, once per session: the home, the
    client, the wall time of wait_for_experiment_condition and what it printed."""
    import contextlib
    import io

    from kubetune.katib import KatibClient

    home = tmp_path_factory.mktemp("katib-home")
    client = KatibClient(namespace=LLM_NAMESPACE, home=home)
    client.tune(**llm_example(tiny_model, sentiment_data))
    printed = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(printed):
        experiment = client.wait_for_experiment_condition(
            name=LLM_EXAMPLE, polling_interval=1, timeout=600
        )
    yield {
        "home": home,
        "client": client,
        "experiment": experiment,
        "printed": printed.getvalue(),
        "seconds": time.monotonic() - started,
        "folder": experiment_dir(home, LLM_NAMESPACE, LLM_EXAMPLE),
    }
    with contextlib.suppress(RuntimeError):
        client.delete_experiment(LLM_EXAMPLE)
