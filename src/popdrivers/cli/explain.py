"""`popdrivers explain`: SHAP tables and plots of what the popularity model learned (association)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from popdrivers.cli._app import app, console, read_data, user_errors
from popdrivers.errors import InputError


@app.command("explain")
@user_errors
def explain_command(
    model_dir: Path = typer.Option(..., "--model", help="Model folder written by `popdrivers train`."),
    data: Path = typer.Option(..., "--data", help="Tracks to explain: CSV/Parquet file or crawl folder."),
    fmt: str = typer.Option("auto", "--format", help="Layout of --data (auto detects it)."),
    track_id: str | None = typer.Option(None, "--track-id", help="Also explain this one track (waterfall)."),
    out: Path = typer.Option(..., "--out", help="Folder to write tables and plots to (replaced atomically)."),
    max_rows: int = typer.Option(20_000, "--max-rows", min=1, help="Tracks sampled for global importance."),
) -> None:
    """Write global SHAP importance (CSV, PNG, HTML) and, with --track-id, one track's waterfall."""
    from popdrivers import explain
    from popdrivers.artifacts import atomic_directory
    from popdrivers.model import load_model

    model = load_model(model_dir)
    tracks, _ = read_data(data, fmt, require_popularity=False)
    row = None
    if track_id is not None:
        row = tracks[tracks["track_id"] == track_id]
        if row.empty:
            raise InputError(f"--track-id {track_id}: no such track in {data}")
    sample = tracks.sample(n=max_rows, random_state=0) if len(tracks) > max_rows else tracks
    contrib = explain.contributions(model, sample)
    importance = explain.global_importance(model, sample, max_rows=None)
    with atomic_directory(out) as folder:
        contrib.to_csv(folder / "contributions.csv")
        importance.to_csv(folder / "importance.csv", index=False)
        explain.save_figure(explain.importance_figure_matplotlib(importance), folder / "importance.png")
        explain.save_figure(explain.importance_figure(importance), folder / "importance.html")
        if row is not None:
            detail = explain.track_explanation(model, row)
            explain.save_figure(explain.waterfall_figure_matplotlib(detail), folder / "track_waterfall.png")
            explain.save_figure(explain.waterfall_figure(detail), folder / "track_waterfall.html")
            detail.contributions.rename("contribution").to_frame().assign(
                value=[explain.format_value(f, detail.values.get(f)) for f in detail.contributions.index]
            ).to_csv(folder / "track_contributions.csv", index_label="feature")

    table = Table(title="What the model learned (association, not causal effect)")
    table.add_column("feature")
    table.add_column("mean |SHAP| (points)", justify="right")
    for item in importance.itertuples():
        table.add_row(item.label, f"{item.mean_abs_shap:.2f}")
    console.print(table)
    if row is not None:
        detail_table = Table(title=f"Track {track_id}: predicted {detail.prediction:.1f} "
                                   f"(base value {detail.base_value:.1f})")
        detail_table.add_column("feature")
        detail_table.add_column("value")
        detail_table.add_column("contribution", justify="right")
        for feature in detail.contributions.abs().sort_values(ascending=False).index:
            detail_table.add_row(explain.feature_label(feature), explain.format_value(feature,
                                 detail.values.get(feature)), f"{detail.contributions[feature]:+.2f}")
        console.print(detail_table)
    console.print(explain.ASSOCIATION_NOTE)
    console.print(f"wrote tables and plots to {out}")
