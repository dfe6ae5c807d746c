# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
RESIDENTS ?= 1000
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve migrate demo test test-pg check fmt bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(BIN)/phr db upgrade

demo: migrate
	$(BIN)/phr demo load --residents $(RESIDENTS)

# Set up, migrate, load the demo city (once; re-running changes nothing) and serve.
run: demo
	@$(BIN)/python -m phr.banner --host $(HOST) --port $(PORT)
	$(BIN)/phr serve --host $(HOST) --port $(PORT)

serve: install
	$(BIN)/phr serve --host $(HOST) --port $(PORT)

# The whole suite. PHR_TEST_DATABASE_URL=postgresql+psycopg://... runs it on PostgreSQL.
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy phr fhir_gateway consent

fmt: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# The city-sized benchmark: Tsukuba generated at 1 % and 10 % (bench/make_city.py), then
# ingest, FHIR read/search/$everything, the paramedic call, polypharmacy and bulk export
# measured on each; ONE table (docs/performance.md). Drops the public schema of
# $$PHR_BENCH_DATABASE_URL. ~75 min on the shared 2-core VM (docs/performance.md). A quick look:
#   make bench BENCH_ARGS="--scales 0.002,0.01 --duration 5 --skip-screen"
bench: install
	$(BIN)/python bench/city.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
