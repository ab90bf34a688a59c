"""The feature registry: what each feature and causal driver means, written once.

``schema.py`` says how a canonical column is stored and validated; this module says what a *feature* is to a
person and to the stages that use it: its plain-words label and help, its unit and valid range, whether it is
binary, the size of change the plots show, where its values can come from (Spotify's API, popdrivers' own audio
analysis, metadata), and whether the causal drivers estimate its effect. The schema builds the canonical specs of
these columns from here, and the CLI table, the HTML report, the app's inputs and ``drivers.json`` all read it, so a
feature added here appears in every one of them.

Modules read the registry when they run (:func:`spec`, :func:`driver_names`), never a copy taken at import, so a
feature registered later (:func:`register`) is seen everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

FeatureKind = Literal["continuous", "binary", "category"]
# Where a feature's values can come from. "spotify": Spotify's Web API (audio features deprecated since Nov 2024);
# "audio": measured by popdrivers.audio from the sound; "metadata": the release, the artist, the file's columns.
SOURCES = ("spotify", "audio", "metadata", "reccobeats")
KEY_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: what it means, its unit and range, and how the stages use it.

    Parameters
    ----------
    name
        The name users, drivers.json and the app use (``duration_min``, not ``duration_ms``).
    label
        Plain words for tables and widgets ("Danceability", "Loudness").
    unit
        A short unit for narrow tables ("0-1", "dB", "BPM", "min", "0/1").
    help
        One or two sentences a person can act on (shown under inputs and in reports).
    kind
        "continuous", "binary" (0/1; effects compare 1 with 0) or "category" (a label, never a quantity).
    low, high
        Valid range in ``unit`` (``None``: open); validation refuses values outside it, inputs offer it.
    step
        Resolution of an input widget.
    input_high
        For an open ``high``: the least an input widget's upper end offers, in ``unit`` (followers: as many as the
        most-followed artist has). Not a validation bound: values above it stay valid.
    per_unit
        What an effect of "+1" means ("+1.0 on the 0-1 scale", "+1 dB", "explicit vs not (0 -> 1)").
    typical_change, change_label
        The change the effects plots and plain-words summaries use (0.1 of a 0-1 feature, 10 BPM, ...).
    sources
        Where values can come from (:data:`SOURCES`).
    driver
        Whether the causal drivers estimate its effect by default.
    model_column
        Column of ``features.build_features``' output holding the value as a number (default: ``name``).
    canonical_column, canonical_scale
        Canonical column the value is stored in and its scale: canonical = value x scale (duration: ms = min x
        60000). Default: ``name``, 1.
    choices
        For "category" and "binary" features: (value, label) pairs, in the order inputs list them.
    """

    name: str
    label: str
    unit: str
    help: str
    kind: FeatureKind = "continuous"
    low: float | None = None
    high: float | None = None
    step: float | None = None
    input_high: float | None = None
    per_unit: str = ""
    typical_change: float = 1.0
    change_label: str = "+1"
    sources: tuple[str, ...] = ("spotify",)
    driver: bool = False
    model_column: str | None = None
    canonical_column: str | None = None
    canonical_scale: float = 1.0
    choices: tuple[tuple[Any, str], ...] = field(default=())

    def __post_init__(self) -> None:
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown:
            raise ValueError(f"feature {self.name!r}: unknown source(s) {unknown}; expected some of {SOURCES}")
        if self.kind not in ("continuous", "binary", "category"):
            raise ValueError(f"feature {self.name!r}: kind {self.kind!r} is not continuous, binary or category")

    @property
    def column(self) -> str:
        """Column of the derived table that holds the value as a number."""
        return self.model_column or self.name

    @property
    def canonical(self) -> str:
        """Canonical column the value is stored in."""
        return self.canonical_column or self.name

    @property
    def binary(self) -> bool:
        return self.kind == "binary"

    @property
    def effect_unit(self) -> str:
        """What "+1" of an effect means, in words."""
        return self.per_unit or f"+1 {self.unit}"

    @property
    def axis_title(self) -> str:
        """Label with its unit, for plot axes ("Loudness (dB)")."""
        return f"{self.label} ({self.unit})" if self.unit else self.label

    def clip(self, value: float) -> float:
        """``value`` inside the valid range."""
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        return min(max(value, low), high)


_UNIT_SCALE = "+1.0 on the 0-1 scale"


def _unit_interval(name: str, label: str, help: str, *, driver: bool = True) -> FeatureSpec:
    return FeatureSpec(name, label, "0-1", help, low=0.0, high=1.0, step=0.01, per_unit=_UNIT_SCALE,
                       typical_change=0.1, change_label="+0.1", driver=driver)


