# The command index. `make demo` runs everything end to end; `make test` runs every test.
# Both install what they need (a venv in .venv, the services under .runtime/) on first use.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
DATASET ?= $(or $(MLREC_DATASET),ml-100k)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help venv data offline demo test test-unit services-up services-down services-status bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

venv: $(VENV)/.installed  ## create .venv and install the project (pip install -e .[dev])
$(VENV)/.installed: pyproject.toml
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

data: venv  ## fetch/convert the dataset (DATASET=ml-100k|ml-1m|synthetic)
	$(PYTHON) offline/preprocess/s0_get_data.py --dataset $(DATASET)

offline: data  ## every offline step: split, terms, recall, features, ranker
	$(PYTHON) offline/preprocess/s1_data_split.py
	$(PYTHON) offline/preprocess/s2_term_trans.py
	$(PYTHON) offline/recall/s1_term_recall.py
	$(PYTHON) offline/recall/s2_vector_recall.py
	$(PYTHON) offline/rank/s1_feature_engi.py
	$(PYTHON) offline/rank/s2_model_train.py

demo: offline  ## data -> offline pipeline (-> services -> loaders -> server -> client)

test: venv  ## all tests: unit + integration against the real services (started once per session)
	$(BIN)/pytest

test-unit: venv  ## fast unit tests only
	$(BIN)/pytest -m "not integration"

services-up: venv  ## install (first time) and start Redis, Elasticsearch, Feast, Triton natively
	$(PYTHON) -m mlrec.services up

services-down: venv  ## stop what services-up started
	$(PYTHON) -m mlrec.services down

services-status: venv  ## show each service with its version and port
	$(PYTHON) -m mlrec.services status

bench: venv  ## offline benchmark on synthetic data at 1M and 10M ratings
	$(PYTHON) benchmarks/bench_offline.py

clean:  ## remove pipeline artifacts (keeps downloads and services)
	find data_exchange_center -mindepth 1 -maxdepth 1 ! -name README.md ! -name cache ! -name raw -exec rm -rf {} +
