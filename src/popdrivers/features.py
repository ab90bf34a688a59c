"""Derived columns for modelling, computed in one place.

``build_features`` adds, to a validated canonical table:

=================  ==================================================================================
column             meaning
=================  ==================================================================================
track_age_days     days from release to the reference date (collection date if known, else the newest
                   release in the data); never "12 minus the release month"
release_year       calendar year of release
duration_min       duration in minutes
log_followers      log10(1 + artist followers)
genre_family       one of :data:`GENRE_FAMILIES`, from the artist's Spotify genres, else the dataset genre
key_cat            ``key`` as a pandas categorical (a pitch class is a label, not a quantity)
explicit_int       explicit flag as 0/1 float (NaN when unknown)
=================  ==================================================================================
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import numpy as np
import pandas as pd

from popdrivers import registry

# Families, in the order rules are tried: the first family whose pattern matches a genre wins, so
# "pop rap" is hip hop, "latin pop" is latin, "country pop" is country, "pop punk" is rock, "dance pop" and
# "electropop" are pop.
GENRE_FAMILY_RULES: tuple[tuple[str, str], ...] = (
    ("latin", r"latin|reggaeton|urbano|bachata|salsa|cumbia|mexican|corrido|banda|sertanejo|samba|forro|pagode"
              r"|mpb|tango|brazil|spanish|funk carioca|dembow|trap latino|flamenco"),
    ("hip hop", r"hip hop|hip-hop|\brap\b|trap|drill|grime|crunk|boom bap"),
    ("r&b", r"r&b|r-n-b|r n b|\bsoul\b|neo soul|urban contemporary|funk|motown|gospel|quiet storm|disco"),
    ("metal", r"metal|grindcore|hardcore|deathcore|djent"),
    ("rock", r"rock|punk|grunge|\bemo\b|goth|garage|ska|psych|shoegaze|britpop|new wave|post-punk|guitar"),
    ("country", r"country|honky|americana|bluegrass|red dirt|outlaw"),
    ("folk & acoustic", r"folk|acoustic|singer-songwriter|songwriter|indie folk|celtic"),
    ("jazz & blues", r"jazz|blues|swing|bebop|bossa"),
    ("classical & soundtrack", r"classical|orchestra|soundtrack|score|opera|piano|baroque|show tunes|show-tunes"
                               r"|new age|new-age|sleep|ambient|study|romantic era|compositional"),
    ("pop", r"pop|boy band|girl group|idol|teen|adult standards|easy listening|party|happy|romance"),
    ("electronic", r"edm|house|techno|trance|dubstep|electro|drum and bass|drum-and-bass|dnb|big room|bass music"
                   r"|hardstyle|idm|breakbeat|trip hop|trip-hop|\bdub\b|garage|club|\bdance\b|j-dance|chill"),
    ("reggae & world", r"reggae|dancehall|afro|world|indian|bollywood|turkish|iranian|malay|french|german"
                       r"|swedish|british|desi|k-indie|arab"),
)
GENRE_FAMILIES: tuple[str, ...] = tuple(name for name, _ in GENRE_FAMILY_RULES) + ("other", "unknown")
_COMPILED = tuple((name, re.compile(pattern)) for name, pattern in GENRE_FAMILY_RULES)
DERIVED_COLUMNS = (
    "track_age_days", "release_year", "duration_min", "log_followers", "genre_family", "key_cat", "explicit_int",
)


def genre_family_of_genre(genre: str) -> str:
    """Map one Spotify micro-genre ("dance pop", "trap", "edm") to its family; 'other' when no rule fits."""
    text = str(genre).strip().lower()
    if not text:
        return "unknown"
    for name, pattern in _COMPILED:
        if pattern.search(text):
            return name
    return "other"


def genre_family(genres: Iterable[str] | str | None) -> str:
    """Family of an artist from their genre list: the most common family among the genres (first wins ties)."""
    if genres is None or (isinstance(genres, float) and np.isnan(genres)):
        return "unknown"
    if isinstance(genres, str):
        genres = [genres]
    families = [genre_family_of_genre(g) for g in genres if str(g).strip()]
    known = [f for f in families if f != "other"]
    if not families:
        return "unknown"
    if not known:
        return "other"
    counts = Counter(known)
    best = max(counts.values())
    return next(f for f in known if counts[f] == best)


def reference_date(df: pd.DataFrame) -> pd.Timestamp | None:
    """The date ages are measured at: the latest ``collected_at`` if present, else the newest release."""
    for column in ("collected_at", "release_date"):
        if column in df.columns:
            values = pd.to_datetime(df[column], errors="coerce")
            if values.notna().any():
                return pd.Timestamp(values.max()).normalize()
    return None


def _family_column(df: pd.DataFrame) -> pd.Series:
    family = pd.Series("unknown", index=df.index, dtype=object)
    if "artist_genres" in df.columns:
        # Map each distinct genre list once; artists repeat across their tracks.
        keys = df["artist_genres"].map(lambda g: tuple(g) if isinstance(g, list | tuple | np.ndarray) else ())
        lookup = {k: genre_family(k) for k in pd.unique(keys)}
        family = keys.map(lookup).astype(object)
    if "genre" in df.columns:
        need = family.isin(["unknown", "other"])
        if need.any():
            from_genre = df.loc[need, "genre"].map(
                lambda g: "unknown" if pd.isna(g) else genre_family_of_genre(str(g)))
            family.loc[need] = from_genre.where(from_genre != "unknown", family.loc[need])
    return pd.Series(pd.Categorical(family, categories=list(GENRE_FAMILIES)), index=df.index)


def build_features(df: pd.DataFrame, *, at: pd.Timestamp | str | None = None) -> pd.DataFrame:
    """Return ``df`` with the derived columns added (see module docstring).

    Parameters
    ----------
    df
        A validated canonical table.
    at
        Reference date for track age. A trained model passes its own so that ages mean the same at
        prediction time as at training time. Default: :func:`reference_date` of ``df``.
    """
    out = df.copy()
    ref = pd.Timestamp(at) if at is not None else reference_date(df)
    if "release_date" in out.columns and ref is not None:
        released = pd.to_datetime(out["release_date"], errors="coerce")
        out["track_age_days"] = ((ref - released).dt.days.clip(lower=0)).astype("float32")
        out["release_year"] = released.dt.year.astype("float32")
    if "duration_ms" in out.columns:
        out["duration_min"] = (out["duration_ms"].astype("float64") / 60000.0).astype("float32")
    if "artist_followers" in out.columns:
        out["log_followers"] = np.log10(1.0 + out["artist_followers"].astype("float64")).astype("float32")
    if "artist_genres" in out.columns or "genre" in out.columns:
        out["genre_family"] = _family_column(out)
    if "key" in out.columns:
        out["key_cat"] = pd.Categorical(out["key"], categories=list(range(-1, 12)))
    if "explicit" in out.columns:
        out["explicit_int"] = out["explicit"].astype("float32")
    return out


def driver_columns() -> dict[str, str]:
    """Column of :func:`build_features`' output that holds each driver as a number (from the registry)."""
    return {name: registry.spec(name).column for name in registry.driver_names()}


