# `make fuzz` and `make test` set everything up from nothing: a fresh machine has no .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FUZZ_ARGS ?= --max-tests 30 --seed 1
FUZZ_OUT ?= reports/campaign-$(shell date +%Y%m%d-%H%M%S)

.PHONY: setup fuzz test lint clean

setup: $(STAMP)

# torch is pinned and installed first: an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

fuzz: setup
	$(BIN)/dlfuzz fuzz $(FUZZ_ARGS) --out $(FUZZ_OUT)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
