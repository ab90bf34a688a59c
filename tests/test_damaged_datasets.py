"""Fuzz: every shared dataset, damaged the ways real files are damaged, is read without a silent loss.

Each case copies a shared dataset (../shared/data) into a temporary folder, damages the file (for catalog-2022: its
track table) in one way, seeded, and reads it. A read either succeeds with every loss reported (every source row
kept or dropped with a reason, every source column read or listed as unused with the reason, and, where the
damage loses nothing, the very same table as the undamaged file), or fails with exit code 2 and a message naming
the file, the column and the fix. Never a silent loss.
"""

from __future__ import annotations

import csv
import io
import random
import shutil
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from popdrivers.cli import app
from popdrivers.errors import PopdriversError
from popdrivers.schema import KNOWN_ALIASES
from popdrivers.sources.files import FORMATS, RELATIONAL_TABLES, ReadReport, read_tracks_with_report

DATASETS = {
    "catalog-2022": ("catalog-2022", "track.csv"),
    "playlist-songs-2020": ("playlist-songs-2020/spotify_songs.csv", None),
    "genre-tracks-2021": ("genre-tracks-2021/tracks.csv", None),
}
# Rows kept by the damages that rewrite a file as a workbook: Excel files of this size are common; the whole
# 32,833-row file would take a minute to write with openpyxl and prove nothing more.
WORKBOOK_ROWS = 1500


@dataclass
class Table:
    """The damaged file's rows as text, exactly as published (header first)."""

    header: list[str]
    rows: list[list[str]]


@dataclass
class Damaged:
    """What a damage did: a reference file holding the rows it kept (when it kept only some), the columns hit."""

    reference: Path | None = None
    columns: tuple[str, ...] = ()


@dataclass
class Case:
    dataset: str
    damage: str
    lossless: bool  # the damaged file holds the same data: the table read must equal the undamaged one


def read_rows(path: Path) -> Table:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        records = list(csv.reader(handle))
    return Table(records[0], records[1:])


def csv_bytes(table: Table, delimiter: str = ",", line_end: str = "\n") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(table.header)
    writer.writerows(table.rows)
    return buffer.getvalue().encode("utf-8")


def used_columns(dataset: str, header: list[str]) -> list[str]:
    """Source columns the reader of this dataset uses, in header order."""
    if dataset == "catalog-2022":
        used = set(RELATIONAL_TABLES["track"])
    else:
        used = set(FORMATS["tidytuesday" if dataset == "playlist-songs-2020" else "genre-tracks"].columns)
    return [h for h in header if h in used]


def signature_columns(dataset: str) -> set[str]:
    if dataset == "catalog-2022":
        return {"track_id", "track_artist_id", "track_album_id", "track_popularity"}
    return set(FORMATS["tidytuesday" if dataset == "playlist-songs-2020" else "genre-tracks"].signature)


def typed(value: str) -> object:
    """A cell as a spreadsheet holds it: numbers as numbers, True/False as booleans, the rest as text."""
    if value in {"True", "False"}:
        return value == "True"
    try:
        number = float(value)
    except ValueError:
        return value
    if value.strip() != value or value.lower() in {"nan", "inf", "-inf", "infinity"}:
        return value
    return int(number) if number.is_integer() and not any(c in value for c in ".eE") else number


def write_workbook(path: Path, table: Table) -> None:
    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet("Sheet1")
    sheet.append(table.header)
    for row in table.rows:
        sheet.append([typed(v) for v in row])
    workbook.save(path)


# ---------------------------------------------------------------------------------------------------------------
# The damages: each takes (table, rng, dataset, target path) and writes the damaged file (and a reference, when
# the damage keeps only some rows, which the damaged read is compared with)
# ---------------------------------------------------------------------------------------------------------------

Damage = Callable[[Table, random.Random, str, Path], Damaged]


def header_case(table: Table, rng: random.Random, dataset: str, target: Path) -> Damaged:
    column = rng.choice(used_columns(dataset, table.header))
    written = column.upper() if rng.random() < 0.5 else column.title()
    table.header[table.header.index(column)] = written
    target.write_bytes(csv_bytes(table))
    return Damaged(columns=(written,))


