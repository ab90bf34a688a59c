"""Opening a data file as people actually have it: its kind, encoding, delimiter, header and broken rows.

Real files arrive as CSV in legacy encodings (Latin-1, Windows-1252), separated by ';' or tabs, as Excel
workbooks (sometimes saved under a .csv name), or cut short by an interrupted download. :func:`open_table`
looks at a file once, decides how to read it, and records each decision as a note so that a reader can
report it. :meth:`TableFile.read` then reads the columns asked for *by position*, so that a header that
appears twice, or twice up to case, stays two columns the caller can compare instead of one silently
winning. Rows whose number of fields does not match the header are found here (with pyarrow's CSV parser,
which, unlike pandas, reports them) and left out of the read; the caller reports them as dropped rows.

This module knows files, not layouts: which columns mean what is :mod:`popdrivers.sources.files`' business.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import datetime as dt
import functools
import gzip
import io
import lzma
import os
import re
import zipfile
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pandas as pd

from popdrivers.errors import FormatError
from popdrivers.schema import Problem, SchemaError

PARQUET_SUFFIXES = (".parquet", ".pq")
EXCEL_SUFFIXES = (".xlsx", ".xlsm")
_COMPRESSION = {".gz": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}
_SNIFF_BYTES = 1 << 16
_CHUNK = 1 << 20
_DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "tabs", "|": "'|'"}
# More broken rows than this share means the file is not read the way it was written (delimiter, quoting):
# refusing it says so, where dropping most rows would bury the real problem in a long drop list.
_MAX_BAD_ROW_SHARE = 0.5
# Rows of titles or notes a sheet may have above its header row.
_MAX_TITLE_ROWS = 10
_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+(?:[eE][-+]?\d+)?$")
_DECIMAL_POINT = re.compile(r"^[-+]?\d*\.\d+(?:[eE][-+]?\d+)?$")
_ENCODING_NAMES = {"cp1252": "Windows-1252 (Western European, a superset of Latin-1)",
                   "latin-1": "Latin-1 (ISO-8859-1)", "utf-16": "UTF-16"}


@dataclass(frozen=True)
class BadRow:
    """A row whose number of fields differs from the header's: not read."""

    line: int
    fields: int
    expected: int
    cut: bool = False  # the last row of a file that ends in the middle of it

    @property
    def reason(self) -> str:
        if self.cut:
            return "the file ends in the middle of its last row (cut short?): that row is not read"
        if self.fields < self.expected:
            return (f"row has fewer fields than the header ({self.fields} of {self.expected}): not read, "
                    "its missing cells would be guesses")
        return (f"row has more fields than the header ({self.fields}, header {self.expected}): not read, "
                "its values cannot be matched to columns (an unquoted delimiter in a text?)")


