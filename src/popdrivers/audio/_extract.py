"""The analysis of one file, run inside a worker process (see ``_worker.py``): decode, measure, return a dict.

Decoding reads at most ``max_seconds`` from the start: libsndfile (the ``soundfile`` wheel: WAV, FLAC, OGG,
MP3, AIFF) reads frames on demand, so a two-hour file costs no more than its first ``max_seconds``; other
containers (M4A/AAC, WMA, ...) go to Essentia's AudioLoader (its bundled FFmpeg), which decodes the whole file
(the worker's memory limit bounds it). The measures (why these: see docs/audio.md and benchmarks/bench_audio.py):

* tempo: Essentia RhythmExtractor2013 (multifeature) for the value; its octave (x2, /2) is settled by librosa's
  onset-autocorrelation tempo with its log-normal perceptual prior around 120 BPM when the two differ by an octave;
* key and mode: majority vote of Essentia KeyExtractor with the bgate, edma and shaath profiles (popular-music
  profiles); no majority -> bgate (Essentia's default);
* loudness: integrated loudness (ITU-R BS.1770-4 / EBU R128, LUFS) of the stereo signal, Essentia LoudnessEBUR128;
* time signature: 3 or 4 from the bar-level accent pattern of beat-synchronous onset strength;
* descriptors: see ``descriptors.py``.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 44100
MIN_SECONDS = 2.0
# Peak below this (about -90 dBFS) is digital silence or dither: no tempo or key exists.
SILENCE_PEAK = 3e-5
KEY_PROFILES = ("bgate", "edma", "shaath")
KEY_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_FLATS = {"Db": "C#", "Eb": "D#", "Gb": "F#", "Ab": "G#", "Bb": "A#"}
PERCUSSIVE_MAX_SECONDS = 60.0


class AnalysisError(Exception):
    """A file that cannot be analysed; the message is the reason shown to the user."""


def extractor_version() -> str:
    """``popdrivers-essentia-<version>``: what ``features_source`` names (``audio:`` + this)."""
    try:
        version = metadata.version("essentia")
    except metadata.PackageNotFoundError:  # pragma: no cover - essentia is a dependency
        version = "unknown"
    return f"popdrivers-essentia-{version}"


# ------------------------------------------------------------------------------------------------------------
# Metadata and decoding


def read_tags(path: Path) -> dict[str, Any]:
    """Title, artist, album and the header's length (seconds) from the file's tags (mutagen); {} when unreadable."""
    import mutagen

    try:
        handle = mutagen.File(str(path), easy=True)
    except Exception:  # noqa: BLE001 - any parser failure just means "no tags"
        return {}
    if handle is None:
        return {}
    out: dict[str, Any] = {}
    tags = handle.tags or {}
    for key in ("title", "artist", "album"):
        try:
            values = tags.get(key)
        except Exception:  # noqa: BLE001
            values = None
        if values:
            text = str(values[0] if isinstance(values, list) else values).strip()
            if text:
                out[key] = text
    length = getattr(getattr(handle, "info", None), "length", None)
    if length and np.isfinite(length) and length > 0:
        out["length"] = float(length)
    return out


def _decode_soundfile(path: Path, max_seconds: float) -> tuple[np.ndarray, int, float | None, str]:
    import soundfile

    with soundfile.SoundFile(str(path)) as handle:
        rate = handle.samplerate
        header_frames = handle.frames if handle.frames and handle.frames > 0 else None
        wanted = int(max_seconds * rate)
        audio = handle.read(frames=wanted if header_frames is None else min(wanted, header_frames),
                            dtype="float32", always_2d=True)
        codec = f"{handle.format}/{handle.subtype}"
    header_seconds = header_frames / rate if header_frames else None
    return audio, rate, header_seconds, codec


def _decode_ffmpeg(path: Path) -> tuple[np.ndarray, int, float | None, str]:
    import essentia.standard as es

    audio, rate, _, _, _, codec = es.AudioLoader(filename=str(path), computeMD5=False)()
    return np.asarray(audio, dtype="float32"), int(rate), None, f"ffmpeg/{codec}"


def _clean_detail(detail: str, path: Path) -> str:
    detail = " ".join(str(detail).split()).replace(f"Error opening '{path}': ", "")
    if "does not exist or is not a regular file" in detail or "Format not recognised" in detail:
        return "format not recognised"
    return detail[:160]


def decode(path: Path, max_seconds: float) -> tuple[np.ndarray, int, float | None, str]:
    """(audio as (frames, channels) float32, sample rate, length in the header (s) or None, codec).

    libsndfile first (it sniffs the content, not the extension, and reads only what is asked); Essentia's
    FFmpeg loader for what libsndfile cannot open.
    """
    import soundfile

    try:
        return _decode_soundfile(path, max_seconds)
    except (soundfile.LibsndfileError, RuntimeError, ValueError, EOFError) as exc:
        libsndfile_error = _clean_detail(str(exc), path)
    try:
        return _decode_ffmpeg(path)
    except (RuntimeError, ValueError) as exc:
        ffmpeg_error = _clean_detail(str(exc), path)
    raise AnalysisError(
        f"cannot decode the audio: neither libsndfile ({libsndfile_error}) nor Essentia's FFmpeg ({ffmpeg_error}) "
        "can read it, so it is not audio, damaged, or in an unsupported codec. Fix: if it plays elsewhere, "
        "convert it to FLAC or WAV (e.g. ffmpeg -i IN OUT.flac)")


def _to_mono_44k(audio: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(mono, stereo) at 44.1 kHz; mono is the channel mean, stereo keeps two channels (mono files duplicated)."""
    if audio.shape[1] > 2:
        audio = audio[:, :2]  # BS.1770 weights surround channels differently; front pair only
    if rate != SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ").astype("float32")
    audio = np.ascontiguousarray(audio, dtype="float32")
    stereo = audio if audio.shape[1] == 2 else np.repeat(audio, 2, axis=1)
    return np.ascontiguousarray(audio.mean(axis=1), dtype="float32"), np.ascontiguousarray(stereo)


