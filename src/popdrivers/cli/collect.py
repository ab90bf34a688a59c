"""`popdrivers collect`: crawl artists from the Spotify Web API into a dataset folder (resumable)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from popdrivers.cli._app import app, console, err_console, user_errors
from popdrivers.progress import rich_progress


@app.command()
@user_errors
def collect(
    artists: Path = typer.Option(..., "--artists", exists=True, dir_okay=False,
                                 help="Text file: one artist name, Spotify artist id or artist link per line."),
    out: Path = typer.Option(..., "--out", file_okay=False,
                             help="Output folder (track/audio/album/artist CSVs, crawl.json, crawl_log.jsonl). "
                                  "An interrupted crawl in it is resumed."),
    market: str = typer.Option("US", "--market", help="Two-letter country code the catalogue is read for."),
    since: str | None = typer.Option(None, "--since", help="Only releases on or after this date (YYYY-MM-DD)."),
    audio_features: Path | None = typer.Option(
        None, "--audio-features", exists=True, dir_okay=True,
        help="Dataset file/folder (any format `popdrivers inspect` reads) to take audio features from, joined on "
             "track id; use it when Spotify answers 403 to audio-features."),
    refresh: bool = typer.Option(False, "--refresh", help="Forget the checkpoints in --out and fetch everything."),
    api_base: str | None = typer.Option(None, "--api-base", envvar="POPDRIVERS_SPOTIFY_API_BASE",
                                        help="Web API base URL (default https://api.spotify.com/v1)."),
    token_url: str | None = typer.Option(None, "--token-url", envvar="POPDRIVERS_SPOTIFY_TOKEN_URL",
                                         help="Token URL (default https://accounts.spotify.com/api/token)."),
) -> None:
    """Collect artists, albums, tracks and audio features from the Spotify Web API.

    Credentials come from SPOTIPY_CLIENT_ID / SPOTIPY_CLIENT_SECRET (environment or ./.env). Rerun the same
    command after an interruption to resume; the output is readable by `popdrivers train` and `drivers`.
    """
    from popdrivers.sources.spotify import collect as run_collect

    def notify(message: str) -> None:
        err_console.print(f"[yellow]note:[/] {message}", highlight=False, soft_wrap=True)

    try:
        with rich_progress("artists", console=err_console) as progress:
            summary = run_collect(artists, out, market=market, since=since, audio_features_file=audio_features,
                                  refresh=refresh, api_base=api_base, token_url=token_url, progress=progress,
                                  notify=notify)
    except KeyboardInterrupt:
        err_console.print(f"interrupted: progress is saved in {out}; rerun the same command to resume",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(code=130) from None
    table = Table(title=f"Spotify crawl → {summary.out}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    rows = [
        ("artists requested", f"{summary.artists_requested:,}"),
        ("artists resolved", f"{summary.artists_resolved:,}"),
        ("ambiguous (not picked)", f"{len(summary.artists_ambiguous):,}"),
        ("not found", f"{len(summary.artists_not_found):,}"),
        ("albums and singles", f"{summary.albums:,}"),
        ("tracks", f"{summary.tracks:,}"),
        ("tracks with audio features", f"{summary.tracks_with_audio_features:,}"),
        ("  of which from --audio-features", f"{summary.audio_features_from_file:,}"),
        ("audio-features endpoint", summary.audio_features),
        ("requests / retries / 429 waits", f"{summary.requests:,} / {summary.retries:,} / "
                                           f"{summary.rate_limit_waits:,}"),
        ("replies skipped (see crawl_log.jsonl)", f"{summary.skipped_replies:,}"),
        ("time", f"{summary.elapsed_seconds:.1f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for note in summary.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