@dataclass(frozen=True)
class TableFile:
    """How to read one data file, decided once by :func:`open_table`.

    Attributes
    ----------
    path
        The file.
    kind
        ``"csv"``, ``"parquet"`` or ``"xlsx"`` (by content, not only by name).
    header
        Column names as written, in order, duplicates kept; BOM and surrounding spaces removed.
    encoding, delimiter, decimal
        How the text is read (CSV, and Excel sheets converted to CSV).
    sheet
        The worksheet read from a workbook.
    bad_rows
        Rows not read because their number of fields differs from the header's.
    notes
        What was detected and how it is read (encoding, delimiter, sheet, a missing final line break).
    """

    path: Path
    kind: str
    header: tuple[str, ...]
    encoding: str = "utf-8"
    delimiter: str = ","
    decimal: str = "."
    compression: str | None = None
    sheet: str | None = None
    bad_rows: tuple[BadRow, ...] = ()
    notes: tuple[str, ...] = ()
    # The file's rows as UTF-8 CSV when they were converted (an Excel sheet, UTF-16 text).
    converted: bytes | None = None
    # Bytes of the file that hold complete rows, when its last row is cut short.
    data_end: int | None = None
    # The sheet row of each data row of a converted workbook (blank rows are left out of the conversion).
    row_numbers: tuple[int, ...] | None = None

    def row_label(self, number: int) -> str:
        """Where a row is, as the user sees the file: its line (CSV, header = line 1) or sheet row."""
        if self.kind == "xlsx":
            return f"row {number} of sheet '{self.sheet}'"
        return f"line {number}" if self.kind == "csv" else f"row {number}"

    def column_label(self, position: int) -> str:
        """How a column is named in a message: its header, or its position when it has none."""
        name = self.header[position]
        return f"'{name}'" if name else f"column {position + 1} (no header)"

    def read(self, positions: Sequence[int], *, text: Collection[int] = (),
             exact_text: Collection[int] = ()) -> pd.DataFrame:
        """The columns at ``positions`` (0-based), as a frame whose columns are those positions.

        The index is each row's number as :meth:`row_label` shows it (broken rows left out). ``text`` columns
        stay text (ids, dates). ``exact_text`` columns treat only an empty cell as missing: a track called
        "None" or an id "NA" is a value, not a gap.
        """
        positions = list(dict.fromkeys(positions))
        if self.kind == "parquet":
            frame = self._read_parquet(positions)
            frame.index = pd.RangeIndex(1, len(frame) + 1)
            return frame
        names = [str(i) for i in range(len(self.header))]
        usecols = [names[i] for i in positions]
        as_text = {names[i]: "str" for i in positions if i in text or i in exact_text}
        frame = self._read_csv(names, usecols, as_text)
        recheck = [names[i] for i in positions if i in exact_text and frame[names[i]].isna().any()]
        if recheck:
            # Re-read the few text columns where an NA token may have hidden a real value.
            exact = self._read_csv(names, recheck, dict.fromkeys(recheck, "str"), keep_default_na=False,
                                   na_values=[""])
            for column in recheck:
                frame[column] = exact[column].to_numpy()
        frame.columns = [int(c) for c in frame.columns]
        frame.index = self._row_numbers(len(frame))
        return frame

    def _row_numbers(self, rows: int) -> pd.Index:
        skipped = {row.line for row in self.bad_rows}
        if self.row_numbers is None and not skipped:
            return pd.RangeIndex(2, 2 + rows)
        if self.row_numbers is not None:
            numbers = [n for n in self.row_numbers if n not in skipped]
        else:
            numbers = [n for n in range(2, 2 + rows + len(skipped)) if n not in skipped]
        return pd.Index(numbers[:rows]) if len(numbers) >= rows else pd.RangeIndex(2, 2 + rows)

    def _read_parquet(self, positions: list[int]) -> pd.DataFrame:
        columns = [self.header[i] for i in positions]
        frame = pd.read_parquet(self.path, columns=columns)
        frame.columns = positions
        return frame

    def _read_csv(self, names: list[str], usecols: list[str], dtype: dict[str, str], **kwargs: Any) -> pd.DataFrame:
        # pandas' C engine, chunked (low_memory): measured on a 1M-row, 226 MB file it peaked at about half the
        # memory of the pyarrow engine (which holds the Arrow table and the frame at once) and was as fast.
        # Broken rows are skipped by their row number (0 = header); a cut row beyond ``data_end`` is not read anyway.
        skip = sorted(row.line - 1 for row in self.bad_rows if not (row.cut and self.data_end is not None)) or None
        options: dict[str, Any] = dict(header=0, names=names, usecols=usecols, dtype=dtype, sep=self.delimiter,
                                       decimal=self.decimal, skiprows=skip, **kwargs)
        try:
            with self._source() as (source, encoding, compression):
                return pd.read_csv(source, encoding=encoding, compression=compression, **options)
        except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
            raise FormatError(f"{self.path}: cannot be read as CSV ({_first_line(exc)}). Fix: check that every "
                              "row has as many fields as the header and that text holding the delimiter or "
                              "quotes is quoted") from None

    @contextmanager
    def _source(self) -> Iterator[tuple[Any, str, str | None]]:
        if self.converted is not None:
            yield io.BytesIO(self.converted), "utf-8", None
        elif self.data_end is not None:
            with _Prefix(self.path, self.data_end) as handle:
                yield io.BufferedReader(handle), self.encoding, None
        else:
            yield self.path, self.encoding, self.compression


