# Two entry points matter: `make run` (set up + the whole pipeline on the quick preset) and
# `make test` (set up + the test suite). Both start from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= ../shared/data/imdb
PRESET ?= quick
DEVICE ?= auto
# OpenMP's default busy-wait makes torch 5-10x slower whenever the cores are shared
# (benchmarks/README.md); passive waiting costs nothing on an idle machine.
export OMP_WAIT_POLICY ?= PASSIVE
export TOKENIZERS_PARALLELISM ?= false
# CPU wheel first: a bare `pip install torch` (or a package depending on it) pulls multi-GB CUDA builds.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup run test test-fast bench bench-quick mlflow-ui mlflow-screenshots clean
MLFLOW_UI_PORT ?= 5000

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[pipeline,test]"
	touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/sentiment pipeline --preset $(PRESET) --data $(DATA)

# The venv's bin goes first on PATH: server tests start `mlflow`, `prefect` and `uvicorn` by name.
test: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q --timeout 900

test-fast: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q -m "not slow" --timeout 600

bench-quick: setup  ## reduced benchmark (minutes on 2 CPU cores) -> benchmarks/results/latest.json
	$(PY) benchmarks/bench.py --size quick --device $(DEVICE) --data $(DATA) --out benchmarks/results/latest.json

bench: setup  ## all benchmarks (tens of minutes on CPU; DEVICE=cuda for the GPU figure)
	$(PY) benchmarks/bench.py --size full --device $(DEVICE) --data $(DATA) --out benchmarks/results/full.json
	$(PY) benchmarks/head_speed.py --device $(subst auto,cpu,$(DEVICE)) --out benchmarks/results/head_speed.json

mlflow-ui: setup  ## MLflow tracking server + UI on http://127.0.0.1:$(MLFLOW_UI_PORT) (store: mlflow/mlflow.db)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" MLFLOW_UI_PORT=$(MLFLOW_UI_PORT) ./mlflow/server.sh

mlflow-screenshots: setup  ## Headless-Chromium screenshots of the MLflow UI into reports/mlflow-ui/
	$(PY) mlflow/screenshots.py --out reports/mlflow-ui

clean:
	rm -rf runs cache reports .pytest_cache
