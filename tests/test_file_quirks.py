"""Real files as people have them: one hand-written fixture per quirk, in the published layouts.

Every fixture under tests/fixtures/quirks (and kaggle-*-new) was typed by hand in the exact column layout of the
public dataset it imitates; none is a copy of a public file. Each test states a promise: the file is read and
every loss is reported, or it is refused with exit code 2 naming the file, the column and the fix.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pytest
from typer.testing import CliRunner

from popdrivers import simulate_catalog
from popdrivers.artifacts import write_json_atomic, write_text_atomic
from popdrivers.cli import app
from popdrivers.errors import FormatError
from popdrivers.schema import SchemaError
from popdrivers.sources.files import ReadReport, read_tracks, read_tracks_with_report, write_tracks

FIXTURES = Path(__file__).parent / "fixtures"
QUIRKS = FIXTURES / "quirks"
KAGGLE_114K = FIXTURES / "kaggle-114k" / "dataset.csv"


def header_of(path: Path, encoding: str = "utf-8-sig", delimiter: str = ",") -> list[str]:
    """The header row as written, read with the csv module (independently of popdrivers)."""
    with path.open(encoding=encoding, newline="") as handle:
        return next(csv.reader(handle, delimiter=delimiter))


def assert_nothing_lost_silently(report: ReadReport, header: list[str], file: str = "") -> None:
    """Every source row is kept or dropped with a reason; every source column is read or listed with a reason."""
    assert report.rows_read == report.rows_kept + report.rows_dropped
    assert all(d.reason and d.rows > 0 for d in report.dropped)
    prefix = f"{file}: " if file else ""
    read = [source for source, _ in report.column_sources]
    unused = [(u.file, u.column) for u in report.unused_columns]
    for position, name in enumerate(header):
        name = name.strip()
        label = name if name else f"column {position + 1}"
        assert f"{prefix}{label}" in read or (file, label) in unused, f"{label!r} neither read nor reported"
    assert all(u.reason for u in report.unused_columns)


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def one_line(text: str) -> str:
    return " ".join(text.split())  # Rich wraps long lines


# ---------------------------------------------------------------------------------------------------------------
# Headers: case, repeats, aliases
# ---------------------------------------------------------------------------------------------------------------


def test_headers_differing_only_in_case_are_used_and_the_mapping_reported():
    path = QUIRKS / "kaggle-114k-case.csv"
    tracks, report = read_tracks_with_report(path)
    assert report.format == "kaggle-114k"
    assert list(tracks["danceability"]) == pytest.approx([0.676, 0.42, 0.438])
    assert list(tracks["popularity"]) == [73, 55, 57] and tracks["track_id"].iloc[0] == "5SuOikwiRyPMVoIQDJUgSV"
    for written, canonical in (("Danceability", "danceability"), ("Energy", "energy"), ("Track_ID", "track_id")):
        assert (written, canonical) in report.column_sources
        assert any(f"'{written}' read as '{canonical}'" in note for note in report.notes)
    assert_nothing_lost_silently(report, header_of(path))


def test_an_identical_repeated_header_is_read_once_and_the_copy_listed():
    path = QUIRKS / "tidytuesday-repeated-header.csv"
    tracks, report = read_tracks_with_report(path)
    assert list(tracks["danceability"]) == pytest.approx([0.748, 0.726])
    copies = [u for u in report.unused_columns if u.column == "danceability"]
    assert len(copies) == 1 and "same values" in copies[0].reason and "column 12" in copies[0].reason
    assert_nothing_lost_silently(report, header_of(path))


def test_repeated_headers_with_different_values_stop_with_exit_2_naming_both():
    path = QUIRKS / "canonical-conflicting-energy.csv"
    with pytest.raises(FormatError) as info:
        read_tracks(path)
    message = str(info.value)
    for part in (str(path), "'energy' (column 5)", "'Energy' (column 6)", "line 3", "'0.72' vs '0.27'", "Fix:"):
        assert part in message
    result = invoke("inspect", str(path))
    assert result.exit_code == 2 and "'Energy' (column 6)" in one_line(result.output)
    assert "Traceback" not in result.output


def test_known_aliases_in_a_canonical_file_are_used_and_reported():
    path = QUIRKS / "canonical-aliases.csv"
    tracks, report = read_tracks_with_report(path)
    assert list(tracks["artist_name"]) == ["Ann Example", "Ann Example", "Bo Example"]
    assert list(tracks["release_date_precision"]) == ["day", "year", "month"]
    assert list(tracks["artist_genres"]) == [["dance pop", "pop"], [], ["trap"]]
    assert report.extra_columns == ()
    for alias, canonical in (("artist", "artist_name"), ("album_release_date", "release_date"),
                             ("genres", "artist_genres")):
        assert any(f"'{alias}' read as '{canonical}'" in note for note in report.notes)
    assert_nothing_lost_silently(report, header_of(path))


def test_an_alias_beside_its_canonical_column_is_kept_as_an_extra_and_said():
    path = QUIRKS / "canonical-alias-beside-canonical.csv"
    tracks, report = read_tracks_with_report(path)
    assert list(tracks["artist_name"]) == ["Ann Example", "Bo Example"]
    assert list(tracks["artist"]) == ["Ann E.", "Bo"]  # the user's column is not thrown away
    reasons = [u.reason for u in report.unused_columns if u.column == "artist"]
    assert len(reasons) == 1 and "also has 'artist_name'" in reasons[0]


# ---------------------------------------------------------------------------------------------------------------
# Rows: cut and broken rows
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kept", "line"), [("kaggle-600k-cut.csv", 2, "line 4"),
                                                     ("kaggle-114k-cut-in-quotes.csv", 2, "line 4")])
def test_a_last_row_cut_short_is_not_read_and_is_reported(name, kept, line):
    path = QUIRKS / name
    tracks, report = read_tracks_with_report(path)
    assert len(tracks) == kept and report.rows_read == kept + 1
    cut = [d for d in report.dropped if "ends in the middle of its last row" in d.reason]
    assert len(cut) == 1 and cut[0].examples == (line,)
    assert_nothing_lost_silently(report, header_of(path))
    # No half-written number: every value kept is a whole value of the published rows.
    assert not tracks["danceability"].isin([0.65]).any()
    result = invoke("inspect", str(path))
    assert result.exit_code == 0 and "ends in the middle of its last row" in one_line(result.output)


def test_a_complete_last_row_without_a_line_break_is_read_and_the_doubt_noted():
    path = QUIRKS / "kaggle-114k-no-final-newline.csv"
    tracks, report = read_tracks_with_report(path)
    assert len(tracks) == 4 and tracks["genre"].iloc[-1] == "acou"
    assert any("does not end with a line break" in n and "line 5" in n for n in report.notes)


def test_rows_with_too_many_or_too_few_fields_are_dropped_with_their_lines():
    path = QUIRKS / "tidytuesday-broken-rows.csv"
    tracks, report = read_tracks_with_report(path)
    assert list(tracks["track_id"]) == ["6f807x0ima9a1j3VPbc7VN", "1z1Hg7Vb0AhHDiEmnDE79l", "7fvUMiyapMsRRxr07cU8Ef"]
    reasons = {d.reason: d.examples for d in report.dropped}
    assert reasons == {
        "row has more fields than the header (24, header 23): not read, its values cannot be matched to columns "
        "(an unquoted delimiter in a text?)": ("line 4",),
        "row has fewer fields than the header (12 of 23): not read, its missing cells would be guesses": ("line 5",),
    }
    assert_nothing_lost_silently(report, header_of(path))


def test_a_file_whose_rows_mostly_do_not_match_its_header_is_refused(tmp_path):
    path = tmp_path / "tracks.csv"
    path.write_text("track_id,popularity,track_name\n" + "".join(f"t{i},5,Song, with comma\n" for i in range(30)))
    with pytest.raises(FormatError, match=r"30 of 30 rows do not have as many fields as the header.*Fix:"):
        read_tracks(path)


# ---------------------------------------------------------------------------------------------------------------
# Identity: artist ids from names, track ids from artist + title
# ---------------------------------------------------------------------------------------------------------------


def test_a_file_with_artist_names_but_no_artist_ids_gets_ids_from_the_names():
    tracks, report = read_tracks_with_report(QUIRKS / "canonical-artist-names-only.csv")
    assert list(tracks["artist_id"].fillna("<none>")) == ["name:Ann Example", "name:Ann Example", "name:Bo Example",
                                                         "<none>"]
    assert any("no artist_id column" in note for note in report.notes)


def test_a_chart_without_track_ids_gets_stable_ids_from_artist_and_title(tmp_path):
    path = QUIRKS / "top-hits-chart.csv"
    tracks, report = read_tracks_with_report(path)
    assert list(tracks["track_id"]) == ["name:britney spears | oops!...i did it again",
                                        "name:blink-182 | all the small things", "name:faith hill | breathe"]
    assert any("no track_id column" in note for note in report.notes)
    reasons = {d.reason.split(":")[0]: d for d in report.dropped}
    assert reasons["no track_id column, and no artist or title to make an id from"].examples == ("line 6",)
    assert reasons["duplicate track_id"].rows == 1  # Britney listed in two chart years: one track
    assert ("year", "release_date") in report.column_sources  # the chart year: a release date of year precision
    assert list(tracks["release_date_precision"]) == ["year"] * 3
    assert_nothing_lost_silently(report, header_of(path))
    # Stable: the same song in another file, spelt with other case and spacing, gets the same id.
    other = tmp_path / "other.csv"
    other.write_text("artist,song,popularity\nBRITNEY  SPEARS , Oops!...I Did It Again,70\n")
    assert read_tracks(other)["track_id"].iloc[0] == tracks["track_id"].iloc[0]


# ---------------------------------------------------------------------------------------------------------------
# Encodings, delimiters, Excel
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "names", "shown"), [
    ("kaggle-114k-latin1.csv", ["Beyoncé", "Sigur Rós", "Café Tacvba"], "Beyoncé"),
    ("kaggle-114k-cp1252.csv", ["Leon Bridges", "Oasis"], "(What’s"),
])
def test_legacy_encoded_files_are_read_and_the_encoding_reported(name, names, shown):
    path = QUIRKS / name
    tracks, report = read_tracks_with_report(path)
    assert list(tracks["artist_name"]) == names
    note = next(n for n in report.notes if "not UTF-8" in n)
    assert "Windows-1252" in note and shown in note
    if name.endswith("cp1252.csv"):
        assert tracks["track_name"].iloc[1] == "Don’t Look Back in Anger – Remastered"
    result = invoke("inspect", str(path))
    assert result.exit_code == 0 and "not UTF-8" in result.output


def test_a_cyrillic_legacy_file_is_not_read_as_western(tmp_path):
    path = tmp_path / "tracks.csv"
    path.write_bytes("track_id,popularity,artist_name,track_name\nt1,50,Кино,Группа крови\nt2,40,Земфира,Хочешь\n"
                     .encode("cp1251"))
    tracks, report = read_tracks_with_report(path)
    assert list(tracks["artist_name"]) == ["Кино", "Земфира"]
    assert any("cp1251" in n for n in report.notes)


def test_an_excel_export_with_semicolons_and_decimal_commas_is_read():
    path = QUIRKS / "kaggle-114k-excel-semicolon.csv"
    tracks, report = read_tracks_with_report(path)
    expected = read_tracks(KAGGLE_114K).set_index("track_id").loc[list(tracks["track_id"])]
    np.testing.assert_allclose(tracks["danceability"], expected["danceability"])
    np.testing.assert_allclose(tracks["instrumentalness"], expected["instrumentalness"], rtol=1e-6)
    assert list(tracks["explicit"]) == [False, False, False]
    assert tracks["artist_name"].iloc[2] == "Ingrid Michaelson"
    assert any("';'" in n and "decimals are written with ','" in n for n in report.notes)


def test_tab_separated_utf16_text_from_excel_is_read(tmp_path):
    source = KAGGLE_114K.read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(source)))
    buffer = io.StringIO()
    csv.writer(buffer, delimiter="\t", lineterminator="\r\n").writerows(rows)
    path = tmp_path / "dataset.txt.csv"
    path.write_bytes(buffer.getvalue().encode("utf-16"))
    tracks, report = read_tracks_with_report(path)
    pd.testing.assert_frame_equal(tracks, read_tracks(KAGGLE_114K))
    assert any("UTF-16" in n for n in report.notes) and any("tabs" in n for n in report.notes)


def write_workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


def typed_rows(path: Path) -> list[list[object]]:
    """A CSV's rows as a spreadsheet holds them: numbers as numbers, True/False as booleans, text as text."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)

    def cell(value: str) -> object:
        if value in {"True", "False"}:
            return value == "True"
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value and "e" not in value else number

    return [list(frame.columns)] + [[cell(v) for v in row] for row in frame.itertuples(index=False)]


