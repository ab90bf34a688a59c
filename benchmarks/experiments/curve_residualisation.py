"""Where a driver's curve error comes from: the product's residuals against exact least-squares residualisations of
the same basis, paired on each seed of the default simulated catalogue.

The product (``learner`` from ``--options``, ``{"learner": "linear"}`` by default: ~2 s per catalogue) builds the
final stage's columns as ``1_group x residual(driver)`` and ``not-at-floor x residual(spline column)``. Here, on the
same features the product's nuisances see for the driver (its own columns left out) and the same first repetition:

- ``product``: the product's cross-fitted residuals (its curve, one repetition);
- ``insample``: in-sample least squares on the same features, the product's construction (what cross-fitting adds);
- ``exact``: every final-stage column residualised itself (``1_group x driver``, the masked spline columns): the
  Frisch-Waugh-Lovell form of the within-album regression on the same features;
- ``fe``: the classic within-album least squares (features demeaned within album);
- ``pergroup``: the driver's and spline columns' least squares fitted separately within each basis group, then the
  product's construction;
- ``hybrid``: the product's residuals, each final-stage column corrected by the gap between its own cross-fitted
  least squares residual and the product's construction of it (``res_LS(1_group x d) - 1_group x res_LS(d)``, the
  same for the masked spline columns; the product's folds and features): the exact form in the least-squares
  start, the trees' part as the product has it.

``--catalogue counterexample`` replaces the default catalogue by one where the least squares' pooled fit of the
driver misses a relation the trees catch (:func:`counterexample`) and reports each family's effect per variant
instead of the curve (``--options '{"n_knots": 0}'``; add ``"group_nuisances": true`` for the product's option
that fits the least squares within each family).

Usage (from the repository root)::

    .venv/bin/python benchmarks/experiments/curve_residualisation.py --seeds 30 --tag main
    .venv/bin/python benchmarks/experiments/curve_residualisation.py --catalogue counterexample --seeds 10 \
        --options '{"n_knots": 0}' --tag counterexample_trees

Writes ``curve_residualisation_<tag>.csv`` (seed, variant, point or group, value, estimate, se, truth, judged) under
``--out``
and prints per variant the mean error by point, the pointwise coverage and how many catalogues pass the
issue-24 check (>= 70% of the points between the 5th and 95th percentile covered).

It reads the product's internals (``_DesignRun``) on purpose: it is a study of them, not a use of the library.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from popdrivers.drivers import _estimate, estimate_drivers
from popdrivers.drivers._crossfit import cross_fit_targets
from popdrivers.drivers._inference import fit_basis
from popdrivers.sources.simulate import simulate_catalog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_drivers import CURVE_TARGET, _percentiles  # noqa: E402

VARIANTS = ("product", "insample", "exact", "fe", "pergroup", "hybrid")


def _ls_residuals(x: np.ndarray, targets: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones(len(x)), x])
    return targets - design @ np.linalg.lstsq(design, targets, rcond=None)[0]


def _variant_curves(run, residuals: np.ndarray, spline_slices: list[slice], exclusions: list[list[int]],
                    driver: str, crossfit: tuple) -> dict[str, list[tuple[float, float]]]:
    """Per variant, (estimate, se) at each point of ``driver``'s curve grid, then of each group's effect."""
    m = run.matrices
    j, n = run.drivers.index(driver), len(run.drivers)
    prepared = run.prepared[driver]
    basis = prepared.basis
    keep = [c for c in range(run._x.shape[1]) if c not in set(exclusions[j])]
    x = run._x[:, keep]
    mask = basis.spline_mask(prepared.codes)

    def curve(y_res: np.ndarray, z: np.ndarray) -> list[tuple[float, float]]:
        """(estimate, se) at each point of the curve grid, then of each basis group's average effect."""
        fit, _ = fit_basis(y_res, z, run.clusters)
        weights = [*prepared.curve_weights, *prepared.family_weights]
        return [(s.effect, s.se) for s in (fit.functional(w, z, run.clusters) for w in weights)]

    def product_columns(d_res: np.ndarray, spline_res: np.ndarray) -> np.ndarray:
        return np.column_stack([d_res * (prepared.codes == g) for g in range(basis.n_groups)] + [spline_res * mask])

    d = m.treatments[driver]
    spline = m.demean(basis.spline(prepared.level))
    targets = np.column_stack([m.y, d, spline])
    insample = m.within(_ls_residuals(x, targets))
    raw = product_columns(d, spline)
    per_group = np.zeros((len(d), targets.shape[1] - 1))
    for g in range(basis.n_groups):
        rows = prepared.codes == g
        per_group[rows] = _ls_residuals(x[rows], targets[rows, 1:])
    per_group = m.within(per_group)
    demeaned = m.demean(x)
    folds, learner = crossfit
    ls = dataclasses.replace(learner, kind="linear")
    # Least squares (cross-fitted, the product's folds) of d and its spline columns and of the final stage's own
    # columns; the gap between the two constructions is added to the product's columns.
    plain = np.column_stack([d, spline])
    own = m.within(cross_fit_targets(run._x, np.column_stack([plain, raw]),
                                     [exclusions[j]] * (plain.shape[1] + raw.shape[1]), folds, ls))
    hybrid = product_columns(residuals[:, n + j], residuals[:, spline_slices[j]])
    hybrid += own[:, plain.shape[1]:] - product_columns(own[:, 0], own[:, 1:plain.shape[1]])
    return {
        "hybrid": curve(residuals[:, j], hybrid),
        "product": curve(residuals[:, j], product_columns(residuals[:, n + j], residuals[:, spline_slices[j]])),
        "insample": curve(insample[:, 0], product_columns(insample[:, 1], insample[:, 2:])),
        "exact": curve(insample[:, 0], m.within(_ls_residuals(x, raw))),
        "fe": curve(_ls_residuals(demeaned, m.demean(m.y)), _ls_residuals(demeaned, m.demean(raw))),
        "pergroup": curve(insample[:, 0], product_columns(per_group[:, 0], per_group[:, 1:])),
    }


