from kedro.pipeline import Pipeline

from precipdiff.pipelines.experiments.pipeline import season


def create_pipeline(**kwargs) -> Pipeline:
    return season()
