# Two entry points on a fresh machine: `make demo` and `make test`. Both build .venv once.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP := $(BIN)/pip --disable-pip-version-check

.PHONY: demo test test-slow lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)

# torch first, from the exact pin (a local CPU build); then everything else under the constraint.
$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The dashboard's browser tests also refresh the screenshots in docs/images/ui (docs/ui.md).
test: $(STAMP) lint
	KUBETUNE_UI_SCREENSHOTS=docs/images/ui $(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py --quick

clean:
	rm -rf $(VENV) build *.egg-info
