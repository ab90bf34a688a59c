"""Dataset files: writing the canonical table, and reading it back from every layout popdrivers knows.

The canonical table is written as Parquet (types kept) or CSV (list columns as JSON lists, dates ISO).

Readers map a public layout onto the canonical columns and hand the result to :func:`schema.check_tracks`,
which owns every rule about values. What a reader adds is the layout knowledge (column names, joins, quirks)
and a :class:`ReadReport` that accounts for every source row (kept, merged as a duplicate, or dropped with a
reason) and every source column (read under which name, or unused and why). How a file is opened (CSV in
any common encoding and delimiter, Parquet, Excel; broken and cut rows) is :mod:`popdrivers.sources.tabular`'s
job. Only the columns a layout needs are read, so a million-row public file does not carry its URLs and
playlist names through memory.

One concept per module:

===============  ===============================================================================================
``_layouts``     :class:`FormatSpec` and :data:`FORMATS`: the layouts, their columns, the relational tables
``_detection``   which layout a file or folder is in (:func:`detect_format`), near misses named as such
``_columns``     column planning: source column -> table column (case, spacing, aliases, repeated headers)
``_readers``     readers of the one-file layouts (canonical, tidytuesday, genre-tracks, Kaggle 114k / 600k)
``_relational``  the relational crawl folder (four tables joined)
``_report``      :class:`ReadReport`: every row kept, merged or dropped, every column used or not, and why
``_read``        :func:`read_tracks` / :func:`read_tracks_with_report`: detection, reader, validation, report
``_writing``     :func:`write_tracks`
``_ranges``      :func:`column_ranges`
===============  ===============================================================================================

Other modules import from ``popdrivers.sources.files`` only.
"""

from popdrivers.sources.files._detection import detect_format
from popdrivers.sources.files._layouts import (
    CRAWL_FILE,
    FORMATS,
    LIST_COLUMNS,
    RELATIONAL_REQUIRED,
    RELATIONAL_TABLES,
    FormatSpec,
)
from popdrivers.sources.files._ranges import column_ranges
from popdrivers.sources.files._read import read_tracks, read_tracks_with_report
from popdrivers.sources.files._report import ReadReport, UnusedColumn
from popdrivers.sources.files._writing import write_tracks

__all__ = [
    "CRAWL_FILE", "FORMATS", "LIST_COLUMNS", "RELATIONAL_REQUIRED", "RELATIONAL_TABLES", "FormatSpec", "ReadReport",
    "UnusedColumn", "column_ranges", "detect_format", "read_tracks", "read_tracks_with_report", "write_tracks",
]
