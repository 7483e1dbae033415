from kedro.pipeline import Pipeline, node

from precipdiff.pipelines.residual_training import downscaling_pairs, residual_training_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    pairs = node(downscaling_pairs, ["coarse_model_input", "fine_model_input", "params:training"],
                 "training_pairs", name="make_training_pairs")
    return residual_training_pipeline("downscaling", pairs)
