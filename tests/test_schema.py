"""The canonical table contract: every malformed input is one SchemaError that lists all problems with their fix."""

from __future__ import annotations

import math
import os
import string
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from popdrivers import SchemaError, read_tracks, validate, write_tracks
from popdrivers.schema import CANONICAL_COLUMNS, check_tracks
from popdrivers.sources.files import read_tracks_with_report

GOOD_ROWS = [
    "track_id,popularity,track_name,artist_id,release_date,explicit,artist_genres,danceability,energy,key,tempo",
    't1,50,One,a1,2019-05-17,True,"[""pop""]",0.5,0.6,5,120.0',
    't2,20,Two,a1,2009,false,"[]",0.4,0.7,0,98.5',
    't3,70,Three,a2,2011-03,1,pop;dance pop,0.9,0.2,11,130.0',
]


def write_csv(tmp_path: Path, lines: list[str], name: str = "tracks.csv") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def replace_cell(column: str, row: int, value: str) -> list[str]:
    """GOOD_ROWS with one cell (data row ``row``, 1-based) replaced."""
    header = GOOD_ROWS[0].split(",")
    lines = list(GOOD_ROWS)
    frame = pd.read_csv(pd.io.common.StringIO("\n".join(lines)), dtype=str, keep_default_na=False)
    frame.loc[row - 1, column] = value
    assert header == list(frame.columns)
    return frame.to_csv(index=False).strip().splitlines()


def schema_error(path: Path, **kwargs) -> SchemaError:
    with pytest.raises(SchemaError) as info:
        read_tracks(path, **kwargs)
    return info.value


def assert_names(error: SchemaError, path: Path, column: str, *fix_words: str) -> None:
    """The message names the file, the column, and says how to fix it."""
    message = str(error)
    assert str(path) in message
    assert f"'{column}'" in message
    assert "Fix:" in message
    for word in fix_words:
        assert word in message, f"{word!r} not in {message!r}"


def test_good_file_reads_with_mixed_date_precision_kept(tmp_path):
    tracks = read_tracks(write_csv(tmp_path, GOOD_ROWS))
    assert list(tracks["release_date_precision"]) == ["day", "year", "month"]
    assert list(tracks["release_date"].dt.strftime("%Y-%m-%d")) == ["2019-05-17", "2009-01-01", "2011-03-01"]
    assert list(tracks["explicit"]) == [True, False, True]
    assert list(tracks["artist_genres"]) == [["pop"], [], ["pop", "dance pop"]]
    assert tracks["popularity"].dtype == np.int16


def test_missing_popularity_column_says_add_it(tmp_path):
    lines = [",".join(c for c in line.split(",")[:1] + line.split(",")[2:4]) for line in GOOD_ROWS]
    path = write_csv(tmp_path, lines)
    error = schema_error(path)
    assert_names(error, path, "popularity", "add a 'popularity' column")
    # Prediction input may lack popularity: the same file is then fine.
    assert len(read_tracks(path, require_popularity=False)) == 3


def test_misspelt_column_gets_did_you_mean(tmp_path):
    path = write_csv(tmp_path, [GOOD_ROWS[0].replace("popularity", "popularty"), *GOOD_ROWS[1:]])
    assert_names(schema_error(path), path, "popularity", "did you mean 'popularty'")


def test_known_alias_column_is_read_and_the_mapping_reported(tmp_path):
    path = write_csv(tmp_path, [GOOD_ROWS[0].replace("popularity", "track_popularity"), *GOOD_ROWS[1:]])
    tracks, report = read_tracks_with_report(path)
    assert list(tracks["popularity"]) == [50, 20, 70]
    assert "column 'track_popularity' read as 'popularity' (a common name for it)" in report.notes


def test_known_alias_column_is_read_in_a_public_layout_too(tmp_path):
    # A Kaggle 114k file whose popularity column was renamed: the layout is recognised and the column used.
    source = Path(__file__).parent / "fixtures" / "kaggle-114k" / "dataset.csv"
    lines = source.read_text(encoding="utf-8").splitlines()
    path = write_csv(tmp_path, [lines[0].replace(",popularity,", ",track_popularity,"), *lines[1:]])
    tracks, report = read_tracks_with_report(path)
    assert report.format == "kaggle-114k"
    pd.testing.assert_frame_equal(tracks, read_tracks(source))
    assert "column 'track_popularity' read as 'popularity' (a common name for it)" in report.notes


