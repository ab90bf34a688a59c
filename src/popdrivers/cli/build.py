"""`popdrivers build`: the artifact set the app explores (data, model, causal drivers, provenance)."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from popdrivers.cli._app import app, console, user_errors
from popdrivers.pipeline import DEFAULT_BUDGET_SECONDS


def build_with_progress(out: Path, *, data: Path | None = None, format: str = "auto",
                        budget_seconds: float = DEFAULT_BUDGET_SECONDS, seed: int = 0, n_artists: int = 300,
                        tracks_per_artist: int = 60) -> Path:
    """Build artifacts with a progress bar (plain lines when not in a terminal), saying whether data is simulated."""
    from popdrivers.pipeline import build_artifacts
    from popdrivers.progress import rich_progress

    if data is None:
        console.print(f"Building artifacts in [bold]{out}[/] from the [bold yellow]SIMULATED[/] catalogue "
                      "(known causal truth; use --data FILE for a real dataset).")
    else:
        console.print(f"Building artifacts in [bold]{out}[/] from {data}.")
    start = time.perf_counter()
    with rich_progress("build") as progress:
        build_artifacts(out, data=data, format=format, budget_seconds=budget_seconds, seed=seed, n_artists=n_artists,
                        tracks_per_artist=tracks_per_artist, progress=progress)
    console.print(f"Artifacts ready in {out} ({time.perf_counter() - start:.0f} s).")
    return out


@app.command()
@user_errors
def build(
    out: Path = typer.Option(..., "--out", help="Artifact folder to write (replaced atomically)."),
    data: Path | None = typer.Option(None, "--data", help="Dataset file or folder; default: simulated catalogue."),
    format: str = typer.Option("auto", "--format", help="Format of --data (auto detects it)."),
    budget_seconds: float = typer.Option(DEFAULT_BUDGET_SECONDS, "--budget-seconds", min=0,
                                         help="About how long training the model may take (search, evaluation "
                                              "and final fit; 0: no search)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulation, model and folds."),
    n_artists: int = typer.Option(300, "--n-artists", min=2, help="Artists of the simulated catalogue."),
    tracks_per_artist: int = typer.Option(60, "--tracks-per-artist", min=2,
                                          help="Tracks per artist of the simulated catalogue."),
) -> None:
    """Build the app's artifacts: canonical data, trained model, causal drivers, manifest."""
    build_with_progress(out, data=data, format=format, budget_seconds=budget_seconds, seed=seed,
                        n_artists=n_artists, tracks_per_artist=tracks_per_artist)
