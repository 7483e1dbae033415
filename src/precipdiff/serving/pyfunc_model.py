"""MLflow pyfunc model (logged "from code", so nothing is pickled): a residual model from its artifacts.

Artifacts: ``model_config`` (JSON: ``config`` + ``info``) and ``state_dict`` (``torch.save`` of the
weights, loaded with ``weights_only=True``). ``predict`` takes the condition ``(B, C, H, W)``
float32 in model-input units and returns residuals in the same units: ``(B, M, 1, H, W)`` ensemble
members for a diffusion model (``params``: ``n_members``, ``seed``, sampler settings), ``(B, 1, H, W)``
for a regression model.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.pyfunc import PythonModel

from precipdiff.training.artifact import TrainedModel


class ResidualPyfunc(PythonModel):
    """pyfunc wrapper around a :class:`~precipdiff.training.artifact.TrainedModel`."""

    def load_context(self, context) -> None:
        meta = json.loads(Path(context.artifacts["model_config"]).read_text())
        self.trained = TrainedModel.load(meta["config"], context.artifacts["state_dict"], meta.get("info"))

    def predict(self, context, model_input, params=None):
        params = dict(params or {})
        cond = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        model = self.trained.model
        if model.objective == "regression":
            return model.predict(cond).numpy()
        sampler = {**self.trained.info.get("sampler", {}), **{k: v for k, v in params.items()
                                                             if k not in ("n_members", "seed")}}
        gen = torch.Generator().manual_seed(int(params.get("seed", 0)))
        return model.sample(cond, int(params.get("n_members", 1)), gen, **sampler).numpy()


mlflow.models.set_model(ResidualPyfunc())
