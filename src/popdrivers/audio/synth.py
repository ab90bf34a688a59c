"""Audio with exactly known tempo, key, mode, meter and loudness, made on the spot (no recordings needed).

The tests and ``benchmarks/bench_audio.py`` measure the analysis on this material; a user can run the same
check on an install. Two kinds:

* synthesised signals (numpy only): click tracks at a given BPM and meter, chords and scales of additive tones in
  a given key and mode, noise and tones scaled to a given integrated loudness (LUFS), silence;
* songs written as MIDI (``mido``, a dev dependency) with drums, bass, chords and a melody in a given style,
  tempo, key and meter, rendered to audio by the ``fluidsynth`` program with a General MIDI soundfont (Debian:
  ``apt-get install fluidsynth fluid-soundfont-gm``).

Nothing here is copyrighted: every note is generated from the spec.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLE_RATE = 44100
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)  # natural minor; the dominant of minor progressions is raised where written


# ------------------------------------------------------------------------------------------------------------
# Synthesised signals


def click_track(bpm: float, seconds: float, *, beats_per_bar: int = 4, sample_rate: int = SAMPLE_RATE,
                accent: float = 2.0, seed: int = 0) -> np.ndarray:
    """A metronome: a short damped click on every beat, the first beat of each bar ``accent`` times louder.

    The downbeat click is also lower in pitch (as a drummer's kick against the hats), so the meter is audible.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    out = np.zeros(n, dtype=np.float64)
    click_len = int(0.03 * sample_rate)
    t = np.arange(click_len) / sample_rate
    envelope = np.exp(-t / 0.006)
    period = 60.0 / bpm
    beat = 0
    while (start := int(round(beat * period * sample_rate))) < n:
        downbeat = beat % beats_per_bar == 0
        freq = 800.0 if downbeat else 1600.0
        click = np.sin(2 * np.pi * freq * t) * envelope + 0.1 * rng.standard_normal(click_len) * envelope
        end = min(n, start + click_len)
        out[start:end] += (accent if downbeat else 1.0) * click[: end - start]
        beat += 1
    return (0.4 * out / max(np.abs(out).max(), 1e-9)).astype(np.float32)


def _tone(freq: float, seconds: float, sample_rate: int, harmonics: int = 6) -> np.ndarray:
    """An additive tone with decaying harmonics and a soft attack/release (a simple organ-like note)."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    wave = sum((0.6 ** (h - 1)) * np.sin(2 * np.pi * freq * h * t) for h in range(1, harmonics + 1)
               if freq * h < sample_rate / 2)
    ramp = min(len(t) // 4, int(0.02 * sample_rate))
    envelope = np.ones_like(t)
    if ramp:
        envelope[:ramp] = np.linspace(0, 1, ramp)
        envelope[-ramp:] = np.linspace(1, 0, ramp)
    return wave * envelope


def midi_to_hz(note: float) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def chord_progression(tonic: int, mode: int, seconds: float, *, sample_rate: int = SAMPLE_RATE,
                      chord_seconds: float = 2.0) -> np.ndarray:
    """A cadence in the key (I-IV-V-I in major, i-iv-V-i in minor) with a bass note, repeated to ``seconds``.

    The minor dominant is major (harmonic minor), as in common practice, so the tonic is unambiguous.
    """
    base = 60 + tonic if tonic < 6 else 48 + tonic  # keep the voicings in one register
    third = 4 if mode == 1 else 3
    chords = [(0, third, 7), (5, 5 + (4 if mode == 1 else 3), 12), (7, 11, 14), (0, third, 7)]
    pieces = []
    total = 0.0
    while total < seconds:
        for root, *upper in chords:
            notes = [base + root, *(base + u for u in upper), base + root - 24]
            pieces.append(sum(_tone(midi_to_hz(m), chord_seconds, sample_rate) for m in notes))
            total += chord_seconds
    audio = np.concatenate(pieces)[: int(seconds * sample_rate)]
    return (0.3 * audio / np.abs(audio).max()).astype(np.float32)


def scale_run(tonic: int, mode: int, seconds: float, *, sample_rate: int = SAMPLE_RATE,
              note_seconds: float = 0.25) -> np.ndarray:
    """The scale up and down an octave, tonic longest, over a tonic drone (a melody that states the key)."""
    scale = MAJOR_SCALE if mode == 1 else (0, 2, 3, 5, 7, 8, 11)
    base = 60 + tonic
    line = [base + s for s in scale] + [base + 12] + [base + s for s in reversed(scale)]
    pieces = []
    total = 0.0
    while total < seconds:
        for note in line:
            length = note_seconds * (3 if note == base else 1)
            pieces.append(_tone(midi_to_hz(note), length, sample_rate))
            total += length
    melody = np.concatenate(pieces)[: int(seconds * sample_rate)]
    drone = _tone(midi_to_hz(base - 24), len(melody) / sample_rate, sample_rate)[: len(melody)]
    audio = melody + 0.5 * drone
    return (0.3 * audio / np.abs(audio).max()).astype(np.float32)


def scale_to_lufs(audio: np.ndarray, target_lufs: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """``audio`` scaled so that its integrated loudness (ITU-R BS.1770-4, measured by pyloudnorm) is the target."""
    import pyloudnorm

    meter = pyloudnorm.Meter(sample_rate)
    measured = meter.integrated_loudness(np.asarray(audio, dtype=np.float64))
    return (audio * 10 ** ((target_lufs - measured) / 20)).astype(np.float32)


def pink_noise(seconds: float, *, sample_rate: int = SAMPLE_RATE, seed: int = 0) -> np.ndarray:
    """Pink (1/f) noise: white noise shaped in the frequency domain."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sample_rate)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / sample_rate)
    spectrum[1:] /= np.sqrt(freqs[1:])
    spectrum[0] = 0
    noise = np.fft.irfft(spectrum, n)
    return (0.3 * noise / np.abs(noise).max()).astype(np.float32)


def write_audio(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int = SAMPLE_RATE,
                subtype: str | None = None) -> Path:
    """Write ``audio`` (mono or (n, channels)) with soundfile; the format follows the suffix (.wav .flac .ogg .mp3)."""
    import soundfile

    path = Path(path)
    formats = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}
    fmt = formats[path.suffix.lower()]
    if subtype is None:
        subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS", "MP3": "MPEG_LAYER_III"}[fmt]
    soundfile.write(str(path), audio, sample_rate, format=fmt, subtype=subtype)
    return path


