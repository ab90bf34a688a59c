"""The model card's tables: held-out error per split and method, interval coverage, in words people read.

The CLI (``train``, ``evaluate``) and the app's Model card page show the same tables from ``metrics.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from popdrivers import schema

# How the splits are called wherever a person reads them (metrics.json keeps the short keys).
SPLIT_LABELS: dict[str, str] = {"random": "random tracks", "by_artist": "unseen artists",
                                "by_time": "newest releases"}
# The model first, then the baselines, in this order.
METHOD_LABELS: dict[str, str] = {"model": "popdrivers model", "audio_model": "audio model (from the sound)",
                                 "mean": "baseline: mean",
                                 "linear": "baseline: linear", "audio_only": "baseline: audio only",
                                 "reference_rf": "reference RF (original project)"}
METRIC_COLUMNS = ("rmse", "mae", "r2")


def split_label(split: str | None) -> str:
    return SPLIT_LABELS.get(split or "", split or "")


def metrics_frame(metrics: Mapping[str, Any]) -> pd.DataFrame:
    """One row per (split, method) with rmse, mae, r2; a split that could not be made has one row with its
    reason in ``note``. Splits and methods are named in words (:data:`SPLIT_LABELS`, :data:`METHOD_LABELS`)."""
    rows = []
    for split, content in (metrics.get("splits") or {}).items():
        if not isinstance(content, Mapping):
            continue
        if not content.get("available", True):
            reason = content.get("reason", "")
            rows.append({"split": split_label(split), "method": "", "note": f"unavailable: {reason}"})
            continue
        results = {"model": content.get("model"), "audio_model": content.get("audio_model"),
                   **dict(content.get("baselines") or {})}
        ordered = [k for k in METHOD_LABELS if k in results] + [k for k in results if k not in METHOD_LABELS]
        for key in ordered:
            value = results[key]
            if isinstance(value, Mapping):
                rows.append({"split": split_label(split), "method": METHOD_LABELS.get(key, f"baseline: {key}"),
                             **{k: value.get(k) for k in METRIC_COLUMNS}, "note": ""})
    return pd.DataFrame(rows, columns=["split", "method", *METRIC_COLUMNS, "note"])


def coverage_frame(interval: Mapping[str, Any]) -> pd.DataFrame:
    """Empirical coverage and mean width of the prediction interval on each evaluation split."""
    rows = [{"split": split_label(name), "coverage": f"{100 * v['coverage']:.1f}%",
             "mean width (points)": round(float(v["mean_width"]), 1)}
            for name, v in (interval.get("by_split") or {}).items() if v.get("coverage") is not None]
    return pd.DataFrame(rows, columns=["split", "coverage", "mean width (points)"])


def scored_table(model: Any, tracks: pd.DataFrame, audio_model: Any | None = None) -> pd.DataFrame:
    """The scored-file format the CLI writes and the app downloads: the track's id (name, artist and actual
    popularity when the table has them), ``prediction``, ``lower``, ``upper`` (the model's interval level) and
    ``model``: "full" or "audio".

    With ``audio_model``, rows whose features were measured from audio (``features_source`` "audio:...") are
    scored by it and the others by ``model``; without it such rows are refused by ``model`` (sources never mix).
    """
    families = schema.feature_source_families(tracks).to_numpy()
    by_audio = (families == "audio") if audio_model is not None else np.zeros(len(tracks), dtype=bool)
    keep = [c for c in ("track_name", "artist_name", "popularity") if c in tracks.columns]
    parts = []
    for chosen, rows, name in ((model, ~by_audio, "full"), (audio_model, by_audio, "audio")):
        if not rows.any():
            continue
        subset = tracks[rows]
        interval = chosen.predict_interval(subset).reset_index()
        part = pd.DataFrame({"track_id": interval["track_id"].astype("string")})
        if keep:
            # predict_interval keeps the input's order and ids; the descriptive columns come along by position.
            part = pd.concat([part, subset[keep].reset_index(drop=True)], axis=1)
        for column in ("prediction", "lower", "upper"):
            part[column] = interval[column].round(2)
        part["model"] = name
        part.index = np.flatnonzero(rows)
        parts.append(part)
    return pd.concat(parts).sort_index().reset_index(drop=True)