def header_all_upper(table: Table, rng: random.Random, dataset: str, target: Path) -> Damaged:
    table.header = [h.upper() for h in table.header]
    target.write_bytes(csv_bytes(table))
    return Damaged()


def duplicate_identical(table: Table, rng: random.Random, dataset: str, target: Path) -> Damaged:
    column = rng.choice(used_columns(dataset, table.header))
    position = table.header.index(column)
    table.header.append(column)
    for row in table.rows:
        row.append(row[position])
    target.write_bytes(csv_bytes(table))
    return Damaged(columns=(column,))


def duplicate_different(table: Table, rng: random.Random, dataset: str, target: Path) -> Damaged:
    candidates = [c for c in used_columns(dataset, table.header)
                  if len({row[table.header.index(c)] for row in table.rows[:200]}) > 1]
    column = rng.choice(candidates)
    position = table.header.index(column)
    values = [row[position] for row in table.rows]
    rng.shuffle(values)
    insert_at = rng.randrange(len(table.header) + 1)
    table.header.insert(insert_at, column.title())
    for row, value in zip(table.rows, values, strict=True):
        row.insert(insert_at, value)
    target.write_bytes(csv_bytes(table))
    return Damaged(columns=(column, column.title()))


def renamed_optional(table: Table, rng: random.Random, dataset: str, target: Path) -> Damaged:
    column = rng.choice([c for c in used_columns(dataset, table.header) if c not in signature_columns(dataset)])
    table.header[table.header.index(column)] = f"{column}_v2"
    target.write_bytes(csv_bytes(table))
    return Damaged(columns=(column, f"{column}_v2"))


def renamed_required(table: Table, rng: random.Random, dataset: str, target: Path) -> Damaged:
    column = rng.choice(sorted(signature_columns(dataset)))
    cut = rng.randrange(1, len(column))
    typo = column[:cut] + column[cut + 1:]  # one letter lost
    table.header[table.header.index(column)] = typo
    target.write_bytes(csv_bytes(table))
    return Damaged(columns=(column, typo))


def renamed_to_another_name(table: Table, rng: random.Random, dataset: str, target: Path) -> Damaged:
    """A column renamed to its canonical name or a common name for it (track_popularity -> popularity)."""
    spec = RELATIONAL_TABLES["track"] if dataset == "catalog-2022" else FORMATS[
        "tidytuesday" if dataset == "playlist-songs-2020" else "genre-tracks"].columns
    choices = []
    for column in used_columns(dataset, table.header):
        canonical = spec[column]
        if column in signature_columns(dataset) or not canonical:
            continue
        names = {canonical} | {alias for alias, target in KNOWN_ALIASES.items() if target == canonical}
        choices += [(column, name) for name in sorted(names - {column} - set(table.header) - set(spec))]
    column, name = rng.choice(choices)
    table.header[table.header.index(column)] = name
    target.write_bytes(csv_bytes(table))
    return Damaged(columns=(name,))


def truncated(table: Table, rng: random.Random, dataset: str, target: Path) -> Damaged:
    data = csv_bytes(table)
    while True:
        cut = rng.randrange(int(len(data) * 0.8), len(data) - 1)
        if data[cut - 1:cut] != b"\n":
            break
    target.write_bytes(data[:cut])
    return Damaged()


def bom(table: Table, rng: random.Random, dataset: str, target: Path) -> Damaged:
    original = target.read_bytes()
    # catalog-2022 has a BOM already: take it away; the others get one.
    target.write_bytes(original[3:] if original.startswith(b"\xef\xbb\xbf") else b"\xef\xbb\xbf" + original)
    return Damaged()


def delimiter(sep: str) -> Damage:
    def damage(table: Table, rng: random.Random, dataset: str, target: Path) -> Damaged:
        target.write_bytes(csv_bytes(table, sep, "\r\n"))
        return Damaged()

    return damage