class _Prefix(io.RawIOBase):
    """The first ``limit`` bytes of a file, as a readable stream (a file cut mid-row, minus that row)."""

    def __init__(self, path: Path, limit: int):
        self._handle = open(path, "rb")  # noqa: SIM115 (closed by close())
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), self._left)
        if size <= 0:
            return 0
        got = self._handle.readinto(memoryview(buffer)[:size]) or 0
        self._left -= got
        return got

    def close(self) -> None:
        self._handle.close()
        super().close()


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --------------------------------------------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------------------------------------------


def open_table(path: str | os.PathLike[str], *, expects: str = "a header row and at least the columns "
               "track_id and popularity") -> TableFile:
    """Decide how to read ``path`` (CSV in any common encoding and delimiter, Parquet, or an Excel workbook).

    Parameters
    ----------
    path
        The data file.
    expects
        What the file should hold, for the fix of an error about an empty file.

    Raises
    ------
    FormatError
        A file that is none of those (an old .xls workbook, an archive, a binary file), or one too damaged
        to read, with the fix.
    SchemaError
        An empty file, or one holding no header row.
    """
    path = Path(path)
    stat = path.stat()
    return _open_cached(path, stat.st_mtime_ns, stat.st_size, expects)


def forget_opened() -> None:
    """Drop what :func:`open_table` remembers (a converted workbook can be large): called after each read."""
    _open_cached.cache_clear()


