# Two commands on a fresh machine: `make demo` runs the nightly job on the embedded default,
# `make test` runs the test suite. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SPARK_STAMP := $(VENV)/.spark-installed-stamp

.PHONY: demo test browser test-fast lint format bench soak docs docs-serve airflow up up-celery down clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[test]' -e ./sim
	touch $(STAMP)

# Spark (pyspark ~480 MB) and Trino adapters: only the tests need them, so `make demo` stays light.
$(SPARK_STAMP): $(STAMP)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -e '.[test,spark,trino]'
	touch $(SPARK_STAMP)

demo: $(STAMP)  ## simulate 7 days and run every stage on each (lake in var/lake, warehouse var/warehouse.duckdb)
	$(BIN)/pingan demo $(DEMO_ARGS)

test: $(SPARK_STAMP) browser  ## the whole suite, slow end-to-end and Spark tests included
	$(BIN)/pytest $(PYTEST_ARGS)

browser:  ## headless chromium for the report's browser test (Debian apt); skipped with a reason without apt
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
	  (apt-get install -y -q chromium >/dev/null 2>&1 || sudo -n apt-get install -y -q chromium >/dev/null 2>&1) \
	  || echo "chromium not installed (no apt): the report's browser test will be skipped"; }

test-fast: $(STAMP)  ## the quick tests: no S3 server, no Airflow, no dbt build, no Spark (under two minutes)
	$(BIN)/pytest -m "not slow and not s3 and not airflow and not dbt and not spark" $(PYTEST_ARGS)

lint: $(STAMP)  ## ruff check, ruff format --check, sqlfluff (dbt templater) on dbt/, YAML syntax; same as pre-commit
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	mkdir -p var && PINGAN_DBT_DB_PATH=$(CURDIR)/var/lint.duckdb $(BIN)/sqlfluff lint dbt
	$(BIN)/python -c "import sys, yaml; [yaml.safe_load(open(f, encoding='utf-8')) for f in sys.argv[1:]]" \
	  $$(git ls-files '*.yaml' '*.yml')

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# 90 simulated nights with defects and delivery faults through every stage; prints per-night timings and
# the summary (false blocks, defects caught, incremental = full refresh, share versions, flat wall time)
SOAK_ARGS ?= --nights 90 --scale 0.05
soak: $(STAMP)  ## the long soak (about 20 minutes here); a 30-night form runs in make test
	$(BIN)/python -m pingan_sim.soak $(SOAK_ARGS)

bench: $(STAMP)  ## benchmarks print their numbers; they are not tests
	$(BIN)/python bench/bench_raw_zone.py
	$(BIN)/python bench/bench_quality.py
	$(BIN)/python bench/bench_simulate.py
	$(BIN)/python bench/bench_sharing.py
	$(BIN)/python bench/bench_share_incremental.py --nights 7,90
	$(BIN)/python bench/bench_pii_guard.py

# dbt docs from a copy of the published warehouse (dbt opens its database read-write). Every path is
# absolute, so the printed serve command runs as printed from any folder, with no variable to set first.
DOCS_WAREHOUSE ?= $(CURDIR)/var/warehouse.duckdb
DOCS_DB ?= $(CURDIR)/var/docs.duckdb
DOCS_DIR ?= $(CURDIR)/var/dbt-docs
DOCS_PORT ?= 8081
DOCS_SERVE = PINGAN_DBT_DB_PATH=$(DOCS_DB) $(CURDIR)/$(BIN)/dbt docs serve --project-dir $(CURDIR)/dbt \
  --profiles-dir $(CURDIR)/dbt --target-path $(DOCS_DIR) --log-path $(DOCS_DIR)/logs \
  --host 127.0.0.1 --port $(DOCS_PORT) --no-browser
docs: $(STAMP)  ## dbt docs with lineage from the published warehouse (run make demo first); opens nothing
	test -f $(DOCS_WAREHOUSE) || { echo "no $(DOCS_WAREHOUSE) yet: run make demo first"; exit 1; }
	mkdir -p $(dir $(DOCS_DB)) && cp $(DOCS_WAREHOUSE) $(DOCS_DB)
	PINGAN_DBT_DB_PATH=$(DOCS_DB) $(BIN)/dbt docs generate --project-dir dbt --profiles-dir dbt \
	  --target-path $(DOCS_DIR) --log-path $(DOCS_DIR)/logs
	@echo "docs: $(DOCS_DIR)/index.html"
	@echo "serve on loopback (make docs-serve does it): $(DOCS_SERVE)"

docs-serve: docs  ## make docs, then serve them on http://127.0.0.1:$(DOCS_PORT) until Ctrl-C
	$(DOCS_SERVE)

# standalone starts its components as `airflow` from PATH: the venv's bin goes first, or a fresh clone fails
# pingan.orchestration.local_airflow is `airflow standalone` with every listening socket on 127.0.0.1 (no log
# servers on 0.0.0.0:8793/8794)
AIRFLOW_HOME ?= $(CURDIR)/var/airflow
AIRFLOW_PORT ?= 8080
PINGAN_HOME ?= $(CURDIR)/var
AIRFLOW_LINEAGE := $(PINGAN_HOME)/lake/_lineage/airflow.jsonl
# tasks at once: DuckDB and dbt are CPU-bound, and a laptop has few cores
AIRFLOW_PARALLELISM ?= 2
airflow: $(STAMP)  ## airflow standalone on 127.0.0.1:$(AIRFLOW_PORT) with the project's DAGs (login in $(AIRFLOW_HOME))
	mkdir -p $(dir $(AIRFLOW_LINEAGE))
	PATH="$(CURDIR)/$(BIN):$$PATH" AIRFLOW_HOME=$(AIRFLOW_HOME) AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$(AIRFLOW_PORT) \
	AIRFLOW__API__BASE_URL=http://127.0.0.1:$(AIRFLOW_PORT) \
	AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$(AIRFLOW_PORT)/execution/ \
	AIRFLOW__CORE__PARALLELISM=$(AIRFLOW_PARALLELISM) AIRFLOW__API__WORKERS=1 \
	AIRFLOW__OPENLINEAGE__NAMESPACE=pingan \
	AIRFLOW__OPENLINEAGE__TRANSPORT='{"type": "file", "log_file_path": "$(AIRFLOW_LINEAGE)", "append": true}' \
	AIRFLOW__COSMOS__ENABLE_TELEMETRY=False $(BIN)/python -m pingan.orchestration.local_airflow

up:  ## MinIO, Postgres and Airflow in Docker (needs a Docker engine)
	docker compose up -d

up-celery:  ## the same with CeleryExecutor: stateless workers (docker-compose.celery.yml)
	docker compose -f docker-compose.yml -f docker-compose.celery.yml --profile celery up -d

down:
	docker compose down

clean:
	rm -rf var
