"""Merging popularity and audio features from a file into a crawl (``--popularity FILE``, ``--audio-features FILE``).

A crawl may lack what a model needs: a Spotify Development Mode app gets no popularity, no app created after
27 Nov 2024 gets audio features, Deezer has neither. A file supplies them, joined to the crawled tracks by, in
this order:

1. the track id (a Spotify crawl and a Spotify dataset share ids);
2. the ISRC (the same recording across services and releases);
3. the normalised artist name + title (lower case, accents and punctuation removed), with the duration within
   :data:`DURATION_TOLERANCE_MS` when both sides know it (required for popularity, a tie-breaker for audio
   features: a remaster or a live take under the same title has another length).

Every merge returns a :class:`MergeReport` saying how many tracks matched on which key. The file is read at
every run; merging into a finished crawl makes no request.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from popdrivers.errors import PopdriversError
from popdrivers.sources.crawl_store import AUDIO_FEATURE_COLUMNS, INTEGER_FEATURES
from popdrivers.text import normal_text

DURATION_TOLERANCE_MS = 3000
MATCH_KEYS = ("track id", "ISRC", "artist + title")
# A small popularity file: these columns only (any order), track_id or isrc plus popularity.
SMALL_POPULARITY_COLUMNS = frozenset({"track_id", "isrc", "popularity", "artist_followers"})


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value)) and str(value).strip() != ""


@dataclass(frozen=True)
class MergeReport:
    """How a file's values were matched to the crawled tracks."""

    what: str  # "popularity" | "audio features"
    file: str
    tracks: int  # crawled tracks that could take a value
    matched: tuple[tuple[str, int], ...]  # (key, tracks matched on it), in MATCH_KEYS order

    @property
    def total(self) -> int:
        return sum(n for _, n in self.matched)

    def describe(self) -> str:
        on = ", ".join(f"{n:,} on {key}" for key, n in self.matched)
        return (f"{self.what} from {self.file}: {self.total:,} of {self.tracks:,} tracks matched ({on}); "
                f"{self.tracks - self.total:,} unmatched")

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "file": self.file, "tracks": self.tracks, "matched": self.total,
                "matched_on": dict(self.matched)}


class TrackMatcher:
    """Rows of a file, findable by track id, ISRC or normalised artist + title (+ duration).

    Parameters
    ----------
    records : sequence of dict
        One per file row: optional ``track_id``, ``isrc``, ``artist_name``, ``track_name``, ``duration_ms``,
        plus the ``values`` to merge.
    values : sequence of str
        The columns this file supplies.
    label : str
        Written to the provenance column (``file:NAME``).
    require_duration : bool
        An artist + title match also needs durations within :data:`DURATION_TOLERANCE_MS`.
    """

    def __init__(self, records: Sequence[Mapping[str, Any]], values: Sequence[str], label: str,
                 require_duration: bool):
        self.values, self.label, self.require_duration = tuple(values), label, require_duration
        self.by_id: dict[str, Mapping[str, Any]] = {}
        self.by_isrc: dict[str, Mapping[str, Any]] = {}
        self.by_name: dict[tuple[str, str], list[Mapping[str, Any]]] = defaultdict(list)
        for record in records:
            if _present(record.get("track_id")):
                self.by_id.setdefault(str(record["track_id"]).strip(), record)
            if _present(record.get("isrc")):
                self.by_isrc.setdefault(str(record["isrc"]).strip().upper(), record)
            key = (normal_text(record.get("artist_name")), normal_text(record.get("track_name")))
            if all(key):
                self.by_name[key].append(record)

    def match(self, track_id: Any, isrc: Any, artist: Any, title: Any,
              duration_ms: Any) -> tuple[Mapping[str, Any] | None, str | None]:
        """The file row for one crawled track and the key it matched on, or ``(None, None)``."""
        if _present(track_id) and str(track_id) in self.by_id:
            return self.by_id[str(track_id)], MATCH_KEYS[0]
        if _present(isrc) and str(isrc).strip().upper() in self.by_isrc:
            return self.by_isrc[str(isrc).strip().upper()], MATCH_KEYS[1]
        candidates = self.by_name.get((normal_text(artist), normal_text(title)), [])
        if not candidates:
            return None, None
        if _present(duration_ms):
            timed = [(abs(float(c["duration_ms"]) - float(duration_ms)), i, c) for i, c in enumerate(candidates)
                     if _present(c.get("duration_ms"))]
            close = sorted(t for t in timed if t[0] <= DURATION_TOLERANCE_MS)
            if close:
                return close[0][2], MATCH_KEYS[2]
            if timed or self.require_duration:
                return None, None
        if self.require_duration:
            return None, None
        return candidates[0], MATCH_KEYS[2]


