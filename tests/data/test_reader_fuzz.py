"""Property-based fuzzing of both readers on damaged copies of the real shared files.

Property: whatever bytes are flipped or cut, ``read_mrms`` / ``read_imerg`` either return a valid
canonical dataset whose rates are NaN or within 0..``PHYSICAL_MAX_RATE_MM_H``, or raise
``ReaderError`` naming the file; never another exception type (a missing file is not a damaged one).

Mutations: a truncation at any offset, 1–8 bit flips anywhere, or 1–4 bit flips in the first
bytes where the structure lives (GRIB2 sections 0–5; the HDF5 superblock and object headers) —
random flips land mostly in compressed data, which checksums catch. Example counts are kept
small for CI (deadline off, fixed seed); ``PRECIPDIFF_FUZZ_EXAMPLES=500`` runs a longer campaign.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from precipdiff.data.contract import validate
from precipdiff.data.errors import PHYSICAL_MAX_RATE_MM_H, ReaderError
from precipdiff.data.imerg import read_imerg
from precipdiff.data.mrms import read_mrms

SMALL_BOX = {"lat_min": 42.2, "lat_max": 44.8, "lon_min": -94.2, "lon_max": -89.0}  # conftest IOWA
MRMS_EXAMPLES = int(os.environ.get("PRECIPDIFF_FUZZ_EXAMPLES", 50))
IMERG_EXAMPLES = int(os.environ.get("PRECIPDIFF_FUZZ_EXAMPLES", 150))
FUZZ = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@st.composite
def mutations(draw, size: int, header: int):
    """``("truncate", offset)``, ``("flip", [(offset, bit), …])`` anywhere or within ``header`` bytes."""
    kind = draw(st.sampled_from(["truncate", "flip", "flip_header"]))
    if kind == "truncate":
        return kind, draw(st.integers(0, size - 1))
    limit = header if kind == "flip_header" else size
    flips = draw(st.lists(st.tuples(st.integers(0, limit - 1), st.integers(0, 7)), min_size=1,
                          max_size=4 if kind == "flip_header" else 8))
    return kind, flips


def damaged(original: bytes, mutation) -> bytes:
    kind, arg = mutation
    if kind == "truncate":
        return original[:arg]
    data = bytearray(original)
    for offset, bit in arg:
        data[offset] ^= 1 << bit
    return bytes(data)


def check_outcome(reader, path, kind: str) -> str:
    """Run the reader; assert the property; return ``"read"`` or ``"refused"``."""
    try:
        ds = reader(path, SMALL_BOX)
    except ReaderError as exc:
        assert str(exc).startswith(str(path))
        return "refused"
    validate(ds, kind, name=path.name)
    values = ds["precipitation"].values
    assert np.all(np.isnan(values) | ((values >= 0) & (values <= PHYSICAL_MAX_RATE_MM_H)))
    return "read"


@pytest.fixture(scope="module")
def mrms_bytes(mrms_real_paths):
    return mrms_real_paths[0].name, mrms_real_paths[0].read_bytes()


@pytest.fixture(scope="module")
def imerg_bytes(imerg_real_path):
    return imerg_real_path.name, imerg_real_path.read_bytes()


def test_mrms_damaged_copies_read_or_refuse(mrms_bytes, tmp_path):
    name, original = mrms_bytes
    path = tmp_path / name
    outcomes: list[str] = []

    @settings(FUZZ, max_examples=MRMS_EXAMPLES)
    @given(mutation=mutations(len(original), header=200))  # sections 0-5 of the real file: 0..~180
    def run(mutation):
        path.write_bytes(damaged(original, mutation))
        outcomes.append(check_outcome(read_mrms, path, "radar"))

    run()
    print("MRMS fuzz outcomes:", Counter(outcomes))  # shown with pytest -s
    assert "refused" in outcomes  # the mutations did reach the checks


def test_imerg_damaged_copies_read_or_refuse(imerg_bytes, tmp_path):
    name, original = imerg_bytes
    path = tmp_path / name
    outcomes: list[str] = []

    @settings(FUZZ, max_examples=IMERG_EXAMPLES)
    @given(mutation=mutations(len(original), header=4096))  # superblock + root/Grid object headers
    def run(mutation):
        path.write_bytes(damaged(original, mutation))
        outcomes.append(check_outcome(read_imerg, path, "satellite"))

    run()
    print("IMERG fuzz outcomes:", Counter(outcomes))
    assert "refused" in outcomes and "read" in outcomes  # both branches of the property were exercised


def _section_offset(message: bytearray, number: int) -> int:
    offset = message.find(b"GRIB") + 16  # section 1 follows the 16-byte section 0
    while message[offset + 4] != number:  # GRIB2 sections: 4-byte length, then the section number
        offset += int.from_bytes(message[offset:offset + 4], "big")
    return offset


# found by the fuzzer on the real file. Before mrms.check_layout and errors.guarded_reader the first
# two aborted the Python process inside eccodes (heap corruption: "double free or corruption";
# assertion `depth == bits8`), the third read values of inf, the fourth raised a bare ValueError
@pytest.mark.parametrize("section, octet, mask, message", [
    (5, 8, 0x04, "section 5 packs 24498976 values; expected 24500000"),  # octets 6-9: number of values
    (5, 20, 0x08, "PNG image 7000 x 3500 of 16 bits; expected 24500000 values of 24 bits"),  # bits per value
    (5, 16, 0x40, r"outside the physical range 0\.\.1000 mm/h"),  # binary scale factor E (template 5.41)
    (5, 9, 0x04, "section 5 packs 24500004 values; expected 24500000"),
    (7, 1, 0x01, "section at octet 171 declares 17622259 octets and number 7"),  # section 7 length
], ids=["fewer-values-abort", "bits-per-value-abort", "scale-to-inf", "more-values", "section-length"])
def test_mrms_damaged_header_found_by_fuzzing_is_refused(mrms_real_paths, tmp_path, section, octet, mask, message):
    original = bytearray(mrms_real_paths[0].read_bytes())
    original[_section_offset(original, section) + octet - 1] ^= mask  # octets are 1-based in the GRIB2 spec
    path = tmp_path / mrms_real_paths[0].name
    path.write_bytes(bytes(original))
    with pytest.raises(ReaderError, match=message) as info:
        read_mrms(path, SMALL_BOX)
    assert str(info.value).startswith(str(path))
