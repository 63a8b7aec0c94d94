# The command index. `make demo` runs everything end to end; `make test` runs every test.
# Both install what they need (a venv in .venv, the services under .runtime/) on first use.
SHELL := /bin/bash
-include .env  # optional, git-ignored: MLREC_DATASET etc. (see .env.example)
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
DATASET ?= $(or $(MLREC_DATASET),ml-100k)
ENGINE ?= $(or $(MLREC_ENGINE),numpy)
# single: one node per service; cluster: 3 Elasticsearch nodes, 2 feature servers, 2 Tritons, a Redis replica
PROFILE ?= $(or $(MLREC_PROFILE),single)
export MLREC_PROFILE := $(PROFILE)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

SERVER_PORT ?= $(or $(MLREC_SERVER_PORT),5000)
SERVER_DIR := .runtime/server
USERID ?= 1

.PHONY: help venv data offline load demo test test-unit lint services-up services-down services-status \
	server-up server-down serve client eval eval-stream bench bench-25m bench-engines spark-cluster-check bench-online bench-events bench-failover clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

venv: $(VENV)/.installed  ## create .venv and install the project (pip install -e .[dev])
$(VENV)/.installed: pyproject.toml
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

data: venv  ## fetch/convert the dataset (DATASET=ml-100k|ml-1m|ml-25m|ml-32m|synthetic, SCALE=n for synthetic; ml-25m/32m: your zip in the cache)
	$(PYTHON) offline/preprocess/s0_get_data.py --dataset $(DATASET) $(if $(SCALE),--scale $(SCALE))

offline: data  ## every offline step: split, terms, recall, features, ranker (ENGINE=numpy|duckdb|spark for the prep)
	$(PYTHON) offline/preprocess/s1_data_split.py --engine $(ENGINE)
	$(PYTHON) offline/preprocess/s2_term_trans.py --engine $(ENGINE)
	$(PYTHON) offline/recall/s3_term_recall.py
	$(PYTHON) offline/recall/s4_vector_recall.py
	$(PYTHON) offline/recall/s5_item_recall.py
	$(PYTHON) offline/rank/s6_feature_engi.py --engine $(ENGINE)
	$(PYTHON) offline/rank/s7_model_train.py

# With MLREC_FEAST_CLI=docker (environment or .env) the servers come from `docker compose up -d`: no native install.
LOAD_SERVICES := $(if $(filter docker,$(MLREC_FEAST_CLI)),venv,services-up)
load: $(LOAD_SERVICES)  ## push the offline artifacts into Redis, Elasticsearch, Feast, Triton; prove online == offline
	$(PYTHON) offline_to_online/recall/s1_user_to_redis.py
	$(PYTHON) offline_to_online/recall/s2_item_to_es.py
	$(PYTHON) offline_to_online/rank/s3_feature_to_feast.py
	$(PYTHON) offline_to_online/rank/s4_model_to_triton.py
	$(PYTHON) offline_to_online/rank/s5_check_offline_and_online.py

demo: offline load  ## everything: data -> offline -> services -> loaders -> server -> client (top 50 for USERID)
	$(MAKE) --no-print-directory server-down server-up client
	@echo "demo: the server keeps running on port $(SERVER_PORT); stop it with 'make server-down'"

serve: venv  ## run the recommender in the foreground (gunicorn)
	$(PYTHON) online/main/s1_server.py --port $(SERVER_PORT)

server-up: venv  ## start the recommender (and its event worker) in the background and wait until /healthz is ok
	@mkdir -p $(SERVER_DIR)
	@if [ -f $(SERVER_DIR)/server.pid ] && kill -0 $$(cat $(SERVER_DIR)/server.pid) 2>/dev/null; then \
		echo "server: already running (pid $$(cat $(SERVER_DIR)/server.pid))"; \
	else \
		nohup $(PYTHON) online/main/s1_server.py --port $(SERVER_PORT) > $(SERVER_DIR)/server.log 2>&1 & \
		echo $$! > $(SERVER_DIR)/server.pid; \
	fi
	@for i in $$(seq 60); do \
		curl -sf http://127.0.0.1:$(SERVER_PORT)/healthz > /dev/null && { echo "server: healthy on port $(SERVER_PORT)"; exit 0; }; \
		sleep 1; \
	done; echo "server: not healthy after 60 s; last log lines:"; tail -20 $(SERVER_DIR)/server.log; exit 1

