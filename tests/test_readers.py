"""Readers: every known layout becomes the canonical table, and every source row is accounted for."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import popdrivers
from popdrivers import read_tracks, write_tracks
from popdrivers.cli import app
from popdrivers.errors import FormatError
from popdrivers.features import reference_date
from popdrivers.sources.files import FORMATS, ReadReport, detect_format, read_tracks_with_report
from popdrivers.sources.tabular import TableFile

FIXTURES = Path(__file__).parent / "fixtures"
CRAWL = FIXTURES / "crawl-mini"
KAGGLE_114K = FIXTURES / "kaggle-114k" / "dataset.csv"
KAGGLE_600K = FIXTURES / "kaggle-600k" / "tracks.csv"


def assert_every_row_accounted_for(report: ReadReport) -> None:
    """Nothing silently lost: rows read = rows kept + rows dropped or merged (each with a reason)."""
    assert report.rows_read == report.rows_kept + report.rows_dropped
    assert all(d.reason and d.rows > 0 for d in report.dropped)


def read_raw(path: Path, **kwargs) -> pd.DataFrame:
    """The source file as published, read independently of popdrivers, to check the readers against."""
    return pd.read_csv(path, encoding="utf-8-sig", **kwargs)


# ---------------------------------------------------------------------------------------------------------------
# Real shared datasets
# ---------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog(catalog_2022):
    return read_tracks_with_report(catalog_2022)


def test_catalog_2022_keeps_every_track(catalog, catalog_2022):
    tracks, report = catalog
    assert report.format == "relational" and detect_format(catalog_2022) == "relational"
    assert report.rows_read == report.rows_kept == len(tracks) == 20_082
    assert report.dropped == ()
    assert tracks["track_id"].is_unique
    # README facts: popularity mean 38.2, sd 18.7, 0 to 93.
    assert tracks["popularity"].mean() == pytest.approx(38.2, abs=0.05)
    assert tracks["popularity"].std() == pytest.approx(18.7, abs=0.05)
    assert (tracks["popularity"].min(), tracks["popularity"].max()) == (0, 93)
    assert tracks["popularity"].dtype == np.int16 and tracks["explicit"].dtype == bool


def test_catalog_2022_bom_is_stripped_from_every_table(catalog):
    tracks, report = catalog
    assert not any("\ufeff" in c for c in tracks.columns)
    # track_id is the BOM-carrying first column of track.csv and audio.csv: the audio join only works without it.
    assert tracks["danceability"].notna().sum() == 20_081
    assert tracks["album_name"].notna().all() and tracks["artist_genres"].map(len).gt(0).sum() > 19_000


def test_catalog_2022_artist_missing_from_artist_table_falls_back_to_album_artist(catalog, catalog_2022):
    tracks, report = catalog
    raw_tracks = read_raw(catalog_2022 / "track.csv")
    albums = read_raw(catalog_2022 / "album.csv").set_index("album_id")
    artist_ids = set(read_raw(catalog_2022 / "artist.csv")["artist_id"])
    missing = ~raw_tracks["track_artist_id"].isin(artist_ids)
    album_artist = raw_tracks["track_album_id"].map(albums["album_artist_id"])
    fallback = missing & album_artist.isin(artist_ids)
    assert int(missing.sum()) == report.counts["artist_missing_from_artist_table"] == 845
    assert int(fallback.sum()) == report.counts["artist_fallback_to_album"] == 309
    assert report.counts["artist_unresolved"] == 536
    assert any("845 track(s) name an artist id missing" in note for note in report.notes)
    by_id = tracks.set_index("track_id")
    moved = raw_tracks.loc[fallback, "track_id"]
    assert (by_id.loc[moved, "artist_id"].to_numpy() == album_artist[fallback].to_numpy()).all()
    assert by_id.loc[moved, "artist_followers"].notna().all()
    unresolved = raw_tracks.loc[missing & ~fallback]
    assert (by_id.loc[unresolved["track_id"], "artist_id"].to_numpy() == unresolved["track_artist_id"].to_numpy()).all()
    assert by_id.loc[unresolved["track_id"], "artist_followers"].isna().all()


def test_catalog_2022_year_only_release_dates_keep_their_precision(catalog, catalog_2022):
    tracks, _ = catalog
    albums = read_raw(catalog_2022 / "album.csv", dtype=str)
    year_albums = set(albums.loc[albums["album_release_date"].str.len() == 4, "album_id"])
    assert len(year_albums) == 13
    year_only = tracks["album_id"].isin(year_albums)
    assert (tracks.loc[year_only, "release_date_precision"] == "year").all()
    assert (tracks.loc[~year_only, "release_date_precision"] == "day").all()
    assert (tracks.loc[year_only, "release_date"].dt.strftime("%m-%d") == "01-01").all()


def test_catalog_2022_track_without_audio_is_kept_with_empty_features(catalog):
    tracks, report = catalog
    assert report.counts["tracks_without_audio"] == 1
    no_audio = tracks[tracks["danceability"].isna()]
    assert len(no_audio) == 1 and no_audio["popularity"].notna().all()
    assert no_audio[["energy", "tempo", "duration_ms"]].isna().all(axis=None)


def test_playlist_songs_2020_collapses_to_unique_tracks_with_merged_genres(playlist_songs_2020):
    tracks, report = read_tracks_with_report(playlist_songs_2020)
    raw = read_raw(playlist_songs_2020)
    assert report.format == "tidytuesday"
    assert (report.rows_read, report.rows_kept) == (32_833, 28_356)
    assert [d.rows for d in report.dropped] == [32_833 - 28_356]
    assert_every_row_accounted_for(report)
    assert report.popularity_conflicts == 0
    # 1,687 tracks sit under more than one playlist genre: they keep all of them.
    assert int((tracks["dataset_genres"].map(len) > 1).sum()) == 1_687
    assert set(tracks["genre"].dropna()) == set(raw["playlist_genre"])
    assert "playlist_subgenre" in report.extra_columns
    # No artist id in the layout: the name stands in, so tracks of one artist still group together.
    named = tracks["artist_name"].notna()
    assert (tracks.loc[named, "artist_id"] == "name:" + tracks.loc[named, "artist_name"]).all()
    assert tracks["artist_id"].nunique() == raw["track_artist"].nunique() == 10_692
    precision = tracks["release_date_precision"].value_counts()
    unique_raw = raw.drop_duplicates("track_id")["track_album_release_date"].str.len().value_counts()
    assert (precision["day"], precision["month"], precision["year"]) == (unique_raw[10], unique_raw[7], unique_raw[4])


def test_genre_tracks_2021_maps_misspelt_loudness_and_float_coded_ints(genre_tracks_2021):
    tracks, report = read_tracks_with_report(genre_tracks_2021)
    raw = read_raw(genre_tracks_2021).drop_duplicates("id").reset_index(drop=True)
    assert report.format == "genre-tracks"
    assert (report.rows_read, report.rows_kept) == (11_200, 10_963)
    assert_every_row_accounted_for(report)
    assert "loadness" not in tracks.columns
    np.testing.assert_allclose(tracks["loudness"], raw["loadness"], rtol=1e-6)
    assert tracks["popularity"].dtype == np.int16
    assert (tracks["popularity"].to_numpy() == raw["popularity"].to_numpy()).all()
    assert tracks["explicit"].dtype == bool and int(tracks["explicit"].sum()) == int(raw["explicit"].sum())
    for column in ("key", "mode"):
        assert (tracks[column] % 1 == 0).all()
    assert set(tracks["release_date_precision"]) == {"day", "month", "year"}
    assert (tracks["dataset_genres"].map(len) >= 1).all()
    assert any("within-artist analysis is not possible" in note for note in report.notes)


def test_only_the_columns_a_layout_needs_are_read(genre_tracks_2021, playlist_songs_2020, monkeypatch):
    requested: list[str] = []
    original = TableFile.read

    def spy(self, positions, *args, **kwargs):
        requested.extend(self.header[p] for p in positions)
        return original(self, positions, *args, **kwargs)

    monkeypatch.setattr(TableFile, "read", spy)
    _, genre_report = read_tracks_with_report(genre_tracks_2021)
    _, playlist_report = read_tracks_with_report(playlist_songs_2020)
    not_read = {"url", "available_market", "idx", "playlist_name", "playlist_id"}
    assert not set(requested) & not_read
    # ... and each is listed as unused, with the reason.
    unused = {u.column: u.reason for u in (*genre_report.unused_columns, *playlist_report.unused_columns)}
    assert not_read <= set(unused)
    assert "not part of the genre-tracks layout" in unused["url"]
    assert "extra column" in unused["playlist_subgenre"]


# ---------------------------------------------------------------------------------------------------------------
# Hand-written fixtures in the published Kaggle layouts
# ---------------------------------------------------------------------------------------------------------------


def test_kaggle_114k_fixture():
    tracks, report = read_tracks_with_report(KAGGLE_114K)
    assert report.format == "kaggle-114k" == detect_format(KAGGLE_114K)
    assert (report.rows_read, report.rows_kept) == (11, 9)
    assert_every_row_accounted_for(report)
    assert "Unnamed: 0" not in tracks.columns  # the saved pandas index is not loaded
    by_id = tracks.set_index("track_id")
    # Same track under two genres: one row, both genres; a popularity conflict is reported, not averaged.
    assert by_id.loc["5SuOikwiRyPMVoIQDJUgSV", "dataset_genres"] == ["acoustic", "j-pop"]
    assert report.popularity_conflicts == 1 and by_id.loc["5vjLSffimiIP26QG5WcN2K", "popularity"] == 82
    # ';'-joined artists: the first credited artist is the primary one.
    assert by_id.loc["1iJBSr7s7jYXzM8EGcbK5b", "artist_name"] == "Ingrid Michaelson"
    assert by_id.loc["1iJBSr7s7jYXzM8EGcbK5b", "artist_id"] == "name:Ingrid Michaelson"
    assert by_id.loc["2aibwv5hGXSgw7Yru8IYTO", "album_name"] == 'Pictures of "Us"'
    # The published row with no names and a 0 ms length keeps its popularity; 0 ms and 0 BPM mean unknown.
    assert pd.isna(by_id.loc["1kR4gIb7nGxHPI3D2ifs59", "artist_id"])
    assert pd.isna(by_id.loc["1kR4gIb7nGxHPI3D2ifs59", "duration_ms"])
    assert pd.isna(by_id.loc["7Az3CRpQQxXrkPzKjL6bYk", "tempo"])
    assert tracks["explicit"].sum() == 1


def test_kaggle_600k_fixture_with_sibling_artists():
    tracks, report = read_tracks_with_report(KAGGLE_600K)
    assert report.format == "kaggle-600k" == detect_format(KAGGLE_600K) == detect_format(KAGGLE_600K.parent)
    assert (report.rows_read, report.rows_kept) == (9, 7)
    assert_every_row_accounted_for(report)
    reasons = {d.reason: d.examples for d in report.dropped}
    assert reasons == {"no track_id in the source row": ("line 10",),
                       "no popularity (empty or not a number) in the source row": ("line 9",)}
    by_id = tracks.set_index("track_id")
    assert by_id.loc["08y9GfoqCWfOGsKdwojr5e", "release_date_precision"] == "year"
    assert str(by_id.loc["08y9GfoqCWfOGsKdwojr5e", "release_date"].date()) == "1922-01-01"
    assert by_id.loc["4BJqT0PrAfrxzMOxytFOIz", "artist_name"] == "Guns N' Roses"
    assert by_id.loc["6habFhsOp2NvshLv26DqMb", "artist_id"] == "4V8Sr092TqfHkfAA5fXXqG"
    assert by_id.loc["6habFhsOp2NvshLv26DqMb", "artist_genres"] == ["dance pop", "latin", "latin pop",
                                                                    "puerto rican pop"]
    assert by_id.loc["07A5yehtSnoedViJAZkNnc", "artist_followers"] == 3528
    # Dick Haymes is not in artists.csv: counted, followers left empty.
    assert report.counts["artist_not_in_artists_file"] == 1
    assert pd.isna(by_id.loc["08y9GfoqCWfOGsKdwojr5e", "artist_followers"])


def test_kaggle_600k_without_artists_file(tmp_path):
    shutil.copy(KAGGLE_600K, tmp_path / "tracks.csv")
    tracks, report = read_tracks_with_report(tmp_path / "tracks.csv")
    assert "artist_followers" not in tracks.columns and len(tracks) == 7
    assert any("no artists.csv" in note for note in report.notes)


# ---------------------------------------------------------------------------------------------------------------
# Relational crawl folders (catalog-2022 layout, written by the Spotify collector)
# ---------------------------------------------------------------------------------------------------------------


def copy_crawl(tmp_path: Path) -> Path:
    target = tmp_path / "crawl"
    shutil.copytree(CRAWL, target)
    return target


def test_crawl_fixture_joins_tables_and_uses_collection_date():
    tracks, report = read_tracks_with_report(CRAWL)
    assert (report.rows_read, report.rows_kept) == (6, 5)
    assert_every_row_accounted_for(report)
    assert report.dropped[0].reason.startswith("no popularity") and report.dropped[0].examples == ("line 7",)
    by_id = tracks.set_index("track_id")
    assert by_id.loc["t3", "artist_id"] == "ar1"  # guest artist: album's artist instead
    assert by_id.loc["t5", "artist_id"] == "stranger7" and pd.isna(by_id.loc["t5", "artist_name"])
    assert (report.counts["artist_fallback_to_album"], report.counts["artist_unresolved"]) == (1, 1)
    assert by_id.loc["t4", "release_date_precision"] == "year"
    assert by_id.loc["t1", "artist_genres"] == ["dance pop", "pop", "post-teen pop"]
    assert pd.isna(by_id.loc["t4", "danceability"]) and report.counts["tracks_without_audio"] == 1
    assert reference_date(tracks) == pd.Timestamp("2022-06-01")


def test_crawl_as_parquet_reads_the_same(tmp_path):
    folder = tmp_path / "parquet-crawl"
    folder.mkdir()
    for table in ("track", "audio", "album", "artist"):
        read_raw(CRAWL / f"{table}.csv", dtype={"album_release_date": str}).to_parquet(folder / f"{table}.parquet")
    shutil.copy(CRAWL / "crawl.json", folder / "crawl.json")
    pd.testing.assert_frame_equal(read_tracks(folder), read_tracks(CRAWL))


@pytest.mark.parametrize("empty", ["header only", "zero bytes"])
def test_crawl_with_empty_audio_table_keeps_tracks(tmp_path, empty):
    folder = copy_crawl(tmp_path)
    audio = folder / "audio.csv"
    audio.write_text(audio.read_text(encoding="utf-8-sig").splitlines()[0] + "\n" if empty == "header only" else "")
    tracks, report = read_tracks_with_report(folder)
    assert len(tracks) == 5 and report.counts["tracks_without_audio"] == 5
    assert any("has no rows" in note for note in report.notes)
    if empty == "header only":
        assert tracks["danceability"].isna().all()


def test_crawl_missing_a_table_names_it_and_the_fix(tmp_path):
    folder = copy_crawl(tmp_path)
    (folder / "album.csv").unlink()
    with pytest.raises(FormatError) as info:
        read_tracks(folder)
    message = str(info.value)
    assert str(folder) in message and "album" in message and "album_id" in message and "Fix:" in message


def test_crawl_track_table_with_renamed_column_gets_did_you_mean(tmp_path):
    folder = copy_crawl(tmp_path)
    track = folder / "track.csv"
    track.write_text(track.read_text(encoding="utf-8-sig").replace("track_popularity", "track_popularty", 1))
    with pytest.raises(FormatError) as info:
        read_tracks(folder)
    message = str(info.value)
    assert str(track) in message and "'track_popularity'" in message and "did you mean 'track_popularty'" in message


def test_crawl_with_broken_crawl_json(tmp_path):
    folder = copy_crawl(tmp_path)
    (folder / "crawl.json").write_text('{"collected": "yesterday"}')
    with pytest.raises(FormatError, match=r"crawl\.json.*collected_at.*Fix:"):
        read_tracks(folder)


# ---------------------------------------------------------------------------------------------------------------
# Canonical files, detection, bad input
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_canonical_round_trip_of_the_simulated_catalogue(tmp_path, small_catalog, suffix):
    tracks, _ = small_catalog
    path = write_tracks(tracks, tmp_path / f"sim{suffix}")
    back, report = read_tracks_with_report(path)
    assert report.format == "canonical" and report.dropped == ()
    pd.testing.assert_frame_equal(back, tracks)
    assert popdrivers.read_tracks(path).equals(back)


def test_a_canonical_file_drops_rows_without_popularity_like_every_layout(tmp_path, small_catalog):
    """One rule for all layouts: a row without popularity is dropped for training, with its file line."""
    tracks, _ = small_catalog
    frame = tracks.head(5).copy()
    frame["popularity"] = frame["popularity"].astype("float64")
    frame.loc[2, "popularity"] = np.nan
    path = write_tracks(frame, tmp_path / "gap.csv")
    kept, report = read_tracks_with_report(path)
    assert len(kept) == 4 and frame.loc[2, "track_id"] not in set(kept["track_id"])
    (dropped,) = report.dropped
    assert dropped.reason.startswith("no popularity") and dropped.examples == ("line 4",)  # header = line 1
    assert len(read_tracks(path, require_popularity=False)) == 5


def test_ids_that_look_like_numbers_or_missing_markers_stay_text(tmp_path):
    path = tmp_path / "ids.csv"
    path.write_text("track_id,popularity,track_name\n007,5,None\nNA,6,NULL\n0123,7,\n")
    tracks = read_tracks(path)
    assert list(tracks["track_id"]) == ["007", "NA", "0123"]
    assert list(tracks["track_name"].fillna("<gap>")) == ["None", "NULL", "<gap>"]


def test_forced_format_that_does_not_fit_names_missing_columns(playlist_songs_2020):
    with pytest.raises(FormatError) as info:
        read_tracks(playlist_songs_2020, format="genre-tracks")
    message = str(info.value)
    assert "'loadness'" in message and "'id'" in message and "format=" in message
    with pytest.raises(FormatError, match="unknown format 'excel'.*kaggle-114k"):
        read_tracks(playlist_songs_2020, format="excel")
    with pytest.raises(FormatError, match="needs a folder"):
        read_tracks(playlist_songs_2020, format="relational")


def test_unknown_layout_lists_every_format_and_its_columns(tmp_path):
    path = tmp_path / "songs.csv"
    path.write_text("song,plays,mood\nx,1,happy\n")
    with pytest.raises(FormatError) as info:
        read_tracks(path)
    message = str(info.value)
    assert str(path) in message and "song, plays, mood" in message
    for name, spec in FORMATS.items():
        assert f"{name}:" in message and spec.expects[0] in message


def test_folder_with_several_unrelated_files_is_refused(tmp_path):
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_text("track_id,popularity\nx,1\n")
    with pytest.raises(FormatError, match="pass one file"):
        detect_format(tmp_path)


def test_damaged_workbook_is_refused_with_a_fix(tmp_path):
    path = tmp_path / "tracks.xlsx"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00\xff\xfe\x9c\x80")
    with pytest.raises(FormatError, match="Excel workbook or zip archive but cannot be opened.*Fix:"):
        read_tracks(path)


def test_report_to_dict_is_json_ready():
    _, report = read_tracks_with_report(KAGGLE_600K)
    data = json.loads(json.dumps(report.to_dict()))
    assert data["rows_read"] == 9 and data["rows_dropped"] == 2 and data["format"] == "kaggle-600k"
    assert "artist_genres" in data["columns"]["canonical"]


# ---------------------------------------------------------------------------------------------------------------
# `popdrivers inspect`
# ---------------------------------------------------------------------------------------------------------------


def test_inspect_prints_format_rows_columns_ranges_and_notes():
    result = CliRunner().invoke(app, ["inspect", str(CRAWL)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # Rich wraps long lines
    for text in ("relational", "rows read 6", "kept 5", "no popularity", "line 7", "collected_at", "danceability",
                 "album's artist"):
        assert text in output


def test_inspect_json():
    result = CliRunner().invoke(app, ["inspect", str(KAGGLE_114K), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["format"] == "kaggle-114k" and data["rows_kept"] == 9
    assert data["ranges"]["popularity"] == {"min": 0.0, "median": 58.0, "max": 82.0, "missing": 0}


@pytest.mark.parametrize("args", [
    ["/no/such/file.csv"], [str(FIXTURES)], [str(KAGGLE_114K), "--format", "tidytuesday"],
])
def test_inspect_bad_input_exits_2_without_traceback(args):
    result = CliRunner().invoke(app, ["inspect", *args])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output


def test_installed_console_script_inspects_a_dataset():
    # The console script itself, as installed: a packaging change that loses it must fail here.
    script = Path(sys.executable).with_name("popdrivers")
    assert script.exists(), f"console script {script} is not installed"
    command = [str(script)]
    env = {**os.environ, "COLUMNS": "160"}
    done = subprocess.run([*command, "inspect", str(KAGGLE_600K), "--json"], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows_kept"] == 7
    bad = subprocess.run([*command, "inspect", str(FIXTURES / "nope.csv")], capture_output=True, text=True,
                         timeout=120, env=env)
    assert bad.returncode == 2 and "error:" in bad.stderr and "Traceback" not in bad.stderr


def test_inspect_names_every_layout_the_readers_know():
    from popdrivers.cli.inspect import FORMAT_NAMES
    from popdrivers.sources.files import FORMATS

    assert tuple(FORMATS) == FORMAT_NAMES


def test_the_cli_starts_without_pandas():
    import subprocess
    import sys

    code = "import sys, popdrivers.cli; print('pandas' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() \
        == "False"