# ------------------------------------------------------------------------------------------------------------
# Measures


def _resampled(mono: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(mono, SAMPLE_RATE, rate, quality="MQ").astype("float32") if len(mono) else mono


def _pitch_class(name: str) -> int:
    return KEY_NAMES.index(_FLATS.get(name, name))


def estimate_key(mono: np.ndarray) -> tuple[int, int, float, dict[str, tuple[int, int, float]]]:
    """(key, mode, strength, per-profile results): majority of the profiles; no majority -> the first profile."""
    import essentia.standard as es

    votes: dict[str, tuple[int, int, float]] = {}
    for profile in KEY_PROFILES:
        name, scale, strength = es.KeyExtractor(profileType=profile, sampleRate=SAMPLE_RATE)(mono)
        votes[profile] = (_pitch_class(name), 1 if scale == "major" else 0, float(strength))
    tally: dict[tuple[int, int], list[float]] = {}
    for key, mode, strength in votes.values():
        tally.setdefault((key, mode), []).append(strength)
    best = max(tally, key=lambda k: (len(tally[k]), k == votes[KEY_PROFILES[0]][:2]))
    return best[0], best[1], float(np.mean(tally[best])), votes


def _octave_choice(essentia_bpm: float, reference_bpm: float) -> tuple[float, str | None]:
    """Essentia's tempo moved to the octave of the reference estimate when the two differ by a factor 2."""
    for factor, label in ((2.0, "doubled"), (0.5, "halved")):
        if abs(reference_bpm / (essentia_bpm * factor) - 1) <= 0.08:
            return essentia_bpm * factor, label
    return essentia_bpm, None


def estimate_rhythm(mono: np.ndarray) -> dict[str, Any]:
    """Tempo (BPM), beats (s), beat confidence, and the estimates behind the tempo."""
    import essentia.standard as es
    import librosa

    bpm, beats, confidence, _, _ = es.RhythmExtractor2013(method="multifeature")(mono)
    bpm = float(bpm)
    # librosa's tempo: autocorrelation of the onset strength, weighted by a log-normal prior at 120 BPM
    # (Ellis 2007), on a 22.05 kHz copy (its defaults are tuned there).
    half = _resampled(mono, SAMPLE_RATE // 2)
    envelope = librosa.onset.onset_strength(y=half, sr=SAMPLE_RATE // 2)
    reference = float(librosa.feature.tempo(onset_envelope=envelope, sr=SAMPLE_RATE // 2)[0])
    tempo, moved = (bpm, None) if bpm <= 0 else _octave_choice(bpm, reference)
    return {"tempo": tempo, "essentia_bpm": bpm, "reference_bpm": reference, "octave": moved,
            "beats": np.asarray(beats, dtype="float64"), "confidence": float(confidence),
            "envelope": envelope, "envelope_rate": SAMPLE_RATE // 2 / 512}


def estimate_meter(beats: np.ndarray, envelope: np.ndarray, envelope_rate: float) -> int:
    """3 or 4 beats per bar: which grouping of beat-level accents shows a stronger downbeat.

    Each beat gets the peak onset strength within +-70 ms; for a bar of p beats the accent contrast is the
    best phase's mean accent over the overall mean. 3/4 needs a clearly stronger contrast (x1.15): most popular
    music is in 4, and Spotify's own values are 4 for about 9 tracks in 10.
    """
    if len(beats) < 12:
        return 4
    half_window = max(1, int(0.07 * envelope_rate))
    frames = np.clip(np.round(beats * envelope_rate).astype(int), 0, len(envelope) - 1)
    accents = np.array([envelope[max(0, f - half_window): f + half_window + 1].max() for f in frames])
    if accents.mean() <= 0:
        return 4

    def contrast(period: int) -> float:
        usable = len(accents) // period * period
        grouped = accents[:usable].reshape(-1, period)
        return float(grouped.mean(axis=0).max() / accents[:usable].mean())

    return 3 if contrast(3) > 1.15 * contrast(4) else 4


def _spectral(mono: np.ndarray) -> tuple[float, float]:
    """Energy-weighted mean spectral centroid (Hz) and mean flatness of the non-silent frames."""
    import essentia.standard as es

    window = es.Windowing(type="hann", size=2048)
    spectrum = es.Spectrum(size=2048)
    centroid = es.Centroid(range=SAMPLE_RATE / 2)
    flatness = es.Flatness()
    centroids, energies, flats = [], [], []
    for frame in es.FrameGenerator(mono, frameSize=2048, hopSize=1024, startFromZero=True):
        magnitude = spectrum(window(frame))
        energy = float(np.sum(magnitude.astype("float64") ** 2))
        if energy < 1e-10:
            continue
        centroids.append(float(centroid(magnitude)))
        energies.append(energy)
        flats.append(float(flatness(magnitude ** 2)))
    if not centroids:
        return float("nan"), float("nan")
    return float(np.average(centroids, weights=energies)), float(np.mean(flats))


def _percussive_share(mono: np.ndarray) -> float:
    import librosa

    # The middle PERCUSSIVE_MAX_SECONDS, at 11025 Hz: median filtering is the costly step.
    span = int(PERCUSSIVE_MAX_SECONDS * SAMPLE_RATE)
    if len(mono) > span:
        start = (len(mono) - span) // 2
        mono = mono[start: start + span]
    low = _resampled(mono, SAMPLE_RATE // 4)
    magnitude = np.abs(librosa.stft(low, n_fft=1024, hop_length=512))
    harmonic, percussive = librosa.decompose.hpss(magnitude, kernel_size=17)
    h, p = float(np.sum(harmonic ** 2)), float(np.sum(percussive ** 2))
    return p / (h + p) if h + p > 0 else float("nan")


def _finite(value: float, digits: int = 4) -> float | None:
    return round(float(value), digits) if value is not None and np.isfinite(value) else None


def analyse(path: str | os.PathLike[str], max_seconds: float) -> dict[str, Any]:
    """Analyse one file; a dict of plain values (JSON-ready). Raises :class:`AnalysisError` with the reason."""
    import essentia.standard as es

    path = Path(path)
    if not path.is_file():
        raise AnalysisError("no such file")
    if path.stat().st_size == 0:
        raise AnalysisError("the file is empty (0 bytes)")
    tags = read_tags(path)
    audio, rate, header_seconds, codec = decode(path, max_seconds)
    if audio.size == 0:
        raise AnalysisError(f"no audio samples could be decoded ({codec})")
    decoded_seconds = audio.shape[0] / rate
    header_seconds = header_seconds or tags.get("length")
    notes: list[str] = []
    capped = decoded_seconds >= max_seconds - 1.0 / rate and (header_seconds or 0) > max_seconds + 0.5
    if capped:
        duration_seconds = header_seconds
        notes.append(f"analysed the first {decoded_seconds:.0f} s of {header_seconds:.0f} s (cap {max_seconds:g} s)")
    else:
        duration_seconds = decoded_seconds
        if header_seconds and header_seconds - decoded_seconds > max(1.0, 0.02 * header_seconds):
            notes.append(f"truncated file: the header claims {header_seconds:.1f} s but only {decoded_seconds:.1f} s "
                         "could be decoded; duration_ms is what was decoded")
    if decoded_seconds < MIN_SECONDS:
        raise AnalysisError(f"too short: {decoded_seconds:.2f} s of audio ({codec}); at least {MIN_SECONDS:g} s is "
                            "needed to measure tempo and key")
    peak = float(np.max(np.abs(audio)))
    if not np.isfinite(peak):
        raise AnalysisError("the decoded audio holds invalid samples (NaN or infinity): the file is damaged")
    if peak < SILENCE_PEAK:
        raise AnalysisError(f"no sound: {decoded_seconds:.1f} s of digital silence (peak "
                            f"{20 * np.log10(max(peak, 1e-12)):.0f} dBFS); tempo, key and loudness do not exist")
    channels = int(audio.shape[1])
    mono, stereo = _to_mono_44k(audio, rate)
    del audio

    rhythm = estimate_rhythm(mono)
    key, mode, key_strength, votes = estimate_key(mono)
    _, _, integrated, loudness_range = es.LoudnessEBUR128(sampleRate=SAMPLE_RATE, hopSize=0.1)(stereo)
    rhythm_regularity, _ = es.Danceability(sampleRate=SAMPLE_RATE)(mono)
    _, onset_rate = es.OnsetRate()(mono)
    brightness, flatness = _spectral(mono)
    percussive = _percussive_share(mono)
    meter = estimate_meter(rhythm["beats"], rhythm["envelope"], rhythm["envelope_rate"])
    if rhythm["octave"]:
        notes.append(f"tempo {rhythm['octave']} from Essentia's {rhythm['essentia_bpm']:.1f} BPM to the octave of "
                     f"the onset-autocorrelation estimate ({rhythm['reference_bpm']:.1f} BPM)")
    if key_strength < 0.4:
        notes.append(f"weak tonal centre (key strength {key_strength:.2f}): key and mode are uncertain")
    tempo = rhythm["tempo"] if rhythm["tempo"] > 0 else None
    return {
        "title": tags.get("title"), "artist": tags.get("artist"), "album": tags.get("album"),
        "tempo": _finite(tempo, 3) if tempo else None, "key": int(key), "mode": int(mode),
        "loudness": _finite(integrated, 3), "time_signature": int(meter),
        "duration_ms": round(duration_seconds * 1000) if duration_seconds else None,
        "rhythm_regularity": _finite(rhythm_regularity), "beat_confidence": _finite(rhythm["confidence"]),
        "onset_rate": _finite(onset_rate), "brightness_hz": _finite(brightness, 1),
        "spectral_flatness": _finite(flatness), "loudness_range_lu": _finite(loudness_range, 3),
        "percussive_share": _finite(percussive), "key_strength": _finite(key_strength),
        "analysed_seconds": round(decoded_seconds, 3), "codec": codec, "sample_rate": int(rate),
        "channels": channels, "notes": notes,
        "estimates": {"essentia_bpm": rhythm["essentia_bpm"], "reference_bpm": rhythm["reference_bpm"],
                      "key_votes": {p: list(v) for p, v in votes.items()}},
    }
