from kedro.pipeline import Pipeline

from precipdiff.pipelines.residual_training import residual_training_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    return residual_training_pipeline("correction")
