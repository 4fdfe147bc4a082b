# The verbs of the project. `make run` and `make test` are all a fresh clone needs:
# both install what they need (uv, then the locked environment in .venv).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
VENV := .venv
BIN := $(abspath $(VENV)/bin)
# Stage commands in dvc.yaml call `python`: make it the project's.
export PATH := $(BIN):$(PATH)
export VIRTUAL_ENV := $(abspath $(VENV))
# Compile bytecode at install: imports stay fast even where PYTHONDONTWRITEBYTECODE is set.
export UV_COMPILE_BYTECODE := 1
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

UV := $(shell command -v uv 2>/dev/null)
ifeq ($(UV),)
UV := .tools/bin/uv
endif

.PHONY: help setup run data simulate repro summary test test-fast lint format bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	@touch $@

setup: $(VENV)/.synced ## install the locked environment into .venv

data: setup ## restore raw data from DVC, or regenerate it from the simulator (hash-checked)
	modelops data get

WEEKS ?= 1
simulate: data ## append WEEKS (default 1) simulated weeks to the raw data; commit data/raw.dvc after
	modelops data append --weeks $(WEEKS)

repro: data ## run the DVC pipeline (only stages whose inputs changed)
	dvc repro

summary: setup ## print key metrics, lift over baselines and where outputs are
	modelops summary

run: repro summary ## the main job: data, pipeline, summary

test: setup ## run the test suite
	pytest

test-fast: setup ## the suite without the slow integration tests
	pytest -m "not integration"

lint: setup ## ruff (lint + format check), mypy, actionlint, zizmor
	ruff check .
	ruff format --check .
	mypy
	actionlint
	zizmor --offline --quiet .github/workflows

format: setup ## apply ruff fixes and formatting
	ruff check --fix .
	ruff format .

bench: setup ## rerun the benchmarks (about 3 minutes; writes bench/results/)
	python bench/pipeline_bench.py
	python bench/bootstrap_bench.py

clean: ## remove the environment and caches (keeps data, models and the DVC cache)
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
