"""What a track table looks like before anything is fitted: headline numbers, distributions, collinearity.

The app's Data page and the CLI read these; they describe the data, they estimate nothing.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from popdrivers import registry
from popdrivers.features import build_features


def eda_columns() -> tuple[str, ...]:
    """Popularity and the continuous registered features, as columns of the derived table."""
    return ("popularity", *(f.column for f in registry.features() if f.kind == "continuous"))


def dataset_summary(tracks: pd.DataFrame) -> dict[str, Any]:
    """Headline numbers of a track table."""
    summary: dict[str, Any] = {"tracks": len(tracks)}
    if "artist_id" in tracks.columns:
        summary["artists"] = int(tracks["artist_id"].nunique())
    if "popularity" in tracks.columns:
        popularity = pd.to_numeric(tracks["popularity"], errors="coerce")
        summary["mean popularity"] = round(float(popularity.mean()), 1)
        summary["share at 0"] = f"{100 * float((popularity == 0).mean()):.1f}%"
    if "release_date" in tracks.columns:
        dates = pd.to_datetime(tracks["release_date"], errors="coerce").dropna()
        if len(dates):
            summary["released"] = f"{dates.min().year}-{dates.max().year}"
    return summary


def eda_frame(tracks: pd.DataFrame) -> pd.DataFrame:
    """The numeric columns the Data page explores (derived columns included), as floats."""
    features = build_features(tracks)
    columns = [c for c in eda_columns() if c in features.columns]
    return features[columns].apply(pd.to_numeric, errors="coerce").astype("float64")


def vif_table(tracks: pd.DataFrame) -> pd.DataFrame:
    """Variance inflation factor of each explanatory column (above 5-10: collinear, effects hard to separate)."""
    from statsmodels.stats.outliers_influence import variance_inflation_factor
    from statsmodels.tools.tools import add_constant

    frame = eda_frame(tracks).drop(columns=["popularity"], errors="ignore").dropna()
    frame = frame.loc[:, frame.std() > 0]
    if frame.shape[0] <= frame.shape[1] + 1 or frame.empty:
        return pd.DataFrame(columns=["feature", "vif"])
    design = add_constant(frame.to_numpy(), has_constant="add")
    vif = [variance_inflation_factor(design, i + 1) for i in range(frame.shape[1])]
    return (pd.DataFrame({"feature": frame.columns, "vif": vif})
            .sort_values("vif", ascending=False, ignore_index=True))


def popularity_by(tracks: pd.DataFrame, by: str) -> pd.DataFrame:
    """Mean, median and count of popularity per genre family (``by="genre_family"``) or release year."""
    features = build_features(tracks)
    if by not in features.columns or "popularity" not in features.columns:
        return pd.DataFrame(columns=[by, "tracks", "mean", "median"])
    grouped = features.groupby(by, observed=True)["popularity"]
    table = pd.DataFrame({"tracks": grouped.size(), "mean": grouped.mean(), "median": grouped.median()})
    return table.reset_index()