# Order: the order of the drivers in tables and of the app's inputs.
_BUILT_IN: tuple[FeatureSpec, ...] = (
    _unit_interval("danceability", "Danceability",
                   "How suitable the track is for dancing, from tempo, rhythm stability and beat strength "
                   "(Spotify audio feature, 0 = least, 1 = most danceable)."),
    _unit_interval("energy", "Energy",
                   "Perceived intensity and activity: fast, loud, noisy tracks score high (Spotify, 0-1)."),
    FeatureSpec("loudness", "Loudness", "dB",
                "Average loudness of the track in dB (Spotify: typically -60 to 0; most commercial tracks sit "
                "between -14 and -4).", low=-70.0, high=10.0, step=0.1, per_unit="+1 dB", typical_change=1.0,
                change_label="+1 dB", sources=("spotify", "audio"), driver=True),
    _unit_interval("speechiness", "Speechiness",
                   "Presence of spoken words: above 0.66 is almost all speech, 0.33-0.66 mixes music and speech "
                   "such as rap, below 0.33 is mostly music (Spotify, 0-1)."),
    _unit_interval("acousticness", "Acousticness", "Confidence that the track is acoustic (Spotify, 0-1)."),
    FeatureSpec("instrumentalness", "Instrumentalness", "0-1",
                "Likelihood the track has no vocals; above 0.5 is probably instrumental (Spotify, 0-1).",
                low=0.0, high=1.0, step=0.001, per_unit=_UNIT_SCALE, typical_change=0.1, change_label="+0.1",
                driver=True),
    _unit_interval("liveness", "Liveness",
                   "Presence of an audience in the recording; above 0.8 is probably live (Spotify, 0-1)."),
    _unit_interval("valence", "Valence",
                   "Musical positiveness: high is happy, cheerful, euphoric; low is sad, angry, tense (Spotify, "
                   "0-1)."),
    FeatureSpec("tempo", "Tempo", "BPM", "Estimated tempo in beats per minute.", low=0.0, high=300.0, step=1.0,
                per_unit="+1 BPM", typical_change=10.0, change_label="+10 BPM", sources=("spotify", "audio"),
                driver=True),
    FeatureSpec("duration_min", "Duration", "min", "Track length in minutes.", low=0.0, high=None, step=0.05,
                per_unit="+1 minute", typical_change=1.0, change_label="+1 min",
                sources=("spotify", "audio", "metadata"), driver=True, canonical_column="duration_ms",
                canonical_scale=60000.0),
    FeatureSpec("explicit", "Explicit lyrics", "0/1", "Whether the track is flagged as explicit.", kind="binary",
                low=0.0, high=1.0, step=1.0, per_unit="explicit vs not (0 -> 1)", change_label="explicit",
                sources=("spotify", "metadata"), driver=True, model_column="explicit_int",
                choices=((False, "no"), (True, "yes"))),
    FeatureSpec("mode", "Mode", "0/1", "Modality: 1 = major, 0 = minor.", kind="binary", low=0.0, high=1.0,
                step=1.0, per_unit="major vs minor (0 -> 1)", change_label="major", sources=("spotify", "audio"),
                driver=True, choices=((1, "major"), (0, "minor"))),
    FeatureSpec("key", "Key", "pitch class", "Pitch class the track is in (0 = C ... 11 = B; -1: no key detected).",
                kind="category", low=-1.0, high=11.0, step=1.0, sources=("spotify", "audio"), model_column="key_cat",
                choices=((-1, "not detected"), *((i, KEY_NAMES[i]) for i in range(12)))),
    FeatureSpec("time_signature", "Time signature", "beats",
                "Estimated beats per bar (4 = 4/4, 3 = 3/4 ...; 0 = not measured).", kind="category", low=0.0,
                high=7.0, step=1.0, sources=("spotify", "audio"),
                choices=tuple((t, f"{t}/4") for t in (1, 3, 4, 5, 6, 7))),
    FeatureSpec("artist_followers", "Artist followers", "followers",
                "Followers of the artist on Spotify (the model uses log10 of it: reach, not quality).", low=0.0,
                step=1000.0, input_high=150_000_000.0, sources=("spotify", "metadata"),
                model_column="log_followers"),
    FeatureSpec("track_age_days", "Time since release", "days",
                "Days from release to the data's reference date; older tracks have lost popularity.", low=0.0,
                step=30.0, sources=("metadata",), canonical_column="release_date"),
    FeatureSpec("genre_family", "Genre family", "",
                "About twelve families grouping the artist's Spotify genres (or the dataset's genre).",
                kind="category", sources=("spotify", "metadata"), canonical_column="artist_genres"),
    # popdrivers' own descriptors, measured from the sound by popdrivers.audio (never Spotify's features; how each
    # is computed: popdrivers.audio.descriptors and docs/audio.md). Not causal drivers by default: the datasets
    # the drivers run on have no such column.
    FeatureSpec("rhythm_regularity", "Rhythm regularity (DFA)", "DFA score",
                "How steady and self-similar the rhythm is over 0.3-8.7 s: higher is a steadier, more danceable "
                "pulse (music mostly 0.5-3; a metronome about 5). Measured from audio; not Spotify's danceability.",
                low=0.0, step=0.01, per_unit="+1 on the DFA scale", typical_change=0.25, change_label="+0.25",
                sources=("audio",)),
    FeatureSpec("beat_confidence", "Beat-tracking confidence", "0-5.32",
                "How much five beat trackers agree on where the beats are: above 3.5 the beat is very clear, below "
                "1.5 unclear (rubato, ambient, no drums). Measured from audio.", low=0.0, high=5.32, step=0.01,
                per_unit="+1 agreement point", typical_change=0.5, change_label="+0.5", sources=("audio",)),
    FeatureSpec("onset_rate", "Onset rate", "onsets/s",
                "Note and drum attacks per second: busy, dense arrangements score high (typical pop 2-6). Measured "
                "from audio.", low=0.0, step=0.1, per_unit="+1 onset per second", typical_change=1.0,
                change_label="+1 onset/s", sources=("audio",)),
    FeatureSpec("brightness_hz", "Spectral brightness", "Hz",
                "Centre of mass of the spectrum: bright, trebly mixes score high, dark or bass-heavy ones low "
                "(typical music 1000-3500 Hz). Measured from audio.", low=0.0, high=22050.0, step=10.0,
                per_unit="+1 Hz", typical_change=250.0, change_label="+250 Hz", sources=("audio",)),
    FeatureSpec("spectral_flatness", "Noisiness (spectral flatness)", "0-1",
                "How noise-like rather than tonal the sound is: 0 a pure tone, 1 white noise (typical music "
                "0.05-0.4). Measured from audio.", low=0.0, high=1.0, step=0.01, per_unit=_UNIT_SCALE,
                typical_change=0.05, change_label="+0.05", sources=("audio",)),
    FeatureSpec("loudness_range_lu", "Loudness range (LRA)", "LU",
                "How much the loudness varies over the track (EBU R128 LRA): compressed masters 2-6 LU, dynamic "
                "ones 10-20 LU. Measured from audio.", low=0.0, step=0.1, per_unit="+1 LU", typical_change=2.0,
                change_label="+2 LU", sources=("audio",)),
    FeatureSpec("percussive_share", "Percussive share", "0-1",
                "Share of the spectral energy in percussive rather than harmonic sound: drum-heavy tracks high, "
                "pads and strings low. Measured from audio.", low=0.0, high=1.0, step=0.01, per_unit=_UNIT_SCALE,
                typical_change=0.1, change_label="+0.1", sources=("audio",)),
    FeatureSpec("key_strength", "Tonal clarity (key strength)", "0-1",
                "How strongly the pitch content fits the detected key: clear tonal music above 0.7, atonal, noisy "
                "or drum-only audio below 0.4 (then key and mode are uncertain). Measured from audio.", low=0.0,
                high=1.0, step=0.01, per_unit=_UNIT_SCALE, typical_change=0.1, change_label="+0.1",
                sources=("audio",)),
)
_REGISTRY: dict[str, FeatureSpec] = {s.name: s for s in _BUILT_IN}
# Model columns are named after the feature they hold; these are the exceptions (and derived-only labels).
_COLUMN_LABELS = {"log_followers": "artist followers", "explicit_int": "explicit", "key_cat": "key",
                  "artist_track_record": "artist's other tracks (mean popularity)"}


