# Kaizenity TTA ops bundle. Every target does its own set-up: a fresh clone needs only `make up` / `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STACK ?= dev
PYTEST_ARGS ?=

.PHONY: help setup engine promtool browser images up down status test unit integration lint clean

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 14

$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

setup: $(BIN)/.installed engine promtool browser  ## Virtualenv, dependencies, a running Docker engine, promtool, Chromium

promtool:  ## promtool (Debian's prometheus package) for the alert rule tests; skipped where apt is absent
	@command -v promtool >/dev/null || ! command -v apt-get >/dev/null || { \
		as_root=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
		|| { $$as_root apt-get update -qq && $$as_root apt-get install -y -qq --no-install-recommends prometheus >/dev/null; }; }

browser:  ## Chromium (Debian's package) for the editor's real-browser tests; Playwright drives it (no download)
	@command -v chromium >/dev/null || ! command -v apt-get >/dev/null || { \
		as_root=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$as_root apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null \
		|| { $$as_root apt-get update -qq && $$as_root apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null; }; }

engine:  ## Install/start the Docker engine if none answers (never touches a running one)
	@bash scripts/ensure-docker-engine.sh

images: engine  ## Build the offline kaizenity-local/* images (skips what is built)
	bash images/build.sh

up: setup  ## Bring up STACK (default dev): Pulumi when present, else the local engine
	@if command -v pulumi >/dev/null; then \
		$(BIN)/kaizenity up --stack $(STACK); \
	else \
		$(MAKE) --no-print-directory images && $(BIN)/kaizenity up --local --stack $(STACK); \
	fi

down: setup  ## Tear down STACK
	@if command -v pulumi >/dev/null; then $(BIN)/kaizenity down --stack $(STACK); \
	else $(BIN)/kaizenity down --local --stack $(STACK); fi

status: setup  ## Endpoints of the local STACK environment
	$(BIN)/kaizenity status --stack $(STACK)

test: setup images  ## Lint, type-check, then every test (unit + integration against real containers)
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest $(PYTEST_ARGS)

unit: $(BIN)/.installed  ## Unit tests only (no Docker needed)
	$(BIN)/pytest -m 'not integration' $(PYTEST_ARGS)

integration: setup images  ## Integration tests only
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

lint: $(BIN)/.installed  ## ruff + mypy + workflow validation
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/kaizenity workflows validate

clean:  ## Remove the virtualenv and caches (images stay)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build
