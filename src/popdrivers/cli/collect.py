"""`popdrivers collect`: crawl artists from the Spotify Web API or Deezer's public API into a dataset folder."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

import typer
from rich.table import Table

from popdrivers.cli._app import app, console, err_console, fail, user_errors
from popdrivers.progress import rich_progress


class Source(StrEnum):
    spotify = "spotify"
    deezer = "deezer"


@app.command()
@user_errors
def collect(
    artists: Path = typer.Option(..., "--artists", exists=True, dir_okay=False,
                                 help="Text file: one artist name, artist id or artist link per line."),
    out: Path = typer.Option(..., "--out", file_okay=False,
                             help="Output folder (track/audio/album/artist CSVs, crawl.json, crawl_log.jsonl). "
                                  "An interrupted crawl in it is resumed."),
    source: Source = typer.Option(Source.spotify, "--source",
                                  help="spotify (Web API, credentials needed) or deezer (public API, none)."),
    market: str = typer.Option("US", "--market", help="Spotify only: two-letter country the catalogue is read for."),
    since: str | None = typer.Option(None, "--since", help="Only releases on or after this date (YYYY-MM-DD)."),
    popularity: Path | None = typer.Option(
        None, "--popularity", exists=True, dir_okay=True,
        help="Dataset (any format `popdrivers inspect` reads) or CSV track_id,popularity / isrc,popularity to take "
             "popularity (and followers) from, joined on track id, ISRC, then artist + title + duration. Use it "
             "when Spotify gives no popularity (Development Mode) or to put Spotify popularity on a Deezer crawl."),
    audio_features: str | None = typer.Option(
        None, "--audio-features", metavar="FILE|reccobeats",
        help="Dataset (any format `popdrivers inspect` reads) to take audio features from, joined on track id, "
             "ISRC, then artist + title; for tracks the API gave none (Spotify 403, Deezer). Or 'reccobeats' "
             "(Spotify crawls): look them up in ReccoBeats by Spotify track id (features_source reccobeats; "
             "POPDRIVERS_RECCOBEATS_API_BASE sets the host)."),
    audio: bool = typer.Option(
        False, "--audio", help="Deezer only: fetch each track's 30-second preview and measure tempo, key, mode, "
                               "loudness, time signature and popdrivers' descriptors from its sound (on this "
                               "machine, in parallel with the crawl; features_source audio:deezer-preview:...). "
                               "Previews are not kept unless --keep-audio DIR."),
    keep_audio: Path | None = typer.Option(
        None, "--keep-audio", file_okay=False, help="With --audio: keep the downloaded previews in this folder "
                                                    "(<track_id>.mp3)."),
    analysis_workers: int | None = typer.Option(
        None, "--analysis-workers", min=1, help="With --audio: processes analysing previews (default: all cores)."),
    refresh: bool = typer.Option(False, "--refresh", help="Forget the checkpoints in --out and fetch everything."),
    api_base: str | None = typer.Option(
        None, "--api-base", help="API base URL (default: POPDRIVERS_SPOTIFY_API_BASE or https://api.spotify.com/v1; "
                                 "for deezer POPDRIVERS_DEEZER_API_BASE or https://api.deezer.com, a host root)."),
    token_url: str | None = typer.Option(None, "--token-url", envvar="POPDRIVERS_SPOTIFY_TOKEN_URL",
                                         help="Spotify token URL (default https://accounts.spotify.com/api/token)."),
) -> None:
    """Collect artists, albums, tracks (and what each source gives of popularity and audio features).

    Spotify: credentials from SPOTIPY_CLIENT_ID / SPOTIPY_CLIENT_SECRET (environment or ./.env); a Development
    Mode app gets no popularity since Feb/Mar 2026 (see docs/collect.md). Deezer: no credentials; popularity is
    derived from Deezer's rank. Rerun the same command after an interruption to resume.
    """
    def notify(message: str) -> None:
        err_console.print(f"[yellow]note:[/] {message}", highlight=False, soft_wrap=True)

    features_file, features_service = _audio_features_option(audio_features, source)
    if (audio or keep_audio is not None or analysis_workers is not None) and source is not Source.deezer:
        raise fail("--audio analyses Deezer's previews (Spotify gives none to new apps): add --source deezer")
    if keep_audio is not None and not audio:
        raise fail("--keep-audio keeps the previews that --audio downloads: add --audio")

    try:
        with rich_progress("artists", console=err_console) as progress:
            if source is Source.deezer:
                from popdrivers.sources.deezer import collect as run_deezer

                summary = run_deezer(artists, out, since=since, popularity_file=popularity,
                                     audio_features_file=features_file, refresh=refresh, api_base=api_base,
                                     progress=progress, notify=notify, audio=audio, keep_audio=keep_audio,
                                     analysis_workers=analysis_workers)
            else:
                from popdrivers.sources.spotify import collect as run_spotify

                summary = run_spotify(artists, out, market=market, since=since, popularity_file=popularity,
                                      audio_features_file=features_file, refresh=refresh, api_base=api_base,
                                      token_url=token_url, progress=progress, notify=notify,
                                      audio_features_service=features_service)
    except KeyboardInterrupt:
        err_console.print(f"interrupted: progress is saved in {out}; rerun the same command to resume",
                          highlight=False, soft_wrap=True)
        raise typer.Exit(code=130) from None
    access = {"extended_quota": "Extended Quota (full access)", "development_mode": "Development Mode",
              "public": "public API", "unknown": "unknown (no reply seen)"}.get(summary.access_level,
                                                                               summary.access_level)
    table = Table(title=f"{summary.source.capitalize()} crawl → {summary.out}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("", justify="right")
    rows = [
        ("access level", access),
        ("artists requested", f"{summary.artists_requested:,}"),
        ("artists resolved", f"{summary.artists_resolved:,}"),
        ("ambiguous (not picked)", f"{len(summary.artists_ambiguous):,}"),
        ("not found", f"{len(summary.artists_not_found):,}"),
        ("albums and singles", f"{summary.albums:,}"),
        ("tracks", f"{summary.tracks:,}"),
        ("tracks with popularity", f"{summary.tracks_with_popularity:,}"),
        ("popularity", {"unavailable": "UNAVAILABLE (empty)", "spotify": "Spotify",
                        "deezer_rank": "derived from Deezer rank", "file": "from --popularity file"}
         .get(summary.popularity, summary.popularity)),
        ("tracks with audio features", f"{summary.tracks_with_audio_features:,}"),
        ("  of which from --audio-features", f"{summary.audio_features_from_file:,}"),
        ("audio-features endpoint", summary.audio_features),
        ("requests / retries / rate-limit waits", f"{summary.requests:,} / {summary.retries:,} / "
                                                  f"{summary.rate_limit_waits:,}"),
        ("replies skipped (see crawl_log.jsonl)", f"{summary.skipped_replies:,}"),
        ("time", f"{summary.elapsed_seconds:.1f} s"),
    ]
    previews = summary.previews
    if previews is not None:
        rows.insert(-3, ("previews analysed / missing / failed",
                         f"{previews['analysed']:,} / {previews['missing']:,} / {previews['failed']:,}"
                         + (f" ({previews['pending']:,} not done: rerun)" if previews["pending"] else "")))
        if previews.get("analysis_seconds_per_preview") is not None:
            rows.insert(-3, ("  analysis time per preview (queue included)",
                             f"{previews['analysis_seconds_per_preview']:.1f} s"))
    service = summary.audio_features_service
    if service is not None:  # beside the other sources of audio features, and the requests
        at = next(i for i, (name, _) in enumerate(rows) if name.startswith("  of which from --audio-features"))
        rows.insert(at + 1, ("  of which from ReccoBeats (found / asked / unknown)",
                             f"{service['found']:,} / {service['asked']:,} / {service['unknown']:,}"))
        at = next(i for i, (name, _) in enumerate(rows) if name.startswith("requests / retries"))
        rows.insert(at + 1, ("ReccoBeats requests / rate-limit waits",
                             f"{service['requests']:,} / {service['rate_limit_waits']:,}"))
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    for note in summary.notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True)
    if summary.tracks and not summary.tracks_with_popularity:
        console.print(f"warning: no track in {summary.out} has popularity: it can be used for prediction "
                      "(`popdrivers predict`), not for `train` or `drivers`. Add --popularity FILE to the same "
                      "command, or crawl with --source deezer.", highlight=False, soft_wrap=True)


def _audio_features_option(value: str | None, source: Source) -> tuple[Path | None, str | None]:
    """``--audio-features``: (a dataset file, None) or (None, a service name); exit 2 when neither fits."""
    if value is None:
        return None, None
    if value.strip().lower() == "reccobeats" and not Path(value).exists():
        if source is Source.deezer:
            raise fail("--audio-features reccobeats looks tracks up by Spotify track id and a Deezer crawl has none: "
                       "measure the features from Deezer's previews with --audio, or crawl with --source spotify")
        return None, "reccobeats"
    path = Path(value)
    if not path.exists():
        raise fail(f"--audio-features {value}: no such file or folder (give a dataset file, or 'reccobeats')")
    return path, None
