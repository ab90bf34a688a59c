"""Print simulated-vs-real marginals: the default simulated catalogue against catalog-2022.

Usage: python benchmarks/calibration.py [--shared ../shared/data] [--markdown]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import pandas as pd

from popdrivers import read_tracks, simulate_catalog
from popdrivers.features import add_release_structure, build_features

COLUMNS = ("popularity", "danceability", "energy", "loudness", "speechiness", "acousticness", "instrumentalness",
           "liveness", "valence", "tempo", "duration_min", "explicit_int", "mode", "log_followers")


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    f = build_features(df)
    rows = {}
    for column in COLUMNS:
        values = f[column].astype("float64") if column in f.columns else pd.Series(dtype="float64")
        rows[column] = (values.mean(), values.std())
    zeros = (f["popularity"] == 0).mean()
    rows["share of zero popularity"] = (zeros, np.nan)
    if "artist_id" in f.columns:
        within = f["popularity"] - f.groupby("artist_id")["popularity"].transform("mean")
        rows["popularity sd within artist"] = (within.std(), np.nan)
        sizes = f.groupby("artist_id").size()
        rows["share of artists with < 10 tracks"] = ((sizes < 10).mean(), np.nan)
        rows["share of artists with > 150 tracks"] = ((sizes > 150).mean(), np.nan)
        pair = f[["energy", "loudness"]].astype("float64")
        pair = pair - pair.groupby(f["artist_id"]).transform("mean")
        rows["energy-loudness correlation within artist"] = (pair.corr().iloc[0, 1], np.nan)
        if "album_id" in f.columns:
            album = f["popularity"] - f.groupby("album_id")["popularity"].transform("mean")
            rows["share of within-artist variance between albums"] = (1 - album.var() / within.var(), np.nan)
    structure = add_release_structure(f)
    rows["share of live versions (title)"] = ((structure["version"] == "live").mean(), np.nan)
    rows["share with a featured artist"] = (structure["featured"].mean(), np.nan)
    rows["share of tracks in songs released more than once"] = ((structure["song_group_size"] > 1).mean(), np.nan)
    return pd.DataFrame(rows, index=["mean", "sd"]).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default = os.environ.get("POPDRIVERS_SHARED_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser.add_argument("--shared", default=default)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    simulated, _ = simulate_catalog()
    real = read_tracks(Path(args.shared) / "catalog-2022")
    table = summarise(simulated).add_suffix(" simulated").join(summarise(real).add_suffix(" catalog-2022"))
    table = table[["mean simulated", "mean catalog-2022", "sd simulated", "sd catalog-2022"]]
    if not args.markdown:
        print(table.round(3).to_string())
        return
    print("| column | " + " | ".join(table.columns) + " |")
    print("|---|" + "---:|" * len(table.columns))
    for name, row in table.iterrows():
        cells = ["" if pd.isna(v) else f"{v:.3g}" for v in row]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
