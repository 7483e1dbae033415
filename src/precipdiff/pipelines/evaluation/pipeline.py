"""``evaluation``: test hours → baselines → streamed scores of every method → table, figures, report, selection.

Inputs are the catalog's model inputs and the four models of the two training pipelines (the
models trained in the same ``kedro run``, else the registry versions set in
``catalog_evaluation.yml``); outputs are namespaced ``evaluation.*``, except the three the
experiments read too: ``evaluation_metrics``, ``evaluation_hours``, ``evaluation_baselines``.

:func:`scoring_pipeline` is the one scoring template: this pipeline instantiates it on the run's
data, the ``season`` and ``geographic`` experiments on other data (``pipelines/experiments``).
"""

from collections.abc import Sequence

from kedro.pipeline import Pipeline, node, pipeline

from precipdiff.reporting import evaluation_figures as fig
from precipdiff.reporting.intervals import paired_figure

from . import intervals as ci
from . import nodes as n
from . import probability as prob

DATA = ["coarse_model_input", "fine_model_input"]
DIFFUSION = ["correction_diffusion_model", "downscaling_diffusion_model"]
REGRESSION = ["correction_regression_model", "downscaling_regression_model"]
MODELS = [*DIFFUSION, *REGRESSION]
P = "params:evaluation"
# what the experiments read as well: plain names, since Kedro keeps dots for namespaces
SHARED_OUTPUTS = {"metrics": "evaluation_metrics", "hours": "evaluation_hours", "baselines": "evaluation_baselines"}


def scoring_pipeline(extra_scores: Sequence[str] = ()) -> Pipeline:
    """Every method on the test hours of ``DATA``: baselines (fitted elsewhere: ``baselines``), the
    regression chain and the diffusion chain of the four models → ``metrics`` (with ``extra_scores``).

    Outputs: ``hours``, ``metrics``, the score tables and per-hour sums of each method
    (``<method>_scores``, ``<method>_hourly``) and the map fields ``sample_fields``.
    """
    scored = [*DATA, "hours"]
    return Pipeline([
        node(n.select_test_hours, [*DATA, P], "hours", name="select_test_hours"),
        node(n.score_baselines, [*scored, "baselines", P], ["baseline_scores", "baseline_hourly"],
             name="score_baselines"),
        node(n.score_regression_chain, [*scored, *REGRESSION, P], ["regression_scores", "regression_hourly"],
             name="score_regression_chain"),
        node(n.score_diffusion_chain, [*scored, *DIFFUSION, P], ["diffusion_scores", "diffusion_hourly", "sample_fields"],
             name="score_diffusion_chain"),
        node(n.assemble_metrics, [P, "baseline_scores", "regression_scores", "diffusion_scores", *extra_scores],
             "metrics", name="assemble_metrics"),
    ])


def create_pipeline(**kwargs) -> Pipeline:
    p, scored = P, [*DATA, "hours"]
    extra = Pipeline([
        node(n.fit_baselines, [*DATA, "params:evaluation.baselines"], "baselines", name="fit_baselines"),
        node(n.score_downscaling_block, [*scored, "downscaling_diffusion_model", "baselines", p],
             ["downscaling_block_scores", "downscaling_block_hourly"], name="score_downscaling_block"),
        node(n.select_validation_hours, [*DATA, p], "validation_hours", name="select_validation_hours"),
        node(n.score_selection, [*DATA, "validation_hours", "champion", *DIFFUSION, p], "selection_scores",
             name="score_selection"),
        node(n.headline_metrics, ["metrics", p], "headline_metrics", name="headline_metrics"),
        node(ci.hourly_scores, ["baseline_hourly", "regression_hourly", "diffusion_hourly",
                                "downscaling_block_hourly"], "hourly_scores",
             name="hourly_scores"),
        node(ci.confidence_intervals, ["hours", p, "hourly_scores"], "intervals", name="confidence_intervals"),
        node(ci.interval_metrics, "intervals", "interval_metrics", name="interval_metrics"),
        node(prob.probability_scores, ["hours", p, "hourly_scores"], ["probability_scores", "reliability_diagram"],
             name="probability_scores"),
        node(fig.reliability_diagrams, ["reliability_diagram", "params:evaluation.figures.reliability_min_count"],
             "reliability_figure", name="plot_reliability"),
        node(n.select_models, ["selection_scores", "validation_hours", "metrics", "champion", *DIFFUSION, p],
             ["model_selection", "registry_update"], name="select_models"),
        node(fig.sample_maps, ["sample_fields", "params:evaluation.figures.vmax_percentile"], "maps_figure",
             name="plot_sample_maps"),
        node(fig.metric_bars, ["metrics", "params:evaluation.figures.score_bars"], "scores_figure",
             name="plot_scores"),
        node(fig.coarse_metric_bars, ["metrics", "params:evaluation.figures.coarse_score_bars"],
             "coarse_scores_figure", name="plot_coarse_scores"),
        node(fig.psd_curves, "metrics", "psd_figure", name="plot_psd"),
        node(fig.rank_histograms, "metrics", "rank_histogram_figure", name="plot_rank_histograms"),
        node(fig.fss_curves, "metrics", "fss_figure", name="plot_fss"),
        node(paired_figure, "intervals", "intervals_figure", name="plot_intervals"),
        node(n.make_report, ["metrics", "intervals", "model_selection", "hours", "maps_figure", "scores_figure",
                             "coarse_scores_figure", "psd_figure", "rank_histogram_figure", "fss_figure",
                             "intervals_figure", "probability_scores", "reliability_diagram", "reliability_figure", p],
             "report", name="make_report"),
    ])
    template = scoring_pipeline(extra_scores=["downscaling_block_scores"]) + extra
    params = {x for x in template.inputs() if x.startswith("params:")}
    return pipeline(template, namespace="evaluation", inputs={*DATA, *MODELS}, outputs=SHARED_OUTPUTS,
                    parameters={x: x for x in params})
