# Two commands: `make demo` runs the gateway on simulators, `make test` runs every check.
# Each installs what it needs first (a virtualenv in .venv with the project and its dev tools).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo run test lint typecheck pytest bench model clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)  ## the whole gateway on simulators (Ctrl-C stops)
	$(BIN)/gateway demo

run: $(STAMP)   ## the gateway alone, on the embedded default config
	$(BIN)/gateway run

test: lint typecheck pytest  ## ruff, mypy --strict, pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)  ## benchmarks, by hand (not part of the tests)
	$(BIN)/python -m bench.http_trigger

model: $(STAMP)  ## retrain the demo's part classifier
	$(BIN)/python -m simulators.train_part_classifier

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
