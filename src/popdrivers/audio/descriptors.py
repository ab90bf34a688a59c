"""popdrivers' own audio descriptors: what each one measures, how, in which unit and range.

These are *not* Spotify's audio features and never stand in for them: Spotify's danceability, energy, valence,
... are outputs of undisclosed models; these are measurements with a published algorithm, each under its own name.
The physical quantities that do have a definition (tempo, key, mode, loudness, time signature, duration) are
written into Spotify's column names and scales instead (see ``docs/audio.md``).

This module imports nothing heavy: the schema builds the canonical column specs of the descriptors from
:data:`DESCRIPTORS`, and the CLI lists them, without loading Essentia.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DescriptorSpec:
    """One descriptor popdrivers measures from the sound.

    Parameters
    ----------
    name
        Canonical column name (never one of Spotify's feature names).
    label
        Plain words for tables and widgets.
    unit
        Unit of the values.
    low, high
        Range the algorithm can produce (``None``: open).
    help
        What it means for a listener, in a sentence or two.
    algorithm
        How it is computed: library, algorithm and the reference it follows.
    """

    name: str
    label: str
    unit: str
    low: float | None
    high: float | None
    help: str
    algorithm: str


# The order is the order of the columns in an analysed table.
DESCRIPTORS: tuple[DescriptorSpec, ...] = (
    DescriptorSpec(
        "rhythm_regularity", "Rhythm regularity (DFA)", "DFA score", 0.0, None,
        "How steady and self-similar the rhythm is over time scales of 0.3-8.7 s: higher is a steadier, more "
        "danceable pulse (music mostly 0.5-3; a metronome reaches about 5). Not Spotify's danceability.",
        "Essentia Danceability: detrended fluctuation analysis of the signal's amplitude (Streich & Herrera 2005); "
        "Essentia's score from the DFA exponents over the time scales (open-ended, 0 upwards)."),
    DescriptorSpec(
        "beat_confidence", "Beat-tracking confidence", "score", 0.0, 5.32,
        "How much the beat trackers agree on where the beats are: above 3.5 the beat is very clear, below 1.5 "
        "it is unclear (rubato, ambient, no drums).",
        "Essentia RhythmExtractor2013 (multifeature): mean mutual agreement of five beat trackers "
        "(Zapata, Davies & Gomez 2014), 0 to 5.32."),
    DescriptorSpec(
        "onset_rate", "Onset rate", "onsets/s", 0.0, None,
        "Note and drum attacks per second: busy, dense arrangements score high (typical pop 2-6).",
        "Essentia OnsetRate: onsets detected from the high-frequency content and complex-domain onset functions "
        "(Brossier 2006), counted per second of audio analysed."),
    DescriptorSpec(
        "brightness_hz", "Spectral brightness", "Hz", 0.0, 22050.0,
        "Where the centre of mass of the spectrum sits: bright, trebly mixes score high, dark or bass-heavy ones "
        "low (typical music 1000-3500 Hz).",
        "Mean spectral centroid of 2048-sample Hann frames (hop 1024) at 44.1 kHz, weighted by each frame's "
        "energy so that silences do not count (Essentia Centroid on Spectrum)."),
    DescriptorSpec(
        "spectral_flatness", "Noisiness (spectral flatness)", "0-1", 0.0, 1.0,
        "How noise-like rather than tonal the sound is: 0 is a pure tone, 1 white noise (typical music "
        "0.05-0.4; distorted or percussive mixes higher).",
        "Mean over frames of the ratio of the geometric to the arithmetic mean of the power spectrum (Essentia "
        "Flatness; Johnston 1988), same frames as brightness, silent frames skipped."),
    DescriptorSpec(
        "loudness_range_lu", "Loudness range (LRA)", "LU", 0.0, None,
        "How much the loudness varies over the track: heavily compressed masters 2-6 LU, dynamic ones 10-20 LU.",
        "EBU Tech 3342 loudness range: spread (10th to 95th percentile) of the 3 s short-term loudness, gated; "
        "Essentia LoudnessEBUR128 on the stereo signal."),
    DescriptorSpec(
        "percussive_share", "Percussive share", "0-1", 0.0, 1.0,
        "Fraction of the spectral energy in percussive rather than harmonic components: drum-heavy tracks score "
        "high, sustained pads and strings low.",
        "Median-filtering harmonic/percussive separation (Fitzgerald 2010; librosa.decompose.hpss, kernel 17) "
        "of a 1024-point STFT at 11025 Hz, over at most 60 s from the middle of the analysed audio; "
        "percussive energy / (harmonic + percussive)."),
    DescriptorSpec(
        "key_strength", "Tonal clarity (key strength)", "0-1", 0.0, 1.0,
        "How strongly the pitch content fits the detected key: clear tonal music above 0.7, atonal, noisy or "
        "drum-only audio below 0.4. Also tells how far to trust `key` and `mode`.",
        "Correlation of the track's harmonic pitch-class profile with the key profile of the detected key "
        "(Essentia KeyExtractor), averaged over the profiles that voted for that key."),
)
DESCRIPTOR_NAMES: tuple[str, ...] = tuple(d.name for d in DESCRIPTORS)


def descriptor(name: str) -> DescriptorSpec:
    """The spec of a descriptor by name."""
    for spec in DESCRIPTORS:
        if spec.name == name:
            return spec
    raise KeyError(f"unknown audio descriptor {name!r}: known are {', '.join(DESCRIPTOR_NAMES)}")
