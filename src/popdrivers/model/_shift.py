"""What the interval assumes, and when a table to score breaks it: the training reference and shift detection.

The conformal 80% interval is calibrated on held-out tracks *of the training data*: it holds for tracks drawn
like them. A fitted model therefore keeps a :class:`TrainingReference`: a profile of its training table (the
decile edges of each numeric feature, the genre families and their shares, popularity's scale and source, the
features' sources) and a sample of its training tracks (what :mod:`popdrivers.model._missing` predicts missing
features with). :func:`detect_shift` compares a table to score with the profile and says where it differs:

- a feature distributed otherwise: population stability index (PSI) over the training deciles, 0.1 a moderate
  change and 0.25 a shift (the usual thresholds of model monitoring), counted only when it is more than
  sampling noise: n x PSI is about chi-square with (bins - 1) degrees of freedom; a feature of many values is
  compared over its *distinct* values (an artist-level value such as followers repeats on each of the artist's
  tracks: 30 artists are 30 observations, not 600, see :func:`stability_basis`);
- genre families the model never (or almost never) saw;
- popularity on another scale (when the table has popularity): its mean half a training standard deviation or
  more away (and beyond noise, counted in artists), or its spread 1.5 times wider or narrower;
- another popularity source (a crawl's deezer_rank is not Spotify's popularity), features from another source;
- with fewer than 30 tracks only ranges are compared: a value outside what training saw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from popdrivers import features, schema
from popdrivers.features import ARTIST_RECORD, feature_label

if TYPE_CHECKING:  # the estimator keeps a reference; only its type is needed here
    from popdrivers.model._estimator import PopularityModel

# Training tracks kept with a model to measure how hiding features moves predictions.
SAMPLE_ROWS = 2000
# Population stability index thresholds (model-monitoring convention): below 0.1 stable, above 0.25 shifted.
PSI_MODERATE = 0.1
PSI_SHIFT = 0.25
# Fewer rows than this: distributions are not compared (one track is checked against the training range only).
MIN_ROWS_FOR_DISTRIBUTION = 30
# A genre family with less than this share of the training tracks counts as unseen.
UNSEEN_FAMILY_SHARE = 0.005
UNSEEN_ROWS_WARNING = 0.10
# Popularity on another scale: its mean this many training standard deviations away (beyond noise) ...
POPULARITY_MEAN_SHIFT_SD = 0.5
# ... or its standard deviation this many times larger or smaller.
POPULARITY_SPREAD_RATIO = 1.5
_DECILES = np.linspace(0.1, 0.9, 9)
# A difference counts only when sampling noise this unlikely explains it (chi-square p-value).
SHIFT_P_VALUE = 0.001
NOTE_P_VALUE = 0.01
# A numeric feature with at least this many distinct training values is compared over its distinct values.
BY_VALUE_MIN_DISTINCT = 50


@dataclass(frozen=True)
class TrainingReference:
    """What a model keeps of its training table to say when a table to score is unlike it.

    Attributes
    ----------
    profile
        JSON-ready: ``rows``; ``features`` (per numeric model feature: bin edges at its deciles and the training
        share in each bin, p01, median, p99, min, max, share missing); ``genre_families`` (share of training
        tracks per family); ``popularity`` (mean, sd, bins, share of zeros); ``popularity_source``;
        ``feature_sources``.
    sample
        Up to :data:`SAMPLE_ROWS` training tracks: the columns the model reads, and popularity.
    """

    profile: Mapping[str, Any] = field(default_factory=dict)
    sample: pd.DataFrame | None = None

    @classmethod
    def from_tracks(cls, tracks: pd.DataFrame, feature_names: Sequence[str], source_columns: set[str],
                    reference_date: str | None, *, seed: int = 0) -> TrainingReference:
        """The reference of a model fitted on validated ``tracks`` with these features."""
        feats = features.build_features(tracks, at=reference_date)
        profile: dict[str, Any] = {"rows": len(tracks), "features": {}, "genre_families": {},
                                   "popularity_source": schema.popularity_source(tracks) or "spotify (unsaid)",
                                   "feature_sources": sorted(set(schema.feature_source_families(tracks)))}
        for name in feature_names:
            if name == ARTIST_RECORD or name not in feats.columns or name in features.CATEGORICAL_FEATURES:
                continue
            profile["features"][name] = _numeric_profile(feats[name])
        if "genre_family" in feats.columns:
            shares = feats["genre_family"].astype(object).fillna("unknown").value_counts(normalize=True)
            profile["genre_families"] = {str(k): round(float(v), 5) for k, v in shares.items()}
        if schema.TARGET in tracks.columns:
            profile["popularity"] = _numeric_profile(tracks[schema.TARGET])
            values = tracks[schema.TARGET].to_numpy(dtype="float64")
            profile["popularity"].update(mean=float(values.mean()), sd=float(values.std()),
                                         zero_share=float((values == 0).mean()))
        keep = [c for c in tracks.columns if c in source_columns or c == schema.TARGET]
        sample = tracks[keep].sample(n=min(SAMPLE_ROWS, len(tracks)), random_state=seed).reset_index(drop=True)
        return cls(profile, sample)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.profile)


def _numeric_profile(values: pd.Series) -> dict[str, Any]:
    numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    present = numbers[~np.isnan(numbers)]
    if not len(present):
        return {"missing_share": 1.0}
    q = np.quantile(present, [0.01, 0.5, 0.99])
    distinct = np.unique(present)
    # A feature of many values is compared over its distinct values (see stability_basis).
    by_value = len(distinct) >= BY_VALUE_MIN_DISTINCT
    edges, shares = stability_bins(distinct if by_value else present)
    return {"edges": edges, "shares": shares, "by_value": bool(by_value),
            "p01": float(q[0]), "median": float(q[1]), "p99": float(q[2]),
            "min": float(present.min()), "max": float(present.max()),
            "missing_share": round(float(1 - len(present) / len(numbers)), 5)}


def stability_bins(values: np.ndarray) -> tuple[list[float], list[float]]:
    """Bin edges at the training deciles (ties merged) and the share of training values in each bin.

    Bin i holds (edge i-1, edge i]; the last bin holds what is above every edge.
    """
    edges = np.unique(np.quantile(values, _DECILES))
    bins = np.searchsorted(edges, values, side="left")
    shares = np.bincount(bins, minlength=len(edges) + 1) / len(values)
    return [float(e) for e in edges], [round(float(s), 6) for s in shares]


def population_stability(edges: Sequence[float], shares: Sequence[float], values: np.ndarray) -> float:
    """Population stability index of ``values`` against the training ``shares`` of the bins cut at ``edges``.

    The table's bin shares are smoothed by half a track per bin (an empty bin of a small table is not infinitely
    far from the training share).
    """
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan")
    bins = np.searchsorted(np.asarray(edges, dtype="float64"), values, side="left")
    counts = np.bincount(bins, minlength=len(edges) + 1)
    actual = (counts + 0.5) / (len(values) + 0.5 * len(counts))
    expected = np.clip(np.asarray(shares, dtype="float64"), 1e-4, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def stability_p_value(psi: float, bins: int, observations: int) -> float:
    """How likely sampling noise alone gives a PSI this large (observations x PSI ~ chi-square, bins - 1 df)."""
    from scipy.stats import chi2

    return float(chi2.sf(observations * psi, max(bins - 1, 1)))


def stability_basis(values: np.ndarray, stats: Mapping[str, Any]) -> np.ndarray:
    """The values a feature's distribution is compared on: its distinct values when it has many.

    An artist-level value (followers) repeats on each of the artist's tracks, and artists have very unequal
    numbers of tracks: counted per track, one prolific artist would look like a shift. Counted once per distinct
    value, the observations are the artists (and, for a track-level feature, still the tracks).
    """
    return np.unique(values) if stats.get("by_value") else values


@dataclass(frozen=True)
class ShiftFinding:
    """One way a table differs from the training data.

    ``kind`` is "feature", "genre", "popularity_scale", "popularity_source", "range" or "unrecorded";
    ``severity`` "shift" (the interval's assumption does not hold) or "note".
    """

    kind: str
    subject: str
    message: str
    severity: str = "shift"
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "subject": self.subject, "message": self.message, "severity": self.severity,
                "value": self.value}


@dataclass(frozen=True)
class ShiftReport:
    """Where a table to score differs from the model's training data (see :func:`detect_shift`)."""

    rows: int
    findings: tuple[ShiftFinding, ...] = ()
    recorded: bool = True

    @classmethod
    def combined(cls, reports: Sequence[ShiftReport]) -> ShiftReport:
        """One report for a table whose rows several models scored (the full and the audio model)."""
        return cls(sum(r.rows for r in reports), tuple(f for r in reports for f in r.findings),
                   all(r.recorded for r in reports))

    @property
    def shifted(self) -> tuple[ShiftFinding, ...]:
        return tuple(f for f in self.findings if f.severity == "shift")

    @property
    def assumption_holds(self) -> bool:
        """True when nothing says the tracks are unlike the training data (the interval's assumption)."""
        return self.recorded and not self.shifted

    def summary(self) -> str:
        """One line for the CLI and the app."""
        if not self.recorded:
            return ("this model folder records no profile of its training data (written by an older popdrivers): "
                    "whether these tracks are like it cannot be checked; retrain the model to check it")
        if not self.shifted:
            return "the tracks look like the model's training data: the interval's assumption is not contradicted"
        return ("the interval assumes tracks like the training data, and these are not: "
                + "; ".join(f.message for f in self.shifted))

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "recorded": self.recorded, "assumption_holds": self.assumption_holds,
                "summary": self.summary(), "findings": [f.to_dict() for f in self.findings]}


