"""Audio analysis: accuracy of every candidate method on material with known truth, and what the analysis costs.

Material (made here, nothing copyrighted; ``popdrivers.audio.synth``):

* ``click``: metronomes at 60-200 BPM, 4/4 and 3/4, including tempi just either side of the octave boundaries;
* ``tonal``: I-IV-V-I cadences and scale runs over a drone in all 24 keys (additive tones);
* ``midi``: songs written as MIDI (drums, bass, chords, melody; pop, rock, edm, hiphop, ballad, waltz) rendered by
  fluidsynth with the FluidR3 General MIDI soundfont, encoded as 128 kbit/s MP3 (as streaming previews are);
* ``loudness``: 1 kHz stereo tones (truth from BS.1770's definition: a full-scale sine in both channels is
  0 LUFS) and pink noise scaled by pyloudnorm, at -30 to -6 LUFS.

Accuracy: tempo Acc1 (within 4 %) and Acc2 (also at x2, x1/2, x3, x1/3; MIREX), key MIREX weighted score (1 same,
0.5 a fifth, 0.3 relative, 0.2 parallel), exact key, mode accuracy; loudness error; meter accuracy. Candidates run
on the same decoded samples (44.1 kHz mono, the analysis' own decode); "popdrivers" rows are the shipped analysis
(``popdrivers.audio.analyze_each``), exactly what ``popdrivers analyze`` writes.

Speed: CPU seconds per stage on one core for a 30 s clip and a 4-minute track; the whole analysis per file through
one worker; peak memory of a worker; the decode-only floor against the full analysis on two workers; and 100 clips
of 15-20 s end to end with the installed ``popdrivers analyze`` command.

Usage::

    nice -n 10 python benchmarks/bench_audio.py [--workdir DIR] [--songs 48] [--skip-speed] [--skip-accuracy]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core per measurement, as a worker runs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

RATE = 44100
KEY_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
PITCH = {"C": 0, "C#": 1, "Db": 1, "D": 2, "D#": 3, "Eb": 3, "E": 4, "F": 5, "F#": 6, "Gb": 6, "G": 7, "G#": 8,
         "Ab": 8, "A": 9, "A#": 10, "Bb": 10, "B": 11}
ESSENTIA_PROFILES = ("bgate", "edma", "edmm", "braw", "temperley", "temperley2005", "krumhansl", "shaath", "diatonic")
# Krumhansl-Kessler (1982) and Temperley (1999, "What's key for key?") profiles, C major / C minor.
KK_MAJOR = (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88)
KK_MINOR = (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17)
TEMPERLEY_MAJOR = (5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0)
TEMPERLEY_MINOR = (5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0)


# ------------------------------------------------------------------------------------------------------------
# Scores


def tempo_scores(estimates: list[float], truths: list[float]) -> tuple[float, float]:
    """(Acc1, Acc2) in the MIREX sense: within 4 %; Acc2 also at 2, 1/2, 3 and 1/3 times the truth."""
    one = two = 0
    for est, ref in zip(estimates, truths, strict=True):
        if not est or not np.isfinite(est):
            continue
        one += abs(est - ref) <= 0.04 * ref
        two += any(abs(est - f * ref) <= 0.04 * f * ref for f in (1, 2, 0.5, 3, 1 / 3))
    return one / len(truths), two / len(truths)


def key_score(est: tuple[int, int], ref: tuple[int, int]) -> float:
    """MIREX weighted key score of one estimate (key, mode) against the truth (key, mode)."""
    (k, m), (rk, rm) = est, ref
    if k < 0:
        return 0.0
    if (k, m) == (rk, rm):
        return 1.0
    if m == rm and (k - rk) % 12 in (5, 7):
        return 0.5
    if m != rm and ((rm == 1 and (k - rk) % 12 == 9) or (rm == 0 and (k - rk) % 12 == 3)):
        return 0.3
    if k == rk and m != rm:
        return 0.2
    return 0.0


def key_summary(estimates: list[tuple[int, int]], truths: list[tuple[int, int]]) -> dict[str, float]:
    scores = [key_score(e, t) for e, t in zip(estimates, truths, strict=True)]
    return {"mirex": float(np.mean(scores)), "exact": float(np.mean([s == 1.0 for s in scores])),
            "mode": float(np.mean([e[1] == t[1] for e, t in zip(estimates, truths, strict=True)]))}


# ------------------------------------------------------------------------------------------------------------
# Material


def make_material(workdir: Path, songs: int) -> dict[str, list[dict]]:
    """Write every set into ``workdir`` (kept between runs) and return {set: [{file, truth...}]}."""
    from popdrivers.audio import synth

    index_path = workdir / f"index-{songs}.json"
    if index_path.is_file():
        return json.loads(index_path.read_text())
    workdir.mkdir(parents=True, exist_ok=True)
    sets: dict[str, list[dict]] = {"click": [], "tonal": [], "midi": [], "loudness": []}
    for bpb, tempi in ((4, (60, 69, 71, 80, 90, 100, 110, 120, 130, 139, 141, 150, 160, 170, 180, 200)),
                       (3, (80, 100, 120, 150, 180))):
        for bpm in tempi:
            path = synth.write_audio(workdir / f"click-{bpm}-{bpb}.wav", synth.click_track(bpm, 20, beats_per_bar=bpb))
            sets["click"].append({"file": str(path), "tempo": bpm, "time_signature": bpb})
    for tonic in range(12):
        for mode in (1, 0):
            for kind, make in (("cadence", synth.chord_progression), ("scale", synth.scale_run)):
                path = synth.write_audio(workdir / f"{kind}-{KEY_NAMES[tonic].replace('#', 's')}-{mode}.wav",
                                         make(tonic, mode, 20))
                sets["tonal"].append({"file": str(path), "key": tonic, "mode": mode, "kind": kind})
    midi_dir = workdir / "midi"
    for spec in synth.song_specs(songs, seed=11, seconds=30):
        path = midi_dir / f"{spec.name}.mp3"
        if not path.exists():
            synth.render_song(spec, midi_dir, suffix=".mp3")
        sets["midi"].append({"file": str(path), "tempo": spec.tempo, "key": spec.key, "mode": spec.mode,
                             "time_signature": spec.beats_per_bar, "style": spec.style})
    t = np.arange(20 * RATE) / RATE
    for lufs in (-30.0, -23.0, -14.0, -8.0, -6.0):
        # BS.1770-4 defines its scale so that a full-scale 1 kHz sine in one front channel reads -3.01 LUFS: in both
        # channels of a stereo pair it reads 0 LUFS, so a sine of peak A in both channels is 20 log10(A) LUFS.
        tone = np.column_stack([10 ** (lufs / 20) * np.sin(2 * np.pi * 1000 * t)] * 2).astype(np.float32)
        path = synth.write_audio(workdir / f"tone-{lufs:g}.wav", tone, subtype="FLOAT")
        sets["loudness"].append({"file": str(path), "loudness": lufs, "kind": "1 kHz tone (BS.1770 definition)"})
        noise = synth.scale_to_lufs(np.column_stack([synth.pink_noise(20, seed=1), synth.pink_noise(20, seed=2)]),
                                    lufs)
        path = synth.write_audio(workdir / f"noise-{lufs:g}.wav", noise, subtype="FLOAT")
        sets["loudness"].append({"file": str(path), "loudness": lufs, "kind": "pink noise (pyloudnorm)"})
    index_path.write_text(json.dumps(sets))
    return sets


def decoded(path: str) -> np.ndarray:
    """44.1 kHz mono float32, decoded as the analysis decodes (libsndfile, mean of channels)."""
    import soundfile
    import soxr

    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    if rate != RATE:
        audio = soxr.resample(audio, rate, RATE, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(audio.mean(axis=1), dtype=np.float32)


# ------------------------------------------------------------------------------------------------------------
# Candidates


def _essentia() -> object:
    import essentia
    import essentia.standard as es

    essentia.log.infoActive = False
    essentia.log.warningActive = False
    return es


def tempo_candidates() -> dict[str, Callable[[np.ndarray], float]]:
    es = _essentia()
    import librosa
    import soxr

    def half_rate(x: np.ndarray) -> np.ndarray:
        return soxr.resample(x, RATE, 22050, quality="HQ").astype(np.float32)

    def librosa_beats(x: np.ndarray) -> float:
        tempo, _beats = librosa.beat.beat_track(y=half_rate(x), sr=22050)
        return float(np.atleast_1d(tempo)[0])

    def librosa_tempo(x: np.ndarray) -> float:
        return float(librosa.feature.tempo(y=half_rate(x), sr=22050)[0])

    return {
        "Essentia RhythmExtractor2013 multifeature": lambda x: float(es.RhythmExtractor2013()(x)[0]),
        "Essentia RhythmExtractor2013 degara": lambda x: float(es.RhythmExtractor2013(method="degara")(x)[0]),
        "Essentia PercivalBpmEstimator": lambda x: float(es.PercivalBpmEstimator()(x)),
        "librosa beat_track": librosa_beats,
        "librosa feature.tempo (prior 120)": librosa_tempo,
    }


def _profile_key(chroma: np.ndarray, major: tuple[float, ...], minor: tuple[float, ...]) -> tuple[int, int]:
    best, choice = -np.inf, (0, 1)
    for mode, profile in ((1, major), (0, minor)):
        for tonic in range(12):
            r = np.corrcoef(chroma, np.roll(profile, tonic))[0, 1]
            if r > best:
                best, choice = r, (tonic, mode)
    return choice


def key_candidates() -> dict[str, Callable[[np.ndarray], tuple[int, int]]]:
    es = _essentia()
    import librosa
    import soxr

    def essentia_key(profile: str) -> Callable[[np.ndarray], tuple[int, int]]:
        extractor = es.KeyExtractor(profileType=profile)

        def run(x: np.ndarray) -> tuple[int, int]:
            name, scale, strength = extractor(x)
            return (PITCH[name], 1 if scale == "major" else 0) if strength > 0 else (-1, 1)
        return run

    def vote(x: np.ndarray) -> tuple[int, int]:
        found = [essentia_key(p)(x) for p in ("bgate", "edma", "shaath")]
        counts = {k: found.count(k) for k in found}
        top = max(counts.values())
        return found[0] if top == 1 else next(k for k in found if counts[k] == top)

    def chroma(x: np.ndarray) -> np.ndarray:
        y = soxr.resample(x, RATE, 22050, quality="HQ").astype(np.float32)
        return librosa.feature.chroma_cqt(y=y, sr=22050).mean(axis=1)

    candidates: dict[str, Callable[[np.ndarray], tuple[int, int]]] = {
        f"Essentia KeyExtractor '{p}'": essentia_key(p) for p in ESSENTIA_PROFILES}
    candidates["Essentia vote bgate+edma+shaath"] = vote
    candidates["librosa chroma_cqt + Krumhansl-Kessler"] = lambda x: _profile_key(chroma(x), KK_MAJOR, KK_MINOR)
    candidates["librosa chroma_cqt + Temperley"] = lambda x: _profile_key(chroma(x), TEMPERLEY_MAJOR,
                                                                           TEMPERLEY_MINOR)
    return candidates


def production(files: list[str]) -> dict[str, dict]:
    """The shipped analysis of each file (popdrivers.audio.analyze_files, two workers)."""
    from popdrivers.audio import analyze_each

    analyses, failures = analyze_each(files, jobs=2)
    for failure in failures:
        print(f"  production failed: {failure}", file=sys.stderr)
    return {a.file: a.to_row() for a in analyses}


# ------------------------------------------------------------------------------------------------------------
# Tables


def table(title: str, header: list[str], rows: list[list[object]]) -> None:
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|")
    for row in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row) + " |")


def accuracy(sets: dict[str, list[dict]]) -> None:
    rhythm_items = sets["click"] + sets["midi"]
    tonal_items = sets["tonal"] + sets["midi"]
    every = sorted({item["file"] for items in sets.values() for item in items})
    started = time.perf_counter()
    shipped = production(every)
    print(f"(production analysis of {len(every)} files: {time.perf_counter() - started:.0f} s wall, 2 workers)")
    samples: dict[str, np.ndarray] = {}

    def x(path: str) -> np.ndarray:
        if path not in samples:
            samples[path] = decoded(path)
        return samples[path]

    rows = []
    for name, run in [*tempo_candidates().items(), ("popdrivers (shipped)", None)]:
        cpu = time.process_time()
        per_set = {}
        for label, items in (("click", sets["click"]), ("midi", sets["midi"]), ("all", rhythm_items)):
            if run is None:
                estimates = [shipped.get(i["file"], {}).get("tempo") or 0.0 for i in items]
            else:
                estimates = [run(x(i["file"])) if label != "all" else 0.0 for i in items]
            per_set[label] = estimates
        per_set["all"] = per_set["click"] + per_set["midi"]
        seconds = time.process_time() - cpu
        cells: list[object] = [name]
        for label, items in (("click", sets["click"]), ("midi", sets["midi"]), ("all", rhythm_items)):
            one, two = tempo_scores(per_set[label], [i["tempo"] for i in items])
            cells += [one, two]
        cells.append("" if run is None else f"{seconds / len(rhythm_items):.2f}")
        rows.append(cells)
    table(f"Tempo: Acc1 / Acc2 ({len(sets['click'])} click tracks, {len(sets['midi'])} MIDI renders as MP3)",
          ["method", "click Acc1", "click Acc2", "MIDI Acc1", "MIDI Acc2", "all Acc1", "all Acc2", "CPU s/file"],
          rows)

    rows = []
    for name, run in [*key_candidates().items(), ("popdrivers (shipped)", None)]:
        cpu = time.process_time()
        results = {}
        for label, items in (("tonal", sets["tonal"]), ("midi", sets["midi"])):
            if run is None:
                results[label] = [(int(shipped.get(i["file"], {}).get("key", -1)),
                                   int(shipped.get(i["file"], {}).get("mode", 1))) for i in items]
            else:
                results[label] = [run(x(i["file"])) for i in items]
        seconds = time.process_time() - cpu
        cells = [name]
        for label, items in (("tonal", sets["tonal"]), ("midi", sets["midi"])):
            s = key_summary(results[label], [(i["key"], i["mode"]) for i in items])
            cells += [s["mirex"], s["exact"], s["mode"]]
        both = key_summary(results["tonal"] + results["midi"], [(i["key"], i["mode"]) for i in tonal_items])
        cells += [both["mirex"], "" if run is None else f"{seconds / len(tonal_items):.3f}"]
        rows.append(cells)
    table(f"Key: MIREX score / exact / mode ({len(sets['tonal'])} cadences and scales, "
          f"{len(sets['midi'])} MIDI renders)",
          ["method", "tonal MIREX", "tonal exact", "tonal mode", "MIDI MIREX", "MIDI exact", "MIDI mode",
           "all MIREX", "CPU s/file"], rows)

    import pyloudnorm
    import soundfile

    es = _essentia()
    rows = []
    for item in sets["loudness"]:
        audio, rate = soundfile.read(item["file"], dtype="float32", always_2d=True)
        essentia_value = float(es.LoudnessEBUR128(sampleRate=rate)(audio)[2])
        pyln = float(pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64)))
        mine = shipped.get(item["file"], {}).get("loudness")
        rows.append([item["kind"], f"{item['loudness']:g}", f"{essentia_value:.2f}", f"{pyln:.2f}",
                     f"{mine:.2f}" if mine is not None else "failed"])
    table("Loudness (LUFS): truth, Essentia LoudnessEBUR128, pyloudnorm, popdrivers (shipped)",
          ["signal", "truth", "Essentia", "pyloudnorm", "popdrivers"], rows)
    midi_loudness = [(float(es.LoudnessEBUR128(sampleRate=r)(a)[2]),
                      float(pyloudnorm.Meter(r).integrated_loudness(a.astype(np.float64))))
                     for a, r in (soundfile.read(i["file"], dtype="float32", always_2d=True) for i in sets["midi"])]
    gaps = np.array([a - b for a, b in midi_loudness])
    print(f"\nEssentia - pyloudnorm on the {len(gaps)} MIDI renders: mean {gaps.mean():+.3f} LU, "
          f"max |gap| {np.abs(gaps).max():.3f} LU")

    rows = []
    for label, items in (("click", sets["click"]), ("midi", sets["midi"])):
        for meter in (3, 4):
            chosen = [i for i in items if i["time_signature"] == meter]
            if chosen:
                hits = [shipped.get(i["file"], {}).get("time_signature") == meter for i in chosen]
                rows.append([label, f"{meter}/4", len(chosen), float(np.mean(hits))])
    table("Time signature (popdrivers, shipped): share called right", ["set", "truth", "files", "accuracy"], rows)

    styles = sorted({i["style"] for i in sets["midi"]})
    rows = []
    for style in styles:
        items = [i for i in sets["midi"] if i["style"] == style]
        one, two = tempo_scores([shipped.get(i["file"], {}).get("tempo") or 0.0 for i in items],
                                [i["tempo"] for i in items])
        found = [shipped.get(i["file"], {}) for i in items]
        k = key_summary([(int(f.get("key", -1)), int(f.get("mode", 1))) for f in found],
                        [(i["key"], i["mode"]) for i in items])
        rows.append([style, len(items), one, two, k["mirex"]])
    table("popdrivers (shipped) on the MIDI renders by style", ["style", "songs", "Acc1", "Acc2", "key MIREX"], rows)


# ------------------------------------------------------------------------------------------------------------
# Speed

STAGES = r"""
import json, resource, sys, time
import numpy as np
import soundfile, soxr
import essentia
essentia.log.infoActive = False
import essentia.standard as es
import librosa
path = sys.argv[1]
out = {}
def timed(name, fn):
    start = time.process_time(); value = fn(); out[name] = round(time.process_time() - start, 3); return value
