"""`popdrivers simulate`: write a simulated catalogue and its causal truth."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import typer

from popdrivers.cli._app import app, console, user_errors
from popdrivers.errors import InputError

# The switches of popdrivers.sources.simulate.CatalogStructure (a test keeps the two equal), named here so that
# the CLI starts without importing numpy and pandas.
SWITCHES = ("unequal_artists", "albums", "singles", "track_position", "versions", "featured_artists",
            "clean_duplicates", "deluxe_editions", "correlated_features", "heterogeneous_effects",
            "saturating_effects", "popularity_floor", "hidden_confounder")


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
    without: str = typer.Option("", "--without",
                                help="Comma-separated structures to switch off (docs/simulation.md): "
                                     + ", ".join(s for s in SWITCHES if s != "hidden_confounder")
                                     + "; or 'all' for a plain catalogue."),
    hidden_confounder: bool = typer.Option(False, "--hidden-confounder",
                                           help="Add a track-level confounder the table does not show."),
    measured: bool = typer.Option(False, "--measured",
                                  help="Write the catalogue as if its features had been measured from the audio by "
                                       "popdrivers: popdrivers' descriptors in place of Spotify's 0-1 features, "
                                       "features_source saying so, and the truth given on the descriptors."),
) -> None:
    """Simulate a catalogue whose true causal effects are known (the embedded default)."""
    from popdrivers.artifacts import write_json_atomic
    from popdrivers.sources.files import write_tracks
    from popdrivers.sources.simulate import CatalogStructure, simulate_catalog

    if out.suffix.lower() not in {".parquet", ".pq", ".csv"}:
        raise InputError(f"--out {out}: use a .parquet or .csv file name")
    names = [w.strip().replace("-", "_") for w in without.split(",") if w.strip()]
    unknown = [n for n in names if n not in (*SWITCHES, "all")]
    if unknown:
        raise InputError(f"--without: unknown structure(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(SWITCHES)} or all")
    structure = CatalogStructure.plain() if "all" in names else dataclasses.replace(
        CatalogStructure(), **dict.fromkeys(names, False))
    structure = dataclasses.replace(structure, hidden_confounder=hidden_confounder)
    start = time.perf_counter()
    tracks, truth = simulate_catalog(n_artists=n_artists, tracks_per_artist=tracks_per_artist, seed=seed,
                                     structure=structure, measured=measured)
    write_tracks(tracks, out)
    write_json_atomic(truth_path_for(out), truth.to_dict())
    console.print(f"wrote {len(tracks):,} simulated tracks of {n_artists:,} artists"
                  f"{' (features as measured from the audio)' if measured else ''} to {out} "
                  f"(truth: {truth_path_for(out)}) in {time.perf_counter() - start:.1f} s")