def sourced_feature_columns() -> list[str]:
    """Canonical columns whose values come from the table's features source (Spotify's API, popdrivers' audio
    analysis, ReccoBeats, a merged file), not from the release's metadata: each row's ``features_source`` says
    which (registry order)."""
    return list(dict.fromkeys(s.canonical for s in registry.features() if "metadata" not in s.sources))


def feature_source_counts(df: pd.DataFrame) -> dict[str, int]:
    """Tracks per features source family (``schema.feature_source_family``) among the tracks that hold at least
    one sourced feature value, most tracks first (ties: by name)."""
    from popdrivers.schema import feature_source_families

    columns = [c for c in sourced_feature_columns() if c in df.columns]
    if not columns or df.empty:
        return {}
    held = df[columns].notna().any(axis=1)
    counts = feature_source_families(df)[held].value_counts()
    return dict(sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0])))


def table_features_source(df: pd.DataFrame) -> str:
    """The one features source family a table's drivers and controls are taken from: the family of most of the
    tracks that hold feature values ("spotify" when the table says none)."""
    counts = feature_source_counts(df)
    return next(iter(counts)) if counts else "spotify"


def other_source_rows(df: pd.DataFrame, source: str) -> pd.Series:
    """Tracks holding sourced feature values from a family other than ``source`` (True: keep them out of the
    columns of ``source``, so one column never mixes two sources)."""
    from popdrivers.schema import feature_source_families

    columns = [c for c in sourced_feature_columns() if c in df.columns]
    if not columns:
        return pd.Series(False, index=df.index)
    held = df[columns].notna().any(axis=1)
    return held & (feature_source_families(df) != source)