def detect_shift(model: PopularityModel, tracks: pd.DataFrame, missing: Sequence[str] = ()) -> ShiftReport:
    """Compare ``tracks`` (a table to score) with what ``model`` recorded of its training data.

    ``missing`` names features the table lacks (said apart, by :mod:`popdrivers.model._missing`): not compared.
    """
    reference = model.fitted_state.reference
    if reference is None or not reference.profile:
        return ShiftReport(len(tracks), (), recorded=False)
    profile = reference.profile
    tracks = schema.checked_tracks(tracks, require_popularity=False, keep_rows=True)
    feats = features.build_features(tracks, at=model.reference_date_)
    findings: list[ShiftFinding] = []
    many = len(tracks) >= MIN_ROWS_FOR_DISTRIBUTION
    for name, stats in profile.get("features", {}).items():
        if name in missing or name not in feats.columns or "edges" not in stats:
            continue
        values = pd.to_numeric(feats[name], errors="coerce").to_numpy(dtype="float64")
        present = values[~np.isnan(values)]
        if not len(present):
            continue
        label = feature_label(name)
        if many:
            basis = stability_basis(present, stats)
            psi = population_stability(stats["edges"], stats["shares"], basis)
            p_value = stability_p_value(psi, len(stats["shares"]), len(basis))
            if psi >= PSI_SHIFT and p_value < SHIFT_P_VALUE:
                severity = "shift"
            elif psi >= PSI_MODERATE and p_value < NOTE_P_VALUE:
                severity = "note"
            else:
                continue
            findings.append(ShiftFinding("feature", name, f"{label} is distributed otherwise (PSI {psi:.2f}; "
                                         f"median {np.median(present):.3g}, training {stats['median']:.3g})",
                                         severity, round(psi, 3)))
        else:
            outside = (present < stats["min"]) | (present > stats["max"])
            if outside.any():
                findings.append(ShiftFinding("range", name, f"{label} {present[outside][0]:.3g} is outside the "
                                             f"training range {stats['min']:.3g} to {stats['max']:.3g}", "shift"))
    findings += _genre_findings(profile, feats, missing, many)
    findings += _popularity_findings(profile, tracks, many)
    findings += _source_findings(model, profile, tracks)
    return ShiftReport(len(tracks), tuple(findings))