def register(feature: FeatureSpec, *, replace: bool = False) -> FeatureSpec:
    """Add a feature to the registry (or replace one with ``replace=True``); returns it."""
    if feature.name in _REGISTRY and not replace:
        raise ValueError(f"feature {feature.name!r} is already registered; pass replace=True to change it")
    _REGISTRY[feature.name] = feature
    return feature


def unregister(name: str) -> None:
    """Remove a feature (tests that register one clean up with this)."""
    _REGISTRY.pop(name, None)


def features() -> Iterator[FeatureSpec]:
    """Every registered feature, in registry order."""
    return iter(tuple(_REGISTRY.values()))


def spec(name: str) -> FeatureSpec:
    """The spec of a feature by name, or by its model column (``explicit_int`` -> ``explicit``)."""
    found = _REGISTRY.get(name)
    if found is None:
        found = next((s for s in _REGISTRY.values() if s.column == name), None)
    if found is None:
        raise KeyError(f"unknown feature {name!r}: registered are {', '.join(_REGISTRY)}")
    return found


def is_registered(name: str) -> bool:
    return name in _REGISTRY


def driver_names() -> tuple[str, ...]:
    """The features whose causal effect the drivers estimate by default, in registry order."""
    return tuple(s.name for s in _REGISTRY.values() if s.driver)


