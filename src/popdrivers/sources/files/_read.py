"""Reading a dataset in any known layout into the validated canonical table, with its :class:`ReadReport`."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from popdrivers.errors import FormatError
from popdrivers.schema import CANONICAL_COLUMNS, EXTRA_COLUMNS, Problem, SchemaError, check_tracks
from popdrivers.sources.files._detection import resolve, unrecognised
from popdrivers.sources.files._layouts import FORMATS
from popdrivers.sources.files._readers import read_canonical, read_flat
from popdrivers.sources.files._relational import read_relational
from popdrivers.sources.files._report import ReadReport, UnusedColumn
from popdrivers.sources.tabular import forget_opened, open_table


def read_tracks_with_report(
    path: str | os.PathLike[str], format: str = "auto", *, require_popularity: bool = True
) -> tuple[pd.DataFrame, ReadReport]:
    """Read a dataset in any known layout into the canonical table, with a report of what happened.

    Parameters
    ----------
    path
        A CSV (any common encoding and delimiter), Parquet or Excel (.xlsx) file, or a relational crawl
        folder (a folder holding exactly one dataset file also works).
    format
        ``"auto"`` (detect from columns/files) or a key of :data:`FORMATS` to force a layout.
    require_popularity
        False for prediction input, where ``popularity`` may be absent or empty.

    Returns
    -------
    tracks, report
        The validated canonical table (one row per track) and a :class:`ReadReport` accounting for every
        source row and column.

    Raises
    ------
    FormatError
        Unknown layout, a relational folder missing a table, a file that is not CSV/Parquet/Excel, two
        columns that give the same canonical column different values.
    SchemaError
        Values that break the canonical contract, all listed at once with column, examples and fix.
    """
    try:
        return _read_with_report(Path(path), format, require_popularity)
    finally:
        forget_opened()


def _read_with_report(path: Path, format: str, require_popularity: bool) -> tuple[pd.DataFrame, ReadReport]:
    if format != "auto" and format not in FORMATS:
        raise FormatError(f"unknown format '{format}'. Fix: use 'auto' or one of {', '.join(FORMATS)}")
    resolved, detected = resolve(path)
    layout = detected if format == "auto" else format
    if layout is None:
        raise unrecognised(resolved)
    if (layout == "relational") != resolved.is_dir():
        raise FormatError(f"{path}: the {layout} format needs "
                          f"{'a folder of tables' if layout == 'relational' else 'a file'}. Fix: pass "
                          f"{'the crawl folder' if layout == 'relational' else 'the dataset file'}, or let the "
                          "layout be detected (--format auto)")
    if layout == "relational":
        raw = read_relational(resolved, require_popularity)
    elif layout == "canonical":
        raw = read_canonical(open_table(resolved), require_popularity)
    else:
        raw = read_flat(open_table(resolved), layout, require_popularity)
    if raw.frame.empty and raw.rows_read > 0:
        reasons = "; ".join(f"{d.rows} {d.reason}" for d in raw.dropped)
        raise SchemaError([Problem("*", f"no usable rows: all {raw.rows_read} were dropped ({reasons})",
                                   fix="every track needs a track id" + (" and a popularity" if require_popularity
                                                                         else ""))], str(resolved))
    table, validation = check_tracks(raw.frame, require_popularity=require_popularity, source=str(resolved),
                                     row_label=raw.row_label)
    unused = list(raw.unused)
    listed = {u.column for u in unused if not u.file}
    for column in table.columns:
        if column not in CANONICAL_COLUMNS and column not in EXTRA_COLUMNS and column not in listed:
            unused.append(UnusedColumn(str(column), "kept in the table as an extra column; no model or driver "
                                                    "uses it"))
    report = ReadReport(
        source=str(resolved),
        format=layout,
        rows_read=raw.rows_read,
        rows_kept=len(table),
        dropped=tuple(raw.dropped) + validation.dropped,
        notes=tuple(raw.notes) + validation.notes,
        columns=tuple(str(c) for c in table.columns),
        counts=dict(raw.counts),
        popularity_conflicts=validation.popularity_conflicts,
        unused_columns=tuple(unused),
        column_sources=tuple(raw.sources),
    )
    return table, report


def read_tracks(
    path: str | os.PathLike[str], format: str = "auto", *, require_popularity: bool = True
) -> pd.DataFrame:
    """Read a dataset in any known layout into the validated canonical table (one row per track).

    Layouts (``format=``): ``canonical``, ``relational``, ``tidytuesday``, ``genre-tracks``, ``kaggle-114k``,
    ``kaggle-600k``; ``"auto"`` detects them. See :func:`read_tracks_with_report` for what was dropped and why.

    Examples
    --------
    >>> import popdrivers
    >>> tracks = popdrivers.read_tracks("../shared/data/catalog-2022")  # doctest: +SKIP
    """
    return read_tracks_with_report(path, format, require_popularity=require_popularity)[0]

