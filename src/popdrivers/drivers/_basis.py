"""The treatment basis: how a driver's effect may vary, by genre family and along its own values.

A driver's effect on a track is modelled as ``f(d; family) = gamma_family * d + sum_k beta_k s_k(d)``: a slope per
genre family (families with too few tracks or artists share one) plus a restricted cubic spline of the driver
(Harrell's: cubic between the knots, linear beyond the outer ones, so it does not swing in the tails). The effect
of a small change on one track is the derivative ``gamma_family + sum_k beta_k s_k'(d)``; binary drivers have the
family slopes only (their "derivative" is the effect of 0 -> 1).

The family columns cost no extra nuisance models: the family is constant within an artist (and album), the
nuisances see it, so the residual of ``1_family * d`` is ``1_family`` times the residual of ``d``. Each spline
column is a target of its own (``E[s_k(d) | controls]``).

**Groups at the floor.** Popularity stops at 0: a track of a forgotten release gains nothing from a louder master,
and which tracks sit there is not random along a driver (old, quiet releases are forgotten more often). Pooled with
the others, such tracks flatten the spline where they are many and the curve then tells every track what only the
dead ones show (measured: the loudness curve of the simulated catalogue missed a third of its points; estimated on
the other albums it covers them all). So the comparison groups (albums, in the primary design) whose mean popularity
is below :data:`FLOOR_GROUP_MEAN` get a slope of their own (:data:`FLOOR_GROUP`) and no spline: the spline columns
are multiplied by "not at the floor", which is constant within a group, so their residuals are the spline's
residuals times that indicator and need no nuisance of their own either. Averages and curves still run over every
track, those at the floor included (their change is their own slope, about 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Knots of the restricted cubic spline as quantiles of the driver on the design's tracks (Harrell's table).
KNOT_QUANTILES: dict[int, tuple[float, ...]] = {
    3: (0.10, 0.50, 0.90), 4: (0.05, 0.35, 0.65, 0.95), 5: (0.05, 0.275, 0.50, 0.725, 0.95),
}
# Knots closer than this share of their span (a driver piled up at one end, like instrumentalness at 0) are spread
# evenly between the outer quantiles instead: a spline bent where nearly no track is would be noise.
MIN_KNOT_GAP = 0.05
OTHER_FAMILIES = "other families"
# Comparison groups whose mean popularity is below this many points are "at the floor" (their own slope, no spline).
FLOOR_GROUP_MEAN = 3.0
FLOOR_GROUP = "albums at the floor (mean popularity < 3)"


def _cubed(x: np.ndarray, knot: float) -> np.ndarray:
    return np.maximum(x - knot, 0.0) ** 3


def _squared(x: np.ndarray, knot: float) -> np.ndarray:
    return np.maximum(x - knot, 0.0) ** 2


def spline_knots(values: np.ndarray, n_knots: int) -> tuple[float, ...]:
    """Knots of a restricted cubic spline with ``n_knots`` knots (3 to 5) at quantiles of ``values`` (evenly
    spread between the outer ones when quantile knots crowd together); empty (no spline) below 3 knots or when
    the driver barely varies."""
    if n_knots < 3:
        return ()
    values = np.asarray(values, dtype="float64")
    quantiles = KNOT_QUANTILES[min(n_knots, max(KNOT_QUANTILES))]
    knots = np.quantile(values, quantiles)
    span = float(knots[-1] - knots[0])
    if not span > 1e-9 * max(1.0, float(np.abs(knots).max())):
        return ()
    if np.min(np.diff(knots)) < MIN_KNOT_GAP * span:
        knots = np.linspace(knots[0], knots[-1], len(knots))
    return tuple(float(k) for k in knots)


def spline_columns(values: np.ndarray, knots: tuple[float, ...], derivative: bool = False) -> np.ndarray:
    """The nonlinear columns of the restricted cubic spline with ``knots`` (n x (len(knots) - 2)), or their
    derivatives; scaled by ``(last - first knot)^2`` so they are on the driver's own scale."""
    x = np.asarray(values, dtype="float64")
    if len(knots) < 3:
        return np.empty((len(x), 0))
    t = np.asarray(knots)
    last, before = t[-1], t[-2]
    scale = (last - t[0]) ** 2
    power = _squared if derivative else _cubed
    factor = 3.0 if derivative else 1.0
    columns = [factor * (power(x, tj) - power(x, before) * (last - tj) / (last - before)
                         + power(x, last) * (before - tj) / (last - before)) / scale for tj in t[:-2]]
    return np.column_stack(columns)