# How reports name where a driver's values came from (a family of ``schema.feature_source_family``).
SOURCE_LABELS = {"spotify": "Spotify", "audio": "popdrivers' audio analysis", "metadata": "metadata",
                 "reccobeats": "ReccoBeats", "deezer": "Deezer"}


def source_label(source: str | None) -> str:
    """Plain words for a feature source family ("audio" -> "popdrivers' audio analysis"; a file: its name)."""
    if not source:
        return "unknown"
    return SOURCE_LABELS.get(source, source.removeprefix("file:"))


def measured_driver_names() -> tuple[str, ...]:
    """The drivers of a table whose features were measured from the sound by popdrivers.audio, in registry order.

    Every registered feature popdrivers can measure that is a quantity or a flag (tempo, mode, loudness, duration
    and popdrivers' own descriptors; key and meter are labels, not quantities), plus the metadata drivers
    (explicit lyrics). Spotify's own features (danceability, energy, ...) are not measured, so not among them.
    """
    return tuple(s.name for s in _REGISTRY.values() if s.kind != "category" and (
        "audio" in s.sources or (s.driver and "metadata" in s.sources)))


def drivers_for_source(source: str | None) -> tuple[str, ...]:
    """Default drivers of a table whose audio features come from ``source`` (a ``feature_source_family``):
    :func:`measured_driver_names` for "audio", :func:`driver_names` (Spotify-style features) otherwise."""
    return measured_driver_names() if source == "audio" else driver_names()


def eligible_driver_names() -> tuple[str, ...]:
    """Every feature the drivers can estimate on some table (the default drivers of any source), registry order."""
    chosen = set(driver_names()) | set(measured_driver_names())
    return tuple(name for name in _REGISTRY if name in chosen)


def value_source(name: str, features_source: str | None) -> str:
    """Where a feature's values come from in a table whose audio features come from ``features_source``.

    Features the release or the artist gives (duration, explicit lyrics, followers, dates, genres: "metadata" in
    their sources) are "metadata" whatever the features' source; the others take the table's features source.
    """
    feature = spec(name)
    if "metadata" in feature.sources:
        return "metadata"
    return features_source or "spotify"


def binary_drivers() -> frozenset[str]:
    return frozenset(s.name for s in _REGISTRY.values() if s.driver and s.binary)


def label(name: str) -> str:
    """Plain-words name of a feature or a model column (the name itself when unknown)."""
    if name in _REGISTRY:
        found = _REGISTRY[name]
        return f"{found.label.lower()} ({found.unit})" if found.unit in ("dB", "BPM", "min") else found.label.lower()
    if name in _COLUMN_LABELS:
        return _COLUMN_LABELS[name]
    by_column = next((s for s in _REGISTRY.values() if s.column == name), None)
    return by_column.label.lower() if by_column is not None else name


def input_range(name: str, observed: Any = None) -> tuple[float, float]:
    """The span an input or a curve offers for a feature: its valid range, open ends closed by the data.

    ``observed`` (values in the feature's unit, NaN allowed) closes an open bound at its 0.5th / 99.5th
    percentile; without data an open upper bound is 20 typical changes above the lower one.
    """
    import numpy as np

    feature = spec(name)
    values = np.asarray(observed, dtype="float64") if observed is not None else np.array([])
    values = values[np.isfinite(values)]
    low = feature.low if feature.low is not None else (float(np.quantile(values, 0.005)) if values.size else 0.0)
    if feature.high is not None:
        high = feature.high
    elif values.size:
        high = max(float(np.quantile(values, 0.995)), low + feature.typical_change)
    else:
        high = low + 20 * feature.typical_change
    return float(low), float(high)


def canonical_value(name: str, value: Any) -> tuple[str, Any]:
    """(canonical column, stored value) for a feature's value in its own unit.

    Flags are stored as bools (explicit) or whole 0/1, scaled features on their storage scale (duration: minutes
    -> whole milliseconds, as the schema counts them), the rest as floats.
    """
    feature = spec(name)
    if feature.canonical == "explicit":
        return "explicit", bool(round(float(value)))
    if feature.binary:
        return feature.canonical, float(round(float(value)))
    if feature.canonical_scale != 1.0:
        return feature.canonical, float(round(float(value) * feature.canonical_scale))
    return feature.canonical, float(value)