def test_known_alias_column_is_named_in_the_fix_when_validating_a_frame():
    frame = pd.DataFrame({"track_id": ["a", "b"], "track_popularity": [1, 2]})
    with pytest.raises(SchemaError, match="column 'popularity': is missing. Fix: rename column 'track_popularity' "
                                          "to 'popularity'"):
        validate(frame)


def test_renamed_id_column_is_named_in_the_fix(tmp_path):
    path = write_csv(tmp_path, [GOOD_ROWS[0].replace("track_id", "trackid"), *GOOD_ROWS[1:]])
    assert_names(schema_error(path), path, "track_id", "did you mean 'trackid'")


def test_text_in_a_numeric_column(tmp_path):
    path = write_csv(tmp_path, replace_cell("danceability", 2, "high"))
    error = schema_error(path)
    assert_names(error, path, "danceability", "must be numeric", "'high'")
    assert [p.rows for p in error.problems] == [1]


def test_out_of_range_values(tmp_path):
    lines = replace_cell("energy", 1, "1.5")
    path = write_csv(tmp_path, lines)
    assert_names(schema_error(path), path, "energy", "outside 0 to 1", "'1.5'")
    path = write_csv(tmp_path, replace_cell("popularity", 3, "130"), "pop.csv")
    assert_names(schema_error(path), path, "popularity", "outside 0 to 100")


def test_fractional_value_in_a_whole_number_column(tmp_path):
    path = write_csv(tmp_path, replace_cell("key", 1, "2.5"))
    assert_names(schema_error(path), path, "key", "whole numbers")


def test_infinite_values(tmp_path):
    path = write_csv(tmp_path, replace_cell("tempo", 1, "inf"))
    assert_names(schema_error(path), path, "tempo", "infinite")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    error = schema_error(path)
    assert str(path) in str(error) and "empty" in str(error) and "Fix:" in str(error)


def test_blank_lines_only(tmp_path):
    path = write_csv(tmp_path, ["", "  ", ""])
    error = schema_error(path)
    assert "no header row" in str(error) and "Fix:" in str(error)


def test_header_only(tmp_path):
    path = write_csv(tmp_path, GOOD_ROWS[:1])
    error = schema_error(path)
    assert str(path) in str(error) and "header but no rows" in str(error) and "Fix:" in str(error)


def test_rows_without_a_required_value_are_dropped_with_their_file_lines(tmp_path):
    path = write_csv(tmp_path, replace_cell("popularity", 2, "N/A"))
    tracks, report = read_tracks_with_report(path)
    assert list(tracks["track_id"]) == ["t1", "t3"]
    assert [(d.reason, d.examples) for d in report.dropped] == [
        ("no popularity (empty or not a number) in the source row", ("line 3",))]
    path = write_csv(tmp_path, replace_cell("track_id", 3, ""), "noid.csv")
    _, report = read_tracks_with_report(path)
    assert [(d.reason, d.examples) for d in report.dropped] == [("no track_id in the source row", ("line 4",))]
    with pytest.raises(SchemaError, match=r"has empty cells \(1 row at row 2\)"):  # a DataFrame: its index
        validate(pd.DataFrame({"track_id": ["a", "b", "c"], "popularity": [1.0, 2.0, None]}))


def test_value_problems_name_the_file_lines(tmp_path):
    path = write_csv(tmp_path, replace_cell("energy", 3, "3"))
    assert_names(schema_error(path), path, "energy", "outside 0 to 1", "at line 4")


def test_the_first_line_of_a_many_problem_error_is_one_reason_with_its_fix(tmp_path):
    frame = pd.read_csv(pd.io.common.StringIO("\n".join(GOOD_ROWS)), dtype=str, keep_default_na=False)
    frame.loc[0, "key"] = "12"
    frame.loc[1, "energy"] = "7"
    frame.loc[2, "tempo"] = "fast"
    path = tmp_path / "many.csv"
    frame.to_csv(path, index=False)
    error = schema_error(path)
    first, *rest = str(error).splitlines()
    assert first.startswith(f"{path}: column '") and "Fix:" in first and "(and 2 more problems, below)" in first
    assert len(rest) == len(error.problems) - 1 == 2 and all(line.startswith("  - column") for line in rest)