def _report(what: str, matcher: TrackMatcher, tracks: int, counts: Counter) -> MergeReport:
    return MergeReport(what, matcher.label.removeprefix("file:"), tracks,
                       tuple((key, counts.get(key, 0)) for key in MATCH_KEYS))


def _records(frame: Any, values: Sequence[str]) -> list[dict[str, Any]]:
    keys = [c for c in ("track_id", "isrc", "artist_name", "track_name", "duration_ms") if c in frame.columns]
    return frame[[*keys, *values]].to_dict("records")


def read_popularity_file(path: str | os.PathLike[str]) -> TrackMatcher:
    """Popularity (and followers) from any dataset ``read_tracks`` reads, or a small ``track_id|isrc,popularity`` CSV.

    Raises
    ------
    PopdriversError
        The file has no usable popularity or no key to join on; the message names the file, column and fix.
    """
    import pandas as pd

    from popdrivers.sources.files import read_tracks

    path = Path(path)
    label = f"file:{path.name}"
    header: list[str] = []
    if path.is_file() and path.suffix.lower() in (".csv", ".txt", ""):
        header = [c.strip().lower() for c in pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns]
    if header and set(header) <= SMALL_POPULARITY_COLUMNS and "popularity" in header:
        frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)
        frame.columns = header
        if not {"track_id", "isrc"} & set(header):
            raise PopdriversError(f"--popularity {path}: no column to join on. Fix: a header track_id,popularity "
                                  "or isrc,popularity")
        numbers = pd.to_numeric(frame["popularity"].str.strip(), errors="coerce")
        bad = numbers.isna() | (numbers < 0) | (numbers > 100) | (numbers.round() != numbers)
        if bad.any():
            lines = ", ".join(f"line {i + 2}" for i in list(bad[bad].index[:5]))
            raise PopdriversError(f"--popularity {path}: column 'popularity' holds {int(bad.sum())} value(s) that "
                                  f"are not whole numbers 0..100 (e.g. {lines}). Fix: write Spotify popularity "
                                  "as an integer from 0 to 100")
        frame["popularity"] = numbers.astype(int)
        values = ["popularity"]
        if "artist_followers" in frame.columns:
            frame["artist_followers"] = pd.to_numeric(frame["artist_followers"], errors="coerce")
            values.append("artist_followers")
    else:
        frame = read_tracks(path)
        values = ["popularity"] + (["artist_followers"] if "artist_followers" in frame.columns else [])
    return TrackMatcher(_records(frame, values), values, label, require_duration=True)


def read_audio_features_file(path: str | os.PathLike[str]) -> TrackMatcher:
    """Audio features from any dataset ``read_tracks`` reads (popularity not needed)."""
    from popdrivers.sources.files import read_tracks

    path = Path(path)
    frame = read_tracks(path, require_popularity=False)  # only the audio features are used
    present = [c for c in AUDIO_FEATURE_COLUMNS if c in frame.columns]
    if not present:
        raise PopdriversError(f"--audio-features {path}: the file has no audio features to merge (none of "
                              f"{', '.join(AUDIO_FEATURE_COLUMNS)}). Fix: pass a dataset with audio features")
    return TrackMatcher(_records(frame, present), present, f"file:{path.name}", require_duration=False)


def merge_popularity(tables: Mapping[str, list[dict[str, Any]]], matcher: TrackMatcher) -> MergeReport:
    """Set every track's popularity from the file (empty when unmatched); fill missing artist followers.

    The crawl's own popularity (Spotify's, or derived from Deezer's rank) is replaced for every track, matched
    or not, so one table never mixes two popularity scales.
    """
    counts: Counter = Counter()
    followers: dict[str, Counter] = defaultdict(Counter)
    for row in tables["track.csv"]:
        hit, key = matcher.match(row["track_id"], row.get("track_isrc"), row.get("_artist_name"),
                                 row.get("track_name"), row.get("_duration_ms"))
        row["track_popularity"], row["track_popularity_source"] = None, None
        if hit is None:
            continue
        counts[key] += 1
        row["track_popularity"], row["track_popularity_source"] = int(hit["popularity"]), matcher.label
        if _present(hit.get("artist_followers")):
            followers[row["track_artist_id"]][int(float(hit["artist_followers"]))] += 1
    for artist in tables["artist.csv"]:
        votes = followers.get(artist["artist_id"])
        if artist.get("artist_followers") is None and votes:
            artist["artist_followers"] = votes.most_common(1)[0][0]
    return _report("popularity", matcher, len(tables["track.csv"]), counts)


