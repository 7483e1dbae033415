"""Errors raised by the real-data readers (:mod:`~precipdiff.data.imerg`, :mod:`~precipdiff.data.mrms`,
:mod:`~precipdiff.data.files`, :mod:`~precipdiff.data.download`).

A reader error always names the file and the problem, so that a failed ingestion of thousands of
files can be traced to the one file that broke it.
"""

from __future__ import annotations

from pathlib import Path


class ReaderError(ValueError):
    """A source file cannot be turned into canonical data; the message names the file and the problem."""


def reader_error(path: str | Path, problem: str) -> ReaderError:
    """Build a :class:`ReaderError` whose message starts with the file path."""
    return ReaderError(f"{path}: {problem}")
