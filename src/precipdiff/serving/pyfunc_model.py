"""MLflow pyfunc model (logged "from code", so nothing is pickled): a residual model from its artifacts.

Artifacts: ``model_config`` (JSON, what :func:`~precipdiff.nn.build_model` rebuilds the network
from), ``model_card`` (the :class:`~precipdiff.model_card.ModelCard`, validated on load) and
``state_dict`` (``torch.save`` of the weights, loaded with ``weights_only=True``).

``predict`` takes the condition ``(B, C, H, W)`` float32 in model-input units (the card's
``channels``: the base field in transformed units, then the static channels in degrees) and
returns residuals in the same units: ``(B, M, 1, H, W)`` ensemble members for a diffusion model,
``(B, 1, H, W)`` for a regression model. It samples through the project's one sampling path
(:func:`precipdiff.nn.sampling.sample_members`), so member ``m`` for ``seed`` and ``hour_keys`` is
the member the evaluation and ``precipdiff downscale`` draw (``tests/serving/test_pyfunc_model.py``).

Params (:data:`PARAMS`, the model signature's): ``n_members``, ``seed`` (member seeds derive from it,
:func:`precipdiff.seeds.member_seeds`), ``hour_keys`` (one per input sample: whole hours since
1970-01-01 UTC of the end-of-hour label; empty: 0 for every sample), ``batch_size`` (samples per
network call, 8 as the chain), ``precision`` (auto | fp32 | bf16) and any sampler key of
:data:`~precipdiff.nn.sampler.SAMPLER_KEYS` (null = the card's sampler).
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.pyfunc import PythonModel
from mlflow.types.schema import ParamSchema, ParamSpec

from precipdiff.model_card import ModelCard, TrainedModel
from precipdiff.nn.sampler import SAMPLER_KEYS
from precipdiff.nn.sampling import predict, sample_members
from precipdiff.seeds import member_seeds

SAMPLER_TYPES = {"num_steps": "long", "solver": "string"}  # the other sampler keys are floats
PARAMS = ParamSchema([ParamSpec("n_members", "long", 1), ParamSpec("seed", "long", 0),
                      ParamSpec("hour_keys", "long", [], (-1,)), ParamSpec("batch_size", "long", 8),
                      ParamSpec("precision", "string", "auto"),
                      *(ParamSpec(k, SAMPLER_TYPES.get(k, "double"), None) for k in SAMPLER_KEYS)])


class ResidualPyfunc(PythonModel):
    """pyfunc wrapper around a :class:`~precipdiff.model_card.TrainedModel`."""

    def load_context(self, context) -> None:
        card = ModelCard.read(context.artifacts["model_card"])
        config = json.loads(Path(context.artifacts["model_config"]).read_text())
        self.trained = TrainedModel.load(config, context.artifacts["state_dict"], card)

    def predict(self, context, model_input, params=None):
        params = {k: v for k, v in dict(params or {}).items() if v is not None}
        cond = torch.as_tensor(np.asarray(model_input, dtype=np.float32))
        model, card = self.trained.model, self.trained.card
        precision = str(params.get("precision", "auto"))
        if model.objective == "regression":
            return predict(model, cond, precision).numpy()
        keys = list(params.get("hour_keys", [])) or [0] * len(cond)
        seeds = member_seeds(int(params.get("seed", 0)), int(params.get("n_members", 1)))
        sampler = card.sampler_setting({k: params[k] for k in SAMPLER_KEYS if k in params})
        return sample_members(model, cond, sampler, seeds, [int(k) for k in keys], card.grid,
                              precision=precision, batch_size=int(params.get("batch_size", 8))).numpy()


mlflow.models.set_model(ResidualPyfunc())