audio, rate = timed("decode (libsndfile)", lambda: soundfile.read(path, dtype="float32", always_2d=True))
stereo = timed("resample + downmix", lambda: np.ascontiguousarray(
    soxr.resample(audio, rate, 44100, quality="HQ") if rate != 44100 else audio, dtype=np.float32))
mono = np.ascontiguousarray(stereo.mean(axis=1), dtype=np.float32)
# First calls compile (numba) and allocate: paid once by a worker's warm-up, so not counted here.
librosa.feature.tempo(y=soxr.resample(mono[:5 * 44100], 44100, 22050), sr=22050)
timed("tempo + beats (RhythmExtractor2013)", lambda: es.RhythmExtractor2013(method="multifeature")(mono))
timed("key (KeyExtractor x1)", lambda: es.KeyExtractor(profileType="bgate")(mono))
pair = stereo if stereo.shape[1] == 2 else np.repeat(stereo, 2, 1)
timed("loudness + LRA (EBU R128)", lambda: es.LoudnessEBUR128()(pair))
timed("DFA (Danceability)", lambda: es.Danceability()(mono))
timed("onset rate", lambda: es.OnsetRate()(mono))
timed("librosa onset tempo (22 kHz)", lambda: librosa.feature.tempo(y=soxr.resample(mono, 44100, 22050), sr=22050))
out["seconds of audio"] = round(len(mono) / 44100, 1)
out["peak RSS MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
print(json.dumps(out))
"""

WHOLE = r"""
import json, resource, sys, time
from popdrivers.audio import analyze_files
files = sys.argv[2:]
jobs = int(sys.argv[1])
start = time.perf_counter()
analyses, failures = analyze_files(files, jobs=jobs)
wall = time.perf_counter() - start
children = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall_s": round(wall, 2), "worker_cpu_s": round(children.ru_utime + children.ru_stime, 2),
                  "worker_peak_mb": round(children.ru_maxrss / 1024), "ok": len(analyses), "failed": len(failures)}))