server-down:  ## stop the background recommender
	@if [ -f $(SERVER_DIR)/server.pid ]; then kill $$(cat $(SERVER_DIR)/server.pid) 2>/dev/null || true; \
		for i in $$(seq 20); do kill -0 $$(cat $(SERVER_DIR)/server.pid) 2>/dev/null || break; sleep 0.5; done; \
		rm -f $(SERVER_DIR)/server.pid; echo "server: stopped"; fi

client: venv  ## print the top 50 for USERID from the running server
	$(PYTHON) online/main/s2_client.py $(USERID) --url http://127.0.0.1:$(SERVER_PORT)

test: venv  ## all tests: unit + integration against the real services (started once per session)
	$(BIN)/pytest

lint: venv  ## ruff (lint + format check) and mypy on src/; CI runs it before the tests
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-unit: venv  ## fast unit tests only
	$(BIN)/pytest -m "not integration"

services-up: venv  ## install (first time) and start Redis, Elasticsearch, Feast, Triton natively (PROFILE=cluster: several nodes each)
	$(PYTHON) -m mlrec_runtime up

services-down: venv  ## stop what services-up started
	$(PYTHON) -m mlrec_runtime down

services-status: venv  ## show each service with its version and port
	$(PYTHON) -m mlrec_runtime status

eval: venv  ## top-K quality of the running service vs baselines -> docs/results/quality_<dataset>.{json,png}
	$(PYTHON) online/eval/s3_eval_quality.py --url http://127.0.0.1:$(SERVER_PORT)

eval-stream: venv  ## replay each user's held-out events through /ml/rec + /ml/event: HitRate/NDCG@10, stream on vs off
	$(PYTHON) online/eval/s4_eval_streaming.py --url http://127.0.0.1:$(SERVER_PORT)

bench: venv  ## offline benchmark on synthetic data at 1M and 10M ratings
	$(PYTHON) benchmarks/bench_offline.py

bench-25m: venv  ## offline data steps, seed feature tables and item recall at MovieLens-25M's shape (synthetic: 162,541 users, 62,423 items, 25M ratings)
	$(PYTHON) benchmarks/bench_offline.py --shape ml-25m --out docs/results/bench_offline_ml-25m_shape.json

bench-engines: venv  ## the prep steps (split, point-in-time counts, seed features) on numpy, DuckDB and Spark at 1M and 10M
	$(PYTHON) benchmarks/bench_offline.py --engines numpy duckdb spark --out docs/results/bench_engines.json

spark-cluster-check: venv  ## the prep under spark-submit on a standalone Spark master + worker started here; artifacts == numpy's
	bash benchmarks/spark_cluster_check.sh

bench-online: venv  ## latency and throughput of the running server at concurrency 1, 4, 16 (make server-up first)
	$(PYTHON) benchmarks/bench_online.py --url http://127.0.0.1:$(SERVER_PORT)

bench-failover: venv  ## kill one Elasticsearch node, feature server and Triton in turn under load (PROFILE=cluster, server-up first)
	$(PYTHON) benchmarks/bench_failover.py --url http://127.0.0.1:$(SERVER_PORT)

bench-events: venv  ## POST /ml/event: ingestion rate, event-to-visible time, /ml/rec p99 with and without it (make server-up first)
	$(PYTHON) benchmarks/bench_events.py --url http://127.0.0.1:$(SERVER_PORT)

clean:  ## remove pipeline artifacts (keeps downloads and services)
	find data_exchange_center -mindepth 1 -maxdepth 1 ! -name README.md ! -name cache ! -name raw -exec rm -rf {} +