# ------------------------------------------------------------------------------------------------------------
# MIDI songs


STYLES = ("pop", "rock", "edm", "hiphop", "ballad", "waltz")
# GM programs (0-based): chords, bass, lead per style.
_INSTRUMENTS = {
    "pop": (0, 33, 80), "rock": (29, 34, 30), "edm": (89, 38, 81), "hiphop": (4, 38, 11),
    "ballad": (0, 32, 48), "waltz": (0, 32, 40),
}
_MAJOR_PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (0, 3, 0, 4))  # scale degrees (0 = I)
_MINOR_PROGRESSIONS = ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 4), (0, 3, 6, 4))  # i VI III VII, i iv V i, ...
KICK, SNARE, CLAP, CLOSED_HAT, OPEN_HAT, CRASH, RIDE = 36, 38, 39, 42, 46, 49, 51


@dataclass(frozen=True)
class SongSpec:
    """A generated song and its truth: tempo in BPM, key (0 = C ... 11 = B), mode (1 major, 0 minor), meter."""

    style: str
    tempo: float
    key: int
    mode: int
    beats_per_bar: int = 4
    seconds: float = 24.0
    seed: int = 0

    @property
    def name(self) -> str:
        names = ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B")
        return (f"{self.style}-{self.tempo:g}bpm-{names[self.key]}{'maj' if self.mode else 'min'}-"
                f"{self.beats_per_bar}-{self.seed}")


