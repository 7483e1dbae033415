from kedro.pipeline import Pipeline, node, pipeline

from .nodes import ingest, plot_sample_hours


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(ingest, "params:ingestion", ["satellite_raw", "radar_raw"], name="ingest"),
            node(
                plot_sample_hours,
                ["satellite_raw", "radar_raw", "params:ingestion.figure"],
                "sample_hours_figure",
                name="plot_sample_hours",
            ),
        ]
    )
