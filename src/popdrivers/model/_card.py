"""The model card's tables: held-out error per split and method, interval coverage, in words people read.

The CLI (``train``, ``evaluate``) and the app's Model card page show the same tables from ``metrics.json``; the
scored-file format and what the interval assumes are :mod:`popdrivers.model._scoring`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

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
