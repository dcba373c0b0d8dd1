# The two set-up commands of the README: `make up` runs the platform, `make test` the tests.
# Everything installs into .venv (Python 3.11 or 3.12 from the machine).
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test test-fast bench down doctor clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

## up: install, then bring the platform up on the embedded defaults
up: $(STAMP)
	$(BIN)/olist-bi up

## test: install, then run the whole test suite
test: $(STAMP)
	$(BIN)/ruff check platform tests bench
	$(BIN)/pytest

## test-fast: the suite without the slow groups
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow"

## bench: the benchmarks of bench/ (see docs/benchmarks.md)
bench: $(STAMP)
	$(BIN)/python bench/generator.py
	$(BIN)/python bench/etl.py
	$(BIN)/python bench/semantic.py

## down: stop the embedded PostgreSQL
down: $(STAMP)
	$(BIN)/olist-bi postgres stop

doctor: $(STAMP)
	$(BIN)/olist-bi doctor

clean:
	rm -rf $(VENV) .pytest_cache
