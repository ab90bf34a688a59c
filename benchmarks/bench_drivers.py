"""Can the causal drivers be proven wrong? Coverage, curves, heterogeneity, multiplicity, placebo and timing
against known truths.

The truth of a simulated catalogue (docs/simulation.md) is the average over its tracks of the effect of +1 unit of
each driver on popularity as observed (0-100, floor at 0), and per continuous driver the dose-response curve; by
default the catalogue has effects that differ by genre family (with unequal within-album spread), a saturating
loudness effect and ~13% of tracks at 0 (the reviewer's scenario of issue 24).

Studies (each prints tables and writes CSVs under ``--out``):

``grid``
    The default simulated catalogue (every structure on), each structure switched off in turn, a catalogue whose
    effects are the same for every track ("homogeneous": no family effects, no saturation, no floor), a hidden
    track-level confounder switched on, and everything off, x ``--seeds`` seeds. Every design is estimated on the
    same tracks. Per scenario and design: coverage of the 95% CI of the average effect (the primary number) and
    of the variance-weighted partially linear number beside it, bias, width; for the primary design the coverage
    of the dose-response curves (pointwise CIs at the curve's points between the driver's 5th and 95th percentile;
    the simultaneous band over the whole curve) and how often the heterogeneity test fires for drivers whose
    effect varies (power) and for those whose does not. One cross-fitting repetition and no placebo/sensitivity,
    to fit on 2 cores (``--n-rep``). ``--bare`` adds the within-artist design without track controls.
``default``
    The default catalogue with the product's defaults (3 repetitions, placebo, sensitivity): coverage of the
    average effects and of the simultaneous band, curve coverage, heterogeneity p-values, placebo warnings.
``heterogeneity``
    Size of the heterogeneity test: catalogues whose effects are the same for every track ("homogeneous"), x
    ``--seeds`` seeds, the product's settings (``--n-rep``): the share of drivers x catalogues with p < 0.05.
``null``
    Catalogues where no driver has any effect, x ``--seeds`` seeds (small catalogues: it is the error rates that
    are studied): family-wise error rate with Holm (any driver called distinguishable from 0), without it, and
    how often the placebo warning fires (a driver whose shuffles the nominal CI rejects more than 10% of the time).
``variants``
    The default catalogue's primary design only (no comparison designs, placebo, genre effects or R-learner: its
    estimates are those of the product's defaults) with ``--options`` (JSON keyword arguments of
    ``estimate_drivers``, e.g. ``'{"num_leaves": 7}'``), one worker process per run: how many catalogues pass the
    ">= 11 of 12 covered" check and each driver's mean and spread of ``(estimate - truth) / SE`` (sd 1 when the
    CIs are calibrated). Quick to run two at a time with ``--first-seed``.
``curve-profile``
    Where along its values a driver's dose-response curve misses (``--driver``, default loudness): the default
    catalogue (``--structure``: JSON ``CatalogStructure`` switches to change, e.g. ``'{"versions": false}'``), the
    primary design only with ``--options`` as in ``variants`` (``'{"learner": "linear"}'`` runs in ~4 s per
    catalogue), per point of the curve grid the mean error, its spread, the mean half-width of the pointwise CI and
    the mean ``(estimate - truth) / SE`` over seeds (0 on average when the curve is unbiased), and how many
    catalogues have >= 70% of the points between the 5th and 95th percentile covered (the issue-24 check).
``timing``
    Wall time of ``estimate_drivers`` with its defaults on catalogues of ``--rows`` tracks (``--n-rep`` to
    override the repetitions chosen by size), and how far its repetitions disagree.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_drivers.py grid --seeds 10
    nice -n 10 .venv/bin/python benchmarks/bench_drivers.py grid --seeds 2 --scenarios "default (all on),homogeneous"
    nice -n 10 .venv/bin/python benchmarks/bench_drivers.py default --seeds 10
    nice -n 10 .venv/bin/python benchmarks/bench_drivers.py heterogeneity --seeds 40
    nice -n 10 .venv/bin/python benchmarks/bench_drivers.py null --seeds 200
    nice -n 10 .venv/bin/python benchmarks/bench_drivers.py variants --seeds 18 --options '{"num_leaves": 7}'
    nice -n 10 .venv/bin/python benchmarks/bench_drivers.py curve-profile --seeds 18 --options '{"learner": "linear"}'
    nice -n 10 .venv/bin/python benchmarks/bench_drivers.py timing --rows 100000
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from popdrivers import registry
from popdrivers.drivers import PLACEBO_WARNING_RATE, estimate_drivers
from popdrivers.drivers_report import curve_covered, truth_on_curve
from popdrivers.features import build_features
from popdrivers.sources.simulate import CatalogStructure, CausalTruth, simulate_catalog

SWITCHES = [f.name for f in dataclasses.fields(CatalogStructure)]
EFFECT_SHAPES = ("heterogeneous_effects", "saturating_effects", "popularity_floor")
# The share of a loudness curve's points (between its 5th and 95th percentile) that must cover the truth.
CURVE_TARGET = 0.70
HIDDEN = "+ hidden confounder"


def homogeneous() -> CatalogStructure:
    """Every release structure on; each driver's effect the same for every track (no family effects, no
    saturation, no floor beyond the few clipped and dead tracks)."""
    return dataclasses.replace(CatalogStructure(), **dict.fromkeys(EFFECT_SHAPES, False))


def scenarios() -> dict[str, CatalogStructure]:
    default = CatalogStructure()
    out = {"default (all on)": default}
    for name in SWITCHES:
        if name == "hidden_confounder":
            continue
        out[f"- {name.replace('_', ' ')}"] = dataclasses.replace(default, **{name: False})
    out["homogeneous"] = homogeneous()
    out[HIDDEN] = dataclasses.replace(default, hidden_confounder=True)
    out["plain (all off)"] = CatalogStructure.plain()
    return out


def _percentiles(tracks: pd.DataFrame, low: float = 0.05, high: float = 0.95) -> dict[str, tuple[float, float]]:
    """Each continuous driver's 5th and 95th percentile on the table (where the curve is judged)."""
    features = build_features(tracks)
    out = {}
    for name in registry.driver_names():
        spec = registry.spec(name)
        if spec.binary or spec.column not in features.columns:
            continue
        values = pd.to_numeric(features[spec.column], errors="coerce").dropna()
        out[name] = (float(values.quantile(low)), float(values.quantile(high)))
    return out


