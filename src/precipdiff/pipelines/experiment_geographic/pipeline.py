from kedro.pipeline import Pipeline

from precipdiff.pipelines.experiments.pipeline import geographic


def create_pipeline(**kwargs) -> Pipeline:
    return geographic()
