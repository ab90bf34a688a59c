"""Checks on the estimates: a permutation placebo, sensitivity to unobserved confounding, effects by group.

Placebo
    The driver's cross-fitted residual is shuffled within the comparison groups (albums or artists) many times;
    the nuisances are fitted once, so each shuffle costs one final stage. Two numbers come out: the share of
    shuffles whose nominal 95% CI excludes 0 (about 5% when the clustered CIs are honest; much more means they
    are too narrow, e.g. one artist dominates), and the permutation p-value of the real estimate (randomisation
    inference that does not lean on the clustered SE).
Sensitivity
    Cinelli & Hazlett (2020), as the ``sensemakr`` package computes them (a test checks these functions against
    it): the partial R2 of the driver with popularity and the robustness values of the final-stage regression
    (from its classical t statistic and residual degrees of freedom), and bounds on the estimate if an unobserved
    confounder were ``k`` times as strong as an observed control (track position, the live flag, track age,
    followers), with the benchmarks' strength measured in the design's linear fixed-effects analogue.
Heterogeneity
    GATE-style effects by genre family and release era: the final stage restricted to each group's tracks, with
    clustered CIs; Benjamini-Hochberg q-values over all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from popdrivers.drivers._inference import LEVEL, ClusterSums
from popdrivers.format import number

# Observed controls an unobserved confounder is compared with, per design, in order of display.
BENCHMARKS: dict[str, tuple[str, ...]] = {
    "within_album": ("track position", "version", "featured artist"),
    "within_artist": ("track position", "version", "track age"),
    "naive": ("artist followers", "track age", "version"),
}
BENCHMARK_MULTIPLES = (1.0, 2.0, 3.0)
# About 5% of shuffles should look significant; above this share the CIs are called too narrow (with 200
# shuffles, 10% is 3 standard errors above 5%).
PLACEBO_WARNING_RATE = 0.10
# Below: a share of shuffles this unlikely (binomial lower tail at the nominal 5%) calls the CIs too wide. With 200
# shuffles that is 2 or fewer (1%, where 10 are expected); with 100 shuffles even 0 is not enough evidence.
PLACEBO_LOW_TAIL = 0.005
# An effect whose driver varies (within the comparison groups) in fewer artists than this, counted by the
# effective number 1 / sum(h_g^2) of the artists' shares h_g of its variation, is said to rest on too few artists.
MIN_EFFECTIVE_ARTISTS = 10.0
# A driver needs values on at least this many tracks to be estimated at all.
MIN_DRIVER_VALUES = 30
MIN_GROUP_ARTISTS = 8
MIN_GROUP_ROWS = 100


# ----------------------------------------------------------------------------------------------------------
# Whether the table can be estimated at all, and what the user reads when it cannot


def no_driver_message(values: dict[str, int], tracks: int, design_rows: int, design_artists: int,
                      design_albums: int) -> str:
    """Why no driver can be estimated: the reason and the fix first, the counts after.

    ``values`` maps each driver whose column is in the table to its number of tracks with values (drivers
    without a column are absent); the ``design_*`` counts are what the strictest design would need.
    """
    if not values:
        return (f"no driver can be estimated: the table has no driver column ({', '.join(_DRIVER_EXAMPLES)}, ...). "
                "Fix: add audio features (e.g. `popdrivers collect` or a dataset that has them)")
    most = max(values.values())
    if most < MIN_DRIVER_VALUES:
        count = (f"the table has only {tracks:,} track{'s' if tracks != 1 else ''}" if most == tracks
                 else f"only {most:,} of {tracks:,} tracks have driver values")
        return (f"too few tracks to estimate drivers: {count} (need {MIN_DRIVER_VALUES} per driver, and for a "
                f"design {design_rows} tracks of {design_artists}+ artists, ideally {design_albums}+ albums with two "
                "or more tracks). Fix: use a larger table (e.g. the whole crawl or dataset)"
                f"\n  driver columns found: {', '.join(values)}")
    return (f"no driver can be estimated: the driver columns ({', '.join(values)}) do not vary. "
            "Fix: use a table whose tracks differ in their audio features")


_DRIVER_EXAMPLES = ("danceability", "energy", "loudness", "tempo")


def no_design_message(tracks: int, reasons: list[str], design_rows: int, design_artists: int,
                      design_albums: int) -> str:
    """Why no design can be estimated (too few tracks, artists or albums): reason and fix first, each design's
    reason on the lines after."""
    head = (f"too few tracks for any design: {tracks:,} complete tracks; the within-album design needs "
            f"{design_albums} albums with two or more tracks, within artist {design_artists} artists with two or "
            f"more tracks, and every design {design_rows} tracks. Fix: use a larger table (at least {design_rows} "
            f"tracks of {design_artists}+ artists with several tracks each, e.g. a crawl of whole albums)")
    return head + "".join(f"\n  {reason}" for reason in reasons)


def driver_support_counts(treatment: np.ndarray, clusters: ClusterSums, center: bool = False) -> tuple[int, float]:
    """Artists in which a driver varies (within the comparison groups: ``treatment`` demeaned as the design
    demeans it; ``center`` for the naive design, which compares across them) and their effective number
    ``1 / sum(h_g^2)`` (``h_g``: each artist's share of the variation)."""
    t = np.asarray(treatment, dtype="float64")
    if center:
        t = t - t.mean()
    h = clusters.leverage(t)
    varying = int(np.sum(h > 1e-9))
    concentration = float(np.sum(h**2))
    return varying, (1.0 / concentration if concentration > 0 else 0.0)


def placebo_too_rare(rate: float, permutations: int, level: float = LEVEL) -> bool:
    """True when so few shuffles look significant that the CIs are too wide (conservative): the count is in the
    binomial lower tail below ``PLACEBO_LOW_TAIL`` at the nominal rate ``1 - level``."""
    if not math.isfinite(rate) or permutations <= 0:
        return False
    count = round(rate * permutations)
    return bool(stats.binom.cdf(count, permutations, 1.0 - level) < PLACEBO_LOW_TAIL)


def estimate_warnings(design: str, rows: list[tuple[str, float, float, float, float, int]],
                      support: dict[str, tuple[int, float]]) -> list[str]:
    """Warnings a reader of the effects needs, per driver: the effect rests on too few artists; the placebo
    rejects far more (CIs too narrow) or far fewer (CIs too wide) shuffles than the nominal 5%.

    ``rows``: (driver, effect, ci_low, ci_high, placebo rejection rate, placebo shuffles); ``support``: per
    driver, :func:`driver_support_counts`.
    """
    where = {"within_album": " within an album", "within_artist": " within an artist"}.get(design, "")
    out = []
    for driver, effect, low, high, rate, permutations in rows:
        varying, effective = support.get(driver, (0, math.nan))
        if math.isfinite(effective) and effective < MIN_EFFECTIVE_ARTISTS:
            ci = f"[{number(low)}, {number(high)}]"
            if varying < MIN_EFFECTIVE_ARTISTS:
                who = (f"estimated from {varying} artist{'s' if varying != 1 else ''} whose tracks differ in it"
                       f"{where}")
            else:
                who = (f"rests on few artists: {varying} artists' tracks differ in it{where}, but a few of them "
                       f"hold most of that variation (as much as {effective:.1f} equal artists)")
            out.append(f"{driver}: {who}; {MIN_EFFECTIVE_ARTISTS:.0f} or more wanted: the effect {number(effect)} "
                       f"{ci} says little about other artists. Fix: add artists whose tracks vary in it")
        if math.isfinite(rate) and rate > PLACEBO_WARNING_RATE:
            out.append(f"{driver}: placebo shuffles looked significant in {100 * rate:.0f}% of {permutations} "
                       "(about 5% expected): its confidence interval is likely too narrow")
        elif placebo_too_rare(rate, permutations):
            out.append(f"{driver}: placebo shuffles looked significant in {100 * rate:.1f}% of {permutations} "
                       "(about 5% expected): its confidence interval is likely too wide (conservative), so a real "
                       "effect may be called indistinguishable from 0")
    return out


# ----------------------------------------------------------------------------------------------------------
# Placebo


@dataclass(frozen=True)
class PlaceboResult:
    """Permutation placebo of one driver (see module docstring)."""

    effect: float             # mean of the shuffled estimates (near 0)
    sd: float                 # their spread: the estimate's sampling sd under "no effect"
    rejection_rate: float     # share of shuffles the nominal 95% CI calls significant (about 0.05 when honest)
    p_value: float            # permutation p-value of the real estimate
    permutations: int


def within_group_permutations(groups: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` permutations (rows of indices) that shuffle rows only among rows of the same group."""
    n = len(groups)
    _, codes = np.unique(groups, return_inverse=True)
    keys = codes[None, :] + rng.random((count, n))
    order = np.argsort(keys, axis=1, kind="stable")
    grouped_rows = np.argsort(codes, kind="stable")
    out = np.empty((count, n), dtype=np.int64)
    out[:, grouped_rows] = order
    return out


def permutation_placebo(residuals: dict[str, tuple[np.ndarray, np.ndarray]], effects: dict[str, float],
                        groups: np.ndarray, clusters: ClusterSums, n_permutations: int, seed: int,
                        level: float = LEVEL, max_cells: int = 4_000_000) -> dict[str, PlaceboResult]:
    """Permutation placebo for every driver at once (the shuffles are drawn once and shared)."""
    n = len(groups)
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_permutations, max_cells // max(n, 1)))
    thetas: dict[str, list[np.ndarray]] = {d: [] for d in residuals}
    rejected: dict[str, int] = dict.fromkeys(residuals, 0)
    done = 0
    while done < n_permutations:
        count = min(chunk, n_permutations - done)
        perms = within_group_permutations(groups, count, rng)
        for driver, (y_res, d_res) in residuals.items():
            denom = float(d_res @ d_res)
            if denom <= 1e-12:
                continue
            q = float(stats.t.ppf(0.5 + level / 2, clusters.effective_dof(d_res)))
            shuffled = d_res[perms]                                    # count x n
            theta = shuffled @ y_res / denom
            influence = (y_res[None, :] - theta[:, None] * shuffled) * shuffled / (denom / n)
            scores = clusters.sums(influence) * clusters.leverage_factors(shuffled)   # count x clusters
            se = np.sqrt(np.sum(scores**2, axis=1)) / n
            rejected[driver] += int(np.sum(np.abs(theta) > q * se))
            thetas[driver].append(theta)
        done += count
    out = {}
    for driver, chunks in thetas.items():
        if not chunks:
            out[driver] = PlaceboResult(math.nan, math.nan, math.nan, math.nan, 0)
            continue
        values = np.concatenate(chunks)
        real = effects[driver]
        p = (1 + int(np.sum(np.abs(values) >= abs(real)))) / (len(values) + 1) if np.isfinite(real) else math.nan
        out[driver] = PlaceboResult(float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else math.nan,
                                    rejected[driver] / len(values), p, len(values))
    return out


# ----------------------------------------------------------------------------------------------------------
# Sensitivity (Cinelli & Hazlett 2020; formulas as in the sensemakr package)


def partial_r2(t: float, dof: int) -> float:
    """Partial R2 of the driver with the outcome, from the classical t statistic and residual dof."""
    if not np.isfinite(t) or dof < 1:
        return math.nan
    return t**2 / (t**2 + dof)


def robustness_value(t: float, dof: int, q: float = 1.0, alpha: float = 1.0) -> float:
    """Robustness value RV_{q,alpha}: the partial R2 an unobserved confounder needs with both driver and outcome
    to reduce the estimate by ``100 q``% (``alpha=1``) or to make the reduced estimate insignificant at ``alpha``.
    """
    if not np.isfinite(t) or dof < 2:
        return math.nan
    fq = q * abs(t / math.sqrt(dof))
    f_crit = abs(float(stats.t.ppf(alpha / 2, dof - 1))) / math.sqrt(dof - 1)
    fqa = fq - f_crit
    if fqa < 0:
        return 0.0
    if f_crit > 0 and fq > 1 / f_crit:
        return (fq**2 - f_crit**2) / (1 + fq**2)
    return 0.5 * (math.sqrt(fqa**4 + 4 * fqa**2) - fqa**2)


def confounder_bound(r2dxj_x: float, r2yxj_dx: float, kd: float, ky: float | None = None) -> tuple[float, float]:
    """Partial R2 ``(r2dz_x, r2yz_dx)`` of a confounder ``kd`` / ``ky`` times as strong as a benchmark whose
    partial R2 are ``r2dxj_x`` (with the driver) and ``r2yxj_dx`` (with the outcome); NaN when impossible."""
    ky = kd if ky is None else ky
    if not (np.isfinite(r2dxj_x) and np.isfinite(r2yxj_dx)) or r2dxj_x >= 1 or r2yxj_dx >= 1:
        return math.nan, math.nan
    r2dz_x = kd * (r2dxj_x / (1 - r2dxj_x))
    r2zxj_xd = kd * r2dxj_x**2 / ((1 - kd * r2dxj_x) * (1 - r2dxj_x)) if kd * r2dxj_x < 1 else math.inf
    if r2dz_x >= 1 or not r2zxj_xd < 1:
        return math.nan, math.nan
    r2yz_dx = ((math.sqrt(ky) + math.sqrt(r2zxj_xd)) / math.sqrt(1 - r2zxj_xd)) ** 2 * (r2yxj_dx / (1 - r2yxj_dx))
    return r2dz_x, min(r2yz_dx, 1.0)


def adjusted_estimate(estimate: float, se: float, dof: int, r2dz_x: float, r2yz_dx: float) -> float:
    """The estimate moved towards 0 by the largest bias a confounder of that strength can cause."""
    bias = math.sqrt(r2yz_dx * r2dz_x / (1 - r2dz_x)) * se * math.sqrt(dof)
    return float(np.sign(estimate) * (abs(estimate) - bias))


def adjusted_se(se: float, dof: int, r2dz_x: float, r2yz_dx: float) -> float:
    """The standard error after adjusting for a confounder of that strength."""
    return math.sqrt((1 - r2yz_dx) / (1 - r2dz_x)) * se * math.sqrt(dof / (dof - 1))


class LinearAnalogue:
    """Partial R2 of control blocks in the design's linear (fixed-effects) regressions, from one Gram matrix.

    Columns: outcome, the drivers, the controls (all demeaned for fixed-effects designs; an intercept is added
    for the naive design). ``RSS(a ~ S) = G_aa - G_aS G_SS^-1 G_Sa``.
    """

    def __init__(self, y: np.ndarray, drivers: list[np.ndarray], controls: np.ndarray, intercept: bool):
        columns = [y, *drivers, *(controls[:, j] for j in range(controls.shape[1]))]
        if intercept:
            columns.append(np.ones(len(y)))
        z = np.column_stack(columns)
        self.gram = z.T @ z
        self.n_drivers = len(drivers)
        self.n_controls = controls.shape[1]
        self.intercept = intercept

    def _rss(self, target: int, regressors: list[int]) -> float:
        g = self.gram
        if not regressors:
            return float(g[target, target])
        sub = g[np.ix_(regressors, regressors)]
        cross = g[regressors, target]
        ridge = 1e-10 * max(float(np.trace(sub)) / len(sub), 1.0)
        coef = np.linalg.solve(sub + ridge * np.eye(len(sub)), cross)
        return float(g[target, target] - cross @ coef)

    def benchmark_r2(self, driver: int, block: tuple[int, ...]) -> tuple[float, float]:
        """``(r2dxj_x, r2yxj_dx)`` of control block ``block`` (indices into the controls) for driver ``driver``."""
        d = 1 + driver
        others = [1 + j for j in range(self.n_drivers) if j != driver]
        controls = [1 + self.n_drivers + c for c in range(self.n_controls)]
        extra = [1 + self.n_drivers + self.n_controls] if self.intercept else []
        without = [1 + self.n_drivers + c for c in block]
        full = others + controls + extra
        short = [c for c in full if c not in without]
        rss_d_full, rss_d_short = self._rss(d, full), self._rss(d, short)
        rss_y_full, rss_y_short = self._rss(0, [d, *full]), self._rss(0, [d, *short])
        r2d = (rss_d_short - rss_d_full) / rss_d_short if rss_d_short > 0 else math.nan
        r2y = (rss_y_short - rss_y_full) / rss_y_short if rss_y_short > 0 else math.nan
        return max(r2d, 0.0), max(r2y, 0.0)


# ----------------------------------------------------------------------------------------------------------
# Heterogeneity


def group_masks(labels: np.ndarray, clusters: np.ndarray, skip: tuple[str, ...] = ("", "unknown")) \
        -> list[tuple[str, np.ndarray]]:
    """Groups with enough tracks and artists to estimate an effect of their own."""
    out = []
    for label in sorted(str(v) for v in np.unique(labels.astype(str))):
        if label in skip:
            continue
        mask = labels.astype(str) == label
        if mask.sum() >= MIN_GROUP_ROWS and len(np.unique(clusters[mask])) >= MIN_GROUP_ARTISTS:
            out.append((label, mask))
    return out
