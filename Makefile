# Hearth: two commands matter — `make run` (start everything) and `make test` (the whole suite).
# Every target installs first, from the committed uv.lock, into ./.venv (uv itself into ./.tools).

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON3   ?= python3
UV_VERSION ?= 0.13.9
TOOLS     := .tools
UV        := $(TOOLS)/bin/uv
VENV      := .venv
PY        := $(VENV)/bin/python

# Never let uv fetch a Python build of its own (machines here cannot download toolchains).
export UV_PYTHON_DOWNLOADS ?= never

.PHONY: help install lock run test lint bench catalogue clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON3) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

install: $(UV) ## sync .venv with uv.lock (every workspace package plus the dev group)
	@if [ -f uv.lock ]; then \
		$(UV) sync --all-packages --locked; \
	else \
		echo "uv.lock is missing: locking now (commit the result)"; \
		$(UV) lock && $(UV) sync --all-packages; \
	fi

lock: $(UV) ## re-resolve uv.lock after changing a pyproject.toml
	$(UV) lock

run: install ## start NATS (if needed), the five services and the gateway; seed; Ctrl-C stops all
	exec $(PY) scripts/hearth_run.py $(RUN_ARGS)

# The suite mostly waits on real I/O (NATS, databases, processes starting), so test files run in
# TEST_WORKERS parallel processes (pytest-xdist, one file per worker at a time); the fault and
# load tests under tests/ time latencies and kill processes, so they run on their own, serially.
TEST_WORKERS ?= 4
PARALLEL := -n $(TEST_WORKERS) --dist loadfile

test: install ## the whole suite on the primary backends, then services and e2e again on SQLite
	$(VENV)/bin/pytest servicekit/tests gateway/tests services $(PARALLEL) $(PYTEST_ARGS)
	@echo "== Platform leg: end-to-end, fuzzing, faults and state machines through real processes =="
	$(VENV)/bin/pytest tests $(PYTEST_ARGS)
	@echo "== SQLite leg: the services and the platform on the default embedded database =="
	HEARTH_TEST_DB=sqlite $(VENV)/bin/pytest services tests/test_e2e_slice.py $(PARALLEL) $(PYTEST_ARGS)

lint: install ## ruff and mypy over the repository
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy servicekit/src gateway/src services/*/src

bench: install ## every benchmark, one table (bench/results.json); one bench or row: BENCH=name
	BENCH="$(BENCH)" $(PY) bench/run.py $(BENCH_ARGS)

catalogue: install ## regenerate docs/events (AsyncAPI + JSON Schemas) from the event models
	$(PY) -m servicekit.catalogue --out docs/events

clean: ## remove local state (./var: databases, keys, logs, NATS store)
	rm -rf var
