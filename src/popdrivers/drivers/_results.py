"""Result types of the causal drivers: frozen, plain, JSON round-trippable (what report.py and the app read).

``DriverReport`` holds the primary design's per-driver results (:class:`DriverResult`, with every check), every
design's estimates side by side (:class:`DesignResult`), warnings and settings. Nothing here estimates.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import pandas as pd

# drivers.json layout version; a folder written with another one is refused with "rebuild it".
SCHEMA_VERSION = 2
DESIGN_LABELS: dict[str, str] = {
    "within_album": "within album",
    "within_artist": "within artist",
    "naive": "naive, across artists",
}
# Effects whose Holm-adjusted p-value is below this are called "distinguishable from 0".
ALPHA = 0.05


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
    nested = nested or {}
    values: dict[str, Any] = {}
    for f in fields(cls):
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
    return cls(**values)


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
    """One driver's effect in one design: estimate, SE, 95% CI, Holm-adjusted p and the simultaneous band."""

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

    @property
    def distinguishable(self) -> bool:
        """True when the Holm-adjusted p-value is below 5% (the effect survives the multiplicity correction)."""
        return bool(self.p_adjusted < ALPHA)


@dataclass(frozen=True)
class DriverResult:
    """Everything estimated about one driver in the primary design, with its checks.

    Effects are popularity points per ``unit`` of the driver. ``p_adjusted`` is Holm-adjusted over the drivers;
    the simultaneous band covers all drivers' effects at once with 95% probability. Placebo: the driver's
    residual shuffled within the comparison groups ``placebo_permutations`` times; ``placebo_rejection_rate`` is
    the share of shuffles the nominal 95% CI calls significant (about 5% when the CIs are honest) and
    ``placebo_p`` the permutation p-value of the real estimate. Sensitivity: Cinelli & Hazlett's partial R2 and
    robustness values of the final-stage regression, and bounds against observed benchmarks. Fields are NaN when
    a check was not run.
    """

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
    rep_effects: tuple[float, ...] = ()

    @property
    def distinguishable(self) -> bool:
        """True when the Holm-adjusted p-value is below 5%."""
        return bool(self.p_adjusted < ALPHA)

    @property
    def significant(self) -> bool:
        """True when the plain 95% CI excludes 0 (before the multiplicity correction)."""
        return bool(self.ci_low > 0 or self.ci_high < 0)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriverResult:
        return _from_fields(cls, data, {"sensitivity": SensitivityBound, "by_genre": GroupEffect,
                                        "by_era": GroupEffect})


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
        """One row per driver of the primary design with its scalar fields (no group effects or bounds)."""
        skip = {"sensitivity", "by_genre", "by_era", "rep_effects"}
        return pd.DataFrame([{k: v for k, v in asdict(r).items() if k not in skip} for r in self.drivers])

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
