"""`popdrivers predict`: predicted popularity with an 80% interval for every track of a dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from popdrivers.cli._app import app, console, read_data, user_errors
from popdrivers.errors import InputError


def report_path(out: Path) -> Path:
    """Where ``predict`` writes what the intervals can promise for the scored table: beside ``--out``."""
    return out.with_name(f"{out.stem}.report.json")


@app.command("predict")
@user_errors
def predict_command(
    model_dir: Path = typer.Option(..., "--model", help="Model folder written by `popdrivers train`."),
    data: Path = typer.Option(..., "--data", help="Tracks to score, in any layout popdrivers reads (CSV, Parquet, "
                              ".xlsx or a crawl folder), with or without a popularity column. A feature the file "
                              "lacks is predicted as unknown and its interval widened (said in the output)."),
    fmt: str = typer.Option("auto", "--format", help="Layout of --data (auto detects it)."),
    out: Path = typer.Option(..., "--out", help="CSV to write: track_id (track_name, artist_name, popularity when "
                             "the data has them), prediction, lower, upper, model (full, or audio for rows "
                             "whose features were measured from audio), missing_features when some are. "
                             "OUT.report.json beside it says what the intervals assume and where the data differs."),
) -> None:
    """Predict popularity (0-100) with its prediction interval; input is validated like training data."""
    from popdrivers.artifacts import write_json_atomic, write_text_atomic
    from popdrivers.model import load_audio_model, load_model, score_tracks

    if out.suffix.lower() != ".csv":
        raise InputError(f"--out {out}: use a .csv file name")
    model = load_model(model_dir)
    tracks, report = read_data(data, fmt, require_popularity=False)
    predictions, scoring = score_tracks(model, tracks, load_audio_model(model_dir))
    write_text_atomic(out, predictions.to_csv(index=False))
    sidecar = report_path(out)
    write_json_atomic(sidecar, {"data": str(data), "model": str(model_dir), **scoring.to_dict()})
    console.print(f"wrote {len(predictions):,} predictions with {model.interval_level:.0%} intervals to {out} "
                  f"({report.format} layout; {report.summary()})", highlight=False, markup=False)
    for line in scoring.lines():
        console.print(f"- {line}", highlight=False, markup=False, soft_wrap=True)
    console.print(f"what the intervals assume and where this table differs: {sidecar}", highlight=False,
                  markup=False)
