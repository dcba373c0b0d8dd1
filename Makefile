# The two set-up commands of the README: `make up` runs the platform, `make test` the tests.
# Everything installs into .venv (Python 3.11 or 3.12 from the machine).
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

CHROMIUM ?= chromium

SUPERSET_VENV := .venv-superset
SUPERSET_STAMP := $(SUPERSET_VENV)/.installed
SUPERSET_PINS := platform/bi/superset/requirements

DBT_VENV := .venv-dbt
DBT_STAMP := $(DBT_VENV)/.installed

.PHONY: up test test-fast bench mutate down doctor clean chromium compose

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,clickhouse,chdb]'
	touch $(STAMP)

# Superset lives in its own environment: it pins SQLAlchemy 1.4 and older pandas/numpy.
# The platform goes in too, without its dependencies, for the warehouse dialect (duckdb+olist).
$(SUPERSET_STAMP): $(SUPERSET_PINS)/superset.txt $(SUPERSET_PINS)/superset-constraints.txt pyproject.toml setup.py
	$(PYTHON) -m venv $(SUPERSET_VENV)
	$(SUPERSET_VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(SUPERSET_VENV)/bin/pip install --quiet --disable-pip-version-check -c $(SUPERSET_PINS)/superset-constraints.txt -r $(SUPERSET_PINS)/superset.txt
	$(SUPERSET_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(SUPERSET_STAMP)

# dbt in its own environment (docs/dbt.md), from the exact pins of pyproject's `dbt` extra and
# without dependency resolution: dbt-core needs dbt-core-experimental-parser, whose sdist
# downloads a binary when it is built, which nothing here may do (only `--use-v2-parser` runs it).
$(DBT_STAMP): pyproject.toml
	$(PYTHON) -m venv $(DBT_VENV)
	$(DBT_VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip==25.3
	$(DBT_VENV)/bin/python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['dbt']))" > $(DBT_VENV)/pins.txt
	$(DBT_VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -r $(DBT_VENV)/pins.txt
	touch $(DBT_STAMP)

# The DuckDB release inside the pinned Metabase DuckDB driver (docker/metabase/Dockerfile's
# DUCKDB_VERSION: duckdb_jdbc 1.5.5.0 bundles DuckDB 1.5.5), for the Metabase stand-in's model of
# that driver (tests/metabase/driver.py), apart from the project's own DuckDB.
DRIVER_DUCKDB := .venv-metabase-duckdb
DRIVER_DUCKDB_VERSION := $(shell sed -n 's/^ARG DUCKDB_VERSION=//p' docker/metabase/Dockerfile)
DRIVER_DUCKDB_STAMP := $(DRIVER_DUCKDB)/.installed-$(DRIVER_DUCKDB_VERSION)

$(DRIVER_DUCKDB_STAMP): docker/metabase/Dockerfile $(STAMP)
	rm -rf $(DRIVER_DUCKDB)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --target $(DRIVER_DUCKDB) duckdb==$(DRIVER_DUCKDB_VERSION)
	touch $(DRIVER_DUCKDB_STAMP)

## chromium: Debian's headless browser, for Superset's reports and thumbnails, the browser tests and screenshots
chromium:
	@command -v $(CHROMIUM) >/dev/null || { echo "installing Debian's chromium (apt-get, about 300 MB) ..."; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

## compose: Debian's docker-compose, which validates docker-compose.yml offline (no engine needed)
compose:
	@command -v docker-compose >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null; }

## up: install, then bring the platform up on the embedded defaults. Chromium is tried, not
## required: without it (no root, no apt-get) the dashboards serve and `up` says what waits for it.
up: $(STAMP) $(SUPERSET_STAMP)
	@$(MAKE) --no-print-directory chromium || echo "make: Debian's chromium could not be installed; going on without it (reports and alerts wait for it)"
	$(BIN)/olist-bi up

## test: install, then run the whole test suite
test: $(STAMP) $(SUPERSET_STAMP) $(DBT_STAMP) $(DRIVER_DUCKDB_STAMP) chromium compose
	$(BIN)/ruff check platform tests bench
	$(BIN)/ruff format --check platform tests bench
	$(BIN)/pytest

## test-fast: the suite without the slow groups and without Superset, a browser or docker-compose (.venv and .venv-dbt)
test-fast: $(STAMP) $(DBT_STAMP) $(DRIVER_DUCKDB_STAMP)
	$(BIN)/pytest -m "not slow and not superset and not browser and not compose"

## bench: the benchmarks of bench/ (see docs/benchmarks.md and BENCHMARKS.md)
bench: $(STAMP) $(SUPERSET_STAMP) chromium
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,clickhouse,chdb,bench]'
	$(SUPERSET_VENV)/bin/pip install --quiet --disable-pip-version-check pyinstrument==5.1.3  # bench/profile_superset.py
	$(BIN)/python -m bench.queries report --engines duckdb,postgres,clickhouse
	$(BIN)/python -m bench.generator
	$(BIN)/python -m bench.etl
	$(BIN)/python -m bench.increment
	$(BIN)/python -m bench.semantic
	$(BIN)/python -m bench.dashboards
	$(BIN)/python -m bench.forecast

## mutate: plant defects and count how many the tests catch (docs/testing.md); takes about two hours
MUTANTS ?= 25
mutate: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,clickhouse,chdb,mutation]'
	$(BIN)/python -m tests.mutation.models --limit 60 --json mutation-models.json
	for part in audit semantic etl; do \
	  config=tests/mutation/cosmic-ray$$( [ $$part = audit ] || echo -$$part ).toml; \
	  rm -f mutation-$$part.sqlite; \
	  $(BIN)/cosmic-ray init $$config mutation-$$part.sqlite && \
	  $(BIN)/cr-filter-operators mutation-$$part.sqlite $$config && \
	  { [ $$part = audit ] || $(BIN)/python -m tests.mutation.sample mutation-$$part.sqlite --keep $(MUTANTS); } && \
	  $(BIN)/cosmic-ray exec $$config mutation-$$part.sqlite && \
	  $(BIN)/cr-report mutation-$$part.sqlite | tail -3 || exit 1; \
	done

## down: stop the embedded PostgreSQL
down: $(STAMP)
	-$(BIN)/olist-bi superset stop
	-$(BIN)/olist-bi notebook stop
	-$(BIN)/olist-bi outbox stop
	@[ -n "$$OLIST_DATABASE_URL" ] || $(BIN)/olist-bi postgres stop  # an external server is not ours to stop

doctor: $(STAMP)
	$(BIN)/olist-bi doctor

clean:
	rm -rf $(VENV) $(SUPERSET_VENV) $(DBT_VENV) $(DRIVER_DUCKDB) .pytest_cache