@functools.lru_cache(maxsize=8)
def _open_cached(path: Path, mtime_ns: int, size: int, expects: str) -> TableFile:
    # Detection, then reading, open the same file: look at it once (keyed by its modification time and size).
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory", str(path))
    if size == 0:
        raise SchemaError([Problem("*", "the file is empty (0 bytes, no header row)", fix=f"write {expects}")],
                          str(path))
    with path.open("rb") as handle:
        magic = handle.read(8)
    if path.name.lower().endswith(PARQUET_SUFFIXES) or magic[:4] == b"PAR1":
        return _open_parquet(path)
    if magic[:4] == b"PK\x03\x04" and not path.name.lower().endswith(".zip"):
        return _open_zip(path, expects)
    if magic.startswith((codecs.BOM_UTF8 + b"PK", codecs.BOM_UTF16_LE + b"P\x00K\x00")):
        # A text byte-order mark, then a zip signature: a workbook that went through a text editor or a text
        # re-encode; its binary content is no longer what it was.
        raise FormatError(f"{path}: an Excel workbook (.xlsx) damaged by being saved as text (it starts with a text "
                          "byte-order mark, then the 'PK' signature of a workbook, and its binary content was "
                          "re-encoded). Fix: get the original .xlsx again (download or export it anew) and pass it "
                          "unchanged, or export the sheet from Excel as CSV (UTF-8)")
    if magic[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise FormatError(f"{path}: an old Excel 97-2003 workbook (.xls), which popdrivers does not read. Fix: "
                          "open it in Excel or LibreOffice and save it as .xlsx, or as CSV (UTF-8)")
    return _open_text(path, size, expects)


def _open_parquet(path: Path) -> TableFile:
    import pyarrow.parquet as pq

    try:
        names = [str(c) for c in pq.read_schema(path).names if not str(c).startswith("__index_level_")]
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise FormatError(f"{path}: not a readable Parquet file ({_first_line(exc)}). Fix: export the data "
                          "again as Parquet or as CSV (UTF-8)") from None
    return TableFile(path, "parquet", tuple(names))


def _open_zip(path: Path, expects: str) -> TableFile:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()
    except zipfile.BadZipFile as exc:
        raise FormatError(f"{path}: looks like an Excel workbook or zip archive but cannot be opened ({exc}). "
                          "Fix: save it again from Excel as .xlsx, or export the sheet as CSV (UTF-8)") from None
    if "xl/workbook.xml" in members:
        return _open_workbook(path, expects)
    if "content.xml" in members:
        raise FormatError(f"{path}: an OpenDocument spreadsheet (.ods), which popdrivers does not read. Fix: save "
                          "it as .xlsx or as CSV (UTF-8)")
    raise FormatError(f"{path}: a zip archive, not a data file. Fix: unpack it and pass the CSV, Parquet or .xlsx "
                      "file inside (or name it .csv.zip if it holds one CSV file)")


# ---- Excel ------------------------------------------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float):
        # Excel stores every number as a float: 230666.0 is the whole number 230666 (an id, a length in ms).
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def _open_workbook(path: Path, expects: str) -> TableFile:
    import openpyxl

    chosen: tuple[str, list[list[str]], list[int]] | None = None
    skipped: list[str] = []
    # Opened as a stream: openpyxl refuses a workbook by its file name when it is not .xlsx (one saved as .csv).
    with path.open("rb") as handle:
        try:
            workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises several types for a damaged workbook
            raise FormatError(f"{path}: an Excel workbook that cannot be read ({_first_line(exc)}). Fix: open it "
                              "in Excel and save it again as .xlsx, or export the sheet as CSV (UTF-8)") from None
        try:
            for sheet in workbook.worksheets:
                rows = [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
                nonblank = [i for i, row in enumerate(rows) if any(cell.strip() for cell in row)]
                # The header is the first row with two or more cells: a title row above it is not a header.
                starts = [k for k, i in enumerate(nonblank[:_MAX_TITLE_ROWS + 1])
                          if sum(bool(c.strip()) for c in rows[i]) >= 2]
                if chosen is None and starts and len(nonblank) > starts[0] + 1:
                    kept = nonblank[starts[0]:]
                    chosen = (sheet.title, [rows[i] for i in kept], [i + 1 for i in kept])
                else:
                    skipped.append(sheet.title)
        finally:
            workbook.close()
    if chosen is None:
        raise SchemaError([Problem("*", "the workbook has no sheet with a header row and data rows",
                                   fix=f"put {expects} on the first sheet")], str(path))
    title, rows, numbers = chosen
    width = max(max((i + 1 for i, cell in enumerate(row) if cell.strip()), default=0) for row in rows)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow((row + [""] * width)[:width])
    header = tuple(cell.strip() for cell in rows[0][:width]) + ("",) * max(0, width - len(rows[0]))
    disguised = not path.name.lower().endswith(EXCEL_SUFFIXES)
    what = (f"{path.name} is an Excel workbook despite its name" if disguised else f"{path.name} is an Excel workbook")
    note = f"{what}: read its sheet '{title}'"
    if numbers[0] > 1:
        note += f" (header on row {numbers[0]})"
    if skipped:
        note += f"; other sheets not read: {', '.join(repr(s) for s in skipped)}"
    return TableFile(path, "xlsx", header, sheet=title, notes=(note,), converted=buffer.getvalue().encode("utf-8"),
                     row_numbers=tuple(numbers[1:]))


# ---- text ---------------------------------------------------------------------------------------------------------


def _compression(path: Path) -> str | None:
    return _COMPRESSION.get(path.suffix.lower())


@contextmanager
def _binary(path: Path, compression: str | None) -> Iterator[IO[bytes]]:
    """The file's bytes, decompressed."""
    if compression == "zip":
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
            if len(members) != 1:
                raise FormatError(f"{path}: a zip archive holding {len(members)} files. Fix: unpack it and pass "
                                  "the data file inside")
            with archive.open(members[0]) as handle:
                yield handle
        return
    opener = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}.get(compression or "", open)
    try:
        with opener(path, "rb") as handle:
            yield handle
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise FormatError(f"{path}: a damaged {compression} file ({_first_line(exc)}). Fix: compress it "
                          "again, or pass the uncompressed file") from None


def _utf8_failure(path: Path, compression: str | None) -> int | None:
    """Byte offset of the first byte that is not UTF-8, or None when the whole file is UTF-8.

    The whole file is checked (in 1 MB chunks, ~0.1 s per 250 MB): a Latin-1 name on the last line would
    otherwise stop pandas half-way.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with _binary(path, compression) as handle:
        while chunk := handle.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                return offset + exc.start
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            return offset + exc.start
    return None


def _non_ascii_lines(path: Path, compression: str | None, limit: int = 2000) -> bytes:
    """Up to ``limit`` lines holding non-ASCII bytes: what a legacy encoding is guessed from."""
    found: list[bytes] = []
    with _binary(path, compression) as handle:
        for line in handle:
            if max(line, default=0) >= 0x80:
                found.append(line)
                if len(found) >= limit:
                    break
    return b"".join(found)


def _mostly_isolated_accents(text: str) -> bool:
    """True for Western text read as Windows-1252: accents sit alone in ASCII words ("Beyoncé", "Don’t").

    Cyrillic or Greek bytes read as Windows-1252 come out as runs of accented letters ("Êèíî"): a sign of
    another code page.
    """
    runs = [len(m.group()) for m in re.finditer(r"[^\x00-\x7f]+", text)]
    if not runs:
        return True
    in_long_runs = sum(r for r in runs if r >= 3)
    return in_long_runs <= 0.5 * sum(runs)


def _legacy_encoding(path: Path, compression: str | None) -> tuple[str, str]:
    """(codec, example) of a file that is not UTF-8: Windows-1252 unless its bytes say otherwise."""
    sample = _non_ascii_lines(path, compression)
    try:
        western = sample.decode("cp1252")
    except UnicodeDecodeError:
        western = None
    encoding = "cp1252"
    if western is None or not _mostly_isolated_accents(western):
        import charset_normalizer

        guess = charset_normalizer.from_bytes(sample).best()
        encoding = guess.encoding if guess is not None else ("cp1252" if western is not None else "latin-1")
    decoded = sample.decode(encoding, errors="replace")
    match = re.search(r"[^\s,;|\t\"]*[^\x00-\x7f][^\s,;|\t\"]*", decoded)
    return encoding, (match.group() if match else "")


def _decode_head(head: bytes, encoding: str) -> str:
    text = head.decode(encoding, errors="replace")
    return text.lstrip("\ufeff")


def _records(text: str, delimiter: str, limit: int = 50) -> list[list[str]]:
    """The first complete records of ``text`` (the last line of a sniffed head may be cut: left out)."""
    lines = text.splitlines(keepends=True)
    if len(lines) > 1 and not lines[-1].endswith(("\n", "\r")):
        lines = lines[:-1]
    reader = csv.reader(lines, delimiter=delimiter)
    records: list[list[str]] = []
    try:
        for record in reader:
            if record and any(cell.strip() for cell in record):
                records.append(record)
            if len(records) >= limit:
                break
    except csv.Error:
        pass
    return records


def _delimiter(text: str) -> str:
    """The delimiter that splits the header and the first rows into the same, largest number of fields."""
    scored = []
    for rank, candidate in enumerate(_DELIMITERS):
        records = _records(text, candidate)
        if not records:
            continue
        width = len(records[0])
        consistent = width > 1 and all(len(r) == width for r in records[1:])
        scored.append((consistent, width, -rank, candidate))
    return max(scored)[3] if scored else ","


def _decimal(records: list[list[str]], delimiter: str) -> str:
    if delimiter == ",":
        return "."
    cells = [cell.strip() for record in records[1:] for cell in record]
    comma = sum(bool(_DECIMAL_COMMA.match(c)) for c in cells)
    point = sum(bool(_DECIMAL_POINT.match(c)) for c in cells)
    return "," if comma and not point else "."


def _scan_rows(path: Path, converted: bytes | None, data_end: int | None, encoding: str, compression: str | None,
               delimiter: str, width: int) -> tuple[list[BadRow], int]:
    """Rows whose field count differs from the header's, and the number of rows (pyarrow reports them)."""
    import pyarrow as pa
    import pyarrow.csv as pv

    bad: list[BadRow] = []

    def handler(row: Any) -> str:
        number = int(row.number) if row.number is not None else -1
        bad.append(BadRow(number, int(row.actual_columns), int(row.expected_columns)))
        # Most rows broken: stop early (the caller refuses the file) instead of listing a million of them.
        return "error" if len(bad) > 1000 and len(bad) > _MAX_BAD_ROW_SHARE * number else "skip"

    names = [f"c{i}" for i in range(width)]
    options = dict(
        read_options=pv.ReadOptions(use_threads=False, column_names=names, skip_rows=1, block_size=1 << 22,
                                    encoding="utf8" if encoding in {"utf-8", "utf-8-sig"} else encoding),
        parse_options=pv.ParseOptions(delimiter=delimiter, invalid_row_handler=handler, newlines_in_values=True),
        convert_options=pv.ConvertOptions(include_columns=names[:1], column_types={names[0]: pa.string()}),
    )
    rows = 0
    try:
        if converted is not None:
            reader = pv.open_csv(io.BytesIO(converted), **options)
            rows = sum(batch.num_rows for batch in reader)
        elif data_end is not None:
            with _Prefix(path, data_end) as handle:
                rows = sum(batch.num_rows for batch in pv.open_csv(io.BufferedReader(handle), **options))
        else:
            with _binary(path, compression) as handle:
                rows = sum(batch.num_rows for batch in pv.open_csv(handle, **options))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        if len(bad) > 1000:
            return bad, bad[-1].line - 1
        raise FormatError(f"{path}: cannot be read as CSV ({_first_line(exc)}). Fix: check that every row has as "
                          "many fields as the header and that text holding the delimiter or quotes is quoted") from None
    return bad, rows + len(bad)


def _cut_last_row(path: Path, size: int, delimiter: str) -> tuple[int | None, int | None, bool]:
    """(bytes of complete rows, line number of the cut row, ends without a line break) for a file cut mid-row.

    A last line without a line break that leaves a quoted text open was cut inside it: it is left out here (a
    CSV parser would fail on it). A cut between fields leaves too few fields: the row scan finds it.
    """
    with path.open("rb") as handle:
        handle.seek(max(0, size - _SNIFF_BYTES))
        tail = handle.read()
    if tail.endswith((b"\n", b"\r")):
        return None, None, False
    start = tail.rfind(b"\n") + 1
    if start == 0 and size > len(tail):
        return None, None, True  # one enormous last line: leave it to the parser
    partial = tail[start:]
    try:
        # A quoted text left open is the sign of a cut inside it (a quote inside an unquoted text is not).
        list(csv.reader([partial.decode("latin-1")], delimiter=delimiter, strict=True))
        return None, None, True
    except csv.Error:
        pass
    data_end = size - len(partial)
    with path.open("rb") as handle:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(_CHUNK), b""))
    return data_end, lines + 1, True


