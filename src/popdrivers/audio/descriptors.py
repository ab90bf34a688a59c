"""popdrivers' own audio descriptors: how each one is computed.

These are *not* Spotify's audio features and never stand in for them: Spotify's danceability, energy, valence,
... are outputs of undisclosed models; these are measurements with a published algorithm, each under its own name.
The physical quantities that do have a definition (tempo, key, mode, loudness, time signature, duration) are
written into Spotify's column names and scales instead (see ``docs/audio.md``).

What a descriptor *means* (label, unit, range, help) is written once, in :mod:`popdrivers.registry` (sources
"audio"); this module adds only the algorithm, and imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass

from popdrivers import registry

# How each descriptor is computed (the order is the order of the columns in an analysed table).
ALGORITHMS: dict[str, str] = {
    "rhythm_regularity": (
        "Essentia Danceability: detrended fluctuation analysis of the signal's amplitude (Streich & Herrera "
        "2005); Essentia's score from the DFA exponents over the time scales (open-ended, 0 upwards)."
    ),
    "beat_confidence": (
        'Essentia RhythmExtractor2013 (multifeature): mean mutual agreement of five beat trackers (Zapata, '
        'Davies & Gomez 2014), 0 to 5.32.'
    ),
    "onset_rate": (
        'Essentia OnsetRate: onsets detected from the high-frequency content and complex-domain onset '
        'functions (Brossier 2006), counted per second of audio analysed.'
    ),
    "brightness_hz": (
        "Mean spectral centroid of 2048-sample Hann frames (hop 1024) at 44.1 kHz, weighted by each frame's "
        'energy so that silences do not count (Essentia Centroid on Spectrum).'
    ),
    "spectral_flatness": (
        'Mean over frames of the ratio of the geometric to the arithmetic mean of the power spectrum '
        '(Essentia Flatness; Johnston 1988), same frames as brightness, silent frames skipped.'
    ),
    "loudness_range_lu": (
        'EBU Tech 3342 loudness range: spread (10th to 95th percentile) of the 3 s short-term loudness, '
        'gated; Essentia LoudnessEBUR128 on the stereo signal.'
    ),
    "percussive_share": (
        'Median-filtering harmonic/percussive separation (Fitzgerald 2010; librosa.decompose.hpss, kernel 17)'
        ' of a 1024-point STFT at 11025 Hz, over at most 60 s from the middle of the analysed audio; '
        'percussive energy / (harmonic + percussive).'
    ),
    "key_strength": (
        "Correlation of the track's harmonic pitch-class profile with the key profile of the detected key "
        '(Essentia KeyExtractor), averaged over the profiles that voted for that key.'
    ),
}
DESCRIPTOR_NAMES: tuple[str, ...] = tuple(ALGORITHMS)


@dataclass(frozen=True)
class DescriptorSpec:
    """One descriptor: the registry's label, unit, range and help, and how it is computed."""

    name: str
    label: str
    unit: str
    low: float | None
    high: float | None
    help: str
    algorithm: str


def descriptor(name: str) -> DescriptorSpec:
    """The spec of a descriptor by name (meaning from the registry, algorithm from :data:`ALGORITHMS`)."""
    if name not in ALGORITHMS:
        raise KeyError(f"unknown audio descriptor {name!r}: known are {', '.join(DESCRIPTOR_NAMES)}")
    feature = registry.spec(name)
    return DescriptorSpec(name, feature.label, feature.unit, feature.low, feature.high, feature.help, ALGORITHMS[name])


def descriptors() -> tuple[DescriptorSpec, ...]:
    """Every descriptor, in table order."""
    return tuple(descriptor(name) for name in DESCRIPTOR_NAMES)
