"""Release structure from titles and positions: versions, featured artists, songs released more than once."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from popdrivers import read_tracks
from popdrivers.features import (
    add_release_structure,
    base_title,
    has_featured_artist,
    release_structure_summary,
    track_version,
)

# Titles as they appear in the shared datasets (catalog-2022, playlist-songs-2020), with the version they name.
REAL_TITLES = {
    "Call If You Need Me - Live at Red Rocks Amphitheatre": "live",
    "La Panel Cafe - En Vivo": "live",
    "Hello! - Live At The BBC For \"Pop Go The Beatles\" / 25th June, 1963": "live",
    "Thing For You - David Guetta Remix": "remix",
    "I'm Blue - Club Mix": "remix",
    "Wake Up - Original Mix": "original",
    "Sandstorm - Radio Edit": "edit",
    "Substitute - Single Version": "edit",
    "Gimme the Loot - 2005 Remaster": "remaster",
    "Paint It, Black - Mono": "remaster",
    "Turn It Off - Acoustic Version": "acoustic",
    "Praia do Rosa - Acústico": "acoustic",
    "Happiness Is A Warm Gun - Esher Demo": "demo",
    "It's Over Isn't It - Karaoke Version": "karaoke",
    "Sonder Son (Interlude)": "interlude",
    "Stompdown - Skit 1": "interlude",
    "Live Your Life": "original",
    "Don't You (Forget About Me)": "original",
}


@pytest.mark.parametrize(("title", "version"), list(REAL_TITLES.items()))
def test_version_is_read_from_the_title(title, version):
    assert track_version(title) == version


def test_the_real_titles_are_in_the_shared_datasets(catalog_2022, playlist_songs_2020):
    titles = set(read_tracks(catalog_2022)["track_name"].dropna()) | set(
        read_tracks(playlist_songs_2020)["track_name"].dropna())
    missing = [t for t in REAL_TITLES if t not in titles]
    assert not missing, missing


def test_featured_artists_and_base_titles():
    assert has_featured_artist("Drummer (feat. Kranium)") and has_featured_artist("All The Stars (with SZA)")
    assert has_featured_artist("Leaders ft. NAV") and not has_featured_artist("Without Me")
    assert base_title("Drummer (feat. Kranium) - Remix") == "drummer"
    assert base_title("Gimme the Loot - 2005 Remaster") == base_title("Gimme The Loot") == "gimme the loot"
    assert base_title("???") == "???"  # a title of punctuation keeps itself rather than becoming empty


def test_song_groups_join_copies_but_not_other_takes():
    tracks = pd.DataFrame({
        "track_id": list("abcdef"), "artist_id": ["x", "x", "x", "x", "y", "x"],
        "track_name": ["Song", "Song", "Song - 2011 Remaster", "Song - Live", "Song", "Other"],
        "duration_ms": [200_000, 200_500, 203_000, 260_000, 200_000, 200_000],
        "track_number": [1, 1, 3, 2, 1, 2], "album_total_tracks": [12, 12, 12, 10, 1, 12],
    })
    out = add_release_structure(tracks)
    groups = out.set_index("track_id")["song_group"]
    assert groups["a"] == groups["b"] == groups["c"]  # clean/explicit twin and remaster: one song
    assert groups["d"] != groups["a"]                # a live take lasts a minute longer
    assert groups["e"] != groups["a"]                # another artist's song of the same name
    assert out.set_index("track_id")["song_group_size"].to_dict() == {"a": 3, "b": 3, "c": 3, "d": 1, "e": 1,
                                                                      "f": 1}
    assert out["relative_position"].tolist() == pytest.approx([0, 0, 2 / 11, 1 / 9, np.nan, 1 / 11], nan_ok=True)
    assert out["release_type"].tolist() == ["album", "album", "album", "album", "single", "album"]


def test_catalog_2022_release_structure(catalog_2022):
    summary = release_structure_summary(read_tracks(catalog_2022))
    assert summary["versions"]["live"]["share"] == pytest.approx(0.107, abs=0.01)
    assert summary["track_position_known"] and summary["albums_with_two_or_more_tracks"] > 1000
    assert 500 < summary["song_groups_with_several_releases"] < 2000


def test_inspect_reports_versions_and_song_groups(catalog_2022):
    from popdrivers.cli import app

    runner = CliRunner()
    text = runner.invoke(app, ["inspect", str(catalog_2022)], env={"COLUMNS": "200"})
    assert text.exit_code == 0, text.output
    assert "versions named in titles: original 80.6%, live 10.7%" in text.output
    assert "songs released more than once" in text.output
    data = json.loads(runner.invoke(app, ["inspect", str(catalog_2022), "--json"]).output)
    assert data["release_structure"]["versions"]["live"]["tracks"] > 2000
