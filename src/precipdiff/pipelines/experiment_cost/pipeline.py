from kedro.pipeline import Pipeline

from precipdiff.pipelines.experiments.pipeline import cost_experiment


def create_pipeline(**kwargs) -> Pipeline:
    return cost_experiment()