def _curve_rows(report, truth: CausalTruth, tracks: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Per driver with a curve: points between its 5th and 95th percentile, how many the pointwise CIs cover,
    whether the band covers every point of the curve, and the largest gap to the truth."""
    ranges = _percentiles(tracks)
    out = {}
    for r in report.drivers:
        if not r.curve or r.feature not in truth.curves:
            continue
        curve = truth.curves[r.feature]
        true = (curve["values"], curve["effects"])
        low, high = ranges.get(r.feature, (-math.inf, math.inf))
        covered, points = curve_covered(r, true, low, high)
        at = truth_on_curve(r, true)
        band = all(p.band_low - 1e-9 <= t <= p.band_high + 1e-9 for p, t in zip(r.curve, at, strict=True)
                   if math.isfinite(p.band_low))
        out[r.feature] = {"curve_points": points, "curve_covered": covered,
                          "curve_share": covered / points if points else math.nan, "curve_band_covered": band,
                          "curve_max_gap": float(np.max(np.abs(np.array([p.effect for p in r.curve]) - at)))}
    return out


def _rows(report, truth: CausalTruth, tracks: pd.DataFrame, scenario: str, seed: int,
          label: str | None = None) -> list[dict]:
    curves = _curve_rows(report, truth, tracks) if label is None else {}
    primary = {r.feature: r for r in report.drivers}
    rows = []
    for design in report.designs:
        is_primary = design.name == report.design and label is None
        for e in design.estimates:
            true = truth.effects[e.feature]
            row = {"scenario": scenario, "seed": seed, "design": label or design.name, "driver": e.feature,
                   "truth": true, "estimate": e.effect, "bias": e.effect - true, "width": e.ci_high - e.ci_low,
                   "covered": e.ci_low <= true <= e.ci_high,
                   "band_covered": e.simultaneous_ci_low <= true <= e.simultaneous_ci_high,
                   "p_adjusted": e.p_adjusted, "p_value": e.p_value,
                   "weighted_estimate": e.variance_weighted_effect,
                   "weighted_covered": e.variance_weighted_ci_low <= true <= e.variance_weighted_ci_high,
                   "truly_heterogeneous": bool(truth.heterogeneous.get(e.feature, False))}
            if is_primary:
                h = primary[e.feature].heterogeneity
                row["heterogeneity_p"] = h.p_value if h is not None else math.nan
                row.update(curves.get(e.feature, {}))
                row.update(_learner(primary[e.feature]))
            rows.append(row)
        if label:
            break
    return rows


def grid(seeds: int, n_artists: int, tracks_per_artist: int, n_rep: int, only: list[str] | None,
         bare: bool, first_seed: int = 0) -> pd.DataFrame:
    rows = []
    chosen = {k: v for k, v in scenarios().items() if not only or k in only}
    start_all = time.perf_counter()
    for i, (scenario, structure) in enumerate(chosen.items()):
        start = time.perf_counter()
        for seed in range(first_seed, first_seed + seeds):
            tracks, truth = simulate_catalog(n_artists, tracks_per_artist, seed=seed, structure=structure)
            report = estimate_drivers(tracks, seed=seed, n_rep=n_rep, refute=False, by_genre=False)
            rows += _rows(report, truth, tracks, scenario, seed)
            if bare:
                plain = estimate_drivers(tracks, seed=seed, design="within_artist", compare=False, n_rep=n_rep,
                                         refute=False, by_genre=False, track_controls=False)
                rows += _rows(plain, truth, tracks, scenario, seed, label="within_artist, no track controls")
        elapsed = time.perf_counter() - start_all
        eta = elapsed / (i + 1) * (len(chosen) - i - 1)
        print(f"  {scenario}: {seeds} seeds in {time.perf_counter() - start:.0f} s ({i + 1}/{len(chosen)} "
              f"scenarios, ETA {eta / 60:.0f} min, load {os.getloadavg()[0]:.1f})", flush=True)
    return pd.DataFrame(rows)


def default_study(seeds: int, n_artists: int, tracks_per_artist: int, first_seed: int = 0) -> pd.DataFrame:
    rows = []
    for seed in range(first_seed, first_seed + seeds):
        start = time.perf_counter()
        tracks, truth = simulate_catalog(n_artists, tracks_per_artist, seed=seed)
        report = estimate_drivers(tracks, seed=seed)
        curves = _curve_rows(report, truth, tracks)
        for r in report.drivers:
            true = truth.effects[r.feature]
            rows.append({"seed": seed, "driver": r.feature, "truth": true, "estimate": r.effect,
                         "bias": r.effect - true, "width": r.ci_high - r.ci_low,
                         "covered": r.ci_low <= true <= r.ci_high,
                         "band_covered": r.simultaneous_ci_low <= true <= r.simultaneous_ci_high,
                         "weighted_estimate": r.estimate.variance_weighted_effect,
                         "weighted_covered": (r.estimate.variance_weighted_ci_low <= true
                                              <= r.estimate.variance_weighted_ci_high),
                         "heterogeneity_p": r.heterogeneity.p_value if r.heterogeneity else math.nan,
                         "truly_heterogeneous": bool(truth.heterogeneous.get(r.feature, False)),
                         "placebo_rejection_rate": r.placebo_rejection_rate, "placebo_p": r.placebo_p,
                         "seconds": time.perf_counter() - start, **curves.get(r.feature, {}), **_learner(r)})
        print(f"  default seed {seed}: {time.perf_counter() - start:.0f} s, load {os.getloadavg()[0]:.1f}",
              flush=True)
    return pd.DataFrame(rows)


def _primary_only(tracks: pd.DataFrame, seed: int, options: dict):
    """The primary design's estimates as the product's defaults give them (``options`` override), without the
    comparison designs, placebo, genre effects or R-learner, in one worker process: what ``variants`` and
    ``curve-profile`` study."""
    return estimate_drivers(tracks, seed=seed, **{"compare": False, "refute": False, "by_genre": False,
                                                  "track_effects": False, "n_jobs": 1, **options})


def variant_study(seeds: int, n_artists: int, tracks_per_artist: int, first_seed: int, options: dict) \
        -> pd.DataFrame:
    rows = []
    for seed in range(first_seed, first_seed + seeds):
        start = time.perf_counter()
        tracks, truth = simulate_catalog(n_artists, tracks_per_artist, seed=seed)
        report = _primary_only(tracks, seed, options)
        for r in report.drivers:
            true = truth.effects[r.feature]
            se = (r.ci_high - r.ci_low) / (2 * 1.959964)
            rows.append({"seed": seed, "driver": r.feature, "truth": true, "estimate": r.effect,
                         "ci_low": r.ci_low, "ci_high": r.ci_high, "covered": r.ci_low <= true <= r.ci_high,
                         "z": (r.effect - true) / se, "seconds": time.perf_counter() - start,
                         "options": json.dumps(options, sort_keys=True)})
        covered = sum(row["covered"] for row in rows if row["seed"] == seed)
        print(f"  seed {seed}: {time.perf_counter() - start:.0f} s, {covered} of {len(report.drivers)} covered",
              flush=True)
    return pd.DataFrame(rows)


def curve_profile(seeds: int, n_artists: int, tracks_per_artist: int, first_seed: int, options: dict,
                  structure: dict, driver: str) -> pd.DataFrame:
    """One row per (seed, point of ``driver``'s curve): estimate, pointwise CI, truth at that value, whether the
    point lies between the driver's 5th and 95th percentile (where the issue-24 check judges the curve)."""
    rows = []
    for seed in range(first_seed, first_seed + seeds):
        start = time.perf_counter()
        tracks, truth = simulate_catalog(n_artists, tracks_per_artist, seed=seed,
                                         structure=dataclasses.replace(CatalogStructure(), **structure))
        r = _primary_only(tracks, seed, options)[driver]
        curve = truth.curves[driver]
        at = truth_on_curve(r, (curve["values"], curve["effects"]))
        low, high = _percentiles(tracks)[driver]
        for i, (point, true) in enumerate(zip(r.curve, at, strict=True)):
            rows.append({"seed": seed, "point": i, "value": point.value, "estimate": point.effect,
                         "ci_low": point.ci_low, "ci_high": point.ci_high, "truth": true,
                         "judged": bool(low <= point.value <= high and point.value != r.curve_reference),
                         "options": json.dumps(options, sort_keys=True),
                         "structure": json.dumps(structure, sort_keys=True)})
        print(f"  seed {seed}: {time.perf_counter() - start:.0f} s", flush=True)
    return pd.DataFrame(rows)


def summarise_curve_profile(results: pd.DataFrame) -> None:
    frame = results.assign(error=results.estimate - results.truth, half=(results.ci_high - results.ci_low) / 2,
                           covered=(results.ci_low <= results.truth) & (results.truth <= results.ci_high))
    frame["z"] = np.where(frame.half > 0, frame.error / (frame.half / 1.959964), np.nan)
    print(_markdown(frame.groupby("point").agg(value=("value", "mean"), truth=("truth", "mean"),
                                               mean_error=("error", "mean"), sd_error=("error", "std"),
                                               half_width=("half", "mean"), mean_z=("z", "mean"),
                                               coverage=("covered", "mean"), judged=("judged", "mean"))))
    judged = frame[frame.judged]
    share = judged.groupby("seed").covered.mean()
    failing = [int(s) for s in share.index if share[s] < CURVE_TARGET]
    print(f"points judged (5th-95th percentile): pointwise coverage {_rate(judged.covered)}; mean z "
          f"{judged.z.mean():+.2f}, sd {judged.z.std():.2f}; catalogues with >= {CURVE_TARGET:.0%} covered: "
          f"{int((share >= CURVE_TARGET).sum())} of {len(share)} (failing: {failing})")


def heterogeneity_study(seeds: int, n_artists: int, tracks_per_artist: int, n_rep: int,
                        options: dict | None = None) -> pd.DataFrame:
    rows = []
    start = time.perf_counter()
    for seed in range(seeds):
        tracks, truth = simulate_catalog(n_artists, tracks_per_artist, seed=20_000 + seed, structure=homogeneous())
        report = estimate_drivers(tracks, seed=seed, **{"compare": False, "refute": False, "by_genre": False,
                                                        "n_rep": n_rep, **(options or {})})
        for r in report.drivers:
            h = r.heterogeneity
            rows.append({"seed": seed, "driver": r.feature, "truly_heterogeneous": truth.heterogeneous[r.feature],
                         "heterogeneity_p": h.p_value if h is not None else math.nan,
                         "restrictions": h.restrictions if h is not None else 0,
                         "truth": truth.effects[r.feature], "estimate": r.effect,
                         "covered": r.ci_low <= truth.effects[r.feature] <= r.ci_high,
                         # Clipped tracks gain nothing: on observed popularity a non-zero effect differs between
                         # families even here (their shares at the floor differ); a zero effect is zero everywhere.
                         "true_family_spread": _family_spread(truth, r.feature), **_learner(r)})
        if (seed + 1) % 5 == 0:
            elapsed = time.perf_counter() - start
            print(f"  heterogeneity: {seed + 1}/{seeds} seeds, {elapsed:.0f} s, ETA "
                  f"{elapsed / (seed + 1) * (seeds - seed - 1):.0f} s", flush=True)
    return pd.DataFrame(rows)


def _learner(r) -> dict[str, float]:
    """The R-learner check of one driver result (NaN when it was not run)."""
    t = r.track_learner
    return {"learner_p": t.p_value if t else math.nan, "learner_slope": t.slope if t else math.nan,
            "learner_beyond_p": t.beyond_model_p_value if t else math.nan}


def _family_spread(truth: CausalTruth, driver: str) -> float:
    """Largest minus smallest true average effect of the driver among the genre families."""
    values = [effects[driver] for effects in truth.effects_by_family.values() if driver in effects]
    return float(max(values) - min(values)) if values else math.nan


def null_study(seeds: int, n_artists: int, tracks_per_artist: int, n_rep: int,
               options: dict | None = None) -> pd.DataFrame:
    rows = []
    start = time.perf_counter()
    for seed in range(seeds):
        tracks, truth = simulate_catalog(n_artists, tracks_per_artist, seed=10_000 + seed, effects={})
        report = estimate_drivers(tracks, seed=seed, **{"compare": False, "by_genre": False, "n_rep": n_rep,
                                                        **(options or {})})
        for r in report.drivers:
            rows.append({"seed": seed, "driver": r.feature, "truth": truth.effects[r.feature], "estimate": r.effect,
                         "se": r.se, "dof": r.dof, "p_value": r.p_value, "p_adjusted": r.p_adjusted,
                         "simultaneous_ci_low": r.simultaneous_ci_low,
                         "simultaneous_ci_high": r.simultaneous_ci_high,
                         "band_covered": r.simultaneous_ci_low <= truth.effects[r.feature] <= r.simultaneous_ci_high,
                         "heterogeneity_p": r.heterogeneity.p_value if r.heterogeneity else math.nan,
                         "placebo_rejection_rate": r.placebo_rejection_rate, "placebo_p": r.placebo_p,
                         **_learner(r)})
        if (seed + 1) % 10 == 0:
            elapsed = time.perf_counter() - start
            eta = elapsed / (seed + 1) * (seeds - seed - 1)
            print(f"  null: {seed + 1}/{seeds} seeds, {elapsed:.0f} s, ETA {eta:.0f} s", flush=True)
    return pd.DataFrame(rows)


def timing(rows: int, share_spline: bool = False, n_rep: int | None = None) -> dict[str, float]:
    """One run with the defaults (``n_rep=None``: the product's choice by size). ``rep_spread_se``: how far the
    primary design's repetitions disagree, the mean over drivers of their SD in units of the reported SE (what a
    repetition more or less buys)."""
    tracks, _ = simulate_catalog(max(rows // 60, 1), 60, seed=123)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    cpu = time.process_time()
    report = estimate_drivers(tracks, seed=0, share_spline_nuisances=share_spline, n_rep=n_rep)
    seconds = time.perf_counter() - start
    spread = [np.std(d.estimate.rep_effects, ddof=1) / d.estimate.se for d in report.drivers
              if len(d.estimate.rep_effects) > 1]
    return {"rows": len(tracks), "share_spline_nuisances": share_spline, "rows_used": report.rows,
            "drivers": len(report.drivers), "designs": len(report.designs), "n_rep": report.info["n_rep"],
            "seconds": round(seconds, 1), "main_process_cpu_seconds": round(time.process_time() - cpu, 1),
            "rep_spread_se": round(float(np.mean(spread)), 3) if spread else math.nan, "load_before": load,
            "load_after": os.getloadavg()[0]}


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    """A markdown table of ``frame`` (index as the first column)."""
    columns = [str(frame.index.name or "")] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * len(frame.columns)]
    for index, row in frame.iterrows():
        cells = [f"{v:.{digits}g}" if isinstance(v, float | np.floating) else str(v) for v in row]
        lines.append(f"| {index} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _rate(mask: pd.Series) -> str:
    k, n = int(mask.sum()), int(mask.notna().sum())
    low, high = _wilson(k, n)
    return f"{k}/{n} = {k / n:.1%} [{low:.1%}, {high:.1%}]" if n else "-"


def summarise_grid(results: pd.DataFrame) -> None:
    summary = (results.groupby(["scenario", "design"], sort=False)
               .agg(coverage=("covered", "mean"), mean_abs_bias=("bias", lambda b: float(np.mean(np.abs(b)))),
                    mean_ci_width=("width", "mean")).unstack("design"))
    print("\ncoverage of the 95% CI of the average effect:")
    print(_markdown(summary["coverage"]))
    print("\nmean absolute bias of the average effect:")
    print(_markdown(summary["mean_abs_bias"]))
    primary = results[results.design == "within_album"]
    weighted = primary.groupby("scenario", sort=False).agg(
        average_effect=("covered", "mean"), variance_weighted=("weighted_covered", "mean"))
    print("\nprimary design: coverage of the average effect vs the variance-weighted number (same truth):")
    print(_markdown(weighted))
    shown = primary[primary.scenario != HIDDEN]
    print(f"\naverage-effect coverage where the table shows the confounding: {_rate(shown.covered)}; worst scenario "
          f"{shown.groupby('scenario').covered.mean().min():.1%}")
    worst = (primary.groupby(["scenario", "driver"]).covered.mean().groupby(level=0, group_keys=False).nsmallest(2))
    print(worst.to_string())
    if "curve_points" in primary.columns:
        curves = primary.dropna(subset=["curve_points"])
        per = curves.groupby("scenario", sort=False).apply(
            lambda g: pd.Series({"pointwise": g.curve_covered.sum() / g.curve_points.sum(),
                                 "band (whole curve)": g.curve_band_covered.mean(),
                                 "loudness pointwise": (g[g.driver == "loudness"].curve_covered.sum()
                                                        / max(g[g.driver == "loudness"].curve_points.sum(), 1)),
                                 f"loudness runs >= {CURVE_TARGET:.0%}": (g[g.driver == "loudness"].curve_share
                                                                          >= CURVE_TARGET).mean()}),
            include_groups=False)
        print("\ncurve coverage (points between each driver's 5th and 95th percentile):")
        print(_markdown(per))
        by_driver = curves[curves.scenario == "default (all on)"].groupby("driver", sort=False).agg(
            pointwise=("curve_share", "mean"), band=("curve_band_covered", "mean"), max_gap=("curve_max_gap", "mean"))
        print("\ncurve coverage by driver, default catalogue:")
        print(_markdown(by_driver))
    if "heterogeneity_p" in primary.columns:
        tested = primary.dropna(subset=["heterogeneity_p"])
        fired = tested.heterogeneity_p < 0.05
        table = tested.assign(fired=fired).groupby(["scenario", "truly_heterogeneous"], sort=False).fired.mean() \
            .unstack("truly_heterogeneous")
        table.columns = [f"{'varies' if c else 'same for every track'} (structurally)" for c in table.columns]
        print("\nheterogeneity test, share with p < 0.05 (floor: every real effect also varies a little):")
        print(_markdown(table))
        power = tested[(tested.scenario == "default (all on)") & tested.truly_heterogeneous]
        print("power on the default catalogue, by driver:", power.assign(fired=power.heterogeneity_p < 0.05)
              .groupby("driver").fired.mean().to_dict())
        homogeneous_runs = tested[tested.scenario == "homogeneous"]
        if len(homogeneous_runs):
            print(f"size on homogeneous catalogues: {_rate(homogeneous_runs.heterogeneity_p < 0.05)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", choices=["grid", "default", "heterogeneity", "null", "variants", "curve-profile",
                                          "timing"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="grid, default, variants, curve-profile: the first seed (runs split over sessions add "
                             "seeds without repeating one)")
    parser.add_argument("--combine", type=Path, nargs="*", default=None,
                        help="grid: summarise these raw CSVs together instead of running (e.g. two seed ranges)")
    parser.add_argument("--n-artists", type=int, default=None)
    parser.add_argument("--tracks-per-artist", type=int, default=None)
    parser.add_argument("--n-rep", type=int, default=None,
                        help="cross-fitting repetitions (grid default 1; heterogeneity / null default 3; timing: "
                             "the product's choice by size)")
    parser.add_argument("--scenarios", default=None, help="grid: comma-separated scenario names (default: all)")
    parser.add_argument("--bare", action="store_true", help="grid: add within artist without track controls")
    parser.add_argument("--rows", type=int, nargs="*", default=[100_000])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/drivers"))
    parser.add_argument("--options", default="{}",
                        help="variants, curve-profile, null, heterogeneity: estimate_drivers keyword arguments (JSON)")
    parser.add_argument("--structure", default="{}",
                        help="curve-profile: CatalogStructure switches to change, as JSON")
    parser.add_argument("--driver", default="loudness", help="curve-profile: the driver whose curve is profiled")
    parser.add_argument("--tag", default="", help="suffix of the CSV names (keeps reduced runs apart)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    tag = f"_{args.tag}" if args.tag else ""
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {date.today()}",
          flush=True)
    start = time.perf_counter()
    if args.study == "grid":
        only = [s.strip() for s in args.scenarios.split(",")] if args.scenarios else None
        if args.combine:
            results = pd.concat([pd.read_csv(p) for p in args.combine], ignore_index=True)
            results = results.drop_duplicates(subset=["scenario", "seed", "design", "driver"])
            results.to_csv(args.out / f"grid_raw{tag}.csv.gz", index=False)
        else:
            results = grid(args.seeds, args.n_artists or 300, args.tracks_per_artist or 60, args.n_rep or 1, only,
                           args.bare, args.first_seed)
            results.to_csv(args.out / f"grid_raw{tag}.csv.gz", index=False)
        summarise_grid(results)
    elif args.study == "default":
        results = default_study(args.seeds, args.n_artists or 300, args.tracks_per_artist or 60, args.first_seed)
        results.to_csv(args.out / f"default_raw{tag}.csv", index=False)
        per_driver = results.groupby("driver", sort=False).agg(
            truth=("truth", "mean"), coverage=("covered", "mean"), mean_bias=("bias", "mean"),
            ci_width=("width", "mean"), band_coverage=("band_covered", "mean"),
            weighted_coverage=("weighted_covered", "mean"),
            heterogeneity_rejects=("heterogeneity_p", lambda p: float((p < 0.05).mean())),
            learner_rejects=("learner_p", lambda p: float((p < 0.05).mean())),
            learner_slope=("learner_slope", "mean"),
            curve_pointwise=("curve_share", "mean"), placebo_rejection=("placebo_rejection_rate", "mean"))
        print(_markdown(per_driver))
        all_in_band = results.groupby("seed").band_covered.all().mean()
        warnings = (results.groupby("seed").placebo_rejection_rate.max() > PLACEBO_WARNING_RATE).mean()
        per_seed = results.groupby("seed").covered.sum()
        print(f"coverage {_rate(results.covered)} of driver x seed; >= 11 of 12 covered in "
              f"{(per_seed >= 11).mean():.0%} of seeds; simultaneous band covers all truths in {all_in_band:.3f} of "
              f"seeds; placebo warning in {warnings:.3f} of seeds; "
              f"{results.groupby('seed').seconds.max().mean():.0f} s per run")
        loud = results[results.driver == "loudness"]
        if "curve_share" in loud.columns:
            print(f"loudness curve: pointwise coverage {loud.curve_share.mean():.1%}, runs >= {CURVE_TARGET:.0%}: "
                  f"{(loud.curve_share >= CURVE_TARGET).mean():.0%}")
    elif args.study == "heterogeneity":
        results = heterogeneity_study(args.seeds, args.n_artists or 100, args.tracks_per_artist or 30,
                                      args.n_rep or 3, json.loads(args.options))
        results.to_csv(args.out / f"heterogeneity_raw{tag}.csv", index=False)
        tested = results.dropna(subset=["heterogeneity_p"])
        print(f"heterogeneity test on catalogues with homogeneous structural effects (p < 0.05): "
              f"{_rate(tested.heterogeneity_p < 0.05)}; at 1%: {_rate(tested.heterogeneity_p < 0.01)}")
        zero = tested.truth.abs() < 1e-12
        print(f"  drivers whose true effect is 0 for every track (an exact null): "
              f"{_rate(tested.heterogeneity_p[zero] < 0.05)} at 5%, {_rate(tested.heterogeneity_p[zero] < 0.01)} "
              f"at 1%")
        print(f"  drivers with an effect (on observed popularity it differs between families by "
              f"{tested.true_family_spread[~zero].median():.2f} points per unit, median, as clipped tracks gain "
              f"nothing): {_rate(tested.heterogeneity_p[~zero] < 0.05)} at 5%")
        print(_markdown(tested.assign(rejected=tested.heterogeneity_p < 0.05).groupby("driver", sort=False)
                        .agg(rejected=("rejected", "mean"), restrictions=("restrictions", "median"),
                             true_family_spread=("true_family_spread", "median"),
                             average_effect_coverage=("covered", "mean"))))
        learner = results.learner_p.dropna()
        print(f"R-learner slope > 0 at 5% (one-sided, doubled): {_rate(learner < 0.05)} (exact nulls "
              f"{_rate(results.learner_p[results.truth.abs() < 1e-12].dropna() < 0.05)})")
        per_seed = tested.groupby("seed").heterogeneity_p.min()
        print(f"catalogues where any of the drivers' tests fires at 5%: {(per_seed < 0.05).mean():.1%} "
              "(12 tests each, no multiplicity correction)")
    elif args.study == "null":
        results = null_study(args.seeds, args.n_artists or 100, args.tracks_per_artist or 30, args.n_rep or 3,
                             json.loads(args.options))
        results.to_csv(args.out / f"null_raw{tag}.csv", index=False)
        per_seed = results.groupby("seed").agg(
            any_holm=("p_adjusted", lambda p: bool((p < 0.05).any())),
            any_raw=("p_value", lambda p: bool((p < 0.05).any())),
            band_all=("band_covered", "all"),
            placebo_warning=("placebo_rejection_rate", lambda r: bool((r > PLACEBO_WARNING_RATE).any())))
        print(f"family-wise error, Holm: {_rate(per_seed.any_holm)}; without correction: {_rate(per_seed.any_raw)}; "
              f"simultaneous band misses a zero: {_rate(~per_seed.band_all)}; placebo warning: "
              f"{_rate(per_seed.placebo_warning)}")
        print(f"mean placebo rejection rate {results.placebo_rejection_rate.mean():.3f} (nominal 0.05); per driver "
              f"raw p < 0.05: {_rate(results.p_value < 0.05)}; heterogeneity p < 0.05 (no effects, so none varies): "
              f"{_rate(results.heterogeneity_p.dropna() < 0.05)}; R-learner slope > 0 at 5% (one-sided, doubled): "
              f"{_rate(results.learner_p.dropna() < 0.05)}")
    elif args.study == "variants":
        results = variant_study(args.seeds, args.n_artists or 300, args.tracks_per_artist or 60, args.first_seed,
                                json.loads(args.options))
        results.to_csv(args.out / f"variants_raw{tag}.csv", index=False)
        per_seed = results.groupby("seed").covered.sum()
        print(_markdown(results.groupby("driver", sort=False).agg(
            coverage=("covered", "mean"), mean_z=("z", "mean"), sd_z=("z", "std"))))
        print(f"options {args.options}: >= 11 of 12 covered in {(per_seed >= 11).sum()} of {len(per_seed)} "
              f"catalogues; coverage {_rate(results.covered)}; failing seeds "
              f"{[int(s) for s in per_seed.index if per_seed[s] < 11]}")
    elif args.study == "curve-profile":
        results = curve_profile(args.seeds, args.n_artists or 300, args.tracks_per_artist or 60, args.first_seed,
                                json.loads(args.options), json.loads(args.structure), args.driver)
        results.to_csv(args.out / f"curve_profile_raw{tag}.csv", index=False)
        summarise_curve_profile(results)
    else:
        timings = [timing(r, share, args.n_rep) for r in args.rows for share in (False, True)]
        for t in timings:
            print(f"timing: {t}", flush=True)
        pd.DataFrame(timings).to_csv(args.out / f"timing{tag}.csv", index=False)
    print(f"total {time.perf_counter() - start:.0f} s, load now {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
