"""popdrivers.audio measures what the sound holds: tempo, key, mode, meter and loudness on material whose truth is
exact (click tracks, cadences, noise at a known LUFS, MIDI songs rendered by fluidsynth), and it names every file
it cannot analyse with the reason, without stopping the batch.

Every file is generated here (popdrivers.audio.synth); nothing binary is committed. One module fixture analyses
the whole set in one batch (the worker start-up is paid once).
"""

from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from popdrivers import registry, schema
from popdrivers.audio import (
    DESCRIPTOR_NAMES,
    AnalysisStream,
    AudioAnalysis,
    AudioFailure,
    analyze_each,
    analyze_files,
    descriptors,
    synth,
)

RATE = synth.SAMPLE_RATE


def require_fluidsynth() -> None:
    """MIDI renders need Debian's fluidsynth and fluid-soundfont-gm: a failure in CI, a skip elsewhere."""
    if synth.fluidsynth_available():
        return
    message = "fluidsynth or the General MIDI soundfont is missing: apt-get install fluidsynth fluid-soundfont-gm"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def unsupported_codec_wav(path: Path, seconds: float = 5.0) -> Path:
    """A well-formed RIFF/WAVE file whose format tag (0x7A7A) no decoder knows, with 'audio' data behind it."""
    data = (np.random.default_rng(0).integers(-2000, 2000, int(RATE * seconds)).astype("<i2")).tobytes()
    fmt = struct.pack("<HHIIHH", 0x7A7A, 1, RATE, RATE * 2, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


def two_hour_wav(path: Path) -> Path:
    """Two hours of a 120 BPM click at 8 kHz, 8-bit mono: 58 MB, written in a second (a long file is cheap)."""
    import soundfile

    bar = synth.click_track(120, 2.0, sample_rate=8000)
    with soundfile.SoundFile(str(path), "w", samplerate=8000, channels=1, subtype="PCM_U8", format="WAV") as out:
        block = np.tile(bar, 300)  # 10 minutes
        for _ in range(12):
            out.write(block)
    return path


CLICKS = {  # name: (bpm, beats per bar)
    "click-96-4": (96, 4), "click-120-4": (120, 4), "click-132-4": (132, 4),
    "click-90-3": (90, 3), "click-150-3": (150, 3),
    # Either side of an octave boundary: the octave is ambiguous, the tempo class is not.
    "click-66-4": (66, 4), "click-188-4": (188, 4),
}
CADENCES = {"cadence-D-minor": (2, 0), "cadence-A-major": (9, 1), "cadence-Fs-minor": (6, 0),
            "cadence-Eb-major": (3, 1)}
LOUDNESS = {"noise-minus-20": -20.0, "noise-minus-9": -9.0}


@pytest.fixture(scope="module")
def material(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("audio")
    files: dict[str, Path] = {}
    for name, (bpm, bpb) in CLICKS.items():
        files[name] = synth.write_audio(folder / f"{name}.wav", synth.click_track(bpm, 16, beats_per_bar=bpb))
    for name, (tonic, mode) in CADENCES.items():
        files[name] = synth.write_audio(folder / f"{name}.flac", synth.chord_progression(tonic, mode, 12))
    files["scale-G-major"] = synth.write_audio(folder / "scale-G-major.ogg", synth.scale_run(7, 1, 12))
    for name, lufs in LOUDNESS.items():
        stereo = np.column_stack([synth.pink_noise(10, seed=3), synth.pink_noise(10, seed=4)])
        files[name] = synth.write_audio(folder / f"{name}.wav", synth.scale_to_lufs(stereo, lufs), subtype="FLOAT")
    # A 30 s clip as a streaming preview is: MP3.
    files["preview-30s"] = synth.write_audio(folder / "preview-30s.mp3", synth.click_track(110, 30))
    # Bad input, each for its own reason.
    (folder / "empty.mp3").write_bytes(b"")
    files["empty"] = folder / "empty.mp3"
    (folder / "notes.mp3").write_text("these are my lyrics, not audio\n" * 20)
    files["text-named-mp3"] = folder / "notes.mp3"
    full = synth.write_audio(folder / "full.mp3", synth.click_track(120, 20))
    (folder / "cut.mp3").write_bytes(full.read_bytes()[:8192])
    files["mp3-cut-to-8kB"] = folder / "cut.mp3"
    files["silence"] = synth.write_audio(folder / "silence.wav", np.zeros(30 * RATE, dtype=np.float32))
    files["too-short"] = synth.write_audio(folder / "short.wav", synth.click_track(120, 0.4))
    files["unsupported-codec"] = unsupported_codec_wav(folder / "odd-codec.wav")
    flac = synth.write_audio(folder / "really-flac.flac", synth.click_track(100, 12))
    files["flac-named-wav"] = flac.rename(folder / "really-flac.wav")
    files["two-hours"] = two_hour_wav(folder / "two-hours.wav")
    return files


@pytest.fixture(scope="module")
def analysed(material) -> dict[str, AudioAnalysis | AudioFailure]:
    """Every file of ``material`` analysed in one batch (two workers, the first 60 s of long files)."""
    analyses, failures = analyze_each(list(material.values()), jobs=2, max_seconds=60.0)
    by_file = {a.file: a for a in analyses} | {f.file: f for f in failures}
    assert len(by_file) == len(material), "every file comes back, analysed or failed"
    return {name: by_file[str(path)] for name, path in material.items()}


def tempo_class(estimate: float, truth: float) -> bool:
    """MIREX Acc2: within 4 % of the truth or of 2, 1/2, 3 or 1/3 times it."""
    return any(abs(estimate - f * truth) <= 0.04 * f * truth for f in (1, 2, 0.5, 3, 1 / 3))


def test_click_tracks_give_their_tempo_and_meter(analysed):
    for name, (bpm, bpb) in CLICKS.items():
        result = analysed[name]
        assert isinstance(result, AudioAnalysis), result
        if 80 <= bpm <= 160:
            assert result.tempo == pytest.approx(bpm, rel=0.04), name  # Acc1 where the octave is unambiguous
        else:
            assert tempo_class(result.tempo, bpm), (name, result.tempo)
        if name not in ("click-66-4", "click-188-4"):
            assert result.time_signature == bpb, (name, result.time_signature)


def test_cadences_and_scales_give_their_key_and_mode(analysed):
    for name, (tonic, mode) in CADENCES.items():
        result = analysed[name]
        assert (result.key, result.mode) == (tonic, mode), (name, result.key, result.mode)
        assert dict(result.descriptors)["key_strength"] > 0.6, name
    # A scale over a tonic drone states the tonic; its mode is ambiguous to every profile (one third in 15 notes).
    assert analysed["scale-G-major"].key == 7


def test_loudness_is_bs1770_integrated_loudness_as_pyloudnorm_measures_it(analysed, material):
    import pyloudnorm
    import soundfile

    for name, target in LOUDNESS.items():
        audio, rate = soundfile.read(str(material[name]), dtype="float64", always_2d=True)
        reference = pyloudnorm.Meter(rate).integrated_loudness(audio)
        assert reference == pytest.approx(target, abs=0.05)  # the material is what it says
        assert analysed[name].loudness == pytest.approx(reference, abs=0.3), name
    # 11 LU louder noise reads 11 LU louder.
    gap = analysed["noise-minus-9"].loudness - analysed["noise-minus-20"].loudness
    assert gap == pytest.approx(11.0, abs=0.2)


def test_a_30_second_preview_lasts_30_seconds_and_rows_are_canonical(analysed):
    preview = analysed["preview-30s"]
    assert 29_000 <= preview.duration_ms <= 31_000
    row = preview.to_row()
    assert row["features_source"].startswith("audio:popdrivers-essentia-")
    assert row["track_id"] == f"audio:{preview.sha256[:16]}" and row["track_name"] == "preview-30s"
    for name in DESCRIPTOR_NAMES:
        feature = registry.spec(name)
        assert feature.sources == ("audio",) and name in schema.SPECS
        value = row[name]
        assert value is not None and math.isfinite(value), name
        assert (feature.low is None or value >= feature.low) and (feature.high is None or value <= feature.high), name
    assert not {"danceability", "energy", "valence", "speechiness", "acousticness"} & set(row)
    assert {d.name for d in descriptors()} == set(DESCRIPTOR_NAMES)


def test_descriptors_tell_sounds_apart(analysed):
    click, chord = dict(analysed["click-120-4"].descriptors), dict(analysed["cadence-A-major"].descriptors)
    noise = dict(analysed["noise-minus-20"].descriptors)
    assert click["onset_rate"] == pytest.approx(2.0, abs=0.3)  # a click every half second
    assert click["percussive_share"] > 0.5 > chord["percussive_share"]
    assert click["beat_confidence"] > 3.0 > noise["beat_confidence"]
    assert noise["spectral_flatness"] > 10 * chord["spectral_flatness"]
    assert chord["key_strength"] > noise["key_strength"]


def test_every_bad_file_is_named_with_its_reason_and_the_batch_goes_on(analysed):
    expected = {
        "empty": "empty", "text-named-mp3": "cannot decode", "mp3-cut-to-8kB": "too short",
        "silence": "silence", "too-short": "too short", "unsupported-codec": "cannot decode",
    }
    for name, words in expected.items():
        failure = analysed[name]
        assert isinstance(failure, AudioFailure), (name, failure)
        assert words in failure.reason, (name, failure.reason)
        assert "Traceback" not in failure.reason
    assert "convert it to FLAC or WAV" in analysed["unsupported-codec"].reason


def test_a_wrong_extension_is_read_by_its_content(analysed):
    result = analysed["flac-named-wav"]
    assert isinstance(result, AudioAnalysis) and result.tempo == pytest.approx(100, rel=0.04)


def test_a_two_hour_file_is_analysed_over_the_cap_and_keeps_its_real_length(analysed):
    result = analysed["two-hours"]
    assert isinstance(result, AudioAnalysis), result
    assert result.duration_ms == pytest.approx(7_200_000, abs=1000)
    assert result.analysed_seconds == pytest.approx(60.0, abs=0.5)
    assert any("first 60 s" in note for note in result.notes)
    assert tempo_class(result.tempo, 120)


def test_analyze_files_returns_the_validated_table_one_row_per_file(analysed, material):
    good = [material[n] for n in ("click-120-4", "cadence-D-minor")]
    table, failures = analyze_files([*good, material["empty"]], jobs=1)
    assert failures and failures[0].file == str(material["empty"])
    assert list(table["file"]) == [str(p) for p in good]
    assert schema.validate(table, require_popularity=False).shape[0] == 2
    assert table["tempo"].iloc[0] == pytest.approx(analysed["click-120-4"].tempo)


@pytest.mark.slow
def test_midi_songs_rendered_by_fluidsynth_give_their_tempo_key_and_meter(tmp_path):
    require_fluidsynth()
    specs = [synth.SongSpec("pop", 112, 4, 1, seconds=20, seed=1), synth.SongSpec("rock", 128, 9, 0, seconds=20,
                                                                                   seed=2),
             synth.SongSpec("waltz", 150, 5, 1, beats_per_bar=3, seconds=20, seed=3)]
    files = [synth.render_song(spec, tmp_path, suffix=".mp3") for spec in specs]
    analyses, failures = analyze_each(files, jobs=2)
    assert not failures
    for spec, result in zip(specs, analyses, strict=True):
        assert tempo_class(result.tempo, spec.tempo), (spec.name, result.tempo)
        assert (result.key, result.mode) == (spec.key, spec.mode), (spec.name, result.key, result.mode)
        assert result.time_signature == spec.beats_per_bar, (spec.name, result.time_signature)


@pytest.mark.slow
def test_a_file_that_overruns_the_time_limit_is_stopped_and_the_next_files_still_run(material):
    # 600 s of audio takes far longer than 8 s to analyse; the 5 s clips take well under a second each.
    long_file, short = material["two-hours"], material["click-120-4"]
    analyses, failures = analyze_each([long_file, short, material["cadence-A-major"]], jobs=1, timeout=8.0,
                                      max_seconds=600.0)
    assert [f.file for f in failures] == [str(long_file)]
    assert "time limit" in failures[0].reason
    assert [a.file for a in analyses] == [str(short), str(material["cadence-A-major"])]


@pytest.mark.slow
def test_a_worker_over_its_memory_limit_fails_that_file_only(material):
    # A worker holds ~0.9 GB of address space once its libraries are loaded; 600 s of audio and its spectrograms
    # take it to ~1.7 GB, a 16 s clip stays near 1 GB. Under a 1.25 GiB limit the long file fails, alone.
    analyses, failures = analyze_each([material["two-hours"], material["click-120-4"]], jobs=1,
                                      memory_limit=int(1.25 * 2**30), max_seconds=600.0, timeout=300.0)
    reasons = {f.file: f.reason for f in failures}
    assert list(reasons) == [str(material["two-hours"])], (analyses, failures)
    assert "memory" in reasons[str(material["two-hours"])]
    assert [a.file for a in analyses] == [str(material["click-120-4"])]


def test_the_stream_returns_each_submitted_key_once(material):
    with AnalysisStream(jobs=1, max_seconds=30.0) as stream:
        stream.submit("good", material["click-96-4"])
        stream.submit("bad", material["empty"])
        stream.submit("missing", material["empty"].with_name("nowhere.mp3"))
        assert stream.pending == 3
        seen: dict[str, object] = {}
        while stream.pending:
            for key, outcome in stream.results(timeout=None):
                assert key not in seen
                seen[key] = outcome
    assert isinstance(seen["good"], AudioAnalysis) and seen["good"].tempo == pytest.approx(96, rel=0.04)
    assert isinstance(seen["bad"], AudioFailure) and isinstance(seen["missing"], AudioFailure)
    assert stream.results(timeout=None) == []


def test_the_cache_keys_on_content_and_survives_a_rerun(material, tmp_path):
    cache = tmp_path / "cache.json"
    first, _ = analyze_each([material["click-132-4"]], jobs=1, cache=cache)
    moved = tmp_path / "renamed.wav"
    moved.write_bytes(material["click-132-4"].read_bytes())
    messages: list[str] = []
    again, _ = analyze_each([moved], jobs=1, cache=cache, progress=lambda d, t, m: messages.append(m))
    assert again[0].track_id == first[0].track_id and again[0].file == str(moved)
    assert again[0].tempo == first[0].tempo
    assert any("from the cache" in m for m in messages)
    assert json.loads(cache.read_text())["results"], "the cache is one JSON document, written atomically"


def test_an_m4a_file_is_decoded_and_capped_like_the_others(tmp_path):
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:  # only to make the test file; .ci/run installs it
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("ffmpeg is missing: apt-get install ffmpeg")
        pytest.skip("ffmpeg is missing (needed to write an M4A test file)")
    wav = synth.write_audio(tmp_path / "song.wav", synth.click_track(115, 24))
    m4a = tmp_path / "song.m4a"
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "aac", str(m4a)], check=True)
    analyses, failures = analyze_each([m4a], jobs=1, max_seconds=12.0)
    assert not failures, failures
    result = analyses[0]
    assert result.codec.startswith("ffmpeg/") and result.analysed_seconds == pytest.approx(12.0, abs=0.1)
    assert result.duration_ms == pytest.approx(24_000, abs=100)
    assert result.tempo == pytest.approx(115, rel=0.04)


