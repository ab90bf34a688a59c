"""`popdrivers inspect PATH`: what a dataset holds once read into the canonical table, and what was lost."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from popdrivers.cli._app import app, console, user_errors
from popdrivers.sources.files import FORMATS, column_ranges, read_tracks_with_report


def _number(value: float | int | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:,.0f}" if abs(value) >= 1000 or float(value).is_integer() else f"{value:.4g}"


@app.command()
@user_errors
def inspect(
    path: Path = typer.Argument(..., help="A CSV/Parquet file or a relational crawl folder."),
    format: str = typer.Option("auto", "--format", "-f",
                               help=f"Layout to read it as: auto or one of {', '.join(FORMATS)}."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
) -> None:
    """Show the detected format, rows kept and dropped (with reasons), columns, value ranges and notes."""
    tracks, report = read_tracks_with_report(path, format)
    ranges = column_ranges(tracks)
    if as_json:
        typer.echo(json.dumps({**report.to_dict(), "ranges": ranges}, indent=2))
        return
    console.print(f"{report.source}  format: {report.format} ({FORMATS[report.format].description})",
                  highlight=False, markup=False)
    console.print(f"rows read {report.rows_read:,}  kept {report.rows_kept:,}  dropped or merged "
                  f"{report.rows_dropped:,}", highlight=False, markup=False)
    if not report.dropped:
        console.print("  - nothing dropped or merged", highlight=False, markup=False)
    for record in report.dropped:
        examples = f" (e.g. {', '.join(record.examples)})" if record.examples else ""
        console.print(f"  - {record.rows:,} {record.reason}{examples}", highlight=False, markup=False)
    console.print(f"canonical columns ({len(report.canonical_columns)}): {', '.join(report.canonical_columns)}",
                  highlight=False, markup=False)
    console.print(f"extra columns ({len(report.extra_columns)}): {', '.join(report.extra_columns) or '-'}",
                  highlight=False, markup=False)
    table = Table("column", "min", "median", "max", "missing", title="value ranges", title_justify="left")
    for column, stats in ranges.items():
        table.add_row(Text(column), *(_number(stats[k]) for k in ("min", "median", "max")), f"{stats['missing']:,}")
    console.print(table)
    if report.notes:
        console.print("notes:", highlight=False, markup=False)
        for note in report.notes:
            console.print(f"  - {note}", highlight=False, markup=False)
