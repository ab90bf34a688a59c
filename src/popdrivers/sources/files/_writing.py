"""Writing the canonical table: Parquet (types kept) or CSV (list columns as JSON lists, dates ISO)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pandas as pd

from popdrivers.artifacts import write_bytes_atomic
from popdrivers.errors import InputError
from popdrivers.schema import COLUMNS
from popdrivers.sources.files._layouts import LIST_COLUMNS


def write_tracks(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a canonical table to ``path`` (.parquet or .csv, by extension), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        buffer = io.BytesIO()
        df.to_parquet(buffer, index=False)
        return write_bytes_atomic(path, buffer.getvalue())
    if suffix == ".csv":
        out = df.copy()
        # Whole-number columns are stored as floats (NaN = unknown); write them as integers.
        for spec in COLUMNS:
            if spec.kind == "int" and spec.name in out.columns and pd.api.types.is_float_dtype(out[spec.name]):
                out[spec.name] = out[spec.name].round().astype("Int64")
        for column in LIST_COLUMNS:
            if column in out.columns:
                out[column] = out[column].map(lambda v: json.dumps(list(v) if v is not None else []))
        return write_bytes_atomic(path, out.to_csv(index=False, date_format="%Y-%m-%d").encode("utf-8"))
    raise InputError(f"cannot write '{path}': use a .parquet or .csv file name")

