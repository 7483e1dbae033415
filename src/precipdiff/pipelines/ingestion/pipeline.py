from kedro.pipeline import Pipeline, node, pipeline

from .nodes import assemble, ingest_days, plot_sample_hours


def create_pipeline(params: str = "params:ingestion", namespace: str | None = None, **kwargs) -> Pipeline:
    """Ingestion with the parameters ``params`` (the experiments pass other ones, in a ``namespace``)."""
    template = Pipeline(
        [
            node(ingest_days, ["ingestion", "ingested_days_cache"], "ingested_days", name="ingest_days"),
            node(assemble, ["ingestion", "ingested_days"], ["satellite_raw", "radar_raw"], name="assemble"),
            node(plot_sample_hours, ["satellite_raw", "radar_raw", "params:ingestion.figure"],
                 "sample_hours_figure", name="plot_sample_hours"),
        ]
    )
    return pipeline(template, namespace=namespace, inputs={"ingestion": params},
                    parameters={"params:ingestion.figure": "params:ingestion.figure"})