"""

DECODE_ONLY = r"""
import json, sys, time
from concurrent.futures import ProcessPoolExecutor
import numpy as np
def decode(path):
    import soundfile, soxr
    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    if rate != 44100:
        audio = soxr.resample(audio, rate, 44100, quality="HQ")
    return len(audio)
files = sys.argv[2:]
start = time.perf_counter()
with ProcessPoolExecutor(int(sys.argv[1])) as pool:
    frames = sum(pool.map(decode, files))
print(json.dumps({"wall_s": round(time.perf_counter() - start, 2), "audio_s": round(frames / 44100)}))
"""


def _child(code: str, *args: str) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def speed_material(workdir: Path) -> tuple[Path, Path, list[Path]]:
    """A 30 s MP3 clip, a 4-minute MP3 track and 100 MP3 clips of 15-20 s, all cut from MIDI renders."""
    import soundfile

    from popdrivers.audio import synth

    folder = workdir / "speed"
    folder.mkdir(parents=True, exist_ok=True)
    long_track = folder / "track-4min.mp3"
    if not long_track.exists():
        spec = synth.SongSpec("pop", 118, 7, 1, seconds=240, seed=5)
        synth.render_song(spec, folder / "render", suffix=".wav")
        audio, rate = soundfile.read(str(folder / "render" / f"{spec.name}.wav"), dtype="float32")
        synth.write_audio(long_track, audio[: 240 * rate], rate)
        synth.write_audio(folder / "clip-30s.mp3", audio[60 * rate: 90 * rate], rate)
    clips_dir = folder / "clips"
    clips = sorted(clips_dir.glob("*.mp3"))
    if len(clips) < 100:
        clips_dir.mkdir(exist_ok=True)
        rng = np.random.default_rng(3)
        for index, spec in enumerate(synth.song_specs(25, seed=21, seconds=84)):
            wav = synth.render_song(spec, folder / "render", suffix=".wav")
            audio, rate = soundfile.read(str(wav), dtype="float32")
            for part in range(4):
                length = float(rng.uniform(15, 20))
                start = int(part * 20 * rate)
                synth.write_audio(clips_dir / f"clip-{index:02d}-{part}.mp3", audio[start:start + int(length * rate)],
                                  rate)
        clips = sorted(clips_dir.glob("*.mp3"))
    return folder / "clip-30s.mp3", long_track, clips[:100]


def speed(workdir: Path) -> None:
    clip, track, clips = speed_material(workdir)
    rows = []
    stages = {label: _child(STAGES, str(path)) for label, path in (("30 s clip", clip), ("4-min track", track))}
    for name in stages["30 s clip"]:
        rows.append([name, stages["30 s clip"][name], stages["4-min track"][name]])
    table("CPU seconds per stage, one core (MP3 128 kbit/s; libraries called as the analysis calls them)",
          ["stage", "30 s clip", "4-min track"], rows)

    rows = []
    for label, path in (("30 s clip", clip), ("4-min track", track)):
        copies = []
        for n in range(3):  # copies, so that each is analysed (a batch analyses a path once)
            copy = path.with_name(f"{path.stem}-copy{n}{path.suffix}")
            if not copy.exists():
                shutil.copyfile(path, copy)
            copies.append(str(copy))
        one = _child(WHOLE, "1", copies[0])
        three = _child(WHOLE, "1", *copies)
        per_file = (three["worker_cpu_s"] - one["worker_cpu_s"]) / 2
        rows.append([label, one["wall_s"], one["worker_cpu_s"], round(per_file, 2), three["worker_peak_mb"]])
    table("Whole analysis through one worker: one file (wall and CPU include the worker's start and warm-up), "
          "and the CPU each further file costs (3 files minus 1, halved)",
          ["file", "wall s, 1 file", "worker CPU s, 1 file", "CPU s per further file", "worker peak RSS MB"], rows)

    files = [str(p) for p in clips]
    floor = _child(DECODE_ONLY, "2", *files)
    whole = _child(WHOLE, "2", *files)
    audio_s = floor["audio_s"]
    table(f"{len(files)} clips of 15-20 s ({audio_s} s of audio), two processes",
          ["pipeline", "wall s", "audio s per wall s", "x decode-only"],
          [["decode only (libsndfile + resample)", floor["wall_s"], audio_s / floor["wall_s"], 1.0],
           ["popdrivers.audio.analyze_files", whole["wall_s"], audio_s / whole["wall_s"],
            whole["wall_s"] / floor["wall_s"]]])
    print(f"\nworkers' CPU {whole['worker_cpu_s']} s for {len(files)} clips "
          f"({whole['worker_cpu_s'] / len(files):.2f} s per clip), peak worker RSS {whole['worker_peak_mb']} MB")

    command = shutil.which("popdrivers") or str(Path(sys.executable).with_name("popdrivers"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "clips.csv"
        start = time.perf_counter()
        done = subprocess.run([command, "analyze", str(clips[0].parent), "--out", str(out)], capture_output=True,
                              text=True, check=False)
        first = time.perf_counter() - start
        start = time.perf_counter()
        subprocess.run([command, "analyze", str(clips[0].parent), "--out", str(out)], capture_output=True, text=True,
                       check=False)
        rerun = time.perf_counter() - start
        import pandas as pd

        rows_written = len(pd.read_csv(out)) if out.exists() else 0
    table("`popdrivers analyze` on the 100 clips (installed command, all cores)",
          ["run", "wall s", "rows", "exit code"],
          [["first run", round(first, 1), rows_written, done.returncode], ["rerun (cache)", round(rerun, 1), "", ""]])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "popdrivers-bench-audio")
    parser.add_argument("--songs", type=int, default=48)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()
    when = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
    print(f"# bench_audio: {when}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load {load[0]:.1f}/{load[1]:.1f}, Python {platform.python_version()}")
    from importlib import metadata

    print("versions: " + ", ".join(f"{p} {metadata.version(p)}" for p in ("essentia", "librosa", "pyloudnorm",
                                                                          "soundfile")))
    started = time.perf_counter()
    sets = make_material(args.workdir, args.songs)
    print(f"material: {', '.join(f'{k} {len(v)}' for k, v in sets.items())} ({time.perf_counter() - started:.0f} s)")
    if not args.skip_accuracy:
        accuracy(sets)
    if not args.skip_speed:
        speed(args.workdir)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"\n(benchmark process CPU {usage.ru_utime:.0f} s, total wall {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
