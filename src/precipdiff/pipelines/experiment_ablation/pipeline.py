from kedro.pipeline import Pipeline

from precipdiff.pipelines.experiments.pipeline import ablation


def create_pipeline(**kwargs) -> Pipeline:
    return ablation()
