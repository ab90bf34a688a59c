"""The primary design's estimates (product defaults, ``--options`` overriding) and the loudness curve, per seed of
the default simulated catalogue: what ``bench_drivers.py variants`` and ``curve-profile`` measure, in one run.

Usage (from the repository root; two processes at a time on 2 cores, ~95 s per catalogue)::

    .venv/bin/python benchmarks/experiments/primary_and_curve.py --first-seed 0 --seeds 9 --tag 5knots_a \
        --options '{"n_knots": 5}'

Writes ``primary_<tag>_drivers.csv`` (seed, driver, truth, estimate, se, covered, z, heterogeneity p) and
``primary_<tag>_curve.csv`` (seed, point, value, estimate, CI, truth, judged) under ``--out``; summarise the curve
file with ``bench_drivers.summarise_curve_profile``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_drivers import _percentiles, _primary_only, simulate_catalog, truth_on_curve  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--seeds", type=int, default=9)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--options", default="{}", help="estimate_drivers keyword arguments, as JSON")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/drivers"))
    args = parser.parse_args()
    options = json.loads(args.options)
    drivers, curve = [], []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        start = time.perf_counter()
        tracks, truth = simulate_catalog(300, 60, seed=seed)
        report = _primary_only(tracks, seed, options)
        for r in report.drivers:
            true = truth.effects[r.feature]
            se = (r.ci_high - r.ci_low) / (2 * 1.959964)
            drivers.append({"seed": seed, "driver": r.feature, "truth": true, "estimate": r.effect, "se": se,
                            "covered": r.ci_low <= true <= r.ci_high, "z": (r.effect - true) / se,
                            "het_p": r.heterogeneity.p_value if r.heterogeneity else float("nan")})
        loud = report["loudness"]
        true_curve = truth.curves["loudness"]
        at = truth_on_curve(loud, (true_curve["values"], true_curve["effects"]))
        low, high = _percentiles(tracks)["loudness"]
        rows = [{"seed": seed, "point": i, "value": p.value, "estimate": p.effect, "ci_low": p.ci_low,
                 "ci_high": p.ci_high, "truth": t,
                 "judged": bool(low <= p.value <= high and p.value != loud.curve_reference)}
                for i, (p, t) in enumerate(zip(loud.curve, at, strict=True))]
        curve += rows
        judged = [r for r in rows if r["judged"]]
        share = sum(r["ci_low"] <= r["truth"] <= r["ci_high"] for r in judged) / max(len(judged), 1)
        covered = sum(d["covered"] for d in drivers if d["seed"] == seed)
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s, {covered}/{len(report.drivers)} covered, "
              f"loudness curve {share:.2f}", flush=True)
        args.out.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(drivers).to_csv(args.out / f"primary_{args.tag}_drivers.csv", index=False)
        pd.DataFrame(curve).to_csv(args.out / f"primary_{args.tag}_curve.csv", index=False)


if __name__ == "__main__":
    main()
