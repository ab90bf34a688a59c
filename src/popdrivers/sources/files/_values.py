"""Values as people write them, read as the canonical table means them: each reading is noted in the report.

Charts and exports write what the canonical table holds in other units and spellings: audio features in percent
(``Energy`` 55 for 0.55, ``danceability_%``), lengths in seconds or ``m:ss``, keys as note names (``C#``) and
modes as words (``Major``), a release year split from its month and day, Spotify URIs or links for ids, and
several artists in one cell. Each is recognised from the header and the values together, converted, and said
in a note; anything ambiguous is left as written for validation to report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from popdrivers.schema import UNIT_INTERVAL_FEATURES, column_key, parse_genre_list
from popdrivers.text import normal_texts

# Headers that hold several credited artists in one cell.
PLURAL_ARTIST_KEYS = frozenset({"artists", "artist_s_name", "artist_names", "track_artists"})
_SPOTIFY_ID = re.compile(r"^\s*(?:spotify:(?P<kind>track|artist|album):|https?://open\.spotify\.com/(?:intl-[\w-]+/)?"
                         r"(?P<kind2>track|artist|album)/)(?P<id>[0-9A-Za-z]+)\S*\s*$")
_PITCH_CLASSES = {"c": 0, "c#": 1, "db": 1, "d": 2, "d#": 3, "eb": 3, "e": 4, "f": 5, "f#": 6, "gb": 6, "g": 7,
                  "g#": 8, "ab": 8, "a": 9, "a#": 10, "bb": 10, "b": 11}
_MODES = {"major": 1, "maj": 1, "minor": 0, "min": 0}
_MINUTES_SECONDS = re.compile(r"^\s*(\d{1,3}):([0-5]\d)\s*$")
# A share of values above 1 this large makes a 0-100 column percent even when some of its values are fractions.
_PERCENT_SHARE = 0.5


def read_as_meant(frame: pd.DataFrame, header_of: Mapping[str, str], notes: list[str]) -> pd.DataFrame:
    """``frame`` (canonical names) with percent scales, duration units, key and mode words, split release
    dates, Spotify URIs and multi-artist cells read as the canonical table means them.

    ``header_of`` maps each column to the header it was read from (for the notes, and for what a header says:
    ``danceability_%``, ``Length.``, ``artist(s)_name``).
    """
    frame = frame.copy()
    _ids_from_spotify_uris(frame, notes)
    _first_credited_artist(frame, header_of, notes)
    _percent_scales(frame, header_of, notes)
    _duration_units(frame, header_of, notes)
    _key_and_mode_words(frame, header_of, notes)
    return _release_date_from_parts(frame, header_of, notes)


def _ids_from_spotify_uris(frame: pd.DataFrame, notes: list[str]) -> None:
    for column in ("track_id", "artist_id", "album_id"):
        if column not in frame.columns:
            continue
        text = frame[column].astype("string")
        found = text.str.extract(_SPOTIFY_ID)
        matched = found["id"].notna()
        if matched.any():
            frame[column] = found["id"].where(matched, text).astype("string")
            example = text[matched].iloc[0]
            notes.append(f"{column}: {int(matched.sum()):,} Spotify URI(s) or link(s) read as their ids (e.g. "
                         f"'{example}' -> '{found['id'][matched].iloc[0]}')")


def _first_credited_artist(frame: pd.DataFrame, header_of: Mapping[str, str], notes: list[str]) -> None:
    if "artist_name" not in frame.columns:
        return
    header = header_of.get("artist_name", "artist_name")
    text = frame["artist_name"].astype("string").str.strip()
    listed = text.str.startswith("[").fillna(False)
    if listed.any():
        firsts = text[listed].map(lambda v: next(iter(_safe_list(v)), pd.NA))
        text = text.where(~listed, firsts)
        notes.append(f"artist_name: '{header}' holds lists of artists; the first credited artist is used")
    if column_key(header) in PLURAL_ARTIST_KEYS:
        separator = ";" if text.str.contains(";", regex=False).any() else ", "
        several = text.str.contains(separator, regex=False).fillna(False)
        if several.any():
            text = text.str.split(separator, n=1).str[0].str.strip()
            notes.append(f"artist_name: '{header}' credits several artists in {int(several.sum()):,} row(s) "
                         f"(joined by '{separator.strip()}'); the first is used as the track's artist")
    frame["artist_name"] = text.where(text.fillna("") != "").astype("string")


def _safe_list(value: str) -> list[str]:
    try:
        return parse_genre_list(value)
    except ValueError:
        return [value]


def _numbers(values: pd.Series) -> pd.Series | None:
    """The column as numbers when every non-blank cell is one (else None: validation reports the cells)."""
    if pd.api.types.is_bool_dtype(values):
        return None
    numbers = pd.to_numeric(values, errors="coerce")
    blank = values.isna() | values.astype("string").str.strip().fillna("").eq("")
    return numbers.astype("float64") if not (numbers.isna() & ~blank).any() else None


def _percent_scales(frame: pd.DataFrame, header_of: Mapping[str, str], notes: list[str]) -> None:
    for column in UNIT_INTERVAL_FEATURES:
        if column not in frame.columns:
            continue
        numbers = _numbers(frame[column])
        if numbers is None:
            continue
        present = numbers.dropna()
        if present.empty or present.max() <= 1 or present.min() < 0 or present.max() > 100:
            continue
        header = header_of.get(column, column)
        says_percent = "%" in header or re.search(r"pct|percent", header, re.IGNORECASE) is not None
        whole = bool((present % 1 == 0).all())
        if says_percent or whole or (present > 1).mean() >= _PERCENT_SHARE:
            frame[column] = numbers / 100.0
            example = present[present > 1].iloc[0]
            notes.append(f"{column}: '{header}' holds 0-100 values, read as percent of the 0-1 scale "
                         f"(e.g. {example:g} -> {example / 100:g})")


def _duration_units(frame: pd.DataFrame, header_of: Mapping[str, str], notes: list[str]) -> None:
    if "duration_ms" not in frame.columns:
        return
    header = header_of.get("duration_ms", "duration_ms")
    key = column_key(header)
    if "ms" in key.split("_") or key.endswith("ms"):
        return  # written in milliseconds, as the canonical column
    values = frame["duration_ms"]
    text = values.astype("string")
    clock = text.str.extract(_MINUTES_SECONDS)
    if clock[0].notna().any() and (clock[0].notna() | text.isna()).all():
        ms = (clock[0].astype("float64") * 60 + clock[1].astype("float64")) * 1000
        frame["duration_ms"] = ms
        notes.append(f"duration_ms: '{header}' holds lengths as minutes:seconds (e.g. '{text.dropna().iloc[0]}'); "
                     "read as milliseconds")
        return
    numbers = _numbers(values)
    if numbers is None or numbers.dropna().empty:
        return
    median = float(numbers.median())
    if median >= 3600:
        return  # milliseconds already (a 3,600 ms median would be a catalogue of jingles)
    unit, factor = ("minutes", 60_000.0) if median < 30 else ("seconds", 1000.0)
    frame["duration_ms"] = numbers * factor
    notes.append(f"duration_ms: '{header}' holds lengths in {unit} (median {median:g}); read as milliseconds")


def _key_and_mode_words(frame: pd.DataFrame, header_of: Mapping[str, str], notes: list[str]) -> None:
    for column, words, what in (("key", _PITCH_CLASSES, "note names (C, C#, ...), read as pitch classes 0-11"),
                                ("mode", _MODES, "words (Major, Minor), read as 1 and 0")):
        if column not in frame.columns or pd.api.types.is_numeric_dtype(frame[column]):
            continue
        text = frame[column].astype("string").str.strip().str.casefold()
        text = text.str.replace("♯", "#", regex=False).str.replace("♭", "b", regex=False)
        known = text.isin(list(words))
        blank = text.isna() | text.eq("")
        if known.any() and (known | blank).all():
            frame[column] = text.map(words, na_action="ignore").astype("float64")
            notes.append(f"{column}: '{header_of.get(column, column)}' holds {what}")


def _release_date_from_parts(frame: pd.DataFrame, header_of: Mapping[str, str], notes: list[str]) -> pd.DataFrame:
    """A release year with the month and day in columns of their own (``released_year``, ``released_month``, ...)."""
    if "release_date" not in frame.columns:
        return frame
    header = header_of.get("release_date", "release_date")
    if "year" not in column_key(header):
        return frame
    by_key = {column_key(str(c)): c for c in frame.columns}
    month = next((by_key[k] for k in ("released_month", "release_month", "month") if k in by_key), None)
    day = next((by_key[k] for k in ("released_day", "release_day", "day") if k in by_key), None)
    years = _numbers(frame["release_date"])
    if month is None or years is None:
        return frame
    months = _numbers(frame[month])
    days = _numbers(frame[day]) if day is not None else None
    if months is None or not months.dropna().between(1, 12).all():
        return frame
    text = years.map(lambda y: f"{int(y):04d}" if pd.notna(y) else None)
    with_month = text.notna() & months.notna()
    text = text.where(~with_month, text + "-" + months.map(lambda m: f"{int(m):02d}" if pd.notna(m) else ""))
    if days is not None and days.dropna().between(1, 31).all():
        with_day = with_month & days.notna()
        text = text.where(~with_day, text + "-" + days.map(lambda d: f"{int(d):02d}" if pd.notna(d) else ""))
    frame["release_date"] = text.astype("string")
    used = [str(c) for c in (month, day) if c is not None]
    notes.append(f"release_date: from '{header}' and {', '.join(repr(c) for c in used)} (the day when all three "
                 "are there)")
    return frame.drop(columns=used)


def album_ids_from_names(frame: pd.DataFrame, notes: list[str]) -> pd.DataFrame:
    """An album is its artist plus its name when the file has album names but no album ids (Kaggle 114k)."""
    if "album_id" in frame.columns or "album_name" not in frame.columns or "artist_id" not in frame.columns:
        return frame
    name = normal_texts(frame["album_name"], unicode="as-is", punctuation=True)
    artist = frame["artist_id"].astype("string")
    ids = ("name:" + artist + " | " + name).where(name.fillna("").ne("") & artist.notna())
    frame = frame.assign(album_id=ids.astype("string"))
    groups = int((ids.value_counts() >= 2).sum())
    notes.append(f"no album_id column: an album is its artist plus its album name ({groups:,} such albums hold two "
                 "or more tracks)")
    return frame

