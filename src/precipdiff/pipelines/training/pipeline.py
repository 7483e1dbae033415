from kedro.pipeline import Pipeline

from precipdiff.pipelines import correction_training, downscaling_training, ingestion, preprocessing


def create_pipeline(**kwargs) -> Pipeline:
    return (ingestion.create_pipeline() + preprocessing.create_pipeline()
            + correction_training.create_pipeline() + downscaling_training.create_pipeline())