# ----------------------------------------------------------------------------------------------------------
# Release structure: a track's version, its song group and its place in the release.
#
# Why: tracks of one artist differ in popularity for reasons that are not their sound. A live recording, an
# instrumental or a clean copy of an explicit album is less played than the original; a single is promoted;
# the first tracks of an album are played more. These travel with audio features (live versions have high
# liveness), so the causal drivers must compare like with like. The title says most of it.

# Version labels, in the order rules are tried (the first that matches wins). Each pattern is searched in the
# *version text* of a title: what follows " - " and what is inside parentheses or brackets, so a song called
# "Live Your Life" is not a live version while "Song - Live at Wembley" and "Song (En Vivo)" are. Intros,
# skits and interludes are recognised anywhere in the title.
VERSION_RULES: tuple[tuple[str, str], ...] = (
    ("karaoke", r"karaoke|originally performed by|in the style of"),
    ("sped_up_slowed", r"sped[ -]?up|speed[ -]?up|slowed|nightcore|\breverb\b"),
    ("instrumental", r"instrumental|\binst\.?(?=\W|$)|\bbackground music\b"),
    ("live", r"\blive\b|en vivo|ao vivo|en directo|\bdal vivo\b|\bin concert\b|\bunplugged\b"),
    ("acoustic", r"acoustic|ac[uú]stic[oa]|\bstripped\b|piano version|\bsessions?\b"),
    ("remix", r"remix|\brmx\b|\brework\b|\bbootleg\b|\bvip\b|\bdub\b|\bflip\b|(?<!original )(?<!extended )"
              r"(?<!radio )(?<!album )\bmix\b"),
    ("edit", r"\bedit\b|radio version|single version|extended|radio mix|short version|clean version"),
    ("demo", r"\bdemo\b|\bwork tape\b|\brough\b"),
    ("remaster", r"remaster|re-master|\bmono version\b|\bstereo version\b|\bmono\b"),
)
INTERLUDE_PATTERN = r"\b(intro|outro|skit|interlude|prelude)\b"
VERSIONS: tuple[str, ...] = ("original", *(name for name, _ in VERSION_RULES), "interlude")
FEATURED_PATTERN = r"\b(feat|ft|featuring)\b\.?|[(\[]\s*(with|w/|&)\s"
_VERSION_TEXT = re.compile(r" - (.*)$|\(([^)]*)\)|\[([^\]]*)\]")
_VERSION_COMPILED = tuple((name, re.compile(pattern)) for name, pattern in VERSION_RULES)
_INTERLUDE = re.compile(INTERLUDE_PATTERN)
_FEATURED = re.compile(FEATURED_PATTERN)
# A song's base title: the title without version text, featured artists, punctuation or case.
_BASE_CUT = re.compile(r"\s+-\s+.*$|\([^)]*\)|\[[^\]]*\]|\b(feat|ft|featuring)\b\.?.*$")
_NON_WORD = re.compile(r"[^\w\s]")
_SPACES = re.compile(r"\s+")
# Releases of one song (a clean and an explicit copy, a remaster, a deluxe edition) keep their length to within
# a few seconds; a live take or an edit does not.
SONG_GROUP_TOLERANCE_MS = 5_000
RELEASE_STRUCTURE_COLUMNS = (
    "version", "featured", "base_title", "song_group", "song_group_size", "relative_position", "release_type",
)


def track_version(title: str | None) -> str:
    """The version a title names: one of :data:`VERSIONS` ('original' when it names none).

    >>> track_version("Call If You Need Me - Live at Red Rocks Amphitheatre")
    'live'
    >>> track_version("Live Your Life")
    'original'
    """
    if title is None or (isinstance(title, float) and np.isnan(title)):
        return "original"
    text = str(title).lower()
    version_text = " ".join(part for match in _VERSION_TEXT.finditer(text) for part in match.groups() if part)
    if version_text:
        for name, pattern in _VERSION_COMPILED:
            if pattern.search(version_text):
                return name
    if _INTERLUDE.search(text):
        return "interlude"
    return "original"


def has_featured_artist(title: str | None) -> bool:
    """True when the title credits a featured artist ("feat.", "ft.", "featuring", "(with X)")."""
    if title is None or (isinstance(title, float) and np.isnan(title)):
        return False
    return bool(_FEATURED.search(str(title).lower()))


