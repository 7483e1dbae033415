"""What a training node hands to the catalog: the model, the dict that rebuilds it, and its provenance."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from precipdiff.nn.residual import ResidualModel, build_model


@dataclass
class TrainedModel:
    """A :class:`ResidualModel` with its ``model_config`` (see :func:`precipdiff.nn.build_model`).

    ``model`` is None (see :meth:`disabled`) when the stage was turned off by a parameter.
    ``info`` holds JSON-serialisable provenance: stage, objective, transform, upsampling, the
    sampler defaults, training-grid extent (for out-of-domain warnings) and data fingerprint.
    """

    config: dict
    model: ResidualModel | None
    info: dict = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        """False for the stand-in of a model a parameter turned off (Kedro outputs cannot be None)."""
        return self.model is not None

    @classmethod
    def disabled(cls, stage: str, objective: str) -> "TrainedModel":
        return cls({}, None, {"stage": stage, "objective": objective, "disabled": True})

    @classmethod
    def from_state_dict(cls, config: dict, state_dict: dict, info: dict | None = None) -> "TrainedModel":
        model = build_model(config)
        model.load_state_dict(state_dict)
        return cls(config, model.eval(), dict(info or {}))

    @classmethod
    def load(cls, config: dict, weights_path, info: dict | None = None) -> "TrainedModel":
        """Rebuild from a ``state_dict`` file, loaded with ``weights_only=True`` (no arbitrary pickles)."""
        return cls.from_state_dict(config, torch.load(weights_path, map_location="cpu", weights_only=True), info)
