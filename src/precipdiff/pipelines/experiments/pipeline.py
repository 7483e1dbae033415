"""The experiments (``docs/experiments.md``): one pipeline ``experiment_<name>`` each, ``experiments`` = all.

Every experiment reuses the project's own pipelines and nodes — the training template
(:func:`~precipdiff.pipelines.residual_training.residual_training_pipeline`), ingestion and
preprocessing in a namespace with overridden parameters, the scoring template
(:func:`~precipdiff.pipelines.evaluation.pipeline.scoring_pipeline`) and the evaluation's nodes — and
ends in ``experiments.<name>.{table, figure, markdown}`` plus MLflow run metrics. They compare
against the outputs of the ``evaluation`` pipeline (``evaluation_metrics``, ``evaluation_hours``,
``evaluation_baselines``) and the run's models, so run them after ``kedro run`` or in the same run
(``kedro run --pipelines=__default__,experiment_season``).

Datasets that cross a namespace have plain names (Kedro keeps dots for namespaces): the run's
models and evaluation outputs, the experiment's own model inputs (``own_coarse_model_input``, …)
and its retrained models (``retrained_correction_diffusion_model``, …).

=============  ==============================================================================
experiment     what changes
=============  ==============================================================================
ablation       the downscaling model on the raw upsampled satellite, next to the evaluation's
               correction-only, full diffusion chain and regression chain (same test hours)
residual       both diffusion models retrained with ``experiments.residual.*_training`` overrides
               (default: the absolute residual in mm/h) and scored on the same test hours
season         the run's models on data generated with another rain regime (synthetic knobs)
geographic     the run's models on another region, and models trained on that region
cost           training / inference time, peak memory and CRPS of QM, regression and diffusion
held_out       a large domain (``ingestion.domain.kind: grid``): both diffusion models retrained
               without one region, against the run's all-region models on that region's test
               box-hours, paired intervals (not in ``experiments``: it needs several regions)
=============  ==============================================================================
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from precipdiff.pipelines import ingestion, preprocessing
from precipdiff.pipelines.evaluation import nodes as ev
from precipdiff.pipelines.evaluation.pipeline import DATA, DIFFUSION, REGRESSION, scoring_pipeline
from precipdiff.pipelines.residual_training import PAIRS, PATCHES, residual_training_pipeline
from precipdiff.reporting.experiment_figures import arm_bars, cost_chart

from precipdiff.pipelines.evaluation import intervals as ci

from . import cost
from .nodes import (compare_arms, experiment_metrics, held_out_markdown, held_out_metrics, held_out_table,
                    markdown_table, override_params, renamed_method, with_validation_scores)

EVAL = "params:evaluation"
NAMES = ("ablation", "residual", "season", "geographic", "cost")  # the experiments of `experiments`
HELD_OUT_ARMS = ("held_out_a", "held_out_b")  # each holds out the region experiments.held_out.arms.<arm>.region
# The run's datasets and parameters an experiment reads as they are (everything else is its own).
SHARED = {*DATA, *PATCHES.values(), *DIFFUSION, *REGRESSION, "evaluation_metrics", "evaluation_hours",
          "evaluation_baselines"}
OWN = {name: f"own_{name}" for name in [*DATA, *PATCHES.values()]}  # an experiment's own model inputs
SHARED_PARAMS = {EVAL, "params:ingestion", "params:ingestion.figure", "params:preprocessing",
                 "params:correction_training", "params:downscaling_training"}


def _namespaced(name: str, template: Pipeline) -> Pipeline:
    """``template`` in the namespace ``experiments.<name>``: its own datasets and parameters are
    prefixed (``experiments.<name>.table``, ``params:experiments.<name>.title``), shared ones are not."""
    free = template.inputs()
    return pipeline(template, namespace=f"experiments.{name}", inputs={i: i for i in free if i in SHARED},
                    parameters={p: p for p in free if p in SHARED_PARAMS})


def _report(arms: dict[str, str]) -> Pipeline:
    """Table of the ``arms`` (label → tidy metrics dataset), its figure, Markdown and MLflow metrics."""
    return Pipeline([
        node(compare_arms, {"params": "params:table", **arms}, "table", name="table"),
        node(arm_bars, ["table", "params:title"], "figure", name="figure"),
        node(markdown_table, ["table", "params:title"], "markdown", name="markdown"),
        node(experiment_metrics, "table", "mlflow_metrics", name="mlflow_metrics"),
    ])


def _retrained(own_data: bool = False, arm: str = "retrained", overrides: str = "overrides") -> Pipeline:
    """Both diffusion models trained again (``<arm>_<stage>_diffusion_model``) with the experiment's
    ``<overrides>.<stage>_training`` (on the experiment's own model inputs with ``own_data``)."""
    parts = []
    for stage in ("correction", "downscaling"):
        params = f"{arm}_{stage}_training_params"
        parts.append(Pipeline([node(override_params, [f"params:{stage}_training", f"params:{overrides}.{stage}_training"],
                                    params, name=params)]))
        data = {**{d: OWN[d] for d in PAIRS[stage][1]}, "patches": OWN[PATCHES[stage]],
                "ingestion": "ingestion_params"} if own_data else None
        parts.append(residual_training_pipeline(stage, namespace=f"{arm}.{stage}", params=params, data=data,
                                                diffusion_only=True))
    return sum(parts, Pipeline([]))


def _own_data() -> Pipeline:
    """Ingestion (parameters with ``overrides.ingestion``) + preprocessing: the ``own_*`` model inputs."""
    params = node(override_params, ["params:ingestion", "params:overrides.ingestion"], "ingestion_params",
                  name="ingestion_params")
    steps = ingestion.create_pipeline(params="ingestion_params") + preprocessing.create_pipeline()
    own = pipeline(steps, namespace="own", inputs={"ingestion_params": "ingestion_params"}, outputs=OWN,
                   parameters={p: p for p in steps.inputs() if p in SHARED_PARAMS})
    return Pipeline([params]) + own


def _score_run_models(data: list[str]) -> Pipeline:
    """The scoring template on ``data`` with the run's models and the evaluation's baselines
    (fitted on the run's training split: transferred, like the models) → ``arm_metrics``."""
    return pipeline(scoring_pipeline(), inputs={**dict(zip(DATA, data)), "baselines": "evaluation_baselines"},
                    outputs={"metrics": "arm_metrics"})


def _score_retrained(data: list[str], hours: str, arm: str = "retrained") -> Pipeline:
    """The ``arm``'s retrained diffusion chain on ``hours`` of ``data`` (with the radar spectrum of
    ``reference_scores``, :func:`_reference`) → ``<arm>_metrics``, with the models' validation scores."""
    models = [f"{arm}_{stage}_diffusion_model" for stage in ("correction", "downscaling")]
    return Pipeline([
        node(ev.score_diffusion_chain, [*data, hours, *models, EVAL],
             [f"{arm}_scores", f"{arm}_hourly", f"{arm}_samples"], name=f"score_{arm}_chain"),
        node(ev.assemble_metrics, [EVAL, "reference_scores", f"{arm}_scores"], f"{arm}_test_metrics",
             name=f"assemble_{arm}_metrics"),
        node(with_validation_scores, [f"{arm}_test_metrics", *models], f"{arm}_metrics", name=f"{arm}_validation"),
    ])


def _reference(data: list[str], hours: str) -> Pipeline:
    return Pipeline([node(ev.score_reference, [*data, hours, EVAL], "reference_scores", name="score_reference")])


def ablation() -> Pipeline:
    scores = Pipeline([
        node(ev.score_reference, [*DATA, "evaluation_hours", EVAL], "reference_scores", name="score_reference"),
        node(ev.score_downscaling_only, [*DATA, "evaluation_hours", "downscaling_diffusion_model", EVAL],
             ["scores", "hourly"], name="score_downscaling_only"),
        node(ev.assemble_metrics, [EVAL, "reference_scores", "scores"], "arm_metrics", name="assemble_metrics"),
    ])
    return _namespaced("ablation", scores + _report({"evaluation": "evaluation_metrics", "downscaling_only": "arm_metrics"}))


def residual() -> Pipeline:
    """Two variants of the run's diffusion models, retrained: ``overrides`` (the other residual kind)
    and ``base_overrides`` (the other residual base), next to the run's, with validation scores."""
    default = Pipeline([node(with_validation_scores, ["evaluation_metrics", *DIFFUSION], "default_metrics",
                             name="default_validation")])
    template = (default + _retrained() + _retrained(arm="rebased", overrides="base_overrides")
                + _reference(DATA, "evaluation_hours") + _score_retrained(DATA, "evaluation_hours")
                + _score_retrained(DATA, "evaluation_hours", arm="rebased")
                + _report({"default": "default_metrics", "variant": "retrained_metrics",
                           "other_base": "rebased_metrics"}))
    return _namespaced("residual", template)


def season() -> Pipeline:
    own = [OWN[d] for d in DATA]
    template = (_own_data() + _score_run_models(own)
                + _report({"in_distribution": "evaluation_metrics", "shifted": "arm_metrics"}))
    return _namespaced("season", template)


def geographic() -> Pipeline:
    own = [OWN[d] for d in DATA]
    template = (_own_data() + _score_run_models(own) + _retrained(own_data=True) + _reference(own, "hours")
                + _score_retrained(own, "hours")
                + _report({"source_region": "evaluation_metrics", "transferred": "arm_metrics",
                           "trained_on_target": "retrained_metrics"}))
    return _namespaced("geographic", template)


def cost_experiment() -> Pipeline:
    template = Pipeline([
        node(cost.measure_cost, [*DATA, "evaluation_hours", "evaluation_baselines", *DIFFUSION, *REGRESSION,
                                 "evaluation_metrics", EVAL, "params:settings"], "table", name="measure"),
        node(cost_chart, "table", "figure", name="figure"),
        node(cost.cost_markdown, "table", "markdown", name="markdown"),
        node(cost.cost_metrics, "table", "mlflow_metrics", name="mlflow_metrics"),
    ])
    return _namespaced("cost", template)


def _held_out_arm(arm: str) -> Pipeline:
    """One held-out region: the retrained models (``arms.<arm>.<stage>_training``: ``exclude_regions``)
    and the run's models scored on the same test box-hours of the region (``arms.<arm>.evaluation``),
    and the paired intervals of the retrained chain (``diffusion_chain_held_out``) against them."""
    params, hours = f"{arm}_evaluation", f"{arm}_hours"
    models = [f"{arm}_{stage}_diffusion_model" for stage in ("correction", "downscaling")]
    return _retrained(arm=arm, overrides=f"arms.{arm}") + Pipeline([
        node(override_params, [EVAL, f"params:arms.{arm}.evaluation"], params, name=f"{arm}_evaluation_params"),
        node(ev.select_test_hours, [*DATA, params], hours, name=f"{arm}_test_hours"),
        node(ev.reference_hourly, [*DATA, hours, params], f"{arm}_reference_hourly", name=f"{arm}_reference"),
        node(ev.score_diffusion_chain, [*DATA, hours, *DIFFUSION, params],
             [f"{arm}_all_region_scores", f"{arm}_all_region_hourly", f"{arm}_all_region_samples"],
             name=f"score_{arm}_all_region_chain"),
        node(ev.score_diffusion_chain, [*DATA, hours, *models, params],
             [f"{arm}_scores", f"{arm}_chain_hourly", f"{arm}_samples"], name=f"score_{arm}_chain"),
        node(renamed_method, [f"{arm}_chain_hourly", "params:held_out_method"], f"{arm}_hourly",
             name=f"{arm}_rename"),
        node(ci.confidence_intervals, [hours, params, f"{arm}_reference_hourly", f"{arm}_all_region_hourly",
                                       f"{arm}_hourly"], f"{arm}_intervals", name=f"{arm}_intervals"),
    ])


def held_out() -> Pipeline:
    arms = [_held_out_arm(arm) for arm in HELD_OUT_ARMS]
    report = Pipeline([
        node(held_out_table, {"params": "params:arms", **{arm: f"{arm}_intervals" for arm in HELD_OUT_ARMS}},
             "table", name="table"),
        node(held_out_markdown, ["table", "params:title"], "markdown", name="markdown"),
        node(held_out_metrics, "table", "mlflow_metrics", name="mlflow_metrics"),
    ])
    return _namespaced("held_out", sum(arms, Pipeline([])) + report)


def experiment_pipelines() -> dict[str, Pipeline]:
    """``experiment_<name>`` for every experiment (``held_out`` too, though not in ``experiments``)."""
    makers = {"ablation": ablation, "residual": residual, "season": season, "geographic": geographic,
              "cost": cost_experiment, "held_out": held_out}
    return {f"experiment_{name}": makers[name]() for name in makers}


def create_pipeline(**kwargs) -> Pipeline:
    """``experiments``: all of them (each also alone, ``experiment_<name>``, from its own thin folder)."""
    return sum((p for name, p in experiment_pipelines().items() if name.removeprefix("experiment_") in NAMES),
               Pipeline([]))
