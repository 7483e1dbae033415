"""Kedro project settings. kedro-mlflow registers its hooks through its plugin entry point."""

from kedro.config import OmegaConfigLoader

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {"mlflow": ["mlflow*", "mlflow*/**"]},
    # conf/test, conf/gpu and conf/local override single keys of conf/base (deep merge)
    "merge_strategy": {"parameters": "soft"},
}
