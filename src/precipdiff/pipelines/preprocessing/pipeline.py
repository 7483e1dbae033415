from kedro.pipeline import Pipeline, node, pipeline

from . import nodes as n


def create_pipeline(namespace: str | None = None, **kwargs) -> Pipeline:
    """Preprocessing; the experiments run it again in a ``namespace`` on their own ingested data."""
    p = "params:preprocessing"
    template = Pipeline(
        [
            node(n.quality_control, ["satellite_raw", "radar_raw", p],
                 ["satellite_qc", "radar_qc", "qc_report"], name="quality_control"),
            node(n.crop_to_common, ["satellite_qc", "radar_qc"], ["satellite", "radar"], name="crop_to_common"),
            node(n.pool_radar, ["radar", p], "radar_coarse", name="pool_radar"),
            node(n.make_splits, ["satellite", p], "splits", name="make_splits"),
            node(n.build_model_inputs, ["satellite", "radar_coarse", "radar", "splits", p],
                 ["coarse_model_input", "fine_model_input"], name="build_model_inputs"),
            node(n.build_patch_indices, ["coarse_model_input", "fine_model_input", p],
                 ["coarse_patches", "fine_patches"], name="build_patch_indices"),
            node(n.compute_statistics, ["coarse_model_input", "fine_model_input", p],
                 "statistics", name="compute_statistics"),
        ]
    )
    return pipeline(template, namespace=namespace, parameters={p: p})