@pytest.mark.parametrize("name", ["dataset.xlsx", "dataset.csv"])
def test_an_excel_workbook_is_read_and_the_sheet_used_reported(tmp_path, name):
    # A notes sheet first, the data on the second sheet with a title row above the header; saved as .xlsx,
    # or (as people do) saved as .xlsx but named .csv.
    rows = typed_rows(KAGGLE_114K)
    path = write_workbook(tmp_path / name, {"About": [["Tracks exported from Spotify"]],
                                            "Tracks": [["Top tracks 2022"], [], *rows]})
    tracks, report = read_tracks_with_report(path)
    pd.testing.assert_frame_equal(tracks, read_tracks(KAGGLE_114K))
    note = next(n for n in report.notes if "Excel workbook" in n)
    what = "an Excel workbook despite its name" if name.endswith(".csv") else "an Excel workbook"
    assert note == f"{name} is {what}: read its sheet 'Tracks' (header on row 3); other sheets not read: 'About'"
    dropped = {d.reason: d.examples for d in report.dropped}
    assert dropped["duplicate track_id: repeated rows merged into the first (the genres of all copies are kept "
                   "together)"] == ("5SuOikwiRyPMVoIQDJUgSV", "5vjLSffimiIP26QG5WcN2K")


def test_a_workbook_row_without_an_id_is_reported_by_its_sheet_row(tmp_path):
    rows = [["track_id", "popularity", "danceability"], ["t1", 10, 0.5], [None, 20, 0.4], ["t3", None, 0.3]]
    path = write_workbook(tmp_path / "tracks.xlsx", {"Sheet1": rows})
    tracks, report = read_tracks_with_report(path)
    assert list(tracks["track_id"]) == ["t1"]
    reasons = {d.reason: d.examples for d in report.dropped}
    assert reasons == {"no track_id in the source row": ("row 3 of sheet 'Sheet1'",),
                       "no popularity (empty or not a number) in the source row": ("row 4 of sheet 'Sheet1'",)}


