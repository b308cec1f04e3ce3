# tutorwatch — `make demo` and `make test` are the two commands a newcomer needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR ?= data/demo
OUT ?= out
export GX_ANALYTICS_ENABLED := false
export DAGSTER_HOME := $(CURDIR)/.dagster_home

.PHONY: install demo test dev dashboard backtest bench system-deps clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip >/dev/null
	$(BIN)/pip install -e '.[test]'
	touch $@

install: $(BIN)/.installed

## Debian packages the PDFs (pango, CJK fonts), browser tests (chromium) and PostgreSQL tests need.
system-deps:
	bash .ci/system-deps

.env: | install
	$(BIN)/python -c "from tutorwatch.settings import ensure_dotenv_pii_key; ensure_dotenv_pii_key()"

demo: install .env
	$(BIN)/tutorwatch generate --scale demo --out $(DEMO_DIR)
	$(BIN)/tutorwatch run --landing $(DEMO_DIR)/landing --out $(OUT)
	$(BIN)/tutorwatch rule-backtest --warehouse $(OUT)/warehouse.duckdb --truth $(DEMO_DIR)/truth

test: install
	$(BIN)/pytest

## Dagster UI on http://127.0.0.1:3000 over the demo folders.
dev: install .env
	mkdir -p $(DAGSTER_HOME)
	TUTORWATCH_LANDING=$(CURDIR)/$(DEMO_DIR)/landing TUTORWATCH_OUT=$(CURDIR)/$(OUT) \
	TUTORWATCH_WAREHOUSE=$(CURDIR)/$(OUT)/warehouse.duckdb $(BIN)/dg dev --host 127.0.0.1 --port 3000

dashboard: install .env
	$(BIN)/tutorwatch dashboard --warehouse $(OUT)/warehouse.duckdb --out $(OUT)

backtest: install .env
	$(BIN)/tutorwatch generate --scale province --out data/province
	$(BIN)/tutorwatch run --landing data/province/landing --out out/province
	$(BIN)/tutorwatch backtest --warehouse out/province/warehouse.duckdb --truth data/province/truth --out out/province

## Slow tests, then the national benchmark (cached in .bench-cache/; figures in bench/results.md).
## BENCH_ARGS go to `python -m bench`, e.g. BENCH_ARGS=--resume after a run was stopped (see bench/run.py).
bench: install .env
	$(BIN)/pip install -q -e '.[test,celery]'
	$(BIN)/pytest -q -m slow -s
	$(BIN)/python -m bench --scale national --cache .bench-cache $(BENCH_ARGS)

clean:
	rm -rf $(OUT) data .dagster_home
