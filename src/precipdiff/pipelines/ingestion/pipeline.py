from kedro.pipeline import Pipeline, node, pipeline

from .nodes import assemble, ingest_days, plot_sample_hours


def create_pipeline(**kwargs) -> Pipeline:
    return pipeline(
        [
            node(ingest_days, ["params:ingestion", "ingested_days_cache"], "ingested_days",
                 name="ingest_days"),
            node(assemble, ["params:ingestion", "ingested_days"], ["satellite_raw", "radar_raw"],
                 name="assemble"),
            node(plot_sample_hours, ["satellite_raw", "radar_raw", "params:ingestion.figure"],
                 "sample_hours_figure", name="plot_sample_hours"),
        ]
    )
