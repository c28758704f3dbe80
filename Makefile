# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_DATA ?= data/demo
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install demo test lint typecheck bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	WORKBENCH_DATA_DIR=$(DEMO_DATA) $(BIN)/workbench init
	WORKBENCH_DATA_DIR=$(DEMO_DATA) $(BIN)/python -m workbench.demo
	WORKBENCH_DATA_DIR=$(DEMO_DATA) $(BIN)/workbench serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	WORKBENCH_NO_ENTRY_POINTS=1 $(BIN)/pytest -n 2 -q

bench: install
	$(BIN)/python benchmarks/storage.py

docs: install
	$(BIN)/python -m workbench.plugin_docs

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
