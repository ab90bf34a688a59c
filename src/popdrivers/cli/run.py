"""`popdrivers run`: the main job of `make run`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from popdrivers.artifacts import write_json_atomic
from popdrivers.cli._app import app, console, user_errors
from popdrivers.sources.files import write_tracks
from popdrivers.sources.simulate import simulate_catalog


@app.command()
@user_errors
def run(
    artifacts: Path = typer.Option(Path("artifacts/default"), "--artifacts", help="Artifact folder to use or build."),
) -> None:
    """Build the default artifacts from the simulated catalogue if missing, then summarise the catalogue."""
    import pandas as pd

    data = artifacts / "tracks.parquet"
    if not data.exists():
        console.print("[yellow]No artifacts yet: simulating the default catalogue (SIMULATED data).[/]")
        tracks, truth = simulate_catalog()
        write_tracks(tracks, data)
        write_json_atomic(artifacts / "truth.json", truth.to_dict())
    tracks = pd.read_parquet(data)
    table = Table(title=f"Catalogue in {data} (simulated)")
    for column in ("column", "mean", "sd", "min", "max"):
        table.add_column(column)
    for column in tracks.select_dtypes("number").columns:
        s = tracks[column]
        table.add_row(column, f"{s.mean():.3g}", f"{s.std():.3g}", f"{s.min():.3g}", f"{s.max():.3g}")
    console.print(f"{len(tracks):,} tracks, {tracks['artist_id'].nunique():,} artists")
    console.print(table)
