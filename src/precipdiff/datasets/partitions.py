"""A per-day cache of ingested data: kedro-datasets' ``PartitionedDataset`` that may be empty.

The ``ingest_days`` node reads the cache (to skip days already ingested) through one catalog
entry and writes new days through another entry on the same folder; on a fresh project the folder
is empty, which the stock dataset reports as an error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kedro_datasets.partitions import PartitionedDataset


class PartitionCache(PartitionedDataset):
    """``PartitionedDataset`` whose load returns ``{}`` when no partition exists yet."""

    def load(self) -> dict[str, Callable[[], Any]]:
        if not self._filesystem.exists(self._normalized_path):
            return {}
        self._invalidate_caches()
        if not self._list_partitions():
            return {}
        return super().load()