@pytest.mark.parametrize(("content", "said"), [
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old Excel 97-2003 workbook (.xls)"),
    (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xff\xfe\x9c\x80", "cannot be opened"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a binary file"),
])
def test_files_that_are_not_tables_are_refused_with_a_fix(tmp_path, content, said):
    path = tmp_path / "tracks.xlsx"
    path.write_bytes(content)
    with pytest.raises(FormatError) as info:
        read_tracks(path)
    assert str(path) in str(info.value) and said in str(info.value) and "Fix:" in str(info.value)


# ---------------------------------------------------------------------------------------------------------------
# Prediction input in any layout, with or without popularity
# ---------------------------------------------------------------------------------------------------------------


def simulated_in_layout(layout: str, folder: Path, *, rows: slice, popularity: bool = True) -> Path:
    """Simulated tracks written in a published Kaggle layout (column names and encodings of the layout)."""
    tracks, _ = simulate_catalog(n_artists=40, tracks_per_artist=15, seed=11)
    tracks = tracks.iloc[rows]
    audio = ["danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness",
             "instrumentalness", "liveness", "valence", "tempo", "time_signature"]
    whole = {"key", "mode", "time_signature"}
    features = {c: tracks[c].round().astype(int) if c in whole else tracks[c] for c in audio}
    folder.mkdir(parents=True, exist_ok=True)
    if layout == "kaggle-114k":
        frame = pd.DataFrame({"track_id": tracks["track_id"], "artists": tracks["artist_name"],
                              "album_name": "Album", "track_name": tracks["track_name"],
                              "popularity": tracks["popularity"],
                              "duration_ms": tracks["duration_ms"].round().astype(int),
                              "explicit": tracks["explicit"], **features, "track_genre": tracks["genre"]})
        path = folder / "dataset.csv"
        (frame if popularity else frame.drop(columns="popularity")).to_csv(path)
        return path
    ids = "['" + tracks["artist_id"] + "']"
    frame = pd.DataFrame({"id": tracks["track_id"], "name": tracks["track_name"], "popularity": tracks["popularity"],
                          "duration_ms": tracks["duration_ms"].round().astype(int),
                          "explicit": tracks["explicit"].astype(int), "artists": "['" + tracks["artist_name"] + "']",
                          "id_artists": ids, "release_date": tracks["release_date"].dt.strftime("%Y-%m-%d"),
                          **features})
    path = folder / "tracks.csv"
    (frame if popularity else frame.drop(columns="popularity")).to_csv(path, index=False)
    artists = tracks.drop_duplicates("artist_id")
    pd.DataFrame({"id": artists["artist_id"], "followers": artists["artist_followers"],
                  "genres": artists["artist_genres"].map(lambda g: str([str(x) for x in g])),
                  "name": artists["artist_name"],
                  "popularity": 50}).to_csv(folder / "artists.csv", index=False)
    return path


