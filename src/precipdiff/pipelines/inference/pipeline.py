from kedro.pipeline import Pipeline, node, pipeline

from .nodes import ensemble_metrics, plan_ensemble, read_satellite


def create_pipeline(**kwargs) -> Pipeline:
    """Input files → hourly satellite → the ensemble, written hour by hour by ``inference.ensemble`` →
    its run metrics (hours, members, mean rate, cells clipped by the runaway guard).

    The CLI (``precipdiff downscale``) runs this pipeline with runtime parameters; see ``docs/inference.md``.
    """
    return pipeline(
        [
            node(read_satellite, ["inference.satellite_files", "params:inference"], "inference.satellite",
                 name="read_satellite"),
            node(plan_ensemble, ["inference.satellite", "inference.correction_model",
                                 "inference.downscaling_model", "params:inference"],
                 "inference.ensemble", name="downscale"),
            node(ensemble_metrics, "inference.ensemble", "inference.metrics", name="ensemble_metrics"),
        ]
    )