@dataclass(frozen=True)
class TreatmentBasis:
    """The columns a driver's effect is expanded into, for one design's tracks.

    ``groups`` are the genre families with a slope of their own (the last may be :data:`OTHER_FAMILIES`, which
    pools the small and unknown ones); ``knots`` those of the spline (empty: no spline, e.g. binary drivers).
    Columns: one ``1_group * d`` per group, then the spline's nonlinear columns.
    """

    driver: str
    binary: bool
    groups: tuple[str, ...]
    knots: tuple[float, ...]

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    @property
    def n_spline(self) -> int:
        return max(len(self.knots) - 2, 0)

    @property
    def n_columns(self) -> int:
        return self.n_groups + self.n_spline

    def group_codes(self, families: np.ndarray) -> np.ndarray:
        """Index into ``groups`` of each track's family (families without a slope of their own: the pooled one)."""
        labels = np.asarray(families).astype(str)
        codes = np.full(len(labels), self.groups.index(OTHER_FAMILIES) if OTHER_FAMILIES in self.groups else -1)
        for i, group in enumerate(self.groups):
            if group != OTHER_FAMILIES:
                codes[labels == group] = i
        if (codes < 0).any():
            raise ValueError(f"families {sorted(set(labels[codes < 0]))} have no slope in the basis of "
                             f"{self.driver}")
        return codes

    def spline(self, values: np.ndarray) -> np.ndarray:
        return spline_columns(values, self.knots)

    @property
    def floor_code(self) -> int:
        """Index of :data:`FLOOR_GROUP` in ``groups`` (-1: no group at the floor)."""
        return self.groups.index(FLOOR_GROUP) if FLOOR_GROUP in self.groups else -1

    def spline_mask(self, codes: np.ndarray) -> np.ndarray:
        """1 for tracks whose effect has the spline, 0 for those at the floor (n x 1)."""
        return (np.asarray(codes) != self.floor_code).astype("float64")[:, None]

    def derivative_rows(self, values: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Per track, the gradient of its effect ``f'(d)`` with respect to the coefficients (n x columns)."""
        values = np.asarray(values, dtype="float64")
        group_part = np.zeros((len(values), self.n_groups))
        group_part[np.arange(len(values)), codes] = 1.0
        spline = spline_columns(values, self.knots, derivative=True) * self.spline_mask(codes)
        return np.column_stack([group_part, spline])

    def level_rows(self, values: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Per track, the coefficients' gradient of ``f(d)`` itself (n x columns)."""
        values = np.asarray(values, dtype="float64")
        group_part = np.zeros((len(values), self.n_groups))
        group_part[np.arange(len(values)), codes] = values
        return np.column_stack([group_part, self.spline(values) * self.spline_mask(codes)])

    def change_rows(self, start: np.ndarray | float, end: np.ndarray | float, codes: np.ndarray) -> np.ndarray:
        """Gradient of ``f(end) - f(start)`` per track (n x columns)."""
        n = len(codes)
        start = np.broadcast_to(np.asarray(start, dtype="float64"), (n,))
        end = np.broadcast_to(np.asarray(end, dtype="float64"), (n,))
        return self.level_rows(end, codes) - self.level_rows(start, codes)


def family_groups(families: np.ndarray, clusters: np.ndarray, min_rows: int, min_artists: int) -> tuple[str, ...]:
    """Families with enough tracks and artists for a slope of their own, largest first, then the rest pooled
    (:data:`OTHER_FAMILIES`). The pooled group must be estimable too: while it is not, the smallest family joins it.
    """
    labels = np.asarray(families).astype(str)
    clusters = np.asarray(clusters)

    def enough(mask: np.ndarray) -> bool:
        return bool(mask.sum() >= min_rows and len(np.unique(clusters[mask])) >= min_artists)

    own = sorted(((int((labels == f).sum()), str(f)) for f in np.unique(labels)
                  if f not in ("", "unknown") and enough(labels == f)), key=lambda item: (-item[0], item[1]))
    names = [name for _, name in own]
    rest = ~np.isin(labels, names)
    while rest.any() and not enough(rest) and names:
        names.pop()
        rest = ~np.isin(labels, names)
    return tuple(names) + ((OTHER_FAMILIES,) if rest.any() else ())
