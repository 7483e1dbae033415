from kedro.pipeline import Pipeline, node, pipeline

from .nodes import ensemble_metrics, plan_ensemble, read_satellite


def create_pipeline(**kwargs) -> Pipeline:
    """Input files → hourly satellite → the ensemble, written hour by hour by ``inference.ensemble`` →
    its run metrics (hours, members, mean rate, cells clipped by the runaway guard).

    The CLI (``precipdiff downscale``) runs this pipeline with runtime parameters; see ``docs/inference.md``.
    """
    template = Pipeline([
        node(read_satellite, ["satellite_files", "params:inference"], "satellite", name="read_satellite"),
        node(plan_ensemble, ["satellite", "correction_model", "downscaling_model", "params:inference"],
             "ensemble", name="downscale"),
        node(ensemble_metrics, "ensemble", "metrics", name="ensemble_metrics"),
    ])
    # every dataset becomes inference.<name> (Kedro's namespacing), the parameters stay params:inference
    return pipeline(template, namespace="inference", parameters={"params:inference": "params:inference"})
