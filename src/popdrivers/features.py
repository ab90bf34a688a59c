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
KEY_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
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


# The drivers whose causal effect popdrivers estimates, with the unit "+1" means for each.
# duration is in minutes (a derived column) because "+1 ms" is not a change anyone makes.
DRIVER_UNITS: dict[str, str] = {
    "danceability": "+1.0 on the 0-1 scale",
    "energy": "+1.0 on the 0-1 scale",
    "loudness": "+1 dB",
    "speechiness": "+1.0 on the 0-1 scale",
    "acousticness": "+1.0 on the 0-1 scale",
    "instrumentalness": "+1.0 on the 0-1 scale",
    "liveness": "+1.0 on the 0-1 scale",
    "valence": "+1.0 on the 0-1 scale",
    "tempo": "+1 BPM",
    "duration_min": "+1 minute",
    "explicit": "explicit vs not (0 -> 1)",
    "mode": "major vs minor (0 -> 1)",
}
DRIVERS: tuple[str, ...] = tuple(DRIVER_UNITS)
BINARY_DRIVERS: frozenset[str] = frozenset({"explicit", "mode"})
# Column of build_features' output that holds each driver as a number.
DRIVER_COLUMNS: dict[str, str] = {name: name for name in DRIVERS} | {"explicit": "explicit_int"}


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
FEATURE_LABELS: dict[str, str] = {
    "key_cat": "key", "duration_min": "duration (min)", "explicit_int": "explicit",
    "log_followers": "artist followers", "track_age_days": "days since release",
    "genre_family": "genre family", ARTIST_RECORD: "artist's other tracks (mean popularity)",
    "time_signature": "time signature", "tempo": "tempo (BPM)", "loudness": "loudness (dB)",
}


def feature_label(name: str) -> str:
    """Human-readable name of a model feature, for tables and plots."""
    return FEATURE_LABELS.get(name, name)


# --------------------------------------------------------------------------------------------------------
# The artist's track record


def shrunk_mean(sums: np.ndarray, counts: np.ndarray, prior_mean: float, prior_weight: float) -> np.ndarray:
    """Mean popularity shrunk toward ``prior_mean`` (few tracks say little); NaN where there are no tracks."""
    with np.errstate(invalid="ignore", divide="ignore"):
        value = (sums + prior_weight * prior_mean) / (counts + prior_weight)
    return np.where(counts > 0, value, np.nan)


def out_of_fold_artist_record(
    artist_ids: pd.Series, popularity: np.ndarray, *, n_folds: int = 5, new_artist_share: float = 0.25,
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
    n_artists = len(uniques)
    known = codes >= 0
    folds = rng.integers(0, max(n_folds, 2), len(y))
    prior_mean = float(y.mean()) if len(y) else 0.0
    record = np.full(len(y), np.nan)
    for k in range(max(n_folds, 2)):
        outside = known & (folds != k)
        sums = np.bincount(codes[outside], weights=y[outside], minlength=n_artists)
        counts = np.bincount(codes[outside], minlength=n_artists).astype("float64")
        inside = known & (folds == k)
        record[inside] = shrunk_mean(sums[codes[inside]], counts[codes[inside]], prior_mean, prior_weight)
    hidden = rng.random(n_artists) < new_artist_share
    record[known & hidden[np.where(known, codes, 0)]] = np.nan
    return record


def artist_track_table(tracks: pd.DataFrame, target: str = "popularity") -> pd.DataFrame:
    """The (track, artist, popularity) table a fitted model keeps to compute track records at prediction time."""
    return pd.DataFrame({
        "track_id": tracks["track_id"].astype("string"),
        "artist_id": tracks["artist_id"].astype("string"),
        target: tracks[target].astype("int16"),
    }).dropna(subset=["artist_id"]).reset_index(drop=True)
