"""`popdrivers train`: tune, evaluate and save the popularity model (a thin call into popdrivers.model)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from popdrivers.cli._app import app, console, read_data, user_errors


def metrics_table(metrics: dict[str, Any], title: str = "Popularity model: held-out error") -> Table:
    """Rich table of ``metrics.json`` (the model card's table): one row per split and method, RMSE / MAE / R²."""
    from popdrivers.model import METHOD_LABELS, metrics_frame, split_label

    table = Table(title=title)
    for column, justify in (("split", "left"), ("method", "left"), ("RMSE", "right"), ("MAE", "right"),
                            ("R²", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    frame = metrics_frame(metrics)
    for split, rows in frame.groupby("split", sort=False):
        for row in rows.itertuples(index=False):
            if row.note:
                table.add_row(str(split), f"[dim]{row.note}[/]", "", "", "")
                continue
            style = "bold" if row.method == METHOD_LABELS["model"] else ""
            table.add_row(str(split), row.method, f"{row.rmse:.2f}", f"{row.mae:.2f}", f"{row.r2:.3f}", style=style)
        table.add_section()
    interval = metrics.get("interval", {})
    if interval.get("coverage") is not None:
        table.caption = (f"{interval['level']:.0%} interval: {interval['coverage']:.1%} of held-out tracks "
                         f"covered ({split_label(interval.get('measured_on'))} split), mean width "
                         f"{interval.get('mean_width', float('nan')):.1f} points")
    return table


DEFAULT_BUDGET_SECONDS = 50.0


@app.command("train")
@user_errors
def train_command(
    data: Path = typer.Option(..., "--data", help="Dataset: CSV/Parquet file or relational crawl folder."),
    fmt: str = typer.Option("auto", "--format", help="Layout of --data (auto detects it)."),
    out: Path = typer.Option(..., "--out", help="Model folder to write (replaced atomically)."),
    budget_seconds: float = typer.Option(
        DEFAULT_BUDGET_SECONDS, "--budget-seconds", min=0,
        help="About how long the whole command may take: reading, evaluation and the final fit are estimated and "
             "the hyperparameter search gets the rest (0: no search, default hyperparameters)."),
    n_trials: int | None = typer.Option(None, "--n-trials", min=0, help="Run exactly this many search trials "
                                        "instead of filling the budget: the same seed then gives the same model."),
    reference: bool = typer.Option(False, "--reference", help="Also evaluate the original project's random "
                                   "forest (slow: 700 deep trees per fold; not counted in the budget)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the search, folds and model."),
    n_jobs: int = typer.Option(2, "--n-jobs", min=1, help="Fits run side by side (and threads of the forest)."),
    evaluate: bool = typer.Option(True, "--evaluate/--no-evaluate", help="Evaluate on random tracks, unseen artists "
                                  "and newest releases (big tables: on a sample of artists, said in the output)."),
    cluster: str | None = typer.Option(None, "--cluster", help="Train on Dask instead: a scheduler address "
                                       "(tcp://host:8786) or local:N for N local workers. --data must be Parquet "
                                       "every worker can read; needs pip install 'popdrivers[dask]'."),
) -> None:
    """Train the popularity model, evaluate it honestly, and write model + metrics + manifest to --out."""
    start = time.perf_counter()
    if cluster is not None:
        _train_on_cluster(data, out, cluster, seed)
        return
    from popdrivers.artifacts import sha256_path
    from popdrivers.model import EVALUATION_ROWS, budget_summary, feature_label, save_model, train
    from popdrivers.progress import rich_progress
    from popdrivers.schema import popularity_source

    tracks, report = read_data(data, fmt)
    console.print(f"read {len(tracks):,} tracks from {data} ({report.format} layout; "
                  f"{report.rows_dropped:,} source rows dropped or merged)")
    with rich_progress("training") as progress:
        result = train(tracks, budget_seconds=budget_seconds, n_trials=n_trials, seed=seed, reference=reference,
                       progress=progress, params={"n_jobs": n_jobs}, reference_params={"n_jobs": n_jobs},
                       evaluate_model=evaluate, clock_start=start)
    save_model(result.model, out, metrics=result.metrics, data_source=str(data), data_sha256=sha256_path(data),
               rows_used=len(tracks), rows_dropped=report.rows_dropped, audio_model=result.audio_model)
    if result.metrics.get("splits"):
        console.print(metrics_table(result.metrics))
        if result.metrics.get("budget_note"):
            console.print(f"[bold]{result.metrics['budget_note']}[/] (--budget-seconds {budget_seconds:g}; a larger "
                          "budget evaluates on every fold)", highlight=False)
        if result.metrics.get("sample") and not result.metrics.get("budget_note"):
            console.print(f"[bold]{result.metrics['sample']['note']}[/] (tables above "
                          f"{EVALUATION_ROWS:,} tracks are evaluated on a sample of whole artists)")
    else:
        console.print("evaluation skipped (--no-evaluate): metrics.json records that no split was evaluated")
    console.print(result.info["interval"])
    source = popularity_source(tracks)
    if source is not None:
        console.print(f"popularity source: {source} (recorded in {out / 'manifest.json'}: predictions are on its "
                      "scale, and `predict` says when a table's popularity comes from elsewhere)", highlight=False,
                      markup=False)
    # Features by their readable names (never internal column names such as explicit_int).
    console.print(f"features used ({len(result.info['features'])}): "
                  f"{', '.join(feature_label(f) for f in result.info['features'])}", highlight=False, markup=False)
    if result.info["features_unavailable"]:
        console.print("not available: " + "; ".join(f"{feature_label(k)} ({v})" for k, v in
                                                      result.info["features_unavailable"].items()),
                      highlight=False, markup=False)
    audio = result.info["audio_model"]
    if "skipped" in audio:
        console.print(f"no audio model: {audio['skipped']}", highlight=False, markup=False)
    else:
        console.print("audio model (predicts from a song: popdrivers analyze, predict --audio): "
                      f"{', '.join(feature_label(f) for f in audio['features'])}; {audio['interval']}",
                      highlight=False, markup=False)
    tuning = result.info["tuning"]
    if tuning.get("note"):
        console.print(tuning["note"])
    elif n_trials is None and not tuning.get("skipped"):
        console.print(f"the search stopped when the budget was spent; `--n-trials {tuning['trials']}` repeats it "
                      "exactly")
    elif n_trials is None:
        console.print(f"the search stopped when the budget was spent ({tuning['trials']} trials; "
                      f"{tuning['skipped']} candidates skipped as too slow for the time left); `--n-trials N` gives "
                      "a reproducible model")
    console.print(f"{budget_summary(result.info)}; written in {time.perf_counter() - start:.1f} s. "
                  f"Model written to {out}", highlight=False)


def _train_on_cluster(data: Path, out: Path, cluster: str, seed: int) -> None:
    """`--cluster`: default hyperparameters (no tuning or evaluation on the cluster), same model folder."""
    from popdrivers.model import quiet_lightgbm, require_dask, train_and_save_on_cluster
    from popdrivers.progress import rich_progress

    require_dask()
    quiet_lightgbm()
    with rich_progress(f"training on {cluster}") as progress:
        model = train_and_save_on_cluster(data, out, cluster, seed=seed, progress=progress)
    info = model.cluster_info_
    console.print(f"trained on {info['rows']:,} tracks with {info['workers']} Dask worker(s) in {info['seconds']} s "
                  f"(default hyperparameters; evaluation not run on the cluster). Model written to {out}")
