"""Coverage study and timing of the causal-drivers estimator against the simulated catalogue's known truth.

For each seed a catalogue of ``--n-artists`` x ``--tracks-per-artist`` tracks is simulated; every driver is
estimated within artist and naively; a 95% CI "covers" when it contains the true average effect. Printed per
design and driver: coverage, mean bias, mean CI width; overall wall time. ``--timing-rows`` adds the time of
one full run (all drivers, refutations and GATEs on) on a catalogue of that many tracks.

Usage::

    .venv/bin/python benchmarks/bench_drivers.py --seeds 10 --learners linear+lgbm,lgbm,linear --timing-rows 100000
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from popdrivers.drivers import estimate_drivers
from popdrivers.sources.simulate import simulate_catalog


def coverage_study(seeds: int, n_artists: int, tracks_per_artist: int, learner: str, refute: bool) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        tracks, truth = simulate_catalog(n_artists, tracks_per_artist, seed=seed)
        start = time.perf_counter()
        report = estimate_drivers(tracks, seed=seed, learner=learner, refute=refute, by_genre=False)
        seconds = time.perf_counter() - start
        for r in report.drivers:
            true = truth.effects[r.feature]
            for design, (est, lo, hi) in {"within_artist": (r.effect, r.ci_low, r.ci_high),
                                          "naive": (r.naive_effect, r.naive_ci_low, r.naive_ci_high)}.items():
                rows.append({"learner": learner, "seed": seed, "design": design, "driver": r.feature, "truth": true,
                             "estimate": est, "bias": est - true, "width": hi - lo, "covered": lo <= true <= hi,
                             "placebo": r.placebo_effect, "placebo_p": r.placebo_p, "seconds": seconds})
        print(f"  {learner} seed {seed}: {seconds:.1f} s", flush=True)

    return pd.DataFrame(rows)


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    return (results.groupby(["learner", "design", "driver"], sort=False)
            .agg(truth=("truth", "mean"), coverage=("covered", "mean"), mean_bias=("bias", "mean"),
                 rmse=("bias", lambda b: float(np.sqrt(np.mean(b**2)))), mean_ci_width=("width", "mean"))
            .reset_index())


def timing(n_rows: int, tracks_per_artist: int = 60) -> dict[str, float]:
    tracks, _ = simulate_catalog(max(n_rows // tracks_per_artist, 1), tracks_per_artist, seed=123)
    start, cpu = time.perf_counter(), time.process_time()
    report = estimate_drivers(tracks, seed=0)
    return {"rows": len(tracks), "drivers": len(report.drivers), "seconds": round(time.perf_counter() - start, 1),
            "cpu_seconds": round(time.process_time() - cpu, 1), "warnings": list(report.warnings)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--n-artists", type=int, default=300)
    parser.add_argument("--tracks-per-artist", type=int, default=60)
    parser.add_argument("--learners", default="linear+lgbm")
    parser.add_argument("--refute", action="store_true", help="also run refutations in the coverage runs")
    parser.add_argument("--timing-rows", type=int, nargs="*", default=[])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/drivers"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()} {platform.processor() or ''}, date {date.today()}")
    frames = []
    for learner in args.learners.split(","):
        start = time.perf_counter()
        results = coverage_study(args.seeds, args.n_artists, args.tracks_per_artist, learner, args.refute)
        print(f"{learner}: {args.seeds} seeds in {time.perf_counter() - start:.0f} s", flush=True)
        frames.append(results)
    results = pd.concat(frames, ignore_index=True)
    results.to_csv(args.out / "coverage_raw.csv", index=False)
    summary = summarise(results)
    summary.to_csv(args.out / "coverage_summary.csv", index=False)
    with pd.option_context("display.width", 200, "display.max_rows", 500, "display.max_columns", 20,
                           "display.precision", 3):
        print(summary)
        overall = results.groupby(["learner", "design"]).agg(
            coverage=("covered", "mean"), mean_abs_bias=("bias", lambda b: float(np.mean(np.abs(b)))),
            mean_ci_width=("width", "mean"), seconds_per_fit=("seconds", "mean"))
        print(overall)
        within = results[results.design == "within_artist"]
        print("placebo: mean", within.placebo.mean(), "share p<0.05", (within.placebo_p < 0.05).mean())
    timings = [timing(n) for n in args.timing_rows]
    for t in timings:
        print(f"timing: {t}", flush=True)
    (args.out / "timing.json").write_text(json.dumps(timings, indent=2))


if __name__ == "__main__":
    main()
