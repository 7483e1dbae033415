"""Plain-torch training: one loop for both residual models and both objectives, checkpoints, DDP.

Knows nothing of Kedro or MLflow; :func:`train` takes numpy arrays and a patch table.
"""

from precipdiff.training.loop import DEFAULT_CONFIG, NonFiniteLossError, TrainResult, resolve_config, train

__all__ = ["DEFAULT_CONFIG", "NonFiniteLossError", "TrainResult", "resolve_config", "train"]
