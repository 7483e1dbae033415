"""Plain-torch training: one loop for both residual models and both objectives, checkpoints, DDP.

Knows nothing of Kedro or MLflow; :func:`train` takes numpy arrays and a patch table.
"""

from precipdiff.training.config import DEFAULT_CONFIG, resolve_config
from precipdiff.training.loop import TrainResult, train
from precipdiff.training.step import NonFiniteLossError

__all__ = ["DEFAULT_CONFIG", "NonFiniteLossError", "TrainResult", "resolve_config", "train"]
