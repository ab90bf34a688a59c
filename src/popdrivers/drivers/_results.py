"""Result types of the causal drivers: frozen, plain, JSON round-trippable (what drivers_report.py and the app read).

``DriverReport`` holds the primary design's per-driver results (:class:`DriverResult`: its
:class:`DesignEstimate` with every check, the heterogeneity test, the dose-response curve and the
:class:`EffectModel` behind per-track effects), every design's estimates side by side (:class:`DesignResult`),
warnings and settings. Nothing here estimates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from popdrivers import format as format_
from popdrivers.drivers._basis import TreatmentBasis

# drivers.json layout version; a folder written with another one is refused with "rebuild it".
# 3: the average effect is primary (variance-weighted beside it), heterogeneity, curves, effect models.
SCHEMA_VERSION = 3
DESIGN_LABELS: dict[str, str] = {
    "within_album": "within album",
    "within_artist": "within artist",
    "naive": "naive, across artists",
}
# Effects whose Holm-adjusted p-value is below this are called "distinguishable from 0" (popdrivers.format writes
# p-values with the digits that agree with it).
ALPHA = format_.ALPHA


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def _json_number(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def jsonable(value: Any) -> Any:
    """``value`` with NaN as None and numpy scalars as Python numbers, recursively (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return _json_number(value)


def _from_fields(cls: type, data: dict[str, Any], nested: dict[str, type] | None = None) -> Any:
    """Build a flat frozen dataclass from a JSON dict: numbers back to float (None -> NaN), ints to int."""
    return cls(**_field_values(cls, data, nested))


def _field_values(cls: type, data: dict[str, Any], nested: dict[str, type] | None = None,
                  skip: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The values of ``cls``' fields found in ``data`` (fields in ``skip`` left to the caller), typed back."""
    nested = nested or {}
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name in skip:
            continue
        if f.name in nested:
            values[f.name] = tuple(_from_fields(nested[f.name], item) for item in data.get(f.name, ()))
        elif f.name not in data:
            continue  # a field with a default
        elif f.type in ("float", float):
            values[f.name] = _num(data[f.name])
        elif f.type in ("int", int):
            values[f.name] = int(data[f.name])
        elif f.type in ("tuple[float, ...]",):
            values[f.name] = tuple(_num(v) for v in data[f.name])
        else:
            values[f.name] = data[f.name]
    return values


@dataclass(frozen=True)
class GroupEffect:
    """Effect of a driver among the tracks of one group (a genre family or a release era), a GATE.

    ``q_value`` is the Benjamini-Hochberg q-value over every group effect of the report.
    """

    group: str
    effect: float
    ci_low: float
    ci_high: float
    p_value: float
    q_value: float
    n: int
    artists: int


@dataclass(frozen=True)
class SensitivityBound:
    """What an unobserved confounder ``k`` times as strong as an observed one would do to the estimate.

    Strength as in Cinelli & Hazlett (2020): ``r2dz_x`` is the partial R2 of the confounder with the driver,
    ``r2yz_dx`` with popularity; the adjusted effect is the estimate after removing the bias such a confounder
    could cause (towards 0), with its 95% CI.
    """

    benchmark: str
    k: float
    r2dz_x: float
    r2yz_dx: float
    adjusted_effect: float
    adjusted_ci_low: float
    adjusted_ci_high: float


@dataclass(frozen=True)
class DesignEstimate:
    """One driver's effect in one design: estimate, SE, 95% CI, Holm-adjusted p and the simultaneous band.

    ``effect`` is the *average effect* of +1 unit over the design's tracks (each track's own effect, from the
    family slopes and the spline, averaged with equal weight per track). ``variance_weighted_*`` is the partially
    linear number beside it: one slope for every track, which weights each track by how much its driver varies
    within its album (docs/drivers.md says when the two differ).
    """

    design: str
    feature: str
    unit: str
    effect: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float
    simultaneous_ci_low: float
    simultaneous_ci_high: float
    n: int
    dof: float = math.nan
    rep_effects: tuple[float, ...] = ()
    variance_weighted_effect: float = math.nan
    variance_weighted_se: float = math.nan
    variance_weighted_ci_low: float = math.nan
    variance_weighted_ci_high: float = math.nan

    @property
    def distinguishable(self) -> bool:
        """True when the Holm-adjusted p-value is below 5% (the effect survives the multiplicity correction)."""
        return bool(self.p_adjusted < ALPHA)


@dataclass(frozen=True)
class Heterogeneity:
    """Does the driver's effect vary between tracks? A joint test that every genre family has the same slope and
    that the effect does not change along the driver's own values (the spline's nonlinear terms are 0).

    ``method`` names the test; ``statistic`` is its cluster-robust score statistic with ``restrictions`` degrees of
    freedom, ``p_value`` twice the median (at most 1) over cross-fitting repetitions of its sign-flip bootstrap
    p-values (``p_values``), from ``draws`` draws each. ``groups`` are the families with a slope of their own.
    """

    p_value: float
    method: str
    statistic: float
    restrictions: int
    groups: tuple[str, ...]
    nonlinear_terms: int
    draws: int
    p_values: tuple[float, ...] = ()

    @property
    def detected(self) -> bool:
        """True when the effect is found to vary at the 5% level."""
        return bool(self.p_value < ALPHA)


@dataclass(frozen=True)
class TrackLearner:
    """Does a learner told nothing about genre families find effects that differ between tracks? The R-learner's
    per-track effects calibrated by their best linear predictor (``drivers._cate``).

    ``slope`` is the calibration slope (0: the learner's per-track effects carry no heterogeneity; 1: they are
    calibrated), with its 95% CI and ``p_value`` (of slope > 0: one-sided, doubled); ``beyond_model_p_value`` the
    same test with the effect model's own per-track effects (family slope and spline) beside it: small when the
    learner finds heterogeneity that model does not have. ``spread`` is the standard deviation of the calibrated
    per-track effects over the design's tracks, ``tracks`` their number. Per-track values:
    ``DriverReport.track_effects``.
    """

    method: str
    slope: float
    slope_low: float
    slope_high: float
    p_value: float
    beyond_model_p_value: float
    spread: float
    tracks: int

    @property
    def detected(self) -> bool:
        """True when the learner's per-track effects carry heterogeneity at the 5% level."""
        return bool(self.p_value < ALPHA)


@dataclass(frozen=True)
class CurvePoint:
    """The dose-response at one value: the average change in popularity if every track had ``value`` instead of
    the curve's reference, with its pointwise 95% CI and the band that covers the whole curve at once."""

    value: float
    effect: float
    ci_low: float
    ci_high: float
    band_low: float = math.nan
    band_high: float = math.nan


@dataclass(frozen=True)
class EffectModel:
    """The fitted effect function of one driver, ``f(d; family) = gamma_family d + sum_k beta_k s_k(d)``, with the
    covariance of its coefficients (clustered by artist, over repetitions), for effects of any change on one track
    or on average over the design's tracks.

    ``shares`` are the groups' shares of the design's tracks; ``dof`` the degrees of freedom of its t intervals.
    """

    driver: str
    binary: bool
    groups: tuple[str, ...]
    knots: tuple[float, ...]
    coef: tuple[float, ...]
    covariance: tuple[tuple[float, ...], ...]
    shares: tuple[float, ...]
    dof: float

    @property
    def basis(self) -> TreatmentBasis:
        return TreatmentBasis(self.driver, self.binary, self.groups, self.knots)

    def interval(self, gradient: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
        """``(effect, low, high, se)`` of the linear combination ``gradient @ coef`` (Student t, ``dof``)."""
        coef = np.asarray(self.coef, dtype="float64")
        covariance = np.asarray(self.covariance, dtype="float64")
        effect = float(gradient @ coef)
        se = math.sqrt(max(float(gradient @ covariance @ gradient), 0.0))
        q = float(stats.t.ppf(0.5 + level / 2, max(self.dof, 1.0) if np.isfinite(self.dof) else 1.0))
        return effect, effect - q * se, effect + q * se, se

    def gradient_average(self, start: float, end: float) -> np.ndarray:
        """Coefficient gradient of the average over the design's tracks of ``f(end) - f(start)``."""
        basis = self.basis
        shares = np.asarray(self.shares, dtype="float64")
        spline = basis.spline(np.array([end])) - basis.spline(np.array([start]))
        with_spline = 1.0 - (shares[basis.floor_code] if basis.floor_code >= 0 else 0.0)
        return np.concatenate([shares * (end - start), spline[0] * with_spline])

    def gradient_track(self, start: float, end: float, family: str) -> np.ndarray:
        """Coefficient gradient of ``f(end) - f(start)`` for a track of genre ``family``."""
        basis = self.basis
        codes = basis.group_codes(np.array([family]))
        return basis.change_rows(np.array([start]), np.array([end]), codes)[0]

    def average_change(self, start: float, end: float, level: float = 0.95) -> tuple[float, float, float]:
        """Average over the design's tracks of the change in popularity if the driver went from ``start`` to
        ``end``, with its CI: ``(effect, low, high)`` (the curve between two values)."""
        return self.interval(self.gradient_average(start, end), level)[:3]

    def track_change(self, start: float, end: float, family: str, level: float = 0.95) -> tuple[float, float, float]:
        """The change for one track of genre ``family`` from ``start`` to ``end``, with its CI (its family's
        slope and the spline)."""
        return self.interval(self.gradient_track(start, end, family), level)[:3]


_ESTIMATE_FIELDS = frozenset(f.name for f in fields(DesignEstimate))


@dataclass(frozen=True)
class DriverResult:
    """Everything estimated about one driver in the primary design: its :class:`DesignEstimate` and its checks.

    Effects are popularity points per ``unit`` of the driver (the estimate's fields read through: ``effect``,
    ``ci_low``, ...). ``p_adjusted`` is Holm-adjusted over the drivers; the simultaneous band covers all drivers'
    effects at once with 95% probability. Placebo: the driver shuffled within the comparison groups
    ``placebo_permutations`` times; ``placebo_rejection_rate`` is the share of shuffles the nominal 95% CI calls
    significant (about 5% when the CIs are honest) and ``placebo_p`` the permutation p-value of the real estimate.
    Sensitivity: Cinelli & Hazlett's partial R2 and robustness values and bounds against observed benchmarks.
    ``heterogeneity`` tests whether the effect varies between tracks; ``curve`` is the dose-response relative to
    ``curve_reference`` (continuous drivers); ``effect_model`` gives effects for one track. Fields are NaN / empty
    when a check was not run.
    """

    estimate: DesignEstimate
    placebo_effect: float = math.nan
    placebo_sd: float = math.nan
    placebo_rejection_rate: float = math.nan
    placebo_p: float = math.nan
    placebo_permutations: int = 0
    partial_r2: float = math.nan
    robustness_value: float = math.nan
    robustness_value_ci: float = math.nan
    sensitivity: tuple[SensitivityBound, ...] = ()
    by_genre: tuple[GroupEffect, ...] = ()
    by_era: tuple[GroupEffect, ...] = ()
    heterogeneity: Heterogeneity | None = None
    curve: tuple[CurvePoint, ...] = ()
    curve_reference: float = math.nan
    effect_model: EffectModel | None = None
    track_learner: TrackLearner | None = None

    def __getattr__(self, name: str) -> Any:
        # The estimate's fields read through (result.effect, result.ci_low, ...): one place holds them.
        if name in _ESTIMATE_FIELDS:
            return getattr(self.estimate, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def distinguishable(self) -> bool:
        """True when the Holm-adjusted p-value is below 5%."""
        return self.estimate.distinguishable

    @property
    def significant(self) -> bool:
        """True when the plain 95% CI excludes 0 (before the multiplicity correction)."""
        return bool(self.estimate.ci_low > 0 or self.estimate.ci_high < 0)

    @property
    def heterogeneous(self) -> bool:
        """True when the heterogeneity test finds that the effect varies between tracks (5% level)."""
        return self.heterogeneity is not None and self.heterogeneity.detected

    def scalars(self) -> dict[str, Any]:
        """The scalar fields, the estimate's first (one row of :meth:`DriverReport.to_frame`)."""
        out: dict[str, Any] = {k: v for k, v in asdict(self.estimate).items() if k not in ("design", "rep_effects")}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "estimate" and isinstance(value, float | int | str):
                out[f.name] = value
        out["heterogeneity_p"] = self.heterogeneity.p_value if self.heterogeneity is not None else math.nan
        return out

    def to_dict(self) -> dict[str, Any]:
        """Flat: the estimate's fields beside the checks (the drivers.json contract: ``drivers[].effect``, ...)."""
        data = asdict(self)
        return jsonable({**data.pop("estimate"), **data})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriverResult:
        estimate = _from_fields(DesignEstimate, data)
        checks = _field_values(cls, data, {"sensitivity": SensitivityBound, "by_genre": GroupEffect,
                                           "by_era": GroupEffect, "curve": CurvePoint},
                               skip=frozenset({"estimate", "heterogeneity", "effect_model", "track_learner"}))
        heterogeneity = data.get("heterogeneity")
        model = data.get("effect_model")
        learner = data.get("track_learner")
        return cls(estimate=estimate, **checks,
                   heterogeneity=None if heterogeneity is None else _heterogeneity_from(heterogeneity),
                   effect_model=None if model is None else _effect_model_from(model),
                   track_learner=None if learner is None else _from_fields(TrackLearner, learner))


def _heterogeneity_from(data: dict[str, Any]) -> Heterogeneity:
    return Heterogeneity(p_value=_num(data["p_value"]), method=str(data["method"]), statistic=_num(data["statistic"]),
                         restrictions=int(data["restrictions"]), groups=tuple(data.get("groups", ())),
                         nonlinear_terms=int(data.get("nonlinear_terms", 0)), draws=int(data.get("draws", 0)),
                         p_values=tuple(_num(v) for v in data.get("p_values", ())))


def _effect_model_from(data: dict[str, Any]) -> EffectModel:
    return EffectModel(driver=str(data["driver"]), binary=bool(data["binary"]), groups=tuple(data["groups"]),
                       knots=tuple(_num(v) for v in data["knots"]), coef=tuple(_num(v) for v in data["coef"]),
                       covariance=tuple(tuple(_num(v) for v in row) for row in data["covariance"]),
                       shares=tuple(_num(v) for v in data["shares"]), dof=_num(data["dof"]))


@dataclass(frozen=True)
class DesignResult:
    """One design's estimates for every driver, on the rows it used, with their joint covariance.

    ``groups`` counts the comparison groups (albums for within-album, artists for within-artist, tracks for
    naive); ``covariance`` is the joint covariance of the estimates, in ``estimates`` order, clustered by
    artist; ``critical_value`` is the max-t bootstrap critical value of the simultaneous band (over artists, normal
    scale; each driver's band moves it to its t scale, see ``simultaneous_multiplier``).
    """

    name: str
    rows: int
    artists: int
    groups: int
    controls: tuple[str, ...]
    estimates: tuple[DesignEstimate, ...]
    covariance: tuple[tuple[float, ...], ...]
    critical_value: float
    n_rep: int

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(e.feature for e in self.estimates)

    def __getitem__(self, feature: str) -> DesignEstimate:
        for estimate in self.estimates:
            if estimate.feature == feature:
                return estimate
        raise KeyError(f"no driver '{feature}' in the {self.name} design (have: {', '.join(self.features)})")

    def covariance_frame(self) -> pd.DataFrame:
        return pd.DataFrame(np.asarray(self.covariance, dtype="float64").reshape(len(self.features), -1),
                            index=list(self.features), columns=list(self.features))

    def to_dict(self) -> dict[str, Any]:
        return jsonable({"name": self.name, "rows": self.rows, "artists": self.artists, "groups": self.groups,
                         "controls": list(self.controls), "covariance": [list(r) for r in self.covariance],
                         "critical_value": self.critical_value, "n_rep": self.n_rep})

    @classmethod
    def from_dict(cls, data: dict[str, Any], estimates: list[dict[str, Any]]) -> DesignResult:
        return cls(name=str(data["name"]), rows=int(data["rows"]), artists=int(data["artists"]),
                   groups=int(data["groups"]), controls=tuple(data.get("controls", ())),
                   estimates=tuple(_from_fields(DesignEstimate, e) for e in estimates),
                   covariance=tuple(tuple(_num(v) for v in row) for row in data.get("covariance", ())),
                   critical_value=_num(data.get("critical_value")), n_rep=int(data.get("n_rep", 1)))


@dataclass(frozen=True)
class DriverReport:
    """The causal-drivers result: the primary design and why, its per-driver results, every design beside it.

    ``rows`` and ``artists`` describe the tracks every design was estimated on (the primary design's sample, so
    differences between designs come from the comparison, not the sample); ``artists`` is 0 when the table has
    no artist ids.
    """

    design: str
    design_reason: str
    rows: int
    artists: int
    drivers: tuple[DriverResult, ...]
    designs: tuple[DesignResult, ...] = ()
    warnings: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    # Per track and driver (track_id, driver, effect, ci_low, ci_high, proxy): the R-learner's calibrated effects
    # (TrackLearner); stored beside drivers.json as track_effects.csv, not in it.
    track_effects: pd.DataFrame | None = field(default=None, compare=False, repr=False)

    def __getitem__(self, feature: str) -> DriverResult:
        for result in self.drivers:
            if result.feature == feature:
                return result
        raise KeyError(f"no driver '{feature}' in this report (have: {', '.join(self.features)})")

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(r.feature for r in self.drivers)

    @property
    def design_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.designs)

    def design_result(self, name: str | None = None) -> DesignResult:
        """The :class:`DesignResult` of ``name`` (default: the primary design)."""
        name = name or self.design
        for result in self.designs:
            if result.name == name:
                return result
        raise KeyError(f"no design '{name}' in this report (have: {', '.join(self.design_names)})")

    def to_frame(self) -> pd.DataFrame:
        """One row per driver of the primary design with its scalar fields (no group effects, bounds or curves)."""
        return pd.DataFrame([r.scalars() for r in self.drivers])

    def designs_frame(self) -> pd.DataFrame:
        """One row per design and driver: effect, SE, CIs, p-values."""
        return pd.DataFrame([{k: v for k, v in asdict(e).items() if k != "rep_effects"}
                             for d in self.designs for e in d.estimates])

    def to_dict(self) -> dict[str, Any]:
        """The ``drivers.json`` layout: the primary design's drivers[...] plus designs side by side."""
        return jsonable({
            "schema_version": SCHEMA_VERSION, "design": self.design, "design_reason": self.design_reason,
            "rows": int(self.rows), "artists": int(self.artists),
            "drivers": [r.to_dict() for r in self.drivers],
            "designs": {d.name: [asdict(e) for e in d.estimates] for d in self.designs},
            "design_details": {d.name: d.to_dict() for d in self.designs},
            "covariance": ({"design": self.design, "features": list(self.design_result().features),
                            "matrix": [list(r) for r in self.design_result().covariance]}
                           if self.designs else None),
            "warnings": list(self.warnings), "info": self.info,
        })

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriverReport:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"drivers.json schema version {data.get('schema_version', 1)}, expected "
                             f"{SCHEMA_VERSION}")
        details = data.get("design_details", {})
        designs = tuple(DesignResult.from_dict(details[name], estimates)
                        for name, estimates in data.get("designs", {}).items())
        return cls(design=str(data["design"]), design_reason=str(data.get("design_reason", "")),
                   rows=int(data["rows"]), artists=int(data["artists"]),
                   drivers=tuple(DriverResult.from_dict(d) for d in data["drivers"]), designs=designs,
                   warnings=tuple(data.get("warnings", ())), info=dict(data.get("info", {})))
