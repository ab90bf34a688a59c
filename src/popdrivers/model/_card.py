"""The model card: held-out error per split and method, interval coverage and what the interval assumes, in words
people read.

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
    """The README's words for a split key ("by_artist" -> "unseen artists"); keys joined by " and " each."""
    if not split:
        return ""
    return " and ".join(SPLIT_LABELS.get(part, part) for part in split.split(" and "))


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


def interval_assumptions(interval: Mapping[str, Any] | None = None) -> list[str]:
    """What the conformal prediction interval assumes, one sentence per assumption, for the model card.

    ``interval`` is ``metrics.json``'s ``interval`` section (its level and measured coverage are quoted when
    given).
    """
    interval = interval or {}
    level = interval.get("level")
    named = f"the {100 * float(level):.0f}% prediction interval" if level is not None else "the prediction interval"
    coverage = interval.get("coverage")
    measured = (f" (measured: {100 * float(coverage):.1f}% on held-out {split_label(interval.get('measured_on'))})"
                if coverage is not None else "")
    return [
        f"Tracks like the training data: {named} is calibrated "
        f"on held-out tracks of the training data{measured} and holds for tracks drawn like them. Another "
        "catalogue, popularity source or scale, unseen genres or features outside the training ranges break it: "
        "`popdrivers predict` and the app's Data and Predict pages say when a table differs.",
        "Exchangeability: the guarantee is split-conformal, on average over tracks, and needs the tracks you score "
        "to be exchangeable with the calibration tracks (drawn from the same population, in no particular order). "
        "Tracks released after the training data are not: the newest releases split measures how far it holds "
        "for them.",
        "By-artist clusters: tracks of one artist share their errors, so the interval has two widths, for artists "
        "seen in training and for new artists, each calibrated on tracks the model did not see (new artists: "
        "whole artists held out). Its coverage is an average over artists' tracks: for one artist's tracks, which "
        "err together, it can be far from the level.",
    ]
