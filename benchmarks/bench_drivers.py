"""Can the causal drivers be proven wrong? Coverage, multiplicity, placebo and timing against known truths.

Studies (each prints a table and writes CSVs under ``--out``):

``grid``
    A simulated catalogue with every real-data structure on (the default), each structure switched off in turn,
    and a hidden track-level confounder switched on, x ``--seeds`` seeds. Every design is estimated on the same
    tracks (within album = the primary, within artist with track controls, naive) plus within artist *without*
    track controls (the design popdrivers used before release structure was modelled). Per scenario and design:
    coverage of the 95% CI, mean bias, mean CI width. Runs use one cross-fitting repetition and no checks, to fit
    the grid in an afternoon on 2 cores (``--n-rep`` to change).
``default``
    The default catalogue with the product's defaults (3 repetitions, placebo, sensitivity): coverage of the
    95% CIs and of the simultaneous band (all twelve truths at once), placebo warnings.
``null``
    Catalogues where no driver has any effect, x ``--seeds`` seeds (small catalogues: it is the error rates that
    are studied): family-wise error rate with Holm (any driver called distinguishable from 0), without it, and
    how often the placebo warning fires (a driver whose shuffles the nominal CI rejects more than 10% of the time).
``timing``
    Wall time of ``estimate_drivers`` with its defaults on catalogues of ``--rows`` tracks.

Usage::

    .venv/bin/python benchmarks/bench_drivers.py grid --seeds 10
    .venv/bin/python benchmarks/bench_drivers.py default --seeds 10
    .venv/bin/python benchmarks/bench_drivers.py null --seeds 200
    .venv/bin/python benchmarks/bench_drivers.py timing --rows 100000
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from popdrivers.drivers import PLACEBO_WARNING_RATE, estimate_drivers
from popdrivers.sources.simulate import CatalogStructure, simulate_catalog

SWITCHES = [f.name for f in dataclasses.fields(CatalogStructure)]


def scenarios() -> dict[str, CatalogStructure]:
    default = CatalogStructure()
    out = {"default (all on)": default}
    for name in SWITCHES:
        if name == "hidden_confounder":
            out["+ hidden confounder"] = dataclasses.replace(default, hidden_confounder=True)
        else:
            out[f"- {name.replace('_', ' ')}"] = dataclasses.replace(default, **{name: False})
    out["plain (all off)"] = CatalogStructure.plain()
    return out


def _rows(report, truth, scenario: str, seed: int, label: str | None = None) -> list[dict]:
    rows = []
    for design in report.designs:
        for e in design.estimates:
            true = truth.effects[e.feature]
            rows.append({"scenario": scenario, "seed": seed, "design": label or design.name, "driver": e.feature,
                         "truth": true, "estimate": e.effect, "bias": e.effect - true,
                         "width": e.ci_high - e.ci_low, "covered": e.ci_low <= true <= e.ci_high,
                         "band_covered": e.simultaneous_ci_low <= true <= e.simultaneous_ci_high,
                         "p_adjusted": e.p_adjusted, "p_value": e.p_value})
        if label:
            break
    return rows


def grid(seeds: int, n_artists: int, tracks_per_artist: int, n_rep: int, only: list[str] | None) -> pd.DataFrame:
    rows = []
    for scenario, structure in scenarios().items():
        if only and scenario not in only:
            continue
        start = time.perf_counter()
        for seed in range(seeds):
            tracks, truth = simulate_catalog(n_artists, tracks_per_artist, seed=seed, structure=structure)
            report = estimate_drivers(tracks, seed=seed, n_rep=n_rep, refute=False, by_genre=False)
            rows += _rows(report, truth, scenario, seed)
            bare = estimate_drivers(tracks, seed=seed, design="within_artist", compare=False, n_rep=n_rep,
                                    refute=False, by_genre=False, track_controls=False)
            rows += _rows(bare, truth, scenario, seed, label="within_artist, no track controls")
        print(f"  {scenario}: {seeds} seeds in {time.perf_counter() - start:.0f} s", flush=True)
    return pd.DataFrame(rows)


def default_study(seeds: int, n_artists: int, tracks_per_artist: int) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        start = time.perf_counter()
        tracks, truth = simulate_catalog(n_artists, tracks_per_artist, seed=seed)
        report = estimate_drivers(tracks, seed=seed)
        for r in report.drivers:
            true = truth.effects[r.feature]
            rows.append({"seed": seed, "driver": r.feature, "truth": true, "estimate": r.effect,
                         "bias": r.effect - true, "width": r.ci_high - r.ci_low,
                         "covered": r.ci_low <= true <= r.ci_high,
                         "band_covered": r.simultaneous_ci_low <= true <= r.simultaneous_ci_high,
                         "placebo_rejection_rate": r.placebo_rejection_rate, "placebo_p": r.placebo_p,
                         "seconds": time.perf_counter() - start})
        print(f"  default seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    return pd.DataFrame(rows)


def null_study(seeds: int, n_artists: int, tracks_per_artist: int, n_rep: int) -> pd.DataFrame:
    rows = []
    start = time.perf_counter()
    for seed in range(seeds):
        tracks, truth = simulate_catalog(n_artists, tracks_per_artist, seed=10_000 + seed, effects={})
        report = estimate_drivers(tracks, seed=seed, compare=False, by_genre=False, n_rep=n_rep)
        for r in report.drivers:
            rows.append({"seed": seed, "driver": r.feature, "truth": truth.effects[r.feature], "estimate": r.effect,
                         "se": r.se, "dof": r.dof, "p_value": r.p_value, "p_adjusted": r.p_adjusted,
                         "simultaneous_ci_low": r.simultaneous_ci_low,
                         "simultaneous_ci_high": r.simultaneous_ci_high,
                         "band_covered": r.simultaneous_ci_low <= truth.effects[r.feature] <= r.simultaneous_ci_high,
                         "placebo_rejection_rate": r.placebo_rejection_rate, "placebo_p": r.placebo_p})
        if (seed + 1) % 10 == 0:
            elapsed = time.perf_counter() - start
            eta = elapsed / (seed + 1) * (seeds - seed - 1)
            print(f"  null: {seed + 1}/{seeds} seeds, {elapsed:.0f} s, ETA {eta:.0f} s", flush=True)
    return pd.DataFrame(rows)


def timing(rows: int) -> dict[str, float]:
    tracks, _ = simulate_catalog(max(rows // 60, 1), 60, seed=123)
    start = time.perf_counter()
    report = estimate_drivers(tracks, seed=0)
    return {"rows": len(tracks), "rows_used": report.rows, "drivers": len(report.drivers),
            "designs": len(report.designs), "seconds": round(time.perf_counter() - start, 1),
            "load_before": os.getloadavg()[0]}


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A markdown table of ``frame`` (index as the first column)."""
    columns = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * len(frame.columns)]
    for index, row in frame.iterrows():
        cells = [f"{v:.{digits}f}" if isinstance(v, float | np.floating) else str(v) for v in row]
        lines.append(f"| {index} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=["grid", "default", "null", "timing"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--n-artists", type=int, default=None)
    parser.add_argument("--tracks-per-artist", type=int, default=None)
    parser.add_argument("--n-rep", type=int, default=1, help="cross-fitting repetitions in grid / null runs")
    parser.add_argument("--scenarios", default=None, help="grid: comma-separated scenario names (default: all)")
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/drivers"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {date.today()}",
          flush=True)
    start = time.perf_counter()
    if args.study == "grid":
        only = [s.strip() for s in args.scenarios.split(",")] if args.scenarios else None
        results = grid(args.seeds, args.n_artists or 300, args.tracks_per_artist or 60, args.n_rep, only)
        results.to_csv(args.out / "grid_raw.csv", index=False)
        summary = (results.groupby(["scenario", "design"], sort=False)
                   .agg(coverage=("covered", "mean"), mean_abs_bias=("bias", lambda b: float(np.mean(np.abs(b)))),
                        mean_ci_width=("width", "mean")).unstack("design"))
        print(_markdown(summary["coverage"]))
        print(_markdown(summary["mean_abs_bias"]))
        worst = (results[results.design == "within_album"].groupby(["scenario", "driver"]).covered.mean()
                 .groupby(level=0, group_keys=False).nsmallest(2))
        print(worst.to_string())
    elif args.study == "default":
        results = default_study(args.seeds, args.n_artists or 300, args.tracks_per_artist or 60)
        results.to_csv(args.out / "default_raw.csv", index=False)
        per_driver = results.groupby("driver", sort=False).agg(
            truth=("truth", "mean"), coverage=("covered", "mean"), mean_bias=("bias", "mean"),
            mean_ci_width=("width", "mean"), band_coverage=("band_covered", "mean"),
            placebo_rejection=("placebo_rejection_rate", "mean"))
        print(_markdown(per_driver))
        all_in_band = results.groupby("seed").band_covered.all().mean()
        warnings = (results.groupby("seed").placebo_rejection_rate.max() > PLACEBO_WARNING_RATE).mean()
        print(f"coverage {results.covered.mean():.3f} of {len(results)} driver x seed; simultaneous band covers all "
              f"truths in {all_in_band:.3f} of seeds; placebo warning in {warnings:.3f} of seeds; "
              f"{results.groupby('seed').seconds.max().mean():.0f} s per run")
    elif args.study == "null":
        results = null_study(args.seeds, args.n_artists or 100, args.tracks_per_artist or 30, args.n_rep)
        results.to_csv(args.out / "null_raw.csv", index=False)
        per_seed = results.groupby("seed").agg(
            any_holm=("p_adjusted", lambda p: bool((p < 0.05).any())),
            any_raw=("p_value", lambda p: bool((p < 0.05).any())),
            band_all=("band_covered", "all"),
            placebo_warning=("placebo_rejection_rate", lambda r: bool((r > PLACEBO_WARNING_RATE).any())))
        n = len(per_seed)

        def share(column: str) -> str:
            k = int(per_seed[column].sum())
            return f"{k / n:.3f} ({k}/{n})"

        print(f"family-wise error, Holm: {share('any_holm')}; without correction: {share('any_raw')}; simultaneous "
              f"band misses a zero: {1 - per_seed.band_all.mean():.3f}; placebo warning: {share('placebo_warning')}")
        print(f"mean placebo rejection rate {results.placebo_rejection_rate.mean():.3f} (nominal 0.05); "
              f"share of raw p < 0.05 per driver {float((results.p_value < 0.05).mean()):.3f}")
    else:
        timings = [timing(r) for r in args.rows]
        for t in timings:
            print(f"timing: {t}", flush=True)
        pd.DataFrame(timings).to_csv(args.out / "timing.csv", index=False)
    print(f"total {time.perf_counter() - start:.0f} s, load now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
