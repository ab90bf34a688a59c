"""Benchmark: the default popularity model against the original project's random forest, side by side.

For catalog-2022 and playlist-songs-2020, on the same rows and the same held-out folds (one 80/20 fold of
a shuffled K-fold over tracks, and one of GroupKFold by artist), for each of

* ``model``: :class:`popdrivers.model.PopularityModel` with its defaults (what ``popdrivers train
  --budget-seconds 0`` ships: LightGBM, artist track record, conformal intervals; fit time includes the
  interval calibration fits);
* ``reference_rf``: the original configuration (key one-hot + StandardScaler + RandomForestRegressor with
  700 trees, max_depth 30, min_samples_leaf 3, min_samples_split 5) on the same features minus the track
  record, saved with joblib (pickle) as the original did,

it measures RMSE/MAE on both splits, fit seconds, model bytes on disk, load seconds, one-track predict +
explanation latency (TreeSHAP; median of 30 tracks), 10k-track predict latency, and the peak resident
memory of the process doing all of this. Each (dataset, method) runs in its own subprocess so peak memory
is its own. Prints one table plus the ratios against the reference, and writes the results as JSON.

It also times what a user runs (``--sections train,budget``): ``popdrivers train --data D --out M`` with its
defaults on each dataset (wall time and peak memory of the whole command, its three-split metrics and how the
budget was spent; target: 60 s on 2 cores), and ``--budget-seconds N`` for a few N (the whole command should take
about N seconds). Every table prints its targets and the machine's load average.

Usage::

    .venv/bin/python benchmarks/bench_model.py [--sections compare,train,budget] [--n-jobs 1] [--trees 700]
                                               [--datasets catalog-2022] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("POPDRIVERS_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATASETS = {"catalog-2022": SHARED / "catalog-2022",
            "playlist-songs-2020": SHARED / "playlist-songs-2020" / "spotify_songs.csv"}
METHODS = ("model", "reference_rf")
BIN = Path(sys.executable).parent
TARGETS = {"rmse_ratio": 0.95, "fit_speedup": 30, "size_ratio": 50, "one_track_ms": 20.0, "train_cli_s": 60.0}
SPLIT_LABELS = {"random": "random tracks", "by_artist": "unseen artists", "by_time": "newest 20%"}


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _scores(y, pred) -> dict[str, float]:
    import numpy as np

    err = np.asarray(y, float) - np.asarray(pred, float)
    return {"rmse": float(np.sqrt(np.mean(err ** 2))), "mae": float(np.mean(np.abs(err)))}


def worker(dataset: str, method: str, n_jobs: int, trees: int) -> dict[str, object]:
    """Measure one method on one dataset (runs in a fresh process)."""
    import numpy as np

    from popdrivers import explain
    from popdrivers.model import (
        PopularityModel,
        artist_grouped_folds,
        load_model,
        random_folds,
        reference_features,
        reference_rf,
        save_model,
    )
    from popdrivers.sources.files import read_tracks

    tracks = read_tracks(DATASETS[dataset])
    rss_data_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    y = tracks["popularity"].to_numpy(dtype="float64")
    splits = {"random": random_folds(len(tracks), 5, seed=0)[0],
              "by_artist": artist_grouped_folds(tracks, 5, seed=0)[0]}
    result: dict[str, object] = {"dataset": dataset, "method": method, "rows": len(tracks)}
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="bench_model_"))
    try:
        for split, (train_idx, test_idx) in splits.items():
            train, test = tracks.iloc[train_idx], tracks.iloc[test_idx]
            start = time.perf_counter()
            if method == "model":
                fitted = PopularityModel(n_jobs=n_jobs).fit(train)
                fit_seconds = time.perf_counter() - start
                pred = fitted.predict(test)
                if split == "random":
                    # The point model alone (no interval calibration), like for like with the forest.
                    start = time.perf_counter()
                    PopularityModel(n_jobs=n_jobs, calibration_folds=0).fit(train)
                    result["fit_point_seconds"] = time.perf_counter() - start
            else:
                # The forest's inputs are the model's features without the track record, built the same way.
                features_model = PopularityModel(n_jobs=n_jobs, n_estimators=1, calibration_folds=0,
                                                 artist_record=False).fit(train)
                train_x = reference_features(features_model.training_design(train))
                prep_seconds = time.perf_counter() - start
                start = time.perf_counter()
                fitted = reference_rf(train_x, n_estimators=trees, n_jobs=n_jobs).fit(train_x, y[train_idx])
                fit_seconds = time.perf_counter() - start + prep_seconds
                pred = fitted.predict(reference_features(_rf_inputs(features_model, test)))
            result[split] = _scores(y[test_idx], pred)
            if split != "random":
                continue
            result["fit_seconds"] = fit_seconds
            result.setdefault("fit_point_seconds", fit_seconds)
            rows = test.iloc[rng.choice(len(test), 30, replace=False)]
            big = test.iloc[rng.choice(len(test), 10_000, replace=True)].assign(
                track_id=[f"bench-{i}" for i in range(10_000)])
            if method == "model":
                out = save_model(fitted, tmp / "model")
                result["model_bytes"] = _folder_bytes(out)
                start = time.perf_counter()
                loaded = load_model(out)
                result["load_seconds"] = time.perf_counter() - start
                explain.track_explanation(loaded, rows.iloc[[0]])  # warm-up (first call pays imports)
                times, cpu = [], []
                for i in range(len(rows)):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    explain.track_explanation(loaded, rows.iloc[[i]])
                    times.append(time.perf_counter() - start)
                    cpu.append(time.process_time() - start_cpu)
                result["one_track_ms"] = statistics.median(times) * 1000
                # CPU time of this process: what the call costs when the machine is not shared.
                result["one_track_cpu_ms"] = statistics.median(cpu) * 1000
                # The same from a table that needs full validation (e.g. parsed from text).
                text_row = rows.iloc[[1]].astype({"danceability": str, "loudness": str})
                times = []
                for _ in range(10):
                    start = time.perf_counter()
                    explain.track_explanation(loaded, text_row)
                    times.append(time.perf_counter() - start)
                result["one_track_validated_ms"] = statistics.median(times) * 1000
                start = time.perf_counter()
                loaded.predict(big)
                result["predict_10k_seconds"] = time.perf_counter() - start
            else:
                import joblib
                import shap

                path = tmp / "forest.joblib"
                joblib.dump(fitted, path)
                result["model_bytes"] = _folder_bytes(path)
                start = time.perf_counter()
                loaded = joblib.load(path)
                result["load_seconds"] = time.perf_counter() - start
                start = time.perf_counter()
                explainer = shap.TreeExplainer(loaded.named_steps["forest"])
                result["explainer_setup_seconds"] = time.perf_counter() - start
                prep = loaded.named_steps["prep"]
                inputs = reference_features(_rf_inputs(features_model, rows))
                times, cpu = [], []
                for i in range(min(len(rows), 5)):  # each one is slow: 700 deep trees
                    start, start_cpu = time.perf_counter(), time.process_time()
                    one = inputs.iloc[[i]]
                    loaded.predict(one)
                    explainer.shap_values(prep.transform(one), check_additivity=False)
                    times.append(time.perf_counter() - start)
                    cpu.append(time.process_time() - start_cpu)
                result["one_track_ms"] = statistics.median(times) * 1000
                result["one_track_cpu_ms"] = statistics.median(cpu) * 1000
                big_x = reference_features(_rf_inputs(features_model, big))
                start = time.perf_counter()
                loaded.predict(big_x)
                result["predict_10k_seconds"] = time.perf_counter() - start
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["rss_after_reading_mb"] = rss_data_mb
    return result


def _rf_inputs(features_model, tracks):
    from popdrivers.model import baseline_inputs

    frame = baseline_inputs(features_model.design_frame(tracks))
    return frame.reset_index(drop=True)


def run_worker_subprocess(dataset: str, method: str, n_jobs: int, trees: int) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--worker", dataset, method, "--n-jobs", str(n_jobs), "--trees", str(trees)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{dataset}/{method} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(results: list[dict[str, object]], meta: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Popularity model vs original RF ({meta['date']}, {meta['cpus']} cores, "
                        f"n_jobs={meta['n_jobs']}, forest {meta['trees']} trees)")
    columns = ["dataset", "method", "RMSE random", "MAE random", "RMSE by artist", "MAE by artist",
               "fit s (point)", "fit s (+intervals)", "model MB", "load s", "1 track predict+explain ms (cpu)",
               "10k predict s", "peak RSS MB"]
    for column in columns:
        table.add_column(column, justify="left" if column in {"dataset", "method"} else "right")
    for r in results:
        table.add_row(r["dataset"], r["method"], f"{r['random']['rmse']:.2f}", f"{r['random']['mae']:.2f}",
                      f"{r['by_artist']['rmse']:.2f}", f"{r['by_artist']['mae']:.2f}",
                      f"{r['fit_point_seconds']:.1f}", f"{r['fit_seconds']:.1f}" if r["method"] == "model" else "-",
                      f"{r['model_bytes'] / 1e6:.2f}", f"{r['load_seconds']:.3f}",
                      f"{r['one_track_ms']:.1f} ({r['one_track_cpu_ms']:.1f})",
                      f"{r['predict_10k_seconds']:.3f}", f"{r['peak_rss_mb']:.0f}")
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        pair = {r["method"]: r for r in results if r["dataset"] == dataset}
        if set(pair) != set(METHODS):
            continue
        m, ref = pair["model"], pair["reference_rf"]

        def faster(key: str) -> str:
            return f"{ref[key] / m[key]:.0f}x less"  # noqa: B023 - used at once

        table.add_row(
            dataset, "model vs reference",
            f"{m['random']['rmse'] / ref['random']['rmse']:.3f}x", f"{m['random']['mae'] / ref['random']['mae']:.3f}x",
            f"{m['by_artist']['rmse'] / ref['by_artist']['rmse']:.3f}x",
            f"{m['by_artist']['mae'] / ref['by_artist']['mae']:.3f}x",
            f"{ref['fit_point_seconds'] / m['fit_point_seconds']:.0f}x faster",
            f"{ref['fit_point_seconds'] / m['fit_seconds']:.0f}x faster", faster("model_bytes"),
            faster("load_seconds"), faster("one_track_ms"), faster("predict_10k_seconds"),
            f"{ref['peak_rss_mb'] / m['peak_rss_mb']:.1f}x less", style="bold")
    Console(width=250).print(table)


def train_cli(dataset: str, extra: list[str]) -> dict[str, object]:
    """``popdrivers train`` on a dataset as a user runs it; wall time, peak memory, metrics, budget split."""
    out = Path(tempfile.mkdtemp(prefix="bench_train_")) / "model"
    load = os.getloadavg()[0]
    cmd = [str(BIN / "popdrivers"), "train", "--data", str(DATASETS[dataset]), "--out", str(out), *extra]
    done = subprocess.run([sys.executable, __file__, "--peak", "--", *cmd], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    metrics = json.loads((out / "metrics.json").read_text())
    shutil.rmtree(out.parent, ignore_errors=True)
    budget_line = next((line for line in measured["output"].splitlines() if "; total" in line), "")
    budget_line = budget_line.split("; written in")[0]
    return {"dataset": dataset, "args": " ".join(extra) or "(defaults)", "wall_s": measured["wall_s"],
            "peak_rss_mb": measured["peak_rss_mb"], "load_before": round(load, 1), "metrics": metrics,
            "budget_line": " ".join(budget_line.split())}


def peak_wrapper(cmd: list[str]) -> None:
    """Run ``cmd``; print its wall time, peak RSS (MB) and output as one JSON line (fresh RUSAGE_CHILDREN)."""
    start = time.perf_counter()
    # Wide lines: the command's summary line stays one line in the captured output.
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "COLUMNS": "250"})
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    print(json.dumps({"wall_s": round(wall, 2), "output": done.stdout + done.stderr,
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}))


def print_train_table(runs: list[dict[str, object]], title: str) -> None:
    print(f"\n{title} (target: the default command <= {TARGETS['train_cli_s']:.0f} s wall on 2 cores)\n")
    print("| dataset | command | wall s | peak RSS MB | load before | model RMSE random / unseen artists / newest "
          "| interval coverage (unseen artists) | how the time went |")
    print("|---|---|---:|---:|---:|---|---:|---|")
    for run in runs:
        splits = run["metrics"].get("splits", {})
        rmse = " / ".join(f"{splits[s]['model']['rmse']:.2f}" if splits.get(s, {}).get("available") else "-"
                          for s in SPLIT_LABELS)
        coverage = run["metrics"].get("interval", {}).get("coverage")
        print(f"| {run['dataset']} | `popdrivers train {run['args']}` | {run['wall_s']:.1f} | "
              f"{run['peak_rss_mb']:.0f} | {run['load_before']} | {rmse} | "
              f"{'-' if coverage is None else f'{100 * coverage:.1f}%'} | {run['budget_line']} |")


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--peak":
        peak_wrapper(sys.argv[3:] if sys.argv[2] == "--" else sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", nargs=2, metavar=("DATASET", "METHOD"), help=argparse.SUPPRESS)
    parser.add_argument("--sections", default="compare,train,budget",
                        help="compare (model vs original forest), train (the CLI with its defaults), budget")
    parser.add_argument("--n-jobs", type=int, default=1, help="threads for both methods (default 1: fair on a "
                        "shared machine)")
    parser.add_argument("--trees", type=int, default=700, help="reference forest size (700 = the original)")
    parser.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated dataset names")
    parser.add_argument("--budgets", default="20,50,90", help="budgets of the budget section (seconds)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], args.worker[1], args.n_jobs, args.trees)))
        return
    sections = set(args.sections.split(","))
    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpus": os.cpu_count(), "machine": platform.platform(),
            "python": platform.python_version(), "n_jobs": args.n_jobs, "trees": args.trees,
            "load_average": os.getloadavg()}
    print(f"{meta['date']}, {meta['cpus']} cores, {meta['machine']}, Python {meta['python']}, load average "
          f"{meta['load_average'][0]:.1f} / {meta['load_average'][1]:.1f} / {meta['load_average'][2]:.1f}")
    results: dict[str, object] = {"meta": meta}
    datasets = args.datasets.split(",")
    if "compare" in sections:
        compared = []
        for dataset in datasets:
            for method in METHODS:
                print(f"measuring {method} on {dataset} ...", file=sys.stderr, flush=True)
                start = time.perf_counter()
                compared.append(run_worker_subprocess(dataset, method, args.n_jobs, args.trees))
                print(f"  done in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        print_table(compared, meta)
        print(f"targets: RMSE <= {TARGETS['rmse_ratio']}x the forest on both splits; point fit >= "
              f"{TARGETS['fit_speedup']}x faster; model >= {TARGETS['size_ratio']}x smaller; one-track predict + "
              f"explain < {TARGETS['one_track_ms']:.0f} ms (wall, idle machine)")
        results["compare"] = compared
    if "train" in sections:
        runs = [train_cli(dataset, []) for dataset in datasets]
        print_train_table(runs, "`popdrivers train` with its defaults")
        results["train"] = runs
    if "budget" in sections:
        runs = [train_cli(datasets[0], ["--budget-seconds", budget]) for budget in args.budgets.split(",")]
        print_train_table(runs, f"`--budget-seconds N` on {datasets[0]}: the whole command takes about N seconds")
        results["budget"] = runs
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
