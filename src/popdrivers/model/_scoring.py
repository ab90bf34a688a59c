"""Scoring a table: predictions with their interval, and what the interval can promise for these tracks.

:func:`score_tracks` is what ``popdrivers predict`` and the app's Data page run. Besides the scored table
(:func:`scored_table`'s format) it returns a :class:`ScoringReport`: the model's features the table lacks (read
as unknown; the interval of those rows is widened by what hiding them costs, see
:func:`popdrivers.model._shift.interval_without`), where the tracks differ from the training data
(:func:`popdrivers.model._shift.detect_shift`), and, when the table has popularity, how often the intervals
covered it: the direct check of the interval's promise on these very tracks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from popdrivers import schema
from popdrivers.features import feature_label
from popdrivers.model._missing import fill_unknown, interval_without, missing_features, predict_without
from popdrivers.model._shift import ShiftReport, detect_shift


def interval_assumption(model: Any) -> str:
    """What the model's interval assumes, in one sentence (the model card, ``train`` and ``predict`` say it)."""
    state = model.fitted_state
    level = f"{state.interval.level:.0%}"
    reference = state.reference
    if reference is None:
        return (f"The {level} interval is calibrated on held-out tracks of the training data: it holds for tracks "
                "drawn like them (this model folder does not record what they were like).")
    profile = reference.profile
    families = [f for f, share in sorted(profile.get("genre_families", {}).items(), key=lambda kv: -kv[1])
                if f not in {"unknown", "other"}][:4]
    popularity = profile.get("popularity") or {}
    scale = f", popularity mean {popularity['mean']:.0f} (sd {popularity['sd']:.0f})" if "mean" in popularity else ""
    return (f"The {level} interval is calibrated on held-out tracks of the training data ({profile.get('rows', 0):,} "
            f"tracks; popularity from {profile.get('popularity_source')}{scale}; audio features from "
            f"{', '.join(profile.get('feature_sources', []))}"
            + (f"; mostly {', '.join(families)}" if families else "") + "): it holds for tracks drawn like them. "
            "For other tracks (another catalogue, popularity source or scale, unseen genres, features outside "
            "the training ranges, missing features) `popdrivers predict` and the app say where they differ, "
            "widen the interval for missing features, and measure its coverage when the table has popularity.")


@dataclass(frozen=True)
class ModelPart:
    """What one model (the full model, or the audio model for rows measured from audio) did with its rows."""

    name: str
    rows: int
    missing: tuple[str, ...] = ()
    # Interval width in points (upper - lower offset) per group ("seen", "new"): as calibrated, and as used.
    calibrated_width: dict[str, float] = field(default_factory=dict)
    used_width: dict[str, float] = field(default_factory=dict)
    widening_measured: bool = True

    def missing_line(self) -> str | None:
        """One line on the missing features and how much wider the interval is for them (None: none missing)."""
        if not self.missing:
            return None
        names = ", ".join(feature_label(m) for m in self.missing)
        head = f"{self.name} model: {len(self.missing)} feature(s) the table lacks, read as unknown: {names}"
        if not self.widening_measured:
            return (head + "; this model folder keeps no calibration sample to measure how much wider the interval "
                    "is (written by an older popdrivers): the interval shown is the calibrated one, too narrow")
        widths = "; ".join(f"{group}-artist {self.calibrated_width[group]:.1f} -> {self.used_width[group]:.1f} "
                           f"points ({self.used_width[group] / self.calibrated_width[group] - 1:+.0%})"
                           for group in self.used_width if self.calibrated_width.get(group))
        return head + f"; the interval is wider for them: {widths}"

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.name, "rows": self.rows, "missing_features": list(self.missing),
                "calibrated_width": self.calibrated_width, "used_width": self.used_width,
                "widening_measured": self.widening_measured}


@dataclass(frozen=True)
class ScoringReport:
    """What scoring a table can promise: missing features, shift from the training data, observed coverage."""

    rows: int
    level: float
    parts: tuple[ModelPart, ...]
    shift: ShiftReport
    assumption: str
    coverage: dict[str, Any] | None = None

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for part in self.parts for m in part.missing))

    def lines(self) -> list[str]:
        """What the CLI prints and the app shows, most important first."""
        out = [line for part in self.parts if (line := part.missing_line())]
        out.append(self.shift.summary())
        notes = [f.message for f in self.shift.findings if f.severity == "note"]
        if notes:
            out.append("smaller differences from the training data: " + "; ".join(notes))
        if self.coverage is not None:
            c = self.coverage
            verdict = ("as promised" if abs(c["covered"] - self.level) <= 0.05 else
                       "fewer than promised: the interval does not hold for these tracks" if c["covered"] < self.level
                       else "more than promised")
            out.append(f"on this table's own popularity ({c['rows']:,} tracks): the {self.level:.0%} intervals "
                       f"cover {c['covered']:.1%} ({verdict}); mean prediction {c['mean_prediction']:.1f} against a "
                       f"mean popularity of {c['mean_popularity']:.1f}, mean absolute error {c['mae']:.1f}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "interval_level": self.level, "interval_assumes": self.assumption,
                "models": [p.to_dict() for p in self.parts], "missing_features": list(self.missing),
                "shift": self.shift.to_dict(), "coverage": self.coverage}


