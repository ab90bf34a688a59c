"""`popdrivers evaluate`: honest held-out error of the popularity model on a dataset."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from popdrivers.cli._app import app, console, read_data, user_errors

# The library's defaults (popdrivers.model.DEFAULT_FOLDS and EVALUATION_ROWS; a test keeps them equal), written
# here so that the CLI starts without importing pandas.
DEFAULT_FOLDS = 5
EVALUATION_ROWS = 50_000


@app.command("evaluate")
@user_errors
def evaluate_command(
    data: Path = typer.Option(..., "--data", help="Dataset: CSV/Parquet file or relational crawl folder."),
    fmt: str = typer.Option("auto", "--format", help="Layout of --data (auto detects it)."),
    reference: bool = typer.Option(False, "--reference", help="Also evaluate the original project's random "
                                   "forest (slow)."),
    as_json: bool = typer.Option(False, "--json", help="Print metrics.json to stdout instead of a table."),
    n_splits: int = typer.Option(DEFAULT_FOLDS, "--n-splits", min=2, help="Mixed folds behind the random-tracks and "
                                 "unseen-artists splits (fewer when there are fewer artists)."),
    max_rows: int = typer.Option(EVALUATION_ROWS, "--max-rows", min=100, help="Above this many tracks, evaluate on a "
                                 "fixed sample of whole artists of about this size."),
    seed: int = typer.Option(0, "--seed", help="Seed of the folds and models."),
    n_jobs: int = typer.Option(2, "--n-jobs", min=1, help="Fits run side by side (and threads of the forest)."),
) -> None:
    """Evaluate with default hyperparameters on random tracks, unseen artists and newest releases, against
    baselines."""
    from popdrivers.cli.train import metrics_table
    from popdrivers.model import evaluate
    from popdrivers.progress import rich_progress

    tracks, _ = read_data(data, fmt)
    with rich_progress("evaluating") as progress:
        metrics = evaluate(tracks, reference=reference, n_splits=n_splits, seed=seed, progress=progress,
                           params={"n_jobs": n_jobs}, reference_params={"n_jobs": n_jobs}, max_rows=max_rows)
    if as_json:
        typer.echo(json.dumps(metrics, indent=2))
    else:
        console.print(metrics_table(metrics, title=f"Popularity model on {data}: held-out error"))
        if metrics.get("sample"):
            console.print(metrics["sample"]["note"])
