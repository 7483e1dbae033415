# precipdiff task runner: `make run` (set up + main job), `make test` (set up + tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export KEDRO_DISABLE_TELEMETRY := 1
export DO_NOT_TRACK := 1
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

.PHONY: setup run test viz mlflow-ui benchmarks clean

# One-time environment: exact versions from requirements.lock, then the project (editable).
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $@

setup: $(VENV)/.installed

run: setup            ## the main job: `kedro run` (default pipeline) on the embedded synthetic data
	$(VENV)/bin/kedro run $(ARGS)

test: setup           ## the test suite
	$(PY) -m pytest $(ARGS)

# The servers run under precipdiff.serve: Ctrl-C or SIGTERM stops them with all their children.
VIZ_PORT    ?= 4141
MLFLOW_PORT ?= 5000
MLFLOW_DB   ?= mlflow.db

viz: setup            ## lineage + figures at http://127.0.0.1:4141
	$(PY) -m precipdiff.serve $(VENV)/bin/kedro viz run --no-browser --host 127.0.0.1 --port $(VIZ_PORT)

mlflow-ui: setup      ## MLflow UI on the local store at http://127.0.0.1:5000 (the address printed opens the runs)
	@$(PY) -m precipdiff.serve --mlflow-url $(MLFLOW_DB) $(MLFLOW_PORT)
	$(PY) -m precipdiff.serve $(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(MLFLOW_DB) --host 127.0.0.1 --port $(MLFLOW_PORT)

clean:                ## remove run outputs (keeps the venv)
	find data -type f ! -name .gitkeep -delete; rm -rf mlflow.db mlruns mlartifacts