def _widths(offsets: dict[str, tuple[float, float]]) -> dict[str, float]:
    return {group: round(float(high - low), 2) for group, (low, high) in offsets.items()}


def score_tracks(model: Any, tracks: pd.DataFrame, audio_model: Any | None = None
                 ) -> tuple[pd.DataFrame, ScoringReport]:
    """Score ``tracks`` in the scored-file format and say what the intervals can promise for them.

    Parameters
    ----------
    model
        A fitted :class:`~popdrivers.model.PopularityModel` (with an interval).
    tracks
        Tracks to score (canonical columns; popularity optional). A feature whose columns are absent or empty
        is predicted as unknown (:mod:`popdrivers.model._missing`) and the interval of those rows widened.
    audio_model
        Scores the rows whose features were measured from audio (``features_source`` "audio:..."); without
        it such rows are refused by ``model`` (sources never mix).

    Returns
    -------
    table
        The track's id (name, artist and actual popularity when the table has them), ``prediction``,
        ``lower``, ``upper`` (the model's interval level), ``model`` ("full" or "audio") and, when features
        are missing, ``missing_features`` (their names, ``;``-separated).
    report
        :class:`ScoringReport`: missing features and the widening, shift from the training data, and the
        intervals' coverage of the table's own popularity when it has some.
    """
    families = schema.feature_source_families(tracks).to_numpy()
    by_audio = (families == "audio") if audio_model is not None else np.zeros(len(tracks), dtype=bool)
    keep = [c for c in ("track_name", "artist_name", "popularity") if c in tracks.columns]
    pieces, parts, shifts = [], [], []
    for chosen, rows, name in ((model, ~by_audio, "full"), (audio_model, by_audio, "audio")):
        if not rows.any():
            continue
        subset = tracks[rows]
        missing = missing_features(chosen, subset)
        calibrated = chosen.interval_
        widened = interval_without(chosen, missing)
        used = widened if widened is not None else calibrated
        frame = chosen.design_frame(fill_unknown(chosen, subset, missing), absent="empty")
        prediction = np.clip(predict_without(chosen, frame, missing), 0.0, 100.0)
        lower, upper = chosen.interval_for(prediction, frame, used)
        piece = pd.DataFrame({"track_id": frame.index.astype("string")})
        if keep:
            # The design frame keeps the input's order and ids; the descriptive columns come along by position.
            piece = pd.concat([piece, subset[keep].reset_index(drop=True)], axis=1)
        piece["prediction"] = prediction.round(2)
        piece["lower"] = np.round(lower, 2)
        piece["upper"] = np.round(upper, 2)
        piece["model"] = name
        if missing:
            piece["missing_features"] = ";".join(missing)
        piece.index = np.flatnonzero(rows)
        pieces.append(piece)
        parts.append(ModelPart(name, int(rows.sum()), missing, _widths(dict(calibrated.offsets)),
                               _widths(dict(used.offsets)), widened is not None))
        shifts.append(detect_shift(chosen, subset, missing))
    table = pd.concat(pieces).sort_index().reset_index(drop=True)
    if "missing_features" in table.columns:
        table["missing_features"] = table["missing_features"].fillna("")
    coverage = None
    if "popularity" in table.columns and table["popularity"].notna().any():
        known = table[table["popularity"].notna()]
        actual = known["popularity"].to_numpy(dtype="float64")
        inside = (actual >= known["lower"].to_numpy()) & (actual <= known["upper"].to_numpy())
        coverage = {"rows": int(len(known)), "covered": float(inside.mean()),
                    "mean_prediction": float(known["prediction"].mean()), "mean_popularity": float(actual.mean()),
                    "mae": float(np.abs(known["prediction"].to_numpy() - actual).mean())}
    report = ScoringReport(len(tracks), float(model.interval_.level), tuple(parts), ShiftReport.combined(shifts),
                           interval_assumption(model), coverage)
    return table, report


def scored_table(model: Any, tracks: pd.DataFrame, audio_model: Any | None = None) -> pd.DataFrame:
    """The scored-file format the CLI writes and the app downloads (see :func:`score_tracks`)."""
    return score_tracks(model, tracks, audio_model)[0]
