"""Decoding an audio file into the samples the analysis reads: 44.1 kHz float32, stereo and mono.

Three decoders, tried in order (each in the analysis worker, under its time and memory limit):

1. libsndfile (``soundfile``): WAV, FLAC, OGG Vorbis/Opus, MP3, AIFF. It reads only the analysed window, so a
   two-hour file costs no more than ten minutes of it.
2. the ``ffmpeg`` program, when installed: M4A/AAC, ALAC, WMA and everything else ffmpeg knows; ``-ss``/``-t``
   decode only the window.
3. Essentia's AudioLoader (its bundled FFmpeg libraries): the whole file is decoded, then cut to the window.

Very long files: at most :data:`MAX_ANALYSED_SECONDS` are analysed, the middle of the file (intros and fades
say little about a track); ``duration_s`` is still the whole file's length.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from popdrivers.errors import PopdriversError

ANALYSIS_RATE = 44100
# The longest stretch analysed; longer files are analysed over their middle MAX_ANALYSED_SECONDS.
MAX_ANALYSED_SECONDS = 600.0
# Shorter than this, tempo and meter have too few beats to mean anything.
MIN_SECONDS = 3.0
FFMPEG_FIX = "install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg)"


class AudioError(PopdriversError):
    """A file that cannot be analysed; the message names the file, the reason and, when there is one, the fix."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass(frozen=True)
class DecodedAudio:
    """The analysed window of a file, at :data:`ANALYSIS_RATE`.

    Attributes
    ----------
    stereo
        (n, 2) float32; a mono file has its signal in the left channel and zeros in the right (so that BS.1770
        loudness measures it as one channel, as the standard says).
    mono
        (n,) float32, the mean of the channels (Essentia's MonoLoader downmix).
    duration_s
        Length of the whole file in seconds (not only of the analysed window).
    offset_s
        Where the analysed window starts in the file.
    channels, source_rate
        The file's own channel count and sample rate.
    decoder
        Which decoder read it ("libsndfile", "ffmpeg", "essentia").
    """

    stereo: np.ndarray
    mono: np.ndarray
    duration_s: float
    offset_s: float
    channels: int
    source_rate: int
    decoder: str

    @property
    def analysed_s(self) -> float:
        return len(self.mono) / ANALYSIS_RATE

    @property
    def capped(self) -> bool:
        return self.analysed_s < self.duration_s - 0.5


def _window(duration_s: float, max_seconds: float) -> tuple[float, float]:
    """(offset, length) in seconds of the analysed window: all of it, or the middle ``max_seconds``."""
    if duration_s <= max_seconds:
        return 0.0, duration_s
    return (duration_s - max_seconds) / 2.0, max_seconds


def _resample(channels: np.ndarray, rate: int) -> np.ndarray:
    """(n, c) float32 at ``rate`` -> at ANALYSIS_RATE, with Essentia's Resample (as its MonoLoader does)."""
    if rate == ANALYSIS_RATE:
        return np.ascontiguousarray(channels, dtype=np.float32)
    import essentia.standard as es

    resample = es.Resample(inputSampleRate=float(rate), outputSampleRate=float(ANALYSIS_RATE), quality=1)
    return np.stack([resample(np.ascontiguousarray(channels[:, c], dtype=np.float32))
                     for c in range(channels.shape[1])], axis=1)


def _finish(path: Path, samples: np.ndarray, rate: int, duration_s: float, offset_s: float, decoder: str,
            channels: int) -> DecodedAudio:
    if samples.ndim == 1:
        samples = samples[:, None]
    if not len(samples):
        raise AudioError(path, "no audio in the file (it decodes to zero samples)")
    if not np.isfinite(samples).all():
        samples = np.nan_to_num(samples, nan=0.0, posinf=0.0, neginf=0.0)
    samples = _resample(samples.astype(np.float32, copy=False), rate)
    mono = samples.mean(axis=1).astype(np.float32)
    if samples.shape[1] == 1:
        stereo = np.column_stack([samples[:, 0], np.zeros(len(samples), dtype=np.float32)])
    else:
        # More than two channels (5.1 ...): loudness is measured on the front pair.
        stereo = np.ascontiguousarray(samples[:, :2])
    return DecodedAudio(stereo, mono, duration_s, offset_s, channels, rate, decoder)


def _with_libsndfile(path: Path, max_seconds: float) -> DecodedAudio:
    import soundfile

    with soundfile.SoundFile(str(path)) as handle:
        rate, frames, channels = int(handle.samplerate), int(handle.frames), int(handle.channels)
        if rate <= 0:
            raise RuntimeError("no sample rate")
        duration = frames / rate
        offset, length = _window(duration, max_seconds)
        if offset > 0 and handle.seekable():
            handle.seek(int(offset * rate))
        else:
            offset = 0.0
        samples = handle.read(int(round(length * rate)), dtype="float32", always_2d=True)
    if duration <= max_seconds:
        duration = len(samples) / rate  # what decodes (a damaged file ends early)
    return _finish(path, samples, rate, duration, offset, "libsndfile", channels)


