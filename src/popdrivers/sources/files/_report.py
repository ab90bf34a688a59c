"""What reading did: every source row kept, merged or dropped (with the file line), every column used or not."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from popdrivers.schema import CANONICAL_COLUMNS, DropRecord
from popdrivers.sources.tabular import TableFile

MAX_EXAMPLES = 5


@dataclass(frozen=True)
class UnusedColumn:
    """A column of the source that does not reach the table as a column popdrivers uses, and why."""

    column: str
    reason: str
    file: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        return f"{where}{self.column}: {self.reason}"

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "column": self.column, "reason": self.reason}


@dataclass(frozen=True)
class ReadReport:
    """What reading a dataset did: every source row is kept, merged as a duplicate, or dropped with a reason,
    and every source column is used (under which name) or listed as unused with the reason.

    Attributes
    ----------
    source
        The file or folder read.
    format
        The layout it was read as (a key of :data:`FORMATS`).
    rows_read
        Rows in the source (for a relational folder: rows of its track table), broken rows included.
    rows_kept
        Rows of the canonical table returned.
    dropped
        Rows not kept as separate rows, with the reason: broken or cut rows, missing id or popularity,
        duplicates merged.
    notes
        How the file was read (encoding, delimiter, sheet, renamed columns) and quirks handled (artist fallback,
        missing audio rows, unknown markers, popularity conflicts...).
    columns
        Columns of the returned table, canonical first, then extras.
    counts
        Named counts behind the notes (e.g. ``artist_fallback_to_album``), for programs and tests.
    unused_columns
        Every source column not used, with the reason (not part of the layout, an identical copy, kept as an
        extra that nothing uses, no header...).
    column_sources
        (source column as written, column it was read into) for every column read, file-qualified for the
        tables of a relational folder.
    """

    source: str
    format: str
    rows_read: int
    rows_kept: int
    dropped: tuple[DropRecord, ...] = ()
    notes: tuple[str, ...] = ()
    columns: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    popularity_conflicts: int = 0
    unused_columns: tuple[UnusedColumn, ...] = ()
    column_sources: tuple[tuple[str, str], ...] = ()

    @property
    def rows_dropped(self) -> int:
        """Source rows not kept as rows of their own (dropped or merged)."""
        return sum(d.rows for d in self.dropped)

    @property
    def canonical_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c in CANONICAL_COLUMNS)

    @property
    def extra_columns(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if c not in CANONICAL_COLUMNS)

    def summary(self) -> str:
        """One line: rows kept of rows read, and why the others were not kept (for error messages)."""
        text = f"{self.rows_kept:,} of {self.rows_read:,} source rows kept as tracks"
        if self.dropped:
            text += ": " + "; ".join(f"{d.rows:,} {d.reason}" for d in self.dropped)
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        return {
            "source": self.source,
            "format": self.format,
            "rows_read": self.rows_read,
            "rows_kept": self.rows_kept,
            "rows_dropped": self.rows_dropped,
            "dropped": [{"reason": d.reason, "rows": d.rows, "examples": list(d.examples)} for d in self.dropped],
            "notes": list(self.notes),
            "columns": {
                "canonical": list(self.canonical_columns),
                "extra": list(self.extra_columns),
                "sources": [{"source": s, "column": c} for s, c in self.column_sources],
                "unused": [u.to_dict() for u in self.unused_columns],
            },
            "counts": dict(self.counts),
            "popularity_conflicts": self.popularity_conflicts,
        }



def bad_row_records(table: TableFile) -> list[DropRecord]:
    """Rows of the file that were not read (broken or cut), grouped by reason."""
    by_reason: dict[str, list[int]] = {}
    for row in table.bad_rows:
        by_reason.setdefault(row.reason, []).append(row.line)
    return [DropRecord(reason, len(lines), tuple(table.row_label(n) for n in lines[:MAX_EXAMPLES]))
            for reason, lines in by_reason.items()]


def line_examples(mask: pd.Series, table: TableFile) -> tuple[str, ...]:
    # Where the row is in the source file (the frame's index holds its line), which is where a user looks.
    return tuple(table.row_label(int(n)) for n in mask.index[mask.to_numpy(dtype=bool)][:MAX_EXAMPLES])

