from kedro.pipeline import Pipeline, node

from precipdiff.pipelines.residual_training import correction_pairs, residual_training_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    pairs = node(correction_pairs, ["coarse_model_input", "params:training"], "training_pairs",
                 name="make_training_pairs")
    return residual_training_pipeline("correction", pairs)
