"""`popdrivers predict`: predicted popularity with an 80% interval for every track of a dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from popdrivers.cli._app import app, console, read_data, user_errors
from popdrivers.errors import InputError


@app.command("predict")
@user_errors
def predict_command(
    model_dir: Path = typer.Option(..., "--model", help="Model folder written by `popdrivers train`."),
    data: Path = typer.Option(..., "--data", help="Tracks to score, in any layout popdrivers reads (CSV, Parquet, "
                              ".xlsx or a crawl folder), with or without a popularity column."),
    fmt: str = typer.Option("auto", "--format", help="Layout of --data (auto detects it)."),
    out: Path = typer.Option(..., "--out", help="CSV to write: track_id (track_name, artist_name, popularity when "
                             "the data has them), prediction, lower, upper, model (full, or audio for rows "
                             "whose features were measured from audio)."),
) -> None:
    """Predict popularity (0-100) with its prediction interval; input is validated like training data."""
    from popdrivers.artifacts import write_text_atomic
    from popdrivers.model import load_audio_model, load_model, scored_table

    if out.suffix.lower() != ".csv":
        raise InputError(f"--out {out}: use a .csv file name")
    model = load_model(model_dir)
    tracks, report = read_data(data, fmt, require_popularity=False)
    predictions = scored_table(model, tracks, load_audio_model(model_dir))
    write_text_atomic(out, predictions.to_csv(index=False))
    console.print(f"wrote {len(predictions):,} predictions with {model.interval_level:.0%} intervals to {out} "
                  f"({report.format} layout; {report.summary()})", highlight=False, markup=False)
