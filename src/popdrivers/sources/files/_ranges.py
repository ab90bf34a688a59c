"""Value ranges of a table's columns (min, median, max, missing), for a quick look at what was read."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _plain_number(value: float, single_precision: bool) -> float:
    """A float as written: a float32 value 0.1 is 0.1, not 0.10000000149011612."""
    return float(str(np.float32(value))) if single_precision else float(value)


def column_ranges(df: pd.DataFrame) -> dict[str, dict[str, float | int | str | None]]:
    """Min, median, max and missing count of each numeric (and date) column, for a quick look at a table.

    Numbers stored in single precision are given as written (0.1, not 0.10000000149011612).
    """
    ranges: dict[str, dict[str, float | int | str | None]] = {}
    for column in df.columns:
        values = df[column]
        if pd.api.types.is_bool_dtype(values):
            values = values.astype("float64")
        if pd.api.types.is_datetime64_any_dtype(values):
            present = values.dropna()
            ranges[column] = {
                "min": None if present.empty else str(present.min().date()),
                "median": None if present.empty else str(present.median().date()),
                "max": None if present.empty else str(present.max().date()),
                "missing": int(values.isna().sum()),
            }
        elif pd.api.types.is_numeric_dtype(values):
            single = values.dtype == np.float32
            numbers = values.astype("float64")
            present = numbers.dropna()
            ranges[column] = {
                "min": None if present.empty else _plain_number(present.min(), single),
                "median": None if present.empty else _plain_number(present.median(), single),
                "max": None if present.empty else _plain_number(present.max(), single),
                "missing": int(numbers.isna().sum()),
            }
    return ranges