def _open_text(path: Path, size: int, expects: str) -> TableFile:
    compression = _compression(path)
    notes: list[str] = []
    with _binary(path, compression) as handle:
        head = handle.read(_SNIFF_BYTES)
    converted: bytes | None = None
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        with _binary(path, compression) as handle:
            try:
                text = handle.read().decode("utf-16")
            except UnicodeDecodeError as exc:
                raise FormatError(f"{path}: UTF-16 text with a damaged byte at {exc.start}. Fix: export it again, "
                                  "as CSV (UTF-8)") from None
        converted = text.lstrip("\ufeff").encode("utf-8")
        head, encoding = converted[:_SNIFF_BYTES], "utf-8"
        notes.append(f"{path.name} is UTF-16 text (Excel's 'Unicode Text'): read as such")
    elif b"\x00" in head:
        raise FormatError(f"{path}: a binary file, not CSV text, Parquet or an Excel workbook. Fix: export the data "
                          "as CSV (UTF-8), Parquet or .xlsx")
    else:
        encoding = "utf-8-sig" if head.startswith(codecs.BOM_UTF8) else "utf-8"
        if _utf8_failure(path, compression) is not None:
            encoding, example = _legacy_encoding(path, compression)
            notes.append(_encoding_note(path, encoding, example))
    text_head = _decode_head(head, encoding)
    if not text_head.strip():
        raise SchemaError([Problem("*", "the file has no header row (only blank lines)", fix=f"write {expects}")],
                          str(path))
    delimiter = _delimiter(text_head)
    records = _records(text_head, delimiter)
    if not records:
        raise FormatError(f"{path}: cannot find a header row in the first {_SNIFF_BYTES // 1024} KB (an unclosed "
                          "quote?). Fix: check the quoting of the first lines")
    header = tuple(cell.strip().lstrip("\ufeff").strip() for cell in records[0])
    decimal = _decimal(records, delimiter)
    if delimiter != ",":
        said = DELIMITER_NAMES[delimiter]
        notes.append(f"{path.name} separates columns with {said}, not ',': read as such"
                     + ("; decimals are written with ',' (0,5): read as numbers" if decimal == "," else ""))
    data_end = cut_line = None
    unterminated = False
    if converted is None and compression is None:
        data_end, cut_line, unterminated = _cut_last_row(path, size, delimiter)
    bad_rows, rows = _scan_rows(path, converted, data_end, encoding, compression, delimiter, len(header))
    if cut_line is not None:
        bad_rows.append(BadRow(cut_line, 0, len(header), cut=True))
    elif unterminated and bad_rows and bad_rows[-1].line == rows + 1 and bad_rows[-1].fields < len(header):
        # The last row, short of fields, in a file that stops without a line break: cut, not malformed.
        last = bad_rows[-1]
        bad_rows[-1] = BadRow(last.line, last.fields, last.expected, cut=True)
    elif unterminated:
        notes.append(f"{path.name} does not end with a line break: if it was cut short, the last value of its "
                     f"last row (line {rows + 1}) may be incomplete; the row is read as written")
    malformed = [row for row in bad_rows if not row.cut]
    if len(malformed) > _MAX_BAD_ROW_SHARE * rows:
        example = malformed[0]
        raise FormatError(f"{path}: {len(malformed)} of {rows} rows do not have as many fields as the header (e.g. "
                          f"line {example.line} has {example.fields}, the header {example.expected}): the file is "
                          f"not read the way it was written (columns separated by {DELIMITER_NAMES[delimiter]}). "
                          "Fix: export it again as comma-separated CSV with quoted text")
    return TableFile(path, "csv", header, encoding=encoding, delimiter=delimiter, decimal=decimal,
                     compression=compression, bad_rows=tuple(bad_rows), notes=tuple(notes), converted=converted,
                     data_end=data_end)


def _encoding_note(path: Path, encoding: str, example: str) -> str:
    label = _ENCODING_NAMES.get(encoding, f"{encoding} (guessed from its bytes)")
    shown = f", e.g. '{example}'" if example else ""
    return (f"{path.name} is not UTF-8: read as {label}{shown}. If names look wrong, save the file as "
            "CSV (UTF-8)")
