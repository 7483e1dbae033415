from kedro.pipeline import Pipeline

from precipdiff.pipelines.experiments.pipeline import residual


def create_pipeline(**kwargs) -> Pipeline:
    return residual()
