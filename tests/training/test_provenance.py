"""The typed record of what a model was trained on."""

import numpy as np
import pandas as pd

from precipdiff.training.provenance import TrainingData, training_data


def test_record_from_a_run_round_trips_and_describes_itself():
    times = pd.date_range("2022-10-01T01:00", periods=10, freq="h").values
    split = np.array(["train"] * 6 + ["validation"] * 2 + ["test"] * 2)
    box = {"lat_min": 46.5, "lat_max": 48.5, "lon_min": -123.5, "lon_max": -121.5}
    record = training_data({"source": "synthetic", "region": None}, times, split, "fp1", box, "fp2")
    assert record.period == ("2022-10-01T01:00Z", "2022-10-01T06:00Z")  # the training hours only, ISO 8601
    assert record.synthetic and TrainingData.from_dict(record.to_dict()) == record
    text = record.describe()
    assert text.startswith("synthetic data") and "46.5° N–48.5° N, 123.5° W–121.5° W" in text
    assert "2022-10-01T01:00Z … 2022-10-01T06:00Z" in text
    real = training_data({"source": "files", "region": "montana"}, times, split, "fp", box, None)
    assert not real.synthetic and "real files" in real.describe() and "montana" in real.describe()
    simulated = training_data({"source": "radar_simulated_satellite"}, times, split, "fp", box, None)
    assert simulated.synthetic  # the satellite side was simulated: not trusted on real satellite input


def test_models_registered_before_the_record_are_unknown_and_not_trusted():
    empty = TrainingData.from_dict(None)
    assert empty.source == "unknown" and empty.synthetic and "no provenance recorded" in empty.describe()
