"""`popdrivers simulate`: write a simulated catalogue and its causal truth."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from popdrivers.cli._app import app, console, user_errors
from popdrivers.errors import InputError


def truth_path_for(out: Path) -> Path:
    """Sidecar JSON holding the causal truth of a simulated catalogue file."""
    return out.with_name(out.stem + ".truth.json")


@app.command()
@user_errors
def simulate(
    out: Path = typer.Option(..., "--out", help="Output file: .parquet or .csv (truth goes to <name>.truth.json)."),
    n_artists: int = typer.Option(300, "--n-artists", min=1, help="Number of artists."),
    tracks_per_artist: int = typer.Option(60, "--tracks-per-artist", min=1, help="Tracks per artist."),
    seed: int = typer.Option(0, "--seed", help="Random seed: same seed, same catalogue."),
) -> None:
    """Simulate a catalogue whose true causal effects are known (the embedded default)."""
    from popdrivers.artifacts import write_json_atomic
    from popdrivers.sources.files import write_tracks
    from popdrivers.sources.simulate import simulate_catalog

    if out.suffix.lower() not in {".parquet", ".pq", ".csv"}:
        raise InputError(f"--out {out}: use a .parquet or .csv file name")
    start = time.perf_counter()
    tracks, truth = simulate_catalog(n_artists=n_artists, tracks_per_artist=tracks_per_artist, seed=seed)
    write_tracks(tracks, out)
    write_json_atomic(truth_path_for(out), truth.to_dict())
    console.print(f"wrote {len(tracks):,} simulated tracks of {n_artists:,} artists to {out} "
                  f"(truth: {truth_path_for(out)}) in {time.perf_counter() - start:.1f} s")
