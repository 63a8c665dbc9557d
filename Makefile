# The two commands a newcomer needs: `make demo` and `make test`. Both install what is missing.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: demo test lint pytest bench bench-quick deps system-deps up down docs

demo: deps  ## start the local cluster, migrate it and run the demo
	$(BIN)/tally demo $(DEMO_ARGS)

test: deps lint pytest  ## the whole suite: linters, then pytest on the local cluster

lint: deps
	$(BIN)/ruff check harness tests bench
	$(BIN)/mypy
	$(BIN)/sqlfluff lint sql migrations

pytest: deps
	$(BIN)/tally up >/dev/null
	$(BIN)/pytest $(PYTEST_ARGS)

bench: deps
	$(BIN)/tally bench $(BENCH_ARGS)

bench-quick: deps
	$(BIN)/tally bench --quick

docs: deps
	$(BIN)/tally docs

up: deps
	$(BIN)/tally up

down: deps
	$(BIN)/tally down

deps: system-deps $(STAMP)

system-deps:
	@bash harness/system-deps.sh

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $@