def base_title(title: str | None) -> str:
    """The song a title names, without version text, featured artists, punctuation or case."""
    if title is None or (isinstance(title, float) and np.isnan(title)):
        return ""
    text = str(title).lower()
    base = _SPACES.sub(" ", _NON_WORD.sub(" ", _BASE_CUT.sub(" ", text))).strip()
    return base or _SPACES.sub(" ", text).strip()


def song_groups(artist: pd.Series, base: pd.Series, duration_ms: pd.Series | None,
                tolerance_ms: float = SONG_GROUP_TOLERANCE_MS) -> np.ndarray:
    """Integer id of each track's song: same artist, same base title, length within ``tolerance_ms`` (chained).

    Tracks with an empty base title or no artist are songs of their own.
    """
    n = len(base)
    frame = pd.DataFrame({"artist": pd.factorize(artist)[0], "base": pd.factorize(base)[0],
                          "duration": (duration_ms.to_numpy(dtype="float64", na_value=np.nan)
                                       if duration_ms is not None else np.zeros(n))})
    frame["alone"] = (base.fillna("").to_numpy() == "") | (frame["artist"].to_numpy() < 0)
    order = np.lexsort((frame["duration"].to_numpy(), frame["base"].to_numpy(), frame["artist"].to_numpy()))
    sorted_frame = frame.iloc[order]
    dur = sorted_frame["duration"].to_numpy()
    new = np.ones(n, dtype=bool)
    if n > 1:
        same_song = ((sorted_frame["artist"].to_numpy()[1:] == sorted_frame["artist"].to_numpy()[:-1])
                     & (sorted_frame["base"].to_numpy()[1:] == sorted_frame["base"].to_numpy()[:-1]))
        close = np.abs(dur[1:] - dur[:-1]) <= tolerance_ms
        close |= np.isnan(dur[1:]) & np.isnan(dur[:-1])
        new[1:] = ~(same_song & close)
    new |= sorted_frame["alone"].to_numpy()
    groups = np.empty(n, dtype=np.int64)
    groups[order] = np.cumsum(new) - 1
    return groups


