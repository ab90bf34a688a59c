"""`popdrivers inspect PATH`: what a dataset holds once read into the canonical table, and what was lost."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table
from rich.text import Text

from popdrivers.cli._app import app, console, user_errors
from popdrivers.errors import PopdriversError
from popdrivers.format import number

if TYPE_CHECKING:
    from popdrivers.sources.files import ReadReport

# The layouts popdrivers.sources.files reads (its FORMATS; a test keeps the two equal). Named here so that the
# CLI starts without importing pandas.
FORMAT_NAMES = ("canonical", "relational", "tidytuesday", "genre-tracks", "kaggle-114k", "kaggle-600k")


def _number(value: float | int | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return number(value, digits=4)


def _read(path: Path, format: str) -> tuple[Any, ReadReport, str | None]:
    """Read as training data; a file that cannot train (no popularity) is read as prediction input instead.

    Returns the table, its report and why it cannot train (None when it can).
    """
    from popdrivers.sources.files import read_tracks_with_report

    try:
        tracks, report = read_tracks_with_report(path, format)
        return tracks, report, None
    except PopdriversError as error:
        try:
            tracks, report = read_tracks_with_report(path, format, require_popularity=False)
        except PopdriversError:
            raise error from None
        if "popularity" in tracks.columns and tracks["popularity"].notna().any():
            raise error from None  # popularity is there: the training error is about something else
        reason = ("it has no popularity column" if "popularity" not in tracks.columns
                  else "no row has a popularity value")
        return tracks, report, reason


def _print(text: str) -> None:
    console.print(text, highlight=False, markup=False)


def _print_structure(structure: dict[str, Any]) -> None:
    versions = ", ".join(f"{name} {100 * v['share']:.1f}%" for name, v in structure["versions"].items())
    _print(f"versions named in titles: {versions or '-'}; featured artist {100 * structure['featured_share']:.1f}%")
    examples = "; e.g. " + ", ".join(structure["repeated_song_examples"]) if structure["repeated_song_examples"] else ""
    _print(f"songs released more than once: {structure['song_groups_with_several_releases']:,} "
           f"({structure['tracks_in_repeated_songs']:,} tracks){examples}")
    _print(f"albums with two or more tracks (the within-album comparison): "
           f"{structure['albums_with_two_or_more_tracks']:,} ({structure['tracks_in_those_albums']:,} tracks); "
           f"track positions {'known' if structure['track_position_known'] else 'unknown'}")


def _print_report(report: ReadReport, ranges: dict[str, Any], not_trainable: str | None,
                  structure: dict[str, Any]) -> None:
    from popdrivers.sources.files import FORMATS

    _print(f"{report.source}  format: {report.format} ({FORMATS[report.format].description})")
    if not_trainable:
        _print(f"no popularity to train on ({not_trainable}): usable as input to `popdrivers predict` (new tracks "
               "to score), not to train")
    _print(f"rows read {report.rows_read:,}  kept {report.rows_kept:,}  dropped or merged {report.rows_dropped:,}")
    if not report.dropped:
        _print("  - nothing dropped or merged")
    for record in report.dropped:
        examples = f" (e.g. {', '.join(record.examples)})" if record.examples else ""
        _print(f"  - {record.rows:,} {record.reason}{examples}")
    _print(f"canonical columns ({len(report.canonical_columns)}): {', '.join(report.canonical_columns)}")
    _print(f"extra columns ({len(report.extra_columns)}): {', '.join(report.extra_columns) or '-'}")
    renamed = [f"{source} -> {column}" for source, column in report.column_sources
               if source.rsplit(": ", 1)[-1] != column]
    if renamed:
        _print(f"columns read under another name ({len(renamed)}): {', '.join(renamed)}")
    _print(f"source columns not used ({len(report.unused_columns)}):" if report.unused_columns
           else "source columns not used: none")
    for unused in report.unused_columns:
        _print(f"  - {unused}")
    table = Table("column", "min", "median", "max", "missing", title="value ranges", title_justify="left")
    for column, stats in ranges.items():
        table.add_row(Text(column), *(_number(stats[k]) for k in ("min", "median", "max")), f"{stats['missing']:,}")
    console.print(table)
    _print_structure(structure)
    if report.notes:
        _print("notes:")
        for note in report.notes:
            _print(f"  - {note}")


def _clean(value: Any) -> Any:
    """JSON without NaN or infinities (not JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


@app.command()
def inspect(
    path: Path = typer.Argument(..., help="A CSV (any common encoding or delimiter), Parquet or .xlsx file, or a "
                                "relational crawl folder."),
    format: str = typer.Option("auto", "--format", "-f",
                               help=f"Layout to read it as: auto or one of {', '.join(FORMAT_NAMES)}."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables (on failure: "
                                 "{\"error\": ...} and exit code 2)."),
    out: Path | None = typer.Option(None, "--out", help="Also write the canonical table read from PATH to this "
                                    ".parquet or .csv file (e.g. to convert a CSV to Parquet for --cluster)."),
) -> None:
    """Show the detected format, rows kept and dropped (with reasons), every source column used or not (with the
    reason), value ranges and notes."""
    if as_json:
        _inspect_json(path, format, out)
        return
    _inspect_text(path, format, out)


@user_errors
def _inspect_text(path: Path, format: str, out: Path | None) -> None:
    from popdrivers.features import release_structure_summary
    from popdrivers.sources.files import column_ranges, write_tracks

    tracks, report, not_trainable = _read(path, format)
    _print_report(report, column_ranges(tracks), not_trainable, release_structure_summary(tracks))
    if out is not None:
        _print(f"wrote {len(tracks):,} tracks to {write_tracks(tracks, out)}")


def _inspect_json(path: Path, format: str, out: Path | None) -> None:
    from popdrivers.features import release_structure_summary
    from popdrivers.sources.files import column_ranges, write_tracks

    try:
        tracks, report, not_trainable = _read(path, format)
        if out is not None:
            write_tracks(tracks, out)
    except (PopdriversError, ValueError, OSError) as exc:
        message = f"{exc.filename}: {exc.strerror or exc}" if isinstance(exc, OSError) and exc.filename else str(exc)
        typer.echo(json.dumps({"error": message, "source": str(path)}, indent=2))
        raise typer.Exit(code=2) from None
    data = {**report.to_dict(), "trainable": not_trainable is None, "not_trainable_because": not_trainable,
            "ranges": column_ranges(tracks),
            "release_structure": release_structure_summary(tracks)}
    typer.echo(json.dumps(_clean(data), indent=2, allow_nan=False))
