# Two entry points matter: `make run` (set up + the whole pipeline on the quick preset) and
# `make test` (set up + the test suite). Both start from a fresh clone; no venv activation needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= ../shared/data/imdb
PRESET ?= quick
DEVICE ?= auto
MODEL  ?= models:/imdb-sentiment@champion
# OpenMP's default busy-wait makes torch 5-10x slower whenever the cores are shared
# (benchmarks/README.md); passive waiting costs nothing on an idle machine.
export OMP_WAIT_POLICY ?= PASSIVE
export TOKENIZERS_PARALLELISM ?= false
# CPU wheel first: a bare `pip install torch` (or a package depending on it) pulls multi-GB CUDA builds.
TORCH_SPEC ?= torch==2.13.0
# Where `make mlflow-ui` serves the store, and so where the pipeline's MLflow links point.
MLFLOW_UI_PORT ?= 5000
export MLFLOW_UI_URL ?= http://127.0.0.1:$(MLFLOW_UI_PORT)
# Where `make prefect-ui` serves the Prefect home `make run` used (~/.prefect unless PREFECT_HOME
# says otherwise); the MLflow runs' `prefect.flow_run_url` points there (4200, Prefect's default).
PREFECT_UI_PORT ?= 4200

.PHONY: help setup lint run sweep predict score test test-fast test-unit bench bench-quick mlflow-ui \
        prefect-ui mlflow-screenshots servers servers-stop servers-status clean clean-store clean-venv
# A bare `make` explains rather than installs, whichever rule comes first in this file.
.DEFAULT_GOAL := help

help:  ## this list: every target with a description
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-20s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[pipeline,servers,test]"
	touch $@

setup: $(VENV)/.installed  ## the virtual environment in VENV (.venv), rebuilt when pyproject.toml changes

lint: setup  ## ruff check over the repo (rules: pyproject.toml [tool.ruff])
	$(VENV)/bin/ruff check .

run: setup  ## the whole pipeline on PRESET (quick) with DATA; registers and gates a model version
	$(VENV)/bin/sentiment pipeline --preset $(PRESET) --data $(DATA)

sweep: setup  ## head sweep (GRU, CNN, Linformer, linear attention) on PRESET's data, tracked in MLflow
	$(VENV)/bin/sentiment sweep --preset $(PRESET) --data $(DATA)

# TEXT goes through the environment, so quotes and apostrophes in it need no escaping.
predict: setup  ## P(positive) of TEXT (default: the homework's examples) with MODEL (the champion)
	$(VENV)/bin/sentiment predict --model "$(MODEL)" $(if $(TEXT),"$$TEXT")

# INPUT: a parquet / CSV / JSON-lines file or a folder of them; OUTPUT: a .parquet file or a
# folder (each run writes its own file in it). WORKERS local Dask processes share the cores.
INPUT   ?= incoming
OUTPUT  ?= scores
WORKERS ?= 1
score: setup  ## P(positive) of every review in INPUT with MODEL (the champion) -> OUTPUT, on Dask
	$(VENV)/bin/sentiment score --input "$(INPUT)" --output "$(OUTPUT)" --model "$(MODEL)" --workers $(WORKERS)

# The venv's bin goes first on PATH: server tests start `mlflow`, `prefect` and `uvicorn` by name.
test: setup  ## the whole test suite, the 12 slowest listed at the end
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q --timeout 900 --durations=12

test-fast: setup  ## the suite without the slow tests (real data, servers)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q -m "not slow" --timeout 600

test-unit: setup  ## fast unit tests only: tests/unit, no servers, stores or slow tests
	$(PY) -m pytest -q tests/unit -m "not slow" --timeout 600

bench-quick: setup  ## reduced benchmark (minutes on 2 CPU cores) -> benchmarks/results/latest.json
	$(PY) benchmarks/bench.py --size quick --device $(DEVICE) --data $(DATA) --out benchmarks/results/latest.json

bench: setup  ## all benchmarks (tens of minutes on CPU; DEVICE=cuda for the GPU figure)
	$(PY) benchmarks/bench.py --size full --device $(DEVICE) --data $(DATA) --out benchmarks/results/full.json
	$(PY) benchmarks/head_speed.py --device $(subst auto,cpu,$(DEVICE)) --out benchmarks/results/head_speed.json

mlflow-ui: setup  ## MLflow tracking server + UI on 127.0.0.1:MLFLOW_UI_PORT (5000) (store: mlflow/mlflow.db)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" MLFLOW_UI_PORT=$(MLFLOW_UI_PORT) ./mlflow/server.sh

prefect-ui: setup  ## Prefect server + UI on 127.0.0.1:PREFECT_UI_PORT (4200) over the runs of `make run` (Ctrl-C stops it)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/prefect server start --host 127.0.0.1 --port $(PREFECT_UI_PORT)

mlflow-screenshots: setup  ## Headless-Chromium screenshots of the MLflow UI (runs, baseline, comparison, version) into reports/mlflow-ui/
	$(PY) mlflow/screenshots.py --out reports/mlflow-ui

# Server mode (docs/server-mode.md): state in .servers/ (or $$SENTIMENT_SERVERS_DIR); the
# venv's bin goes first on PATH, as the servers and workers start `mlflow` and `prefect`.
servers: setup  ## PostgreSQL + MLflow and Prefect servers + work pool + 2 workers on 127.0.0.1
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m servers start

servers-stop:  ## stop everything `make servers` started
	$(PY) -m servers stop

servers-status:  ## what runs where: processes, ports, URLs, logs
	$(PY) -m servers status

clean:  ## what runs and tests leave: run folders, token and encoder-state caches, reports
	rm -rf runs cache reports .pytest_cache
	find . -name __pycache__ -type d -not -path "./$(VENV)/*" -prune -exec rm -rf {} +

clean-store:  ## the MLflow store: every tracked run and registered model version
	rm -rf mlflow/mlflow.db mlflow/mlflow.db-* mlflow/artifacts mlflow/mlruns

clean-venv:  ## the virtual environment (make setup rebuilds it)
	rm -rf $(VENV) *.egg-info
