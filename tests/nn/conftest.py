"""One intra-op thread: the models here are tiny, and 2 OpenMP threads on a shared 2-core machine
run up to ~8× slower than one (measured under load); results do not depend on it."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