def test_an_interrupted_batch_keeps_what_it_finished_and_the_rerun_resumes(material, tmp_path):
    cache = tmp_path / "cache.json"
    files = [material[n] for n in ("click-96-4", "click-120-4", "click-132-4", "cadence-A-major")]
    finished: list[str] = []

    def interrupt_after_two(done: int, total: int, message: str) -> None:
        if message.startswith("analysing: "):
            finished.append(message)
            if len(finished) == 2:
                raise KeyboardInterrupt  # what Ctrl-C does in the middle of a batch

    with pytest.raises(KeyboardInterrupt):
        analyze_each(files, jobs=1, cache=cache, progress=interrupt_after_two)
    assert len(json.loads(cache.read_text())["results"]) == 2
    messages: list[str] = []
    analyses, failures = analyze_each(files, jobs=1, cache=cache, progress=lambda d, t, m: messages.append(m))
    assert not failures and [a.file for a in analyses] == [str(f) for f in files]
    assert messages[0] == "analysing: 2 from the cache"


def test_a_missing_file_is_an_audio_error_the_cli_reports(tmp_path):
    """AudioError lives with the other errors: a PopdriversError (exit code 2, one line), naming the file."""
    from popdrivers.audio import analyze_file
    from popdrivers.errors import AudioError, PopdriversError

    missing = tmp_path / "nowhere.wav"
    with pytest.raises(AudioError, match="nowhere.wav: no such file") as caught:
        analyze_file(missing)
    assert isinstance(caught.value, PopdriversError)


def test_importing_the_worker_module_sets_no_environment_variable():
    """The worker limits its threads when it runs (main), not when its module is imported."""
    import subprocess
    import sys

    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in names}
    code = f"import os, popdrivers.audio._worker; print([os.environ.get(v) for v in {names!r}])"
    shown = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "[None, None, None, None]"
