# Omnistream: one command to run, one to test.
#
#   make demo   # the whole stack on this machine, with simulated traffic (Ctrl-C stops it)
#   make test   # the whole test suite (unit, integration against real Redis + broker, end to end)
#
# Python 3.11 and, for Redis, `redis-server` (installed by `make deps` on Debian/Ubuntu).

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
SCHEMA_OUT ?= docs/events.schema.json

.PHONY: venv deps demo test lint bench schema

# Reinstalled only when pyproject.toml changes (the stamp is newer otherwise).
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -e '.[dev]'
	touch $@

# The local stack starts a private redis-server when no Redis answers at OMNISTREAM_REDIS_URL,
# and the integration tests always do. The broker (Tansu) comes with the Python dependencies.
deps:
	@if command -v redis-server >/dev/null 2>&1; then \
		exit 0; \
	elif [ -r /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; then \
		if [ "$$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi; \
		echo "installing redis-server (apt-get)"; \
		$$sudo apt-get update -q && $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server; \
	else \
		echo "redis-server is not installed and this is not Debian/Ubuntu: install it with your package" \
			"manager, or set OMNISTREAM_REDIS_URL (and OMNISTREAM_TEST_REDIS_URL for the tests)" >&2; \
	fi

demo: deps venv
	$(BIN)/omnistream up --simulate

test: deps venv
	$(BIN)/pytest -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy  # the packages of [tool.mypy] in pyproject.toml

bench: deps venv
	$(BIN)/python benchmarks/inventory.py

schema: venv
	$(BIN)/omnistream schema --out $(SCHEMA_OUT)