def _probe_duration(path: Path) -> float | None:
    """The file's length from its container (mutagen), None when it does not say."""
    try:
        import mutagen

        info = mutagen.File(str(path))
        length = float(info.info.length) if info is not None and getattr(info, "info", None) else 0.0
        return length if length > 0 else None
    except Exception:  # noqa: BLE001 - a damaged container just has no known length
        return None


def _with_ffmpeg(path: Path, max_seconds: float, timeout: float) -> DecodedAudio:
    executable = shutil.which("ffmpeg")
    if executable is None:
        raise FileNotFoundError("ffmpeg")
    known = _probe_duration(path)
    offset, length = _window(known, max_seconds) if known else (0.0, max_seconds)
    command = [executable, "-nostdin", "-v", "error", "-ss", f"{offset:.3f}", "-t", f"{length:.3f}",
               "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-ac", "2", "-ar", str(ANALYSIS_RATE), "pipe:1"]
    done = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    if done.returncode != 0 or not done.stdout:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise RuntimeError(message[-1] if message else f"ffmpeg exited with {done.returncode}")
    samples = np.frombuffer(done.stdout, dtype=np.float32).reshape(-1, 2)
    channels = _ffmpeg_channels(path)
    if channels == 1:
        samples = samples[:, :1]
    duration = known if known and known > max_seconds else len(samples) / ANALYSIS_RATE
    return _finish(path, samples, ANALYSIS_RATE, duration, offset, "ffmpeg", channels)


def _ffmpeg_channels(path: Path) -> int:
    try:
        import mutagen

        info = mutagen.File(str(path))
        return int(getattr(info.info, "channels", 2)) if info is not None else 2
    except Exception:  # noqa: BLE001 - unknown: treat as stereo (ffmpeg already made two channels)
        return 2


def _with_essentia(path: Path, max_seconds: float) -> DecodedAudio:
    import essentia.standard as es

    samples, rate, channels, _md5, _bitrate, _codec = es.AudioLoader(filename=str(path))()
    rate = int(rate)
    duration = len(samples) / rate if rate else 0.0
    offset, length = _window(duration, max_seconds)
    start = int(offset * rate)
    samples = np.asarray(samples[start:start + int(length * rate)], dtype=np.float32)
    if int(channels) == 1:
        samples = samples[:, :1]
    return _finish(path, samples, rate, duration, offset, "essentia", int(channels))


def decode(path: str | os.PathLike[str], *, max_seconds: float = MAX_ANALYSED_SECONDS,
           min_seconds: float = MIN_SECONDS, timeout: float = 120.0) -> DecodedAudio:
    """Decode the analysed window of ``path`` (see the module docstring for decoders and the cap).

    Raises
    ------
    AudioError
        Empty, not audio, a codec no installed decoder reads (the fix names ffmpeg), or too short.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(path, "no such file")
    size = path.stat().st_size
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    reasons: list[str] = []
    decoded: DecodedAudio | None = None
    for name, attempt in (("libsndfile", lambda: _with_libsndfile(path, max_seconds)),
                          ("ffmpeg", lambda: _with_ffmpeg(path, max_seconds, timeout)),
                          ("essentia", lambda: _with_essentia(path, max_seconds))):
        try:
            decoded = attempt()
            break
        except AudioError:
            raise
        except MemoryError:
            raise
        except FileNotFoundError:
            reasons.append(f"{name}: not installed")
        except Exception as exc:  # noqa: BLE001 - each decoder fails in its own words; all are reported
            reasons.append(f"{name}: {_short(exc)}")
    if decoded is None:
        raise AudioError(path, _undecodable_reason(path, reasons))
    if decoded.analysed_s < min_seconds:
        raise AudioError(path, f"too short to analyse ({decoded.analysed_s:.1f} s of audio; at least "
                               f"{min_seconds:g} s are needed for tempo and meter)")
    return decoded


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _undecodable_reason(path: Path, reasons: list[str]) -> str:
    head = path.read_bytes()[:64] if path.stat().st_size else b""
    looks_like_text = bool(head) and all(32 <= b < 127 or b in (9, 10, 13) for b in head)
    ffmpeg_missing = any(r.startswith("ffmpeg: not installed") for r in reasons)
    detail = "; ".join(reasons)
    if looks_like_text:
        return f"not an audio file (it holds text) ({detail})"
    if ffmpeg_missing:
        return f"no installed decoder reads this file's format or codec; {FFMPEG_FIX} ({detail})"
    return f"not decodable as audio: damaged, or a codec no installed decoder reads ({detail})"