def add_release_structure(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with the release-structure columns (see :data:`RELEASE_STRUCTURE_COLUMNS`) added.

    ``version`` and ``featured`` come from ``track_name`` (see :data:`VERSION_RULES`; 'original' and 0 when
    there is no title); ``song_group`` numbers the songs of each artist (same base title and length within
    :data:`SONG_GROUP_TOLERANCE_MS`), ``song_group_size`` counts the tracks of that song in the table;
    ``relative_position`` is 0 for the first track of a release and 1 for the last (NaN without
    ``track_number`` and ``album_total_tracks``); ``release_type`` is ``album_type`` when known, else 'single'
    for releases of at most three tracks and 'album' for longer ones (NaN when neither is known).
    """
    out = df.copy()
    titles = out["track_name"] if "track_name" in out.columns else pd.Series(pd.NA, index=out.index, dtype="string")
    unique = pd.unique(titles.astype(object).where(titles.notna(), None))
    version_of = {t: track_version(t) for t in unique}
    featured_of = {t: has_featured_artist(t) for t in unique}
    base_of = {t: base_title(t) for t in unique}
    keys = titles.astype(object).where(titles.notna(), None)
    out["version"] = pd.Categorical(keys.map(version_of), categories=list(VERSIONS))
    out["featured"] = keys.map(featured_of).astype("float32")
    out["base_title"] = keys.map(base_of).astype("string")
    if "n_artists" in out.columns:
        # A second credited artist is a featured artist even when the title does not say so.
        out["featured"] = np.maximum(out["featured"], (out["n_artists"].astype("float64") > 1).astype("float32"))
    artist = out["artist_id"] if "artist_id" in out.columns else pd.Series(np.arange(len(out)), index=out.index)
    groups = song_groups(artist, out["base_title"].where(titles.notna(), ""),
                         out["duration_ms"] if "duration_ms" in out.columns else None)
    out["song_group"] = groups
    out["song_group_size"] = pd.Series(groups).map(pd.Series(groups).value_counts()).to_numpy(dtype="float32")
    if "track_number" in out.columns and "album_total_tracks" in out.columns:
        total = np.maximum(out["album_total_tracks"].astype("float64"), out["track_number"].astype("float64"))
        span = (total - 1).where(total > 1)
        out["relative_position"] = ((out["track_number"].astype("float64") - 1) / span).astype("float32")
    else:
        out["relative_position"] = np.float32(np.nan)
    release_type = pd.Series(pd.NA, index=out.index, dtype="string")
    if "album_total_tracks" in out.columns:
        total = out["album_total_tracks"].astype("float64")
        release_type = release_type.mask(total.le(3), "single").mask(total.gt(3), "album")
    if "album_type" in out.columns:
        given = out["album_type"].astype("string").replace({"ep": "single"})
        release_type = given.where(given.notna(), release_type)
    out["release_type"] = release_type.astype("string")
    return out


def release_structure_summary(tracks: pd.DataFrame) -> dict[str, object]:
    """What the release structure of a table looks like (``popdrivers inspect`` shows it).

    Returns the share of each version named in titles, the share of tracks with a featured artist, the songs
    released more than once (song groups: count, tracks in them, a few examples), the albums with two or more
    tracks (what the within-album comparison can use) and whether track positions are known.
    """
    frame = add_release_structure(tracks)
    n = max(len(frame), 1)
    versions = frame["version"].value_counts()
    sizes = frame["song_group_size"]
    repeated = frame[sizes > 1]
    examples = []
    if len(repeated):
        biggest = repeated.groupby("song_group")["track_name"].agg(["first", "size"]).sort_values("size",
                                                                                                ascending=False)
        examples = [f"{name} ({size} releases)" for name, size in zip(biggest["first"].head(3), biggest["size"].head(3),
                                                                      strict=True)]
    albums = frame["album_id"].value_counts() if "album_id" in frame.columns else pd.Series(dtype="int64")
    return {
        "versions": {str(v): {"tracks": int(c), "share": round(float(c) / n, 4)} for v, c in versions.items() if c},
        "featured_share": round(float(frame["featured"].mean()), 4) if len(frame) else 0.0,
        "song_groups_with_several_releases": int(repeated["song_group"].nunique()) if len(repeated) else 0,
        "tracks_in_repeated_songs": int(len(repeated)),
        "repeated_song_examples": examples,
        "albums_with_two_or_more_tracks": int((albums >= 2).sum()),
        "tracks_in_those_albums": int(albums[albums >= 2].sum()),
        "track_position_known": bool("track_number" in frame.columns and frame["track_number"].notna().any()),
        "release_types": {str(k): int(v) for k, v in frame["release_type"].value_counts().items()},
    }


# --------------------------------------------------------------------------------------------------------
# The popularity model's feature catalogue: which model feature comes from which canonical column(s).

# Spotify audio features as model columns (duration in minutes, key as a category).
AUDIO_MODEL_FEATURES: tuple[str, ...] = (
    "danceability", "energy", "loudness", "speechiness", "acousticness", "instrumentalness", "liveness",
    "valence", "tempo", "mode", "time_signature", "key_cat", "duration_min",
)
# Everything else the canonical table can tell about a track before it is released or measured.
CONTEXT_FEATURES: tuple[str, ...] = ("explicit_int", "log_followers", "track_age_days", "genre_family")
# The artist's track record: mean popularity of the artist's OTHER tracks (see out_of_fold_artist_record).
ARTIST_RECORD = "artist_track_record"
# The new-artist booster's predictions may only rise with these (PopularityModel's ``monotone`` parameter).
MONOTONE_INCREASING = frozenset({"log_followers", ARTIST_RECORD})
CATEGORICAL_FEATURES: dict[str, list[object]] = {
    "key_cat": list(range(-1, 12)),
    "genre_family": list(GENRE_FAMILIES),
}
# Canonical column(s) each model feature is built from (any one of the alternatives is enough).
FEATURE_SOURCES: dict[str, tuple[str, ...]] = {
    **{name: (name,) for name in AUDIO_MODEL_FEATURES},
    "key_cat": ("key",),
    "duration_min": ("duration_ms",),
    "explicit_int": ("explicit",),
    "log_followers": ("artist_followers",),
    "track_age_days": ("release_date",),
    "genre_family": ("artist_genres", "genre"),
    ARTIST_RECORD: ("artist_id",),
}


def model_feature_sources(name: str) -> tuple[str, ...]:
    """Canonical column(s) a model feature is built from (any one is enough); registered features by the registry."""
    if name in FEATURE_SOURCES:
        return FEATURE_SOURCES[name]
    return (registry.spec(name).canonical,)


def sound_features() -> list[str]:
    """Model columns of the registered features popdrivers can measure from a recording (registry order)."""
    return [f.column for f in registry.features() if "audio" in f.sources]


def audio_descriptors() -> list[str]:
    """Model columns of popdrivers' own audio descriptors (registered with sources "audio" only): present only in
    tables measured by popdrivers.audio, so their absence elsewhere is the rule, not a gap worth reporting."""
    return [f.column for f in registry.features() if f.sources == ("audio",)]


def feature_label(name: str) -> str:
    """Human-readable name of a model feature, for tables and plots (from the registry)."""
    return registry.label(name)


# --------------------------------------------------------------------------------------------------------
# The artist's track record


def shrunk_mean(sums: np.ndarray, counts: np.ndarray, prior_mean: float, prior_weight: float) -> np.ndarray:
    """Mean popularity shrunk toward ``prior_mean`` (few tracks say little); NaN where there are no tracks."""
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (sums + prior_weight * prior_mean) / (counts + prior_weight)
    return np.where(counts > 0, value, np.nan)


def artist_fold_sums(codes: np.ndarray, popularity: np.ndarray, folds: np.ndarray, n_artists: int,
                     n_folds: int) -> tuple[np.ndarray, np.ndarray]:
    """Per artist and fold: sum of popularity and number of tracks, shape (n_artists, n_folds) each.

    ``codes`` numbers each track's artist (negative: no artist, left out); ``folds`` is each track's fold.
    Summed over folds they are the artist's totals; partitions of a table add up (the Dask fit sums them).
    """
    known = codes >= 0
    flat = codes[known] * n_folds + folds[known]
    size = n_artists * n_folds
    sums = np.bincount(flat, weights=popularity[known], minlength=size).reshape(n_artists, n_folds)
    counts = np.bincount(flat, minlength=size).astype("float64").reshape(n_artists, n_folds)
    return sums, counts


def out_of_fold_record(positions: np.ndarray, folds: np.ndarray, fold_sums: np.ndarray, fold_counts: np.ndarray,
                       prior_mean: float, prior_weight: float) -> np.ndarray:
    """Each track's shrunk mean popularity of its artist's tracks in the OTHER folds (NaN: artist unknown).

    ``positions`` is each track's row in ``fold_sums`` / ``fold_counts`` (negative: no artist); ``folds`` its
    fold. The one implementation the single-machine fit and the Dask fit share.
    """
    found = positions >= 0
    rows = np.where(found, positions, 0)
    outside_sums = fold_sums.sum(axis=1)[rows] - fold_sums[rows, folds]
    outside_counts = fold_counts.sum(axis=1)[rows] - fold_counts[rows, folds]
    record = shrunk_mean(outside_sums, outside_counts, prior_mean, prior_weight)
    return np.where(found, record, np.nan)


# Folds of the out-of-fold track record at training time (single machine and Dask alike).
TRACK_RECORD_FOLDS = 5


def out_of_fold_artist_record(
    artist_ids: pd.Series, popularity: np.ndarray, *, n_folds: int = TRACK_RECORD_FOLDS, new_artist_share: float = 0.25,
    prior_weight: float = 3.0, seed: int = 0,
) -> np.ndarray:
    """Training-time track record: each track sees only the popularity of its artist's tracks in other folds.

    Tracks are assigned to ``n_folds`` random folds; a track in fold k gets the shrunk mean popularity of its
    artist's tracks outside fold k (never its own). A random ``new_artist_share`` of artists get NaN for
    all their tracks, so a single model learns what to do for an artist it has never seen.
    """
    rng = np.random.default_rng(seed)
    y = np.asarray(popularity, dtype="float64")
    codes, uniques = pd.factorize(artist_ids.astype("string"), use_na_sentinel=True)
    n_folds = max(n_folds, 2)
    folds = rng.integers(0, n_folds, len(y))
    prior_mean = float(y.mean()) if len(y) else 0.0
    fold_sums, fold_counts = artist_fold_sums(codes, y, folds, len(uniques), n_folds)
    record = out_of_fold_record(codes, folds, fold_sums, fold_counts, prior_mean, prior_weight)
    hidden = rng.random(len(uniques)) < new_artist_share
    known = codes >= 0
    record[known & hidden[np.where(known, codes, 0)]] = np.nan
    return record


def artist_track_table(tracks: pd.DataFrame, target: str = "popularity") -> pd.DataFrame:
    """The (track, artist, popularity) table a fitted model keeps to compute track records at prediction time."""
    return pd.DataFrame({
        "track_id": tracks["track_id"].astype("string"),
        "artist_id": tracks["artist_id"].astype("string"),
        target: tracks[target].astype("int16"),
    }).dropna(subset=["artist_id"]).reset_index(drop=True)
