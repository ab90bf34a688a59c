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
  product's construction.

Usage (from the repository root)::

    .venv/bin/python benchmarks/experiments/curve_residualisation.py --seeds 30 --tag main

Writes ``curve_residualisation_<tag>.csv`` (seed, variant, point, value, estimate, se, truth, judged) under ``--out``
and prints per variant the mean error by point, the pointwise coverage and how many catalogues pass the
issue-24 check (>= 70% of the points between the 5th and 95th percentile covered).

It reads the product's internals (``_DesignRun``) on purpose: it is a study of them, not a use of the library.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from popdrivers.drivers import _estimate, estimate_drivers
from popdrivers.drivers._inference import fit_basis
from popdrivers.sources.simulate import simulate_catalog

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_drivers import CURVE_TARGET, _percentiles  # noqa: E402

VARIANTS = ("product", "insample", "exact", "fe", "pergroup")


def _ls_residuals(x: np.ndarray, targets: np.ndarray) -> np.ndarray:
    design = np.column_stack([np.ones(len(x)), x])
    return targets - design @ np.linalg.lstsq(design, targets, rcond=None)[0]


def _variant_curves(run, residuals: np.ndarray, spline_slices: list[slice], exclusions: list[list[int]],
                    driver: str) -> dict[str, list[tuple[float, float]]]:
    """Per variant, (estimate, se) at each point of ``driver``'s curve grid."""
    m = run.matrices
    j, n = run.drivers.index(driver), len(run.drivers)
    prepared = run.prepared[driver]
    basis = prepared.basis
    keep = [c for c in range(run._x.shape[1]) if c not in set(exclusions[j])]
    x = run._x[:, keep]
    mask = basis.spline_mask(prepared.codes)

    def curve(y_res: np.ndarray, z: np.ndarray) -> list[tuple[float, float]]:
        fit, _ = fit_basis(y_res, z, run.clusters)
        return [(s.effect, s.se) for s in (fit.functional(w, z, run.clusters) for w in prepared.curve_weights)]

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
    return {
        "product": curve(residuals[:, j], product_columns(residuals[:, n + j], residuals[:, spline_slices[j]])),
        "insample": curve(insample[:, 0], product_columns(insample[:, 1], insample[:, 2:])),
        "exact": curve(insample[:, 0], m.within(_ls_residuals(x, raw))),
        "fe": curve(_ls_residuals(demeaned, m.demean(m.y)), _ls_residuals(demeaned, m.demean(raw))),
        "pergroup": curve(insample[:, 0], product_columns(per_group[:, 0], per_group[:, 1:])),
    }


def study(seeds: int, first_seed: int, options: dict, driver: str) -> pd.DataFrame:
    captured: dict[str, object] = {}
    original_targets, original_stages = _estimate._DesignRun._targets, _estimate._DesignRun._final_stages

    def targets(self):
        out = original_targets(self)
        captured["exclusions"] = out[1]
        return out

    def final_stages(self, rep, residuals, spline_slices, *args):
        if rep == 0 and self.details:
            captured["curves"] = _variant_curves(self, residuals, spline_slices, captured["exclusions"], driver)
            captured["values"] = self.prepared[driver].curve_values
            captured["reference"] = self.prepared[driver].reference
        return original_stages(self, rep, residuals, spline_slices, *args)

    _estimate._DesignRun._targets, _estimate._DesignRun._final_stages = targets, final_stages
    rows = []
    try:
        for seed in range(first_seed, first_seed + seeds):
            start = time.perf_counter()
            tracks, truth = simulate_catalog(300, 60, seed=seed)
            estimate_drivers(tracks, seed=seed, **{"compare": False, "refute": False, "by_genre": False,
                                                   "track_effects": False, "n_jobs": 1, "n_rep": 1, **options})
            values, reference = captured["values"], captured["reference"]
            true = truth.curve_at(driver, values, reference)
            low, high = _percentiles(tracks)[driver]
            for variant, points in captured["curves"].items():
                for i, ((estimate, se), value, t) in enumerate(zip(points, values, true, strict=True)):
                    rows.append({"seed": seed, "variant": variant, "point": i, "value": value, "estimate": estimate,
                                 "se": se, "truth": t, "judged": bool(low <= value <= high and value != reference)})
            print(f"  seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    finally:
        _estimate._DesignRun._targets, _estimate._DesignRun._final_stages = original_targets, original_stages
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame) -> None:
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
    parser.add_argument("--driver", default="loudness")
    parser.add_argument("--tag", required=True)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/drivers"))
    args = parser.parse_args()
    frame = study(args.seeds, args.first_seed, json.loads(args.options), args.driver)
    args.out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out / f"curve_residualisation_{args.tag}.csv", index=False)
    summarise(frame)


if __name__ == "__main__":
    main()