# The counterexample's families whose tracks' driver rises along the album's running order (the rest: falls) and
# whose effect is COUNTER_EFFECT points per unit (the rest: 0).
COUNTER_FAMILIES = ("pop", "r&b", "latin", "country")
COUNTER_EFFECT = 30.0


def counterexample(seed: int) -> tuple[pd.DataFrame, dict[str, float]]:
    """A catalogue where the least squares' pooled fit of the driver misses a relation the trees catch: the
    default catalogue's albums, artists and families, danceability rising with track position in four families
    and falling in the others, popularity ``45 + 30 x danceability`` in those four (0 elsewhere) ``- 3 x position``
    plus an album effect and noise (no floor reached). Returns the tracks and each family's true effect."""
    from popdrivers.features import build_features

    tracks, _ = simulate_catalog(150, 40, seed=seed)
    family = build_features(tracks)["genre_family"].to_numpy()
    rng = np.random.default_rng(seed)
    rising = np.isin(family, COUNTER_FAMILIES)
    position = (tracks["track_number"].to_numpy() - 6.0) / 4.0
    album = pd.factorize(tracks["album_id"])[0]
    d = np.clip(0.5 + 0.1 * np.where(rising, 1.0, -1.0) * position + 0.1 * rng.normal(size=len(tracks)), 0, 1)
    y = 45 + np.where(rising, COUNTER_EFFECT, 0.0) * d - 3 * position + rng.normal(0, 8, album.max() + 1)[album] \
        + rng.normal(0, 3, len(tracks))
    truth = {f: (COUNTER_EFFECT if f in COUNTER_FAMILIES else 0.0) for f in np.unique(family)}
    return tracks.assign(danceability=d, popularity=np.clip(np.round(y), 0, 100)), truth