def _measured(source: Any) -> bool:
    return str(source or "").startswith("audio:")


def check_audio_features_file(matcher: TrackMatcher | None, measured: bool) -> None:
    """Refuse to merge a features file into a crawl whose features are measured from previews (before anything is
    fetched): the file's values (Spotify's tempo, loudness, key, mode) would share columns with the measured ones.

    Raises
    ------
    PopdriversError
        ``measured`` (``--audio``, or previews analysed by an earlier run) and a file to merge.
    """
    if matcher is None or not measured:
        return
    raise PopdriversError(
        f"--audio-features {matcher.label.removeprefix('file:')}: this crawl's features are measured from Deezer's "
        "previews (features_source audio:deezer-preview:...), and the file's would share the tempo, loudness, key "
        "and mode columns with them (one column never mixes two sources). Fix: drop --audio-features, or collect "
        "the file's features into another folder (without --audio)")


def keep_sources_apart(tables: Mapping[str, list[dict[str, Any]]]) -> tuple[tuple[str, ...], str | None]:
    """Deezer's ``bpm`` moved out of ``tempo`` into ``deezer_bpm`` when other tracks' tempo comes from another
    source (measured from a preview, or a merged file): one column never mixes two sources.

    Returns the extra ``audio.csv`` column (``("deezer_bpm",)`` or nothing) and a note saying what was moved.
    """
    rows = tables["audio.csv"]
    others = sorted({str(r["features_source"]) for r in rows if r.get("features_source") not in (None, "deezer")
                     and r.get("tempo") is not None})
    bpm_rows = [r for r in rows if r.get("features_source") == "deezer" and r.get("tempo") is not None]
    if not others or not bpm_rows:
        return (), None
    for row in bpm_rows:
        row["deezer_bpm"], row["tempo"] = row["tempo"], None
    kinds = sorted({"their analysed previews" if _measured(s) else s.removeprefix("file:") for s in others})
    return ("deezer_bpm",), (
        f"Deezer's bpm of {len(bpm_rows):,} tracks kept apart as deezer_bpm (not tempo): the other tracks' tempo "
        f"comes from {', '.join(kinds)}, and one column never mixes two sources")


def merge_audio_features(tables: Mapping[str, list[dict[str, Any]]], matcher: TrackMatcher) -> MergeReport:
    """Fill the audio features of tracks that have none from the API (or only Deezer's bpm) from the file.

    Tracks with Spotify's own features keep them; a crawl with features measured from previews is refused
    (:func:`check_audio_features_file`).

    A matched track takes the file's values for every feature (unknown ones empty) and ``features_source``
    names the file: features of two sources are never combined within one track.
    """
    check_audio_features_file(matcher, any(_measured(r.get("features_source")) for r in tables["audio.csv"]))
    tracks = {row["track_id"]: row for row in tables["track.csv"]}
    counts: Counter = Counter()
    open_rows = 0
    for row in tables["audio.csv"]:
        own = str(row.get("features_source") or "")
        if own == "spotify" or own.startswith("audio:"):  # the API's own, or measured from the track's sound
            continue
        open_rows += 1
        track = tracks.get(row["track_id"], {})
        hit, key = matcher.match(row["track_id"], track.get("track_isrc"), track.get("_artist_name"),
                                 track.get("track_name"), row.get("track_duration"))
        if hit is None:
            continue
        values = {}
        for name in AUDIO_FEATURE_COLUMNS:
            value = hit.get(name)
            if not _present(value):
                values[name] = None
                continue
            values[name] = int(value) if name in INTEGER_FEATURES else float(value)
        if all(v is None for v in values.values()):
            continue
        counts[key] += 1
        row.update(values)
        row["features_source"] = matcher.label
    return _report("audio features", matcher, open_rows, counts)
