"""Detection: which layout a file or folder is in, from its columns or its files; near misses said as such."""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from pathlib import Path

from popdrivers.errors import FormatError
from popdrivers.schema import AUDIO_FEATURES, CANONICAL_COLUMNS, EXTRA_COLUMNS, KNOWN_ALIASES, alias_target
from popdrivers.sources.files._columns import header_key
from popdrivers.sources.files._layouts import DETECTION_ORDER, FORMATS, RELATIONAL_REQUIRED, RELATIONAL_TABLES
from popdrivers.sources.tabular import EXCEL_SUFFIXES, PARQUET_SUFFIXES, open_table

_TEXT_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz")


def relational_tables(folder: Path) -> dict[str, Path | None]:
    found: dict[str, Path | None] = {}
    for table in RELATIONAL_TABLES:
        found[table] = next((folder / f"{table}{suffix}" for suffix in (".csv", ".parquet", ".csv.gz", ".pq", ".xlsx")
                             if (folder / f"{table}{suffix}").is_file()), None)
    return found


def _data_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.name.lower().endswith(_TEXT_SUFFIXES + PARQUET_SUFFIXES + EXCEL_SUFFIXES))


def _is_artist_table(keys: set[str]) -> bool:
    return {"id", "followers", "genres"} <= keys and not keys & {"id_artists", "track_id", *AUDIO_FEATURES}


def _layout_of(header: Sequence[str]) -> str | None:
    keys = {header_key(h) for h in header if h}
    for name in DETECTION_ORDER:
        if {header_key(c) for c in FORMATS[name].signature} <= keys:
            return name
    if _is_artist_table(keys):
        return None  # artists.csv of the 600k layout: a table of artists, not tracks (read beside tracks.csv)
    # Several canonical names (or their common aliases) but no track_id: a canonical table with renamed
    # columns, or a chart that names tracks by artist and title. Reading it as canonical maps what it can and
    # lets validation say which column to rename ("did you mean ...").
    canonical = {header_key(c) for c in CANONICAL_COLUMNS}
    known = {k for k in keys if k in canonical} | {alias_target(k) for k in keys if alias_target(k)}
    if len(known) >= 2:
        return "canonical"
    return None


def resolve(path: Path) -> tuple[Path, str | None]:
    """The file (or relational folder) to read and its detected layout (None: unrecognised)."""
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    if path.is_dir():
        tables = relational_tables(path)
        present = [t for t, p in tables.items() if p is not None]
        if "track" in present:
            return path, "relational"
        files = _data_files(path)
        # A folder holding one dataset file (or 600k's tracks.csv + artists.csv) means that file.
        if len(files) == 2 and {f.name for f in files} == {"tracks.csv", "artists.csv"}:
            files = [path / "tracks.csv"]
        if len(files) == 1:
            return resolve(files[0])
        if present:
            raise FormatError(f"{path}: looks like a relational crawl folder ({', '.join(present)} found) but has "
                              "no track table. Fix: add track.csv (or track.parquet) with columns "
                              f"{', '.join(RELATIONAL_REQUIRED['track'])}")
        raise FormatError(f"{path}: a folder with {len(files)} data file(s) and no relational tables; "
                          f"pass one file. Formats known: {_known_formats_text()}")
    header = open_table(path).header
    layout = _layout_of(header)
    if layout in {None, "canonical"}:
        near = _near_miss(path, header)
        if near is not None:
            raise near
    return path, layout


def _near_miss(path: Path, header: Sequence[str]) -> FormatError | None:
    """A public layout with one identifying column misspelt ("track_arist"): say so rather than read it as
    another layout and lose what that column carries."""
    names = [h for h in header if h]
    keys = {header_key(h) for h in names}
    known = {header_key(c) for c in (*CANONICAL_COLUMNS, *KNOWN_ALIASES, *EXTRA_COLUMNS)}
    known |= {header_key(source) for spec in FORMATS.values() for source in spec.columns}
    unknown = [h for h in names if header_key(h) not in known]
    for name in DETECTION_ORDER[:-1]:
        signature = FORMATS[name].signature
        missing = [c for c in sorted(signature) if header_key(c) not in keys]
        if len(missing) != 1:
            continue
        close = difflib.get_close_matches(missing[0], unknown, n=1, cutoff=0.75)
        if close:
            return FormatError(f"{path}: looks like the {name} layout ({FORMATS[name].description}), but its "
                               f"column '{missing[0]}' is missing (did you mean '{close[0]}'?). Fix: rename column "
                               f"'{close[0]}' to '{missing[0]}', or read the file as a plain table (--format "
                               "canonical)")
    return None


def detect_format(path: str | os.PathLike[str]) -> str:
    """Name of the layout of ``path`` (a key of :data:`FORMATS`), from its columns or its files.

    Raises
    ------
    FormatError
        When the file matches no known layout; the message lists every format and the columns it expects.
    """
    resolved, name = resolve(Path(path))
    if name is None:
        raise unrecognised(resolved)
    return name


def unrecognised(path: Path) -> FormatError:
    columns = [c for c in open_table(path).header if c]
    if _is_artist_table({header_key(c) for c in columns}):
        return FormatError(f"{path}: this is an artist table (columns {', '.join(columns[:8])}), like the Kaggle "
                           "600k artists.csv, not a table of tracks. Fix: pass the tracks.csv it belongs to (the "
                           "artists table is read from beside it)")
    return FormatError(f"{path}: unrecognised layout (columns: {', '.join(columns[:20])}"
                       f"{' ...' if len(columns) > 20 else ''}). Fix: rename the id column to 'track_id' and the "
                       "target to 'popularity', or name the layout (--format on the command line, format= in "
                       f"Python). Formats known: {_known_formats_text()}")


def _known_formats_text() -> str:
    return "; ".join(FORMATS[name].describe() for name in ("canonical", *DETECTION_ORDER[:-1], "relational"))