def song_specs(count: int, *, seed: int = 0, seconds: float = 24.0) -> list[SongSpec]:
    """``count`` varied songs: every style, keys and modes cycled, tempi typical of each style."""
    rng = np.random.default_rng(seed)
    tempo_ranges = {"pop": (95, 130), "rock": (100, 160), "edm": (118, 132), "hiphop": (72, 100),
                    "ballad": (60, 80), "waltz": (90, 180)}
    specs = []
    for i in range(count):
        style = STYLES[i % len(STYLES)]
        low, high = tempo_ranges[style]
        specs.append(SongSpec(style=style, tempo=float(rng.integers(low, high + 1)), key=int((i * 7) % 12),
                              mode=int((i // 12) % 2 == 0) if i % 3 else int(rng.integers(0, 2)),
                              beats_per_bar=3 if style == "waltz" else 4, seconds=seconds, seed=seed * 1000 + i))
    return specs


def _chord_notes(key: int, mode: int, degree: int) -> list[int]:
    scale = MAJOR_SCALE if mode == 1 else MINOR_SCALE
    notes = [scale[(degree + step) % 7] + 12 * ((degree + step) // 7) for step in (0, 2, 4)]
    if mode == 0 and degree == 4:
        notes[1] += 1  # the raised leading tone: V is major in minor
    return [key + n for n in notes]


def write_song_midi(spec: SongSpec, path: str | os.PathLike[str]) -> Path:
    """Write ``spec`` as a type-1 MIDI file: drums (channel 10), bass, chords and a melody, 480 ticks a beat."""
    import mido

    rng = np.random.default_rng(spec.seed)
    ppq = 480
    beats = int(spec.seconds * spec.tempo / 60)
    bars = max(1, beats // spec.beats_per_bar)
    progressions = _MAJOR_PROGRESSIONS if spec.mode == 1 else _MINOR_PROGRESSIONS
    progression = progressions[int(rng.integers(len(progressions)))]
    chord_program, bass_program, lead_program = _INSTRUMENTS[spec.style]
    events: list[tuple[int, int, int, int, int]] = []  # (tick, channel, note, velocity, length)

    def note(beat: float, channel: int, pitch: int, velocity: int, length: float) -> None:
        velocity = int(np.clip(velocity + rng.integers(-6, 7), 1, 127))
        events.append((int(round(beat * ppq)), channel, int(pitch), velocity, max(1, int(length * ppq))))

    bpb = spec.beats_per_bar
    key_root = spec.key  # pitch class; registers are added per part
    for bar in range(bars):
        start = bar * bpb
        degree = progression[bar % len(progression)]
        chord = _chord_notes(key_root, spec.mode, degree)
        # Drums.
        if spec.style == "edm":
            for b in range(bpb):
                note(start + b, 9, KICK, 110, 0.25)
                note(start + b + 0.5, 9, OPEN_HAT, 70, 0.25)
                if b % 2 == 1:
                    note(start + b, 9, CLAP, 95, 0.25)
        elif spec.style == "hiphop":
            for k in (0.0, 1.5, 2.5):
                note(start + k, 9, KICK, 115, 0.25)
            for s in (1.0, 3.0):
                note(start + s, 9, SNARE, 105, 0.25)
            for h in range(16):
                note(start + h / 4, 9, CLOSED_HAT, 55 + (15 if h % 2 == 0 else 0), 0.1)
        elif spec.style == "waltz":
            note(start, 9, KICK, 110, 0.25)
            note(start + 1, 9, CLOSED_HAT, 75, 0.25)
            note(start + 2, 9, CLOSED_HAT, 75, 0.25)
            note(start + 1, 9, SNARE, 60, 0.25)
            note(start + 2, 9, SNARE, 60, 0.25)
        else:
            kicks = (0.0, 2.0) if spec.style != "rock" else (0.0, 2.0, 2.5)
            for k in kicks:
                note(start + k, 9, KICK, 110 if spec.style != "ballad" else 80, 0.25)
            for s in (1.0, 3.0):
                note(start + s, 9, SNARE, 100 if spec.style != "ballad" else 70, 0.25)
            hat = RIDE if spec.style == "ballad" else CLOSED_HAT
            for h in range(bpb * 2):
                note(start + h / 2, 9, hat, 60 + (12 if h % 2 == 0 else 0), 0.2)
            if bar % 4 == 0:
                note(start, 9, CRASH, 90, 1.0)
        # Bass: chord root, on the beats (eighths in rock and edm), in octave 2.
        root = 36 + (chord[0] % 12)
        step = 0.5 if spec.style in ("rock", "edm") else 1.0
        b = 0.0
        while b < bpb:
            note(start + b, 1, root if (b % 2 == 0 or spec.style != "pop") else root + 7, 95, step * 0.9)
            b += step
        # Chords: sustained in octave 4 (the waltz plays beats 2 and 3, "oom-pah-pah").
        voicing = [60 + ((n - 60) % 12) for n in chord]
        if spec.style == "waltz":
            for beat in (1, 2):
                for n in voicing:
                    note(start + beat, 2, n, 70, 0.8)
        else:
            for n in voicing:
                note(start, 2, n, 72, bpb * 0.95)
        # Melody: chord tones on strong beats, scale steps between, in octave 5.
        scale = MAJOR_SCALE if spec.mode == 1 else MINOR_SCALE
        for beat in range(bpb):
            if beat % 2 == 0 or spec.beats_per_bar == 3 and beat == 0:
                pitch = 72 + ((voicing[int(rng.integers(3))] - 60) % 12)
            else:
                pitch = 72 + (key_root + scale[int(rng.integers(7))]) % 12
            if rng.random() < 0.85:
                note(start + beat, 3, pitch, 85, 0.9)
    # The last bar rings on the tonic chord (the song ends at home).
    end = bars * bpb
    for n in _chord_notes(key_root, spec.mode, 0):
        note(end, 2, 60 + ((n - 60) % 12), 70, bpb)
    note(end, 1, 36 + key_root % 12, 90, bpb)

    midi = mido.MidiFile(type=1, ticks_per_beat=ppq)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=int(round(60_000_000 / spec.tempo)), time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=bpb, denominator=4, time=0))
    meta.append(mido.MetaMessage("end_of_track", time=0))
    midi.tracks.append(meta)
    programs = {1: bass_program, 2: chord_program, 3: lead_program}
    for channel in (9, 1, 2, 3):
        track = mido.MidiTrack()
        if channel in programs:
            track.append(mido.Message("program_change", channel=channel, program=programs[channel], time=0))
        timeline = []
        for tick, ch, pitch, velocity, length in events:
            if ch == channel:
                timeline.append((tick, 1, pitch, velocity))
                timeline.append((tick + length, 0, pitch, 0))
        timeline.sort(key=lambda e: (e[0], e[1]))
        now = 0
        for tick, on, pitch, velocity in timeline:
            kind = "note_on" if on else "note_off"
            track.append(mido.Message(kind, channel=channel, note=pitch, velocity=velocity, time=tick - now))
            now = tick
        track.append(mido.MetaMessage("end_of_track", time=0))
        midi.tracks.append(track)
    path = Path(path)
    midi.save(str(path))
    return path


def fluidsynth_available(soundfont: Path = SOUNDFONT) -> bool:
    """Whether the ``fluidsynth`` program and the General MIDI soundfont are installed."""
    return shutil.which("fluidsynth") is not None and soundfont.is_file()


def render_midi(midi_path: str | os.PathLike[str], out_path: str | os.PathLike[str], *,
                soundfont: Path = SOUNDFONT, sample_rate: int = SAMPLE_RATE, gain: float = 0.6,
                timeout: float = 120.0) -> Path:
    """Render a MIDI file to a WAV file with fluidsynth (no audio device; the process ends with the render)."""
    if not fluidsynth_available(soundfont):
        raise RuntimeError(f"fluidsynth or the soundfont {soundfont} is missing: "
                           "apt-get install fluidsynth fluid-soundfont-gm")
    out_path = Path(out_path)
    command = ["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(sample_rate), "-F", str(out_path),
               str(soundfont), str(midi_path)]
    subprocess.run(command, check=True, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return out_path


def render_song(spec: SongSpec, folder: str | os.PathLike[str], *, suffix: str = ".wav") -> Path:
    """Write and render ``spec`` into ``folder`` (WAV, or converted with soundfile to .flac/.ogg/.mp3)."""
    import soundfile

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    midi = write_song_midi(spec, folder / f"{spec.name}.mid")
    wav = render_midi(midi, folder / f"{spec.name}.wav")
    midi.unlink()
    if suffix == ".wav":
        return wav
    audio, rate = soundfile.read(str(wav), dtype="float32")
    out = write_audio(folder / f"{spec.name}{suffix}", audio, rate)
    wav.unlink()
    return out