def legacy_encoding(table: Table, rng: random.Random, dataset: str, target: Path) -> Damaged:
    """Windows-1252, as a Western Excel saves: rows it cannot encode (Korean names...) are left out of both files."""
    encodable = []
    for row in table.rows:
        try:
            ",".join(row).encode("cp1252")
        except UnicodeEncodeError:
            continue
        encodable.append(row)
    table.rows = encodable
    reference = target.with_name("reference-" + target.name)
    reference.write_bytes(csv_bytes(table))
    target.write_bytes(csv_bytes(table).decode("utf-8").encode("cp1252"))
    return Damaged(reference=reference)


def utf16(table: Table, rng: random.Random, dataset: str, target: Path) -> Damaged:
    # Excel's "Unicode Text": UTF-16 with a byte-order mark, tab-separated, CRLF.
    target.write_bytes(csv_bytes(table, "\t", "\r\n").decode("utf-8").encode("utf-16"))
    return Damaged()


def workbook(name_as_csv: bool) -> Damage:
    def damage(table: Table, rng: random.Random, dataset: str, target: Path) -> Damaged:
        table.rows = table.rows[:WORKBOOK_ROWS]
        reference = target.with_name("reference-" + target.name)
        reference.write_bytes(csv_bytes(table))
        if name_as_csv:
            write_workbook(target, table)
        else:
            target.unlink()
            write_workbook(target.with_suffix(".xlsx"), table)
        return Damaged(reference=reference)

    return damage


DAMAGES: dict[str, tuple[Damage, bool]] = {
    "header case": (header_case, True),
    "every header upper case": (header_all_upper, True),
    "repeated header, same values": (duplicate_identical, True),
    "repeated header, other values": (duplicate_different, False),
    "optional header renamed": (renamed_optional, False),
    "required header misspelt": (renamed_required, False),
    "header renamed to another name for it": (renamed_to_another_name, True),
    "truncated": (truncated, False),
    "byte-order mark": (bom, True),
    "';' delimiter": (delimiter(";"), True),
    "tab delimiter": (delimiter("\t"), True),
    "Windows-1252": (legacy_encoding, True),
    "UTF-16 tab-separated": (utf16, True),
    "xlsx": (workbook(False), True),
    "xlsx named .csv": (workbook(True), True),
}
CASES = [Case(dataset, damage, lossless) for dataset in DATASETS for damage, (_, lossless) in DAMAGES.items()]


# ---------------------------------------------------------------------------------------------------------------
# The promise
# ---------------------------------------------------------------------------------------------------------------


def source_headers(target: Path) -> dict[str, list[str]]:
    """Header of every file the read used: {file label: header}; the label is '' for a one-file dataset."""
    if target.is_dir():
        headers = {}
        for path in sorted(target.iterdir()):
            if path.stem in RELATIONAL_TABLES and path.suffix in {".csv", ".xlsx"}:
                headers[path.name] = header_as_written(path)
        return headers
    return {"": header_as_written(target)}


def header_as_written(path: Path) -> list[str]:
    raw = path.read_bytes()
    if raw.startswith(b"PK"):
        sheet = openpyxl.load_workbook(io.BytesIO(raw), read_only=True).worksheets[0]
        return [str(v) if v is not None else "" for v in next(sheet.iter_rows(values_only=True))]
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = raw.decode("utf-16")
    else:
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            text = raw.decode("cp1252")
    first = text.splitlines()[0]
    sep = max(",;\t", key=first.count)
    return next(csv.reader([first], delimiter=sep))


def assert_every_loss_reported(report: ReadReport, headers: dict[str, list[str]]) -> None:
    assert report.rows_read == report.rows_kept + report.rows_dropped
    assert all(d.reason and d.rows > 0 for d in report.dropped)
    read = {source for source, _ in report.column_sources}
    unused = {(u.file, u.column) for u in report.unused_columns}
    for file, header in headers.items():
        prefix = f"{file}: " if file else ""
        for position, name in enumerate(header):
            label = name.strip() or f"column {position + 1}"
            assert f"{prefix}{label}" in read or (file, label) in unused, f"{file} {label!r} silently ignored"
    assert all(u.reason for u in report.unused_columns)


def comparable(tracks: pd.DataFrame) -> pd.DataFrame:
    return tracks.sort_values("track_id").reset_index(drop=True)