def _genre_findings(profile: Mapping[str, Any], feats: pd.DataFrame, missing: Sequence[str],
                    many: bool) -> list[ShiftFinding]:
    families = profile.get("genre_families", {})
    if not families or "genre_family" in missing or "genre_family" not in feats.columns:
        return []
    family = feats["genre_family"].astype(object).fillna("unknown")
    if family.eq("unknown").all():
        return []  # no genre in the table: a missing feature, not an unseen genre
    unseen = ~family.map(lambda f: families.get(str(f), 0.0) >= UNSEEN_FAMILY_SHARE)
    if not unseen.any():
        return []
    share = float(unseen.mean())
    names = ", ".join(sorted(set(map(str, family[unseen])))[:6])
    severity = "shift" if share >= UNSEEN_ROWS_WARNING or not many else "note"
    return [ShiftFinding("genre", "genre_family", f"{share:.0%} of the tracks are in genre families the model "
                         f"(almost) never saw ({names})", severity, round(share, 4))]


def _popularity_findings(profile: Mapping[str, Any], tracks: pd.DataFrame, many: bool) -> list[ShiftFinding]:
    popularity = profile.get("popularity")
    if not popularity or "edges" not in popularity or schema.TARGET not in tracks.columns or not many:
        return []
    values = pd.to_numeric(tracks[schema.TARGET], errors="coerce").to_numpy(dtype="float64")
    known = ~np.isnan(values)
    present = values[known]
    if len(present) < MIN_ROWS_FOR_DISTRIBUTION:
        return []
    # Tracks of one artist share its popularity level: the artists are the observations.
    observations = int(tracks.loc[known, "artist_id"].nunique()) if "artist_id" in tracks.columns else len(present)
    observations = max(observations, 1)
    gap = (present.mean() - popularity["mean"]) / max(popularity["sd"], 1e-9)
    spread = present.std() / max(popularity["sd"], 1e-9)
    # Tracks of one artist share its level, and artists have unequal track counts: a distribution test per track
    # would flag noise, so the scale is its mean and spread, the mean's noise counted in artists.
    mean_moved = abs(gap) >= POPULARITY_MEAN_SHIFT_SD and abs(gap) * np.sqrt(observations) >= 3.0
    spread_moved = observations >= MIN_ROWS_FOR_DISTRIBUTION and not (
        1 / POPULARITY_SPREAD_RATIO <= spread <= POPULARITY_SPREAD_RATIO)
    if not (mean_moved or spread_moved):
        return []
    return [ShiftFinding("popularity_scale", schema.TARGET, f"popularity is on another scale (mean "
                         f"{present.mean():.1f}, sd {present.std():.1f} against {popularity['mean']:.1f}, sd "
                         f"{popularity['sd']:.1f} in training)", "shift", round(float(gap), 3))]


def _source_findings(model: PopularityModel, profile: Mapping[str, Any], tracks: pd.DataFrame) -> list[ShiftFinding]:
    findings = []
    trained_source = str(profile.get("popularity_source") or "spotify (unsaid)")
    source = schema.popularity_source(tracks)
    if source is not None and _source_family(source) != _source_family(trained_source):
        findings.append(ShiftFinding("popularity_source", "popularity_source", f"popularity comes from {source}; "
                                     f"the model learned popularity from {trained_source}", "shift"))
    trained = set(profile.get("feature_sources", []))
    found = set(schema.feature_source_families(tracks)) - trained if trained else set()
    if found:
        # Only a "sound" model takes another source (features measured from audio): on the same scales, but
        # measured otherwise than what it learned from.
        findings.append(ShiftFinding("features_source", "features_source", f"audio features come from "
                                     f"{', '.join(sorted(found))}; the model learned from {', '.join(sorted(trained))}",
                                     "note" if model.feature_set == "sound" else "shift"))
    return findings


def _source_family(source: str) -> str:
    text = source.lower()
    return "spotify" if text.startswith("spotify") else text
