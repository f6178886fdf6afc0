# The two commands of the README: `make run` (the main job) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test run run-lane-1 run-lane-2 ui server lint bench mutation clean
export PATH := $(CURDIR)/$(BIN):$(PATH)
UI_PORT ?= 5000

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# An editable install compiles nothing: byte-compile src/ once, for environments that set
# PYTHONDONTWRITEBYTECODE (every process would compile the package again, ~40 ms).
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

install: $(STAMP)

# Two workers, each taking whole test files (a file's module fixtures are built once): the
# suite in one process uses under one core on average (it waits on its subprocesses).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

# Every pipeline (the root experiment and the studies), then the tables and the UI links. One
# `dvc repro` runs its stages one at a time, so the pipelines (independent of each other) go in two
# lanes of about equal time, side by side, as DVC's docs suggest; each lane waits its turn for
# DVC's repository lock. Every pipeline must be in a lane (tests/test_make_run.py checks it).
# The lanes use both cores, so each study's sweep runs in one process (n_jobs=1 in its dvc.yaml).
LANE_1 := dvc.yaml $(patsubst %,pipelines/%/dvc.yaml,vanishing_gradients learning_curve \
  bias_variance numerical_gradient)
LANE_2 := $(patsubst %,pipelines/%/dvc.yaml,gradient_checking regularization \
  other_regularization initialization input_normalization recipe)

run: $(STAMP)
	@$(MAKE) --no-print-directory -j 2 run-lane-1 run-lane-2
	$(BIN)/python -m dlpractice.studies show

run-lane-1 run-lane-2: $(STAMP)
	$(BIN)/dvc --wait-for-lock repro $(LANE_$(subst run-lane-,,$@))

# The MLflow UI over the project's store, on loopback only.
ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(CURDIR)/mlflow.db \
	  --host 127.0.0.1 --port $(UI_PORT) --workers 1

# The team's tracking server (artifacts served by it): make server [HOST=…] [PORT=…] [BACKEND=…]
# [ARTIFACTS=…] [WORKERS=…]. HOST/PORT are set here so that a HOST in the environment is ignored.
# BACKEND without a password (postgresql://user@host/db + PGPASSWORD), or the whole URI in
# $$DLPRACTICE_BACKEND_STORE_URI: a password on a command line is visible to `ps`.
server: HOST = 127.0.0.1
server: PORT = 5000
server: $(STAMP)
	$(BIN)/python -m dlpractice.server --host $(HOST) --port $(PORT) \
	  $(if $(BACKEND),--backend-store-uri '$(BACKEND)') \
	  $(if $(ARTIFACTS),--artifacts-destination '$(ARTIFACTS)') $(if $(WORKERS),--workers $(WORKERS))

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Mutation testing of one module with its own tests: make mutation MODULE=diagnose (the modules:
# [tool.dlpractice.mutation] in pyproject.toml). Not part of `make test`.
mutation: $(STAMP)
	$(BIN)/python -m tests.mutation $(MODULE)

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache
