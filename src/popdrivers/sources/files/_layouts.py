"""The layouts popdrivers reads: what each is, the columns (or tables) it expects and what they become."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from popdrivers import registry
from popdrivers.schema import AUDIO_FEATURES

# Canonical columns holding lists (written to CSV as JSON lists).
LIST_COLUMNS = ("artist_genres", "dataset_genres")
_AUDIO_SAME_NAME = tuple(c for c in AUDIO_FEATURES if c != "duration_ms")
# popdrivers' own descriptors, in a crawl's audio.csv when its previews were analysed (collect --audio).
MEASURED_DESCRIPTORS = tuple(f.name for f in registry.features() if f.sources == ("audio",))


@dataclass(frozen=True)
class FormatSpec:
    """One layout popdrivers reads: what it is, and the columns (or files) it expects.

    ``signature`` are the columns whose presence identifies the layout during auto-detection (compared up to
    case and spacing; popularity is not among them, so a file of new tracks to score is recognised too);
    ``columns`` maps each source column the reader uses to its canonical name (or to itself for an
    extra column kept as is, or to ``""`` for a column used internally and not kept).
    """

    name: str
    description: str
    expects: tuple[str, ...]
    signature: frozenset[str] = frozenset()
    columns: Mapping[str, str] = field(default_factory=dict)
    folder: bool = False

    def describe(self) -> str:
        """One line: the name, what it is, and what it expects."""
        return f"{self.name}: {self.description}; expects {', '.join(self.expects)}"

    def source_of(self, column: str) -> str:
        """The layout's name for a canonical column (itself when the layout does not rename it)."""
        return next((source for source, target in self.columns.items() if target == column), column)


def _same(*names: str) -> dict[str, str]:
    return {n: n for n in names}


# Relational crawl folder: the four tables of ../shared/data/catalog-2022 (the Spotify collector writes the same).
RELATIONAL_TABLES: dict[str, dict[str, str]] = {
    "track": {"track_id": "track_id", "track_name": "track_name", "track_artist_id": "artist_id",
              "track_album_id": "album_id", "track_popularity": "popularity", "track_explicit": "explicit",
              "track_number": "track_number", "disc_number": "disc_number", "track_disc_number": "disc_number",
              "track_isrc": "isrc", "isrc": "isrc", "track_n_artists": "n_artists", "n_artists": "n_artists",
              # written by `popdrivers collect` (Deezer's rank; where popularity came from)
              "track_deezer_rank": "deezer_rank", "track_popularity_source": "popularity_source"},
    "audio": {"track_id": "track_id", "track_duration": "duration_ms", "duration_ms": "duration_ms",
              **_same(*_AUDIO_SAME_NAME), "features_source": "features_source", "deezer_gain": "deezer_gain",
              "deezer_bpm": "deezer_bpm", **_same(*MEASURED_DESCRIPTORS)},
    "album": {"album_id": "album_id", "album_name": "album_name", "album_release_date": "release_date",
              "album_release_date_precision": "release_date_precision", "album_artist_id": "album_artist_id",
              "album_type": "album_type", "album_total_tracks": "album_total_tracks",
              "album_genre": "genre"},  # a Deezer crawl: the album's main genre
    "artist": {"artist_id": "artist_id", "artist_name": "artist_name", "artist_genre": "artist_genres",
               "artist_genres": "artist_genres", "artist_followers": "artist_followers"},
}
# Columns a relational table cannot do without (the others are used when present).
RELATIONAL_REQUIRED: dict[str, tuple[str, ...]] = {
    "track": ("track_id", "track_artist_id", "track_album_id", "track_popularity"),
    "audio": ("track_id",),
    "album": ("album_id", "album_artist_id"),
    "artist": ("artist_id",),
}
CRAWL_FILE = "crawl.json"

FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in (
        FormatSpec(
            "canonical", "the table popdrivers writes (CSV, Parquet or .xlsx; list columns as JSON lists; other "
            "spellings of its column names are recognised)",
            ("track_id", "popularity", "any other canonical column (track_name, artist_id, release_date, explicit, "
             "artist_followers, artist_genres, genre, the audio features, ...)"),
            frozenset({"track_id"}),
        ),
        FormatSpec(
            "relational", "a crawl folder of four tables (like catalog-2022 and the Spotify collector), "
            ".csv or .parquet, with an optional crawl.json holding collected_at",
            tuple(f"{table}.csv ({', '.join(RELATIONAL_REQUIRED[table])}, ...)" for table in RELATIONAL_TABLES),
            folder=True,
        ),
        FormatSpec(
            "tidytuesday", "TidyTuesday 2020-01-21 spotify_songs.csv (one row per track and playlist)",
            ("track_id", "track_name", "track_artist", "track_popularity", "track_album_id", "track_album_name",
             "track_album_release_date", "playlist_genre", "playlist_subgenre", "the audio features", "duration_ms"),
            frozenset({"track_id", "track_artist", "playlist_genre"}),
            {"track_id": "track_id", "track_name": "track_name", "track_artist": "artist_name",
             "track_popularity": "popularity", "track_album_id": "album_id", "track_album_name": "album_name",
             "track_album_release_date": "release_date", "playlist_genre": "genre",
             "playlist_subgenre": "playlist_subgenre", **_same(*_AUDIO_SAME_NAME, "duration_ms")},
        ),
        FormatSpec(
            "genre-tracks", "genre-tracks tracks.csv (100 tracks per genre; 'loadness' sic, float-coded ints)",
            ("id", "name", "genre", "popularity", "loadness", "release_date", "explicit", "the audio features",
             "duration_ms"),
            frozenset({"id", "name", "genre", "loadness"}),
            {"id": "track_id", "name": "track_name", "genre": "genre", "popularity": "popularity",
             "loadness": "loudness", "release_date": "release_date", "explicit": "explicit",
             **_same(*(c for c in _AUDIO_SAME_NAME if c != "loudness"), "duration_ms")},
        ),
        FormatSpec(
            "kaggle-114k", "Kaggle 'Spotify Tracks Dataset' dataset.csv (114k rows, artists ';'-joined)",
            ("Unnamed: 0", "track_id", "artists", "album_name", "track_name", "popularity", "duration_ms",
             "explicit", "the audio features", "time_signature", "track_genre"),
            frozenset({"track_id", "artists", "track_genre"}),
            {"track_id": "track_id", "artists": "", "album_name": "album_name", "track_name": "track_name",
             "popularity": "popularity", "explicit": "explicit", "track_genre": "genre",
             **_same(*_AUDIO_SAME_NAME, "duration_ms")},
        ),
        FormatSpec(
            "kaggle-600k", "Kaggle 'Spotify 1921-2020 600k' tracks.csv, with an optional sibling artists.csv "
            "(id, followers, genres, name, popularity)",
            ("id", "name", "popularity", "duration_ms", "explicit", "artists", "id_artists", "release_date",
             "the audio features", "time_signature"),
            frozenset({"id", "artists", "id_artists"}),
            {"id": "track_id", "name": "track_name", "popularity": "popularity", "explicit": "explicit",
             "artists": "", "id_artists": "", "release_date": "release_date",
             **_same(*_AUDIO_SAME_NAME, "duration_ms")},
        ),
    )
}
# Detection order: the most specific signatures first; canonical is the fallback for anything with track_id.
DETECTION_ORDER = ("kaggle-600k", "kaggle-114k", "tidytuesday", "genre-tracks", "canonical")

