"""Labels of tidy metric rows, shared by the experiment tables (Markdown, MLflow) and figures."""

from __future__ import annotations

import pandas as pd


def column_name(row) -> str:
    """``metric[@threshold][/scale]`` (``crps_fair``, ``csi@5``, ``fss@5/21``); 0.1° rows end ``(0.1°)``."""
    name = row.metric
    if pd.notna(row.threshold):
        name += f"@{row.threshold:g}"
    if pd.notna(row.scale):
        name += f"/{row.scale:g}"
    if row.grid.startswith("validation_"):
        return f"{name} (val. {row.grid.removeprefix('validation_')})"
    return name + (" (0.1°)" if row.grid == "coarse" else "")
