# One entry point for newcomers and CI. Every target sets up .venv by itself.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# which example `make demo` and `make serve` use: fastapi, starlette or litestar
FRAMEWORK ?= fastapi
# the extras the test suite exercises; the tools come from pyproject.toml's [dependency-groups]
EXTRAS := fastapi,starlette,litestar,postgresql

.PHONY: setup demo serve test floors bench fuzz postgres lint types typing docs clean

# pip >= 25.1 is the first to install dependency groups (--group)
$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=25.1"
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]" --group dev
	touch $@

setup: $(BIN)/.installed

demo: setup  ## the core quickstart, then the $(FRAMEWORK) example served on loopback and toured over HTTP
	$(BIN)/python examples/quickstart.py
	$(BIN)/python -m examples.tour $(FRAMEWORK)

serve: setup  ## serve the $(FRAMEWORK) example on http://127.0.0.1:8000 (embedded SQLite)
	$(BIN)/uvicorn examples.$(FRAMEWORK)_app.main:app --host 127.0.0.1 --port 8000

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: setup
	$(BIN)/mypy

typing: setup  ## the typed sample project (tests/typing) under mypy with duo_orm.mypy, and pyright
	$(BIN)/python -m tests.typing.check

postgres:  ## install the PostgreSQL server binaries the tests start (if missing)
	tests/ensure_postgres.sh

test: lint types typing docs postgres  ## lint, types, the typed sample, the whole suite (and the docs' examples) on SQLite and PostgreSQL, then floors
	$(BIN)/pytest
	$(MAKE) --no-print-directory floors

floors: setup postgres  ## the suite on SQLite with the lowest versions pyproject.toml allows (tox -e floors)
	$(BIN)/tox -e floors

$(BIN)/.docs-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet --group docs
	touch $@

docs: setup $(BIN)/.docs-installed  ## build the documentation site into site/; any warning fails it
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

$(BIN)/.bench-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]" --group dev --group bench
	touch $@

# extra options for benchmarks.run, e.g. BENCH_ARGS="--only e2e" or "--duo-orm-path ../before"
BENCH_ARGS ?=

bench: setup postgres $(BIN)/.bench-installed  ## ORM and HTTP overhead against raw SQLAlchemy and the peer ORMs, SQLite and PostgreSQL
	$(BIN)/python -m benchmarks.run --write docs/performance.md $(BENCH_ARGS)

fuzz: setup postgres  ## schemathesis against the three example apps under uvicorn, SQLite and PostgreSQL
	$(BIN)/python -m pip install --quiet "schemathesis>=4.0"
	$(BIN)/python -m tests.fuzz_examples

clean:
	rm -rf $(VENV) .tox .pytest_cache .mypy_cache .ruff_cache site