def assert_same_table(damaged: pd.DataFrame, reference: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(comparable(damaged), comparable(reference), check_exact=False, rtol=1e-6)


@pytest.fixture(scope="module")
def undamaged(catalog_2022, playlist_songs_2020, genre_tracks_2021) -> dict[str, tuple[Path, pd.DataFrame, ReadReport]]:
    read = {}
    for dataset, path in (("catalog-2022", catalog_2022), ("playlist-songs-2020", playlist_songs_2020),
                          ("genre-tracks-2021", genre_tracks_2021)):
        tracks, report = read_tracks_with_report(path)
        read[dataset] = (path, tracks, report)
    return read


@pytest.mark.parametrize("case", CASES, ids=[f"{c.dataset}: {c.damage}" for c in CASES])
def test_a_damaged_dataset_is_read_with_every_loss_reported_or_refused_with_the_fix(case, tmp_path, undamaged):
    source, baseline, baseline_report = undamaged[case.dataset]
    _, table_file = DATASETS[case.dataset]
    if source.is_dir():
        data = tmp_path / case.dataset
        shutil.copytree(source, data)
        target = data / table_file
    else:
        target = data = tmp_path / source.name
        shutil.copy(source, target)
    damage, _ = DAMAGES[case.damage]
    rng = random.Random(zlib.crc32(f"{case.dataset}/{case.damage}".encode()))
    damaged = damage(read_rows(target), rng, case.dataset, target)
    if not data.exists():  # the one-file dataset became a workbook
        data = target.with_suffix(".xlsx")

    try:
        tracks, report = read_tracks_with_report(data)
    except PopdriversError as error:
        assert not case.lossless, f"a damage that loses nothing was refused: {error}"
        # Refused: exit code 2, one message naming the file, the column(s) and the fix.
        result = CliRunner().invoke(app, ["inspect", str(data)])
        message = " ".join(result.output.split())
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert message.startswith(f"error: {data}") or f"error: {target}" in message, message
        assert "Fix:" in message, message
        assert all(f"'{column}'" in message for column in damaged.columns), message
        return
    assert case.damage not in {"repeated header, other values", "required header misspelt"}, \
        "an ambiguous or unrecognisable file was read"

    assert_every_loss_reported(report, source_headers(data))
    if damaged.reference is not None:
        # The rows the damage kept, as the undamaged reader reads them.
        if data.is_dir():
            for path in data.glob("track.*"):
                path.unlink()
            damaged.reference.replace(data / table_file)
            expected = read_tracks_with_report(data)[0]
        else:
            expected = read_tracks_with_report(damaged.reference)[0]
        assert_same_table(tracks, expected)
    elif case.lossless:
        assert_same_table(tracks, baseline)
    elif case.damage == "truncated":
        cut = [d for d in report.dropped if "ends in the middle of its last row" in d.reason]
        noted = [n for n in report.notes if "does not end with a line break" in n]
        assert len(cut) + len(noted) == 1
        # The last line may hold a cut value (noted, not provable); copies of a track after the cut are gone, so
        # its merged genres may be fewer: everything else is as in the undamaged file.
        complete = (tracks.iloc[:-1] if noted else tracks).drop(columns=["dataset_genres"], errors="ignore")
        expected = baseline.set_index("track_id").loc[complete["track_id"]].reset_index()[list(complete.columns)]
        assert_same_table(complete.reset_index(drop=True), expected)
    else:
        assert case.damage == "optional header renamed"
        column, renamed = damaged.columns
        reasons = [u.reason for u in report.unused_columns if u.column == renamed]
        assert reasons and f"did you mean '{column}'?" in reasons[0]
        assert report.rows_kept == baseline_report.rows_kept
    # What is reported is printed by `popdrivers inspect`.
    result = CliRunner().invoke(app, ["inspect", str(data)])
    output = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    for unused in report.unused_columns:
        assert f"{unused.column}: {' '.join(unused.reason.split())}" in output
    for record in report.dropped:
        assert " ".join(record.reason.split()) in output
    for column in damaged.columns:
        assert column in output
