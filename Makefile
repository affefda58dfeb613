# One entry point for tooling; CI calls these targets too.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export ONEWINDOW_ENV ?= development
export ONEWINDOW_DATA_DIR ?= $(CURDIR)/var

.PHONY: help venv system-deps demo test test-fast test-production bench lint airflow serve clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)  ## create the virtual environment from the lock file

system-deps:  ## Debian packages the tests need (PostgreSQL, OpenSSL, Chromium, wrk, Redis)
	@bash .ci/system-deps.sh

demo: venv  ## simulate departments, run every DAG through Airflow, serve the hub on :8000
	$(BIN)/onewindow demo

test: venv system-deps  ## the whole suite, service-backed tests included
	@$(BIN)/pytest -q; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; fi; exit $$rc

test-fast: venv  ## skip slow and service-backed tests
	$(BIN)/pytest -q -m "not slow and not postgres and not airflow and not service and not production"

test-production: venv system-deps  ## the production shape alone: PostgreSQL, Redis, S3, Airflow CeleryExecutor, two replicas
	$(BIN)/pytest -q -m production

bench: venv system-deps  ## named benchmarks, figures as ratios against anchors measured in the same run
	$(BIN)/onewindow bench

airflow: venv  ## Airflow's own UI + scheduler on the same DAGs and data dir (http://127.0.0.1:8080)
	$(BIN)/onewindow airflow standalone

serve: venv  ## serve the last published snapshot on :8000
	$(BIN)/onewindow serve

clean:  ## remove the data directory (not the venv)
	rm -rf var