def study(seeds: int, first_seed: int, options: dict, driver: str, catalogue: str = "default") -> pd.DataFrame:
    captured: dict[str, object] = {}
    original_targets, original_stages = _estimate._DesignRun._targets, _estimate._DesignRun._final_stages
    original_cross_fit = _estimate.cross_fit_targets

    def cross_fit(x, targets, excluded, folds, learner, *args, **kwargs):
        captured.setdefault("crossfit", (folds, learner))
        return original_cross_fit(x, targets, excluded, folds, learner, *args, **kwargs)

    def targets(self):
        out = original_targets(self)
        captured["exclusions"] = out[1]
        return out

    def final_stages(self, rep, residuals, spline_slices, *args):
        if rep == 0 and self.details:
            captured["curves"] = _variant_curves(self, residuals, spline_slices, captured["exclusions"], driver,
                                                 captured["crossfit"])
            captured["values"] = self.prepared[driver].curve_values
            captured["reference"] = self.prepared[driver].reference
            captured["groups"] = self.prepared[driver].basis.groups
        return original_stages(self, rep, residuals, spline_slices, *args)

    _estimate._DesignRun._targets, _estimate._DesignRun._final_stages = targets, final_stages
    _estimate.cross_fit_targets = cross_fit
    rows = []
    try:
        for seed in range(first_seed, first_seed + seeds):
            start = time.perf_counter()
            captured.pop("crossfit", None)
            if catalogue == "counterexample":
                tracks, family_truth = counterexample(seed)
                drivers = [driver, "energy"]
            else:
                tracks, truth = simulate_catalog(300, 60, seed=seed)
                drivers = None
            estimate_drivers(tracks, drivers, seed=seed, **{
                "compare": False, "refute": False, "by_genre": False, "track_effects": False, "n_jobs": 1,
                "n_rep": 1, **options})
            values, reference = captured["values"], captured["reference"]
            groups = captured["groups"]
            if catalogue == "counterexample":
                low = high = np.nan
                true = [np.nan] * len(values)
                group_truth = [family_truth.get(g, np.nan) for g in groups]
            else:
                true = truth.curve_at(driver, values, reference)
                low, high = _percentiles(tracks)[driver]
                group_truth = [np.nan] * len(groups)
            for variant, points in captured["curves"].items():
                for i, ((estimate, se), value, t) in enumerate(zip(points[:len(values)], values, true, strict=True)):
                    rows.append({"seed": seed, "variant": variant, "point": i, "value": value, "estimate": estimate,
                                 "se": se, "truth": t, "judged": bool(low <= value <= high and value != reference)})
                for group, (estimate, se), t in zip(groups, points[len(values):], group_truth, strict=True):
                    rows.append({"seed": seed, "variant": variant, "group": group, "estimate": estimate, "se": se,
                                 "truth": t, "judged": False})
            print(f"  seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    finally:
        _estimate._DesignRun._targets, _estimate._DesignRun._final_stages = original_targets, original_stages
        _estimate.cross_fit_targets = original_cross_fit
    return pd.DataFrame(rows)


def summarise_groups(frame: pd.DataFrame) -> None:
    """Per variant and group with a known truth: mean estimate, mean error, mean SE and coverage over seeds."""
    frame = frame[frame.truth.notna()].assign(error=lambda f: f.estimate - f.truth)
    frame["covered"] = frame.error.abs() <= 1.959964 * frame.se
    table = frame.groupby(["group", "variant"]).agg(truth=("truth", "mean"), estimate=("estimate", "mean"),
                                                    error=("error", "mean"), se=("se", "mean"),
                                                    coverage=("covered", "mean"))
    print(table.round(2).to_string())
    print(frame.groupby("variant").covered.mean().round(3).rename("coverage over groups x seeds").to_string())


def summarise(frame: pd.DataFrame) -> None:
    if "group" in frame:
        groups = frame[frame.group.notna()]
        frame = frame[frame.group.isna()]
        if groups.truth.notna().any():
            summarise_groups(groups)
    frame = frame[frame.truth.notna()]
    if frame.empty:
        return
    frame = frame.assign(error=frame.estimate - frame.truth)
    frame["z"] = frame.error / frame.se
    frame["covered"] = frame.error.abs() <= 1.959964 * frame.se
    by_point = frame.pivot_table(index="point", columns="variant", values="error", aggfunc="mean")
    by_point.insert(0, "value", frame.groupby("point").value.mean())
    print("mean error (estimate - truth) by point of the curve:")
    print(by_point[["value", *[v for v in VARIANTS if v in by_point]]].round(3).to_string())
    judged = frame[frame.judged]
    share = judged.groupby(["variant", "seed"]).covered.mean()
    passing = (share >= CURVE_TARGET).groupby("variant").agg(["sum", "count"])
    print(pd.DataFrame({"pointwise coverage": judged.groupby("variant").covered.mean().round(3),
                        "mean z": judged.groupby("variant").z.mean().round(2),
                        "catalogues passing": passing["sum"], "of": passing["count"]}).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--options", default='{"learner": "linear"}', help="estimate_drivers keyword arguments")
    parser.add_argument("--driver", default=None, help="default: loudness (counterexample: danceability)")
    parser.add_argument("--catalogue", choices=["default", "counterexample"], default="default",
                        help="counterexample: see counterexample()")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/drivers"))
    args = parser.parse_args()
    driver = args.driver or ("danceability" if args.catalogue == "counterexample" else "loudness")
    frame = study(args.seeds, args.first_seed, json.loads(args.options), driver, args.catalogue)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / f"curve_residualisation_{args.tag}.csv", index=False)
    summarise(frame)


if __name__ == "__main__":
    main()
