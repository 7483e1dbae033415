"""Kedro project settings. kedro-mlflow registers its hooks through its plugin entry point."""

import os
from pathlib import Path

from kedro.config import OmegaConfigLoader

from precipdiff.hooks import InterruptHooks

# No project command reaches the network on its own: MLflow 3's usage telemetry (a request to
# config.mlflow-telemetry.io at the first tracked call) is off unless the environment says otherwise.
# Set here, before any hook calls MLflow (it checks the variable at every call); kedro-telemetry is
# off through the project's .telemetry file.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

# Ctrl-C always stops a run with a non-zero status; stale temporary files are removed (hooks.py)
HOOKS = (InterruptHooks(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"]},
    # conf/test, conf/gpu and conf/local override single keys of conf/base (deep merge)
    "merge_strategy": {"parameters": "soft"},
    # ${project_dir:} = where kedro runs (the project root): makes the SQLite MLflow URI absolute,
    # so two projects used from one Python process never share MLflow's cached store
    "custom_resolvers": {"project_dir": lambda: Path.cwd().as_posix()},
}
