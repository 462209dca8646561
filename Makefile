# LDMiss: two commands on a fresh clone.
#   make demo   - create .venv, install ldmiss with a CPU torch, fetch MNIST, run the `quick` job
#   make test   - create .venv, install ldmiss + pytest, fetch MNIST, run the test suite
#   make test ARGS='-m "not slow"'  - the fast lane (≈ 2 min); make lint - ruff (what CI also runs)
# Options: PYTHON=python3.12  TORCH="torch==2.13.0"  TORCH_INDEX=<extra pip index for torch>
#          PRESET=quick  ARGS="--jobs 2"  DATA_DIR=/path/to/mnist
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TORCH_INDEX ?=
PRESET ?= quick
ARGS ?=
DATA_DIR ?=
BIN := $(VENV)/bin
STAMP := $(VENV)/.ldmiss-installed
DATA_OPT := $(if $(DATA_DIR),--data-dir $(DATA_DIR),)

.PHONY: demo test lint setup data bench classifier clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX),)
	$(BIN)/python -m pip install -q -e ".[test,lint,ray]"
	touch $(STAMP)

setup: $(STAMP)

data: $(STAMP)
	$(BIN)/ldmiss fetch-data $(DATA_OPT)

demo: data
	$(BIN)/ldmiss demo --preset $(PRESET) $(DATA_OPT) $(ARGS)

test: data
	$(BIN)/python -m pytest -q --durations=10 $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

bench: data
	$(BIN)/python bench/bench.py $(ARGS)

classifier: data
	$(BIN)/python scripts/train_classifier.py $(DATA_OPT)

clean:
	rm -rf $(VENV) runs .pytest_cache