@pytest.mark.parametrize(("layout", "new_file"), [("kaggle-114k", FIXTURES / "kaggle-114k-new" / "dataset.csv"),
                                                  ("kaggle-600k", FIXTURES / "kaggle-600k-new" / "tracks.csv")])
def test_predict_scores_a_file_without_popularity_in_the_layout_the_model_was_trained_on(tmp_path, layout,
                                                                                         new_file):
    train_file = simulated_in_layout(layout, tmp_path / "train", rows=slice(0, 450))
    model = tmp_path / "model"
    trained = invoke("train", "--data", str(train_file), "--out", str(model), "--budget-seconds", "0",
                     "--no-evaluate")
    assert trained.exit_code == 0, trained.output
    assert "explicit_int" not in trained.output and "genre family" in trained.output
    out = tmp_path / "predictions.csv"
    result = invoke("predict", "--model", str(model), "--data", str(new_file), "--out", str(out))
    assert result.exit_code == 0, result.output
    predictions = pd.read_csv(out)
    expected_ids = pd.read_csv(new_file)["track_id" if layout == "kaggle-114k" else "id"]
    assert list(predictions["track_id"]) == list(expected_ids)
    assert predictions["prediction"].notna().all()
    assert (predictions["lower"] <= predictions["prediction"]).all()
    assert (predictions["prediction"] <= predictions["upper"]).all()
    # Simulated new tracks without popularity, in the same layout, are scored too (the files differ in ids).
    unseen = simulated_in_layout(layout, tmp_path / "new", rows=slice(450, 600), popularity=False)
    result = invoke("predict", "--model", str(model), "--data", str(unseen), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 150


def test_a_model_that_needs_genre_predicts_without_it_and_says_so_in_words(tmp_path):
    train_file = simulated_in_layout("kaggle-114k", tmp_path / "train", rows=slice(0, 300))
    model = tmp_path / "model"
    assert invoke("train", "--data", str(train_file), "--out", str(model), "--budget-seconds", "0",
                  "--no-evaluate").exit_code == 0
    no_genre = tmp_path / "tracks.csv"
    read_tracks(FIXTURES / "kaggle-114k-new" / "dataset.csv", require_popularity=False).drop(
        columns=["genre"]).to_csv(no_genre, index=False)
    result = invoke("predict", "--model", str(model), "--data", str(no_genre), "--out", str(tmp_path / "p.csv"))
    message = one_line(result.output)
    # The feature the file lacks is read as unknown (marginalised over training tracks), said in words.
    assert result.exit_code == 0, message
    assert "1 feature(s) the table lacks, read as unknown: genre family" in message
    assert "genre_family" not in message
    sidecar = json.loads((tmp_path / "p.report.json").read_text())
    assert sidecar["missing_features"] == ["genre_family"]
    assert pd.read_csv(tmp_path / "p.csv")["prediction"].notna().all()


def test_training_on_a_file_without_popularity_names_the_layout_and_column():
    result = invoke("train", "--data", str(FIXTURES / "kaggle-114k-new" / "dataset.csv"), "--out", "unused-model")
    message = one_line(result.output)
    assert result.exit_code == 2 and "kaggle-114k layout needs column(s) 'popularity'" in message
    assert "Fix:" in message and not Path("unused-model").exists()


# ---------------------------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------------------------


def test_an_empty_sibling_artists_file_says_what_is_wrong_with_it(tmp_path):
    shutil.copy(FIXTURES / "kaggle-600k" / "tracks.csv", tmp_path / "tracks.csv")
    (tmp_path / "artists.csv").write_bytes(b"")
    for target in (tmp_path, tmp_path / "tracks.csv"):
        result = invoke("inspect", str(target))
        message = one_line(result.output)
        assert result.exit_code == 2 and str(tmp_path / "artists.csv") in message
        assert "the artists table beside tracks.csv is unusable: the file is empty" in message
        assert "or delete it" in message and "track_id and popularity" not in message
    (tmp_path / "artists.csv").write_text("id,followers\nx,1\n")
    message = one_line(invoke("inspect", str(tmp_path)).output)
    assert "needs column(s) 'genres'" in message and "or delete it" in message


def test_an_artists_file_passed_alone_is_named_as_an_artist_table():
    result = invoke("inspect", str(FIXTURES / "kaggle-600k" / "artists.csv"))
    message = one_line(result.output)
    assert result.exit_code == 2 and "an artist table" in message and "pass the tracks.csv" in message


def test_errors_about_a_tiny_table_name_the_file_and_what_reading_kept(tmp_path):
    path = tmp_path / "tiny.csv"
    rows = [f"t{i},{'' if i < 3 else 40 + i},0.{i}5,0.5" for i in range(10)]
    # A public layout (TidyTuesday-like names would need more columns): the 600k layout drops rows without
    # popularity, so 7 of 10 are kept and training refuses the table with the real reason.
    path.write_text("id,name,popularity,artists,id_artists,danceability,energy\n" + "\n".join(
        f"{r.split(',')[0]},Song,{r.split(',')[1]},['A'],['a1'],{r.split(',')[2]},0.5" for r in rows) + "\n")
    result = invoke("train", "--data", str(path), "--out", str(tmp_path / "model"), "--budget-seconds", "0")
    message = one_line(result.output)
    assert result.exit_code == 2
    assert f"{path}: table: has 7 tracks, too few to fit a model" in message
    assert "7 of 10 source rows kept as tracks: 3 no popularity" in message


def test_messages_never_ask_a_cli_user_for_python_or_show_internal_names(tmp_path):
    cases = [
        ["inspect", str(QUIRKS / "canonical-conflicting-energy.csv")],
        ["inspect", str(FIXTURES / "kaggle-114k-new" / "dataset.csv"), "--format", "tidytuesday"],
        ["train", "--data", str(FIXTURES / "kaggle-114k-new" / "dataset.csv"), "--out", str(tmp_path / "m")],
        ["inspect", str(FIXTURES / "kaggle-600k" / "artists.csv")],
    ]
    renamed = tmp_path / "renamed.csv"
    renamed.write_text("track_popularity,trackid,danceability\n5,x,0.5\n")
    cases.append(["inspect", str(renamed)])
    for args in cases:
        result = invoke(*args)
        message = one_line(result.output)
        assert result.exit_code == 2, args
        for forbidden in ("popdrivers.", "read_tracks", "write_tracks", "df.to_", "format=", "explicit_int",
                          "dataset_genres", "genre_family", "Traceback"):
            assert forbidden not in message.replace("format= in Python", ""), (forbidden, message)


def test_the_genre_merge_is_mentioned_only_when_genres_were_merged(tmp_path):
    same_genre = tmp_path / "same.csv"
    same_genre.write_text("track_id,popularity,genre\nt1,5,pop\nt1,5,pop\nt2,6,rock\n")
    _, report = read_tracks_with_report(same_genre)
    assert [d.reason for d in report.dropped] == ["duplicate track_id: repeated rows merged into the first"]
    two_genres = tmp_path / "two.csv"
    two_genres.write_text("track_id,popularity,genre\nt1,5,pop\nt1,5,dance\nt2,6,rock\n")
    _, report = read_tracks_with_report(two_genres)
    assert "genres of all copies" in report.dropped[0].reason and "dataset_genres" not in report.dropped[0].reason


def test_inspect_json_prints_numbers_as_written_and_an_error_object_on_failure():
    result = invoke("inspect", str(KAGGLE_114K), "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["ranges"]["energy"]["min"] == 0.00102 and data["ranges"]["danceability"]["max"] == 0.698
    assert data["columns"]["unused"] == [{"file": "", "column": "Unnamed: 0",
                                          "reason": "not part of the kaggle-114k layout: not read"}]
    assert {"source": "track_genre", "column": "genre"} in data["columns"]["sources"]
    failed = invoke("inspect", str(QUIRKS / "canonical-conflicting-energy.csv"), "--json")
    assert failed.exit_code == 2
    error = json.loads(failed.stdout)
    assert "Energy" in error["error"] and error["source"].endswith("canonical-conflicting-energy.csv")
    missing = json.loads(invoke("inspect", "/no/such/file.csv", "--json").stdout)
    assert "no/such/file.csv" in missing["error"]


def test_inspect_out_converts_a_file_to_parquet_as_the_cluster_message_suggests(tmp_path):
    out = tmp_path / "dataset.parquet"
    result = invoke("inspect", str(QUIRKS / "kaggle-114k-latin1.csv"), "--out", str(out))
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(read_tracks(out), read_tracks(QUIRKS / "kaggle-114k-latin1.csv"))


def test_option_help_is_shown_literally():
    result = invoke("train", "--help")
    assert "pip install 'popdrivers[dask]'" in one_line(result.output)


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_written_files_get_the_permissions_the_umask_gives(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        written = [write_json_atomic(tmp_path / "metrics.json", {"a": 1}),
                   write_text_atomic(tmp_path / "predictions.csv", "track_id\n"),
                   write_tracks(read_tracks(KAGGLE_114K), tmp_path / "tracks.parquet")]
        write_json_atomic(tmp_path / "metrics.json", {"a": 2})  # replacing keeps the mode too
    finally:
        os.umask(previous)
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == mode, path
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_crawl_folder_without_popularity_is_prediction_input(tmp_path):
    folder = tmp_path / "crawl"
    shutil.copytree(FIXTURES / "crawl-mini", folder)
    track = pd.read_csv(folder / "track.csv", encoding="utf-8-sig", dtype=str)
    track.drop(columns="track_popularity").to_csv(folder / "track.csv", index=False)
    with pytest.raises(FormatError, match="needs column.*'track_popularity'"):
        read_tracks(folder)
    tracks = read_tracks(folder, require_popularity=False)
    assert len(tracks) == 6 and "popularity" not in tracks.columns  # t6, without popularity, is kept to score


def test_errors_raised_by_drivers_name_the_data_file(tmp_path):
    path = tmp_path / "no-audio.csv"
    path.write_text("track_id,popularity,artist_id\na,1,x\nb,2,x\n")
    result = invoke("drivers", "--data", str(path), "--out", str(tmp_path / "drivers"))
    assert result.exit_code == 2 and f"error: {path}: no driver can be estimated" in one_line(result.output)


def test_an_excel_upload_in_the_app_is_read_and_every_unused_column_listed(tmp_path):
    from popdrivers.app.services import read_upload

    path = write_workbook(tmp_path / "new releases.xlsx", {"Sheet1": typed_rows(FIXTURES / "kaggle-114k-new" /
                                                                                 "dataset.csv")})
    upload = read_upload(path.read_bytes(), path.name)
    assert upload.tracks is not None and len(upload.tracks) == 4
    assert "new releases.xlsx is an Excel workbook: read its sheet 'Sheet1'" in upload.notes
    assert "column not used: Unnamed: 0: not part of the kaggle-114k layout: not read" in upload.notes


# ---------------------------------------------------------------------------------------------------------------
# Files from other sources (issue 23): other names for the title and artist, percent scales, units, URIs
# ---------------------------------------------------------------------------------------------------------------


def test_a_top50_chart_is_read_with_its_dotted_headers_and_percent_scales():
    path = QUIRKS / "top50-chart.csv"
    tracks, report = read_tracks_with_report(path)
    assert report.format == "canonical"
    assert list(tracks["track_id"])[:2] == ["name:ann example | sunday example", "name:bo example | monday example"]
    first = tracks.iloc[0]
    # Energy 55 and Danceability 76 are percent of Spotify's 0-1 scale; Length. is in seconds.
    assert (first["energy"], first["danceability"], first["valence"]) == pytest.approx((0.55, 0.76, 0.75))
    assert (first["acousticness"], first["speechiness"], first["liveness"]) == pytest.approx((0.04, 0.03, 0.08))
    assert first["duration_ms"] == 191_000 and first["tempo"] == 117 and first["loudness"] == -6
    assert first["popularity"] == 79 and first["genre"] == "canadian pop"
    sources = dict(report.column_sources)
    assert sources["Beats.Per.Minute"] == "tempo" and sources["Loudness..dB.."] == "loudness"
    assert sources["Length."] == "duration_ms" and sources["Track.Name"] == "track_name"
    assert any("'Energy' holds 0-100 values, read as percent" in n and "55 -> 0.55" in n for n in report.notes)
    assert any("'Length.' holds lengths in seconds" in n for n in report.notes)
    assert_nothing_lost_silently(report, header_of(path))


def test_spotify_2023_layout_reads_artists_percent_columns_keys_and_split_dates():
    path = QUIRKS / "spotify-2023.csv"
    tracks, report = read_tracks_with_report(path, require_popularity=False)
    assert "popularity" not in tracks.columns  # a file to score, not to train on
    assert list(tracks["artist_name"]) == ["Dee Example", "Fay Example", "Gus Example", "Hal Example", "Ivy Example"]
    assert list(tracks["danceability"]) == pytest.approx([0.80, 0.71, 0.51, 0.55, 0.65])
    assert list(tracks["instrumentalness"]) == pytest.approx([0, 0, 0, 0, 0.63])  # mostly 0: percent all the same
    assert list(tracks["key"].fillna(-1)) == [11, 1, 5, 9, -1] and list(tracks["mode"]) == [1, 1, 1, 1, 0]
    assert list(tracks["tempo"]) == [125, 92, 138, 170, 144]
    assert str(tracks["release_date"].iloc[0].date()) == "2023-07-14"
    assert set(tracks["release_date_precision"]) == {"day"}
    assert any("several artists" in n and "first is used" in n for n in report.notes)
    assert_nothing_lost_silently(report, header_of(path))


def test_a_chart_with_track_and_artist_headers_gets_ids_and_its_popularity_read():
    path = QUIRKS / "most-streamed-2024.csv"
    tracks, report = read_tracks_with_report(path)
    assert tracks["track_id"].iloc[0] == "name:jo example | million example"
    assert list(tracks["popularity"]) == [92, 92, 92, 85] and list(tracks["explicit"]) == [False, True, False, False]
    assert list(tracks["isrc"])[:1] == ["QM24S2402528"]
    assert str(tracks["release_date"].iloc[0].date()) == "2024-04-26"
    # No album id: an album is its artist plus its album name (two tracks of Lou Example's album).
    assert tracks["album_id"].iloc[2] == tracks["album_id"].iloc[3] != tracks["album_id"].iloc[0]
    assert_nothing_lost_silently(report, header_of(path))


def test_a_kaggle_114k_file_without_track_ids_gets_them_from_artist_and_title_and_albums_from_names():
    path = QUIRKS / "kaggle-114k-no-id.csv"
    tracks, report = read_tracks_with_report(path)
    assert list(tracks["track_id"]) == ["name:gen hoshino | comedy", "name:ben woodward | ghost - acoustic",
                                        "name:ingrid michaelson | to begin again"]
    assert tracks["artist_name"].iloc[2] == "Ingrid Michaelson"  # the first of "Ingrid Michaelson;ZAYN"
    assert tracks["album_id"].iloc[1] == "name:name:Ben Woodward | ghost (acoustic)"
    # The row whose popularity is N/A is dropped with its file line, as in the 114k layout itself.
    assert [(d.reason, d.examples) for d in report.dropped] == [
        ("no popularity (empty or not a number) in the source row", ("line 4",))]
    assert_nothing_lost_silently(report, header_of(path))


def test_columns_that_carry_canonical_values_are_read_not_reported_unused():
    path = QUIRKS / "crawl-with-uris.csv"
    tracks, report = read_tracks_with_report(path)
    assert list(tracks["track_id"]) == ["0VjIjW4GlUZAMYd2vXMi3b", "7qiZfU4dY1lWllzX7mPBI3", "2XU0oxnq2qxCpomAAuJY8K"]
    assert list(tracks["track_name"]) == ["Blinding Example", "Shape Example", "Dance Example"]
    assert list(tracks["artist_name"]) == ["Ann Example", "Bo Example", "Ann Example"]
    assert list(tracks["track_number"]) == [9, 4, 2] and list(tracks["explicit"]) == [False, True, False]
    assert list(tracks["duration_ms"]) == [200040, 233713, 209438]
    assert list(tracks["artist_genres"].iloc[0]) == ["pop", "synthpop"]
    assert list(tracks["release_date_precision"]) == ["year"] * 3  # a time split needs release dates
    assert report.unused_columns == ()
    assert any("Spotify URI(s) or link(s) read as their ids" in n for n in report.notes)


def test_a_kaggle_600k_tracks_file_with_genres_of_its_own_reads_them(tmp_path):
    source = FIXTURES / "kaggle-600k" / "tracks.csv"
    lines = source.read_text(encoding="utf-8").splitlines()
    (tmp_path / "tracks.csv").write_text("\n".join([lines[0] + ",genres",
                                                     *(f'{line},"[\'tango\']"' for line in lines[1:])]) + "\n")
    tracks, report = read_tracks_with_report(tmp_path / "tracks.csv")
    assert report.format == "kaggle-600k"
    assert all(list(genres) == ["tango"] for genres in tracks["artist_genres"])
    assert "genres" not in {u.column for u in report.unused_columns}


def test_no_track_id_and_no_title_or_artist_names_the_columns_to_rename(tmp_path):
    path = tmp_path / "chart.csv"
    path.write_text("Song Title,Performer,popularity,energy\nOne,Ann,50,0.5\n")
    with pytest.raises(SchemaError) as info:
        read_tracks(path)
    message = str(info.value)
    assert "rename the title column to 'track_name' and the artist column to 'artist_name'" in message
    assert "Song Title" in message and "Performer" in message


def test_a_workbook_damaged_by_a_text_re_encode_is_named_as_such(tmp_path):
    good = write_workbook(tmp_path / "good.xlsx", {"Sheet1": [["track_id", "popularity"], ["t1", 5]]})
    damaged = tmp_path / "tracks.csv"
    # What saving a binary file through a text editor does: a byte-order mark, and bytes re-encoded as text.
    damaged.write_bytes(b"\xef\xbb\xbf" + good.read_bytes().decode("cp1252", errors="replace").encode("utf-8"))
    with pytest.raises(FormatError) as info:
        read_tracks(damaged)
    message = str(info.value).replace(str(damaged), "FILE")
    assert message.startswith("FILE: an Excel workbook (.xlsx) damaged by being saved as text") and "Fix:" in message
    assert "binary file" not in message and "';'" not in message and "fields" not in message


def test_inspect_takes_a_file_without_popularity_values_and_says_it_serves_prediction(tmp_path):
    path = tmp_path / "new.csv"
    path.write_text("track_id,popularity,energy\nt1,N/A,0.5\nt2,,0.6\n")
    result = invoke("inspect", str(path))
    assert result.exit_code == 0, result.output
    assert "usable as input to `popdrivers predict`" in one_line(result.output)
    assert "no popularity" in one_line(result.output)
