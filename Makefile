# Two entry points matter: `make run` (set up + the whole pipeline on the quick preset) and
# `make test` (set up + the test suite). Both start from a fresh clone.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= ../shared/data/imdb
PRESET ?= quick
# CPU wheel first: a bare `pip install torch` (or a package depending on it) pulls multi-GB CUDA builds.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup run test test-fast bench bench-quick mlflow-ui clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[pipeline,test]"
	touch $@

setup: $(VENV)/.installed

run: setup
	$(VENV)/bin/sentiment pipeline --preset $(PRESET) --data $(DATA)

test: setup
	$(PY) -m pytest -q --timeout 900

test-fast: setup
	$(PY) -m pytest -q -m "not slow" --timeout 600

clean:
	rm -rf runs cache reports .pytest_cache