@pytest.mark.parametrize(("delimiter", "said"), [(";", "';'"), ("\t", "tabs"), ("|", "'|'")])
def test_other_delimiters_are_read_and_reported(tmp_path, delimiter, said):
    lines = [line.replace(",", delimiter) for line in GOOD_ROWS]
    lines[1] = lines[1].replace('"[""pop""]"', '["pop"]')  # the only cell that needed quoting for ','
    lines[3] = lines[3].replace("pop;dance pop", "pop" if delimiter == ";" else "pop;dance pop")
    path = write_csv(tmp_path, lines)
    tracks, report = read_tracks_with_report(path)
    assert list(tracks["track_id"]) == ["t1", "t2", "t3"] and list(tracks["tempo"]) == [120.0, 98.5, 130.0]
    assert f"tracks.csv separates columns with {said}, not ',': read as such" in report.notes


def test_bad_booleans(tmp_path):
    path = write_csv(tmp_path, replace_cell("explicit", 2, "maybe"))
    assert_names(schema_error(path), path, "explicit", "True/False", "'maybe'")


def test_bad_genre_lists(tmp_path):
    path = write_csv(tmp_path, replace_cell("artist_genres", 1, "['pop'"))
    assert_names(schema_error(path), path, "artist_genres", "JSON list")


def test_unparseable_dates(tmp_path):
    path = write_csv(tmp_path, replace_cell("release_date", 1, "someday"))
    assert_names(schema_error(path), path, "release_date", "YYYY-MM-DD, YYYY-MM or YYYY")
    path = write_csv(tmp_path, replace_cell("release_date", 1, "1850-01-01"), "old.csv")
    assert_names(schema_error(path), path, "release_date", "before 1900")


def test_every_problem_is_listed_at_once(tmp_path):
    frame = pd.read_csv(pd.io.common.StringIO("\n".join(GOOD_ROWS)), dtype=str, keep_default_na=False)
    frame.loc[0, "danceability"] = "loud"
    frame.loc[1, "energy"] = "3"
    frame.loc[2, "explicit"] = "perhaps"
    frame.loc[0, "key"] = "12"
    frame.loc[1, "release_date"] = "soon"
    frame.loc[2, "popularity"] = "130"
    path = tmp_path / "many.csv"
    frame.to_csv(path, index=False)
    error = schema_error(path)
    columns = {p.column for p in error.problems}
    assert columns == {"danceability", "energy", "explicit", "key", "release_date", "popularity"}
    assert all(p.fix for p in error.problems)
    assert str(error).count("Fix:") == len(error.problems) == 6


def test_duplicated_ids_merge_and_conflicting_popularity_is_reported():
    frame = pd.DataFrame({
        "track_id": ["a", "a", "b", "c", "c"],
        "popularity": [10, 30, 5, 7, 7],
        "genre": ["pop", "rock", "jazz", "edm", "house"],
    })
    clean, report = check_tracks(frame)
    assert list(clean["track_id"]) == ["a", "b", "c"]
    assert list(clean["popularity"]) == [10, 5, 7]  # first value kept, never averaged
    assert list(clean["dataset_genres"]) == [["pop", "rock"], ["jazz"], ["edm", "house"]]
    assert report.popularity_conflicts == 1
    assert any("different popularity" in note for note in report.notes)
    assert report.dropped[0].rows == 2 and report.rows_in - report.rows_out == 2


def test_validate_rejects_what_is_not_a_frame():
    with pytest.raises(TypeError):
        validate([{"track_id": "a", "popularity": 1}])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# Fuzz: random frames are either valid or one SchemaError; valid frames survive a CSV and a Parquet round trip.
# ---------------------------------------------------------------------------------------------------------------

_ANY_CELL = st.one_of(
    st.none(),
    st.integers(-300, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=6),
    st.sampled_from(["2009", "2009-05", "2009-05-17", "1850", "[\"pop\"]", "['a', 'b']", "['x'", "True", "1.0",
                     "nan", "", " ", "0", "100", "-1", "2.5"]),
)
_FUZZ_COLUMNS = ["track_id", "popularity", "artist_id", "release_date", "release_date_precision", "explicit",
                 "artist_followers", "artist_genres", "genre", "danceability", "key", "tempo", "duration_ms",
                 "mystery"]


