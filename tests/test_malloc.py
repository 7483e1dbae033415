"""The allocator tuning is applied on Linux/glibc and can be turned off."""

import os
import sys

import pytest

from precipdiff._malloc import tune_malloc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_mallopt_accepts_the_settings(monkeypatch):
    for key in [k for k in os.environ if k.startswith("MALLOC_")]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("PRECIPDIFF_MALLOC_TUNING", raising=False)
    assert tune_malloc()


def test_opt_out_and_user_settings_are_respected(monkeypatch):
    monkeypatch.setenv("PRECIPDIFF_MALLOC_TUNING", "0")
    assert not tune_malloc()
    monkeypatch.delenv("PRECIPDIFF_MALLOC_TUNING")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    assert not tune_malloc()