@st.composite
def random_frames(draw):
    n_rows = draw(st.integers(0, 6))
    columns = draw(st.lists(st.sampled_from(_FUZZ_COLUMNS), unique=True, max_size=8))
    data = {c: draw(st.lists(_ANY_CELL, min_size=n_rows, max_size=n_rows)) for c in columns}
    return pd.DataFrame(data, dtype=object) if columns else pd.DataFrame(index=range(n_rows))


@settings(max_examples=int(os.environ.get("FUZZ_N", 150)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_frames(), st.booleans())
def test_validate_returns_a_clean_frame_or_one_schema_error(frame, require_popularity):
    try:
        clean = validate(frame, require_popularity=require_popularity)
    except SchemaError as error:
        assert error.problems and all(p.fix for p in error.problems)
        return
    assert clean["track_id"].is_unique and clean["track_id"].notna().all()
    assert set(frame.columns) <= set(clean.columns) | {"release_date_precision"}


_SAFE_TEXT = st.text(string.ascii_letters + string.digits + " -'é&", min_size=1, max_size=10).filter(
    lambda s: s.strip() == s and s.lower() not in {"na", "nan", "null", "none", "n/a"})
_GENRE = st.sampled_from(["pop", "dance pop", "trap", "k-pop", "r&b", "latin"])
_DATE = st.builds(
    lambda y, m, d, precision: {"year": f"{y}", "month": f"{y}-{m:02d}", "day": f"{y}-{m:02d}-{d:02d}"}[precision],
    st.integers(1950, 2024), st.integers(1, 12), st.integers(1, 28), st.sampled_from(["year", "month", "day"]))


def _maybe(strategy):
    return st.one_of(st.none(), strategy)


@st.composite
def valid_frames(draw):
    n_rows = draw(st.integers(1, 8))
    ids = draw(st.lists(st.text(string.ascii_letters + string.digits, min_size=1, max_size=4), min_size=n_rows,
                        max_size=n_rows))
    frame = pd.DataFrame({
        "track_id": ids,
        "popularity": draw(st.lists(st.integers(0, 100), min_size=n_rows, max_size=n_rows)),
    })
    optional = {
        "track_name": _maybe(_SAFE_TEXT),
        "artist_id": _maybe(_SAFE_TEXT),
        "release_date": _maybe(_DATE),
        "explicit": _maybe(st.booleans()),
        "artist_followers": _maybe(st.integers(0, 10**8)),
        "artist_genres": st.lists(_GENRE, max_size=3),
        "genre": _maybe(_GENRE),
        "danceability": _maybe(st.floats(0, 1, width=32)),
        "loudness": _maybe(st.floats(-60, 5, width=32)),
        "key": _maybe(st.integers(-1, 11)),
        "tempo": _maybe(st.floats(1, 250, width=32)),
        "duration_ms": _maybe(st.integers(1, 10**7)),
        "play_count": st.integers(0, 1000),
    }
    chosen = draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=len(optional)))
    for column in chosen:
        frame[column] = pd.Series(draw(st.lists(optional[column], min_size=n_rows, max_size=n_rows)), dtype=object)
    return frame


@settings(max_examples=int(os.environ.get("FUZZ_N", 40)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_frames())
def test_valid_tables_round_trip_through_csv_and_parquet(frame):
    clean = validate(frame)
    assert set(clean.columns) >= set(frame.columns)
    with tempfile.TemporaryDirectory() as folder:
        for name in ("tracks.csv", "tracks.parquet"):
            path = write_tracks(clean, Path(folder) / name)
            back = read_tracks(path)
            pd.testing.assert_frame_equal(back, clean, check_dtype=False, obj=name)
            for column in set(clean.columns) & set(CANONICAL_COLUMNS):
                assert back[column].dtype == clean[column].dtype, (name, column)


def test_round_trip_keeps_float_precision_of_audio_features(tmp_path):
    frame = pd.DataFrame({"track_id": ["a", "b"], "popularity": [1, 2], "danceability": [0.1234567, math.pi / 4]})
    clean = validate(frame)
    back = read_tracks(write_tracks(clean, tmp_path / "t.csv"))
    assert back["danceability"].tolist() == clean["danceability"].tolist()


def test_precision_without_a_release_date_is_kept_once():
    import pandas as pd

    from popdrivers.schema import validate

    clean = validate(pd.DataFrame({"track_id": ["a", "b"], "popularity": [1, 2],
                                   "release_date_precision": ["day", "year"]}))
    assert list(clean.columns).count("release_date_precision") == 1
