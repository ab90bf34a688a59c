"""`popdrivers analyze` and `popdrivers predict --audio` as a user runs them: the installed command in a subprocess,
a folder of good and bad files, a rerun from the cache, and a prediction from a song with a model trained on a
small simulated catalogue."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from popdrivers.audio import synth
from popdrivers.cli import app

RATE = synth.SAMPLE_RATE
FAST = {"n_estimators": 60, "num_leaves": 15, "learning_rate": 0.1, "calibration_folds": 3, "n_jobs": 1,
        "new_artist_n_estimators": 60}


def popdrivers_command() -> str:
    found = shutil.which("popdrivers") or str(Path(sys.executable).with_name("popdrivers"))
    assert Path(found).exists(), "the popdrivers console script is installed with the package"
    return found


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Three good files (WAV, FLAC in a sub-folder, M4A when ffmpeg can make one) and six bad ones."""
    root = tmp_path_factory.mktemp("songs")
    (root / "album").mkdir()
    synth.write_audio(root / "Some Artist - Fast One.wav", synth.click_track(128, 10))
    synth.write_audio(root / "album" / "slow.flac", synth.chord_progression(2, 0, 10))
    if shutil.which("ffmpeg"):
        wav = synth.write_audio(root / "tmp.wav", synth.click_track(100, 10))
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(wav), "-c:a", "aac", str(root / "phone.m4a")],
                       check=True)
        wav.unlink()
    (root / "empty.mp3").write_bytes(b"")
    (root / "lyrics.mp3").write_text("not audio at all\n" * 40)
    full = synth.write_audio(root / "full.mp3", synth.click_track(120, 12))
    (root / "cut.mp3").write_bytes(full.read_bytes()[:8192])
    full.unlink()
    synth.write_audio(root / "silence.wav", np.zeros(30 * RATE, dtype=np.float32))
    synth.write_audio(root / "blip.wav", synth.click_track(120, 0.4))
    (root / "readme.txt").write_text("not looked at: no audio suffix")
    return root


BAD = {"empty.mp3", "lyrics.mp3", "cut.mp3", "silence.wav", "blip.wav"}


@pytest.mark.slow
def test_analyze_writes_one_canonical_row_per_good_file_and_names_each_bad_one(folder, tmp_path, small_catalog):
    out = tmp_path / "tracks.csv"
    run = subprocess.run([popdrivers_command(), "analyze", str(folder), "--out", str(out)], capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    table = pd.read_csv(out)
    good = {"Some Artist - Fast One.wav", "slow.flac"} | ({"phone.m4a"} if shutil.which("ffmpeg") else set())
    assert {Path(f).name for f in table["file"]} == good
    fast = table[table["file"].str.endswith("Fast One.wav")].iloc[0]
    assert (fast["artist_name"], fast["track_name"]) == ("Some Artist", "Fast One")
    assert fast["tempo"] == pytest.approx(128, rel=0.04) and fast["track_id"].startswith("audio:")
    assert table["features_source"].str.startswith("audio:").all()
    with open(out.with_name(out.name + ".errors.csv"), newline="") as handle:
        errors = {Path(row["file"]).name: row["reason"] for row in csv.DictReader(handle)}
    assert set(errors) == BAD
    for name in BAD:
        assert name in run.stderr, f"{name} is named on the terminal too"
    assert "readme.txt" not in run.stderr

    # The rerun takes the good files from the content-hash cache beside the output.
    again = subprocess.run([popdrivers_command(), "analyze", str(folder), "--out", str(out)], capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0 and f"{len(good)} from the cache" in again.stderr
    pd.testing.assert_frame_equal(pd.read_csv(out), table)

    # `predict --data` reads the analysed table as it is and scores it with the audio model.
    from popdrivers.model import save_model, train

    trained = train(small_catalog.tracks, n_trials=0, params=FAST, evaluate_model=False)
    model_dir = save_model(trained.model, tmp_path / "model", metrics=trained.metrics,
                           audio_model=trained.audio_model)
    predictions = tmp_path / "predictions.csv"
    scored = subprocess.run([popdrivers_command(), "predict", "--model", str(model_dir), "--data", str(out),
                             "--out", str(predictions)], capture_output=True, text=True, timeout=600)
    assert scored.returncode == 0, scored.stderr
    frame = pd.read_csv(predictions)
    assert len(frame) == len(good) and set(frame["model"]) == {"audio"}
    assert "scored by the audio model" in scored.stdout


@pytest.mark.slow
def test_analyze_exits_2_with_a_reason_when_nothing_could_be_analysed(folder, tmp_path):
    out = tmp_path / "none.parquet"
    run = subprocess.run([popdrivers_command(), "analyze", str(folder / "empty.mp3"), str(folder / "blip.wav"),
                          "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 2
    assert "no file could be analysed" in run.stderr and "Traceback" not in run.stderr
    assert not out.exists()


def test_analyze_refuses_an_output_it_cannot_write(folder, tmp_path):
    result = CliRunner().invoke(app, ["analyze", str(folder), "--out", str(tmp_path / "tracks.xlsx")])
    assert result.exit_code == 2 and ".csv or .parquet" in result.output


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, small_catalog) -> Path:
    from popdrivers.model import save_model, train

    trained = train(small_catalog.tracks, n_trials=0, params=FAST, evaluate_model=False)
    assert trained.audio_model is not None
    return save_model(trained.model, tmp_path_factory.mktemp("model") / "m", metrics=trained.metrics,
                      audio_model=trained.audio_model)


@pytest.mark.slow
def test_predict_from_songs_uses_the_audio_model_and_says_what_is_unknown(folder, model_dir, tmp_path):
    out = tmp_path / "song.csv"
    song, other = folder / "Some Artist - Fast One.wav", folder / "album" / "slow.flac"
    result = CliRunner().invoke(app, ["predict", "--model", str(model_dir), "--audio", str(song), str(other),
                                      str(folder / "empty.mp3"), "--followers", "25000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "audio model" in result.output
    assert "unknown to the model: genre (--genre), release date (--released)" in result.output
    assert "artist followers" not in result.output.split("unknown to the model:")[1]
    assert "not analysed:" in result.output and "empty.mp3" in result.output
    frame = pd.read_csv(out)
    assert [Path(f).name for f in frame["file"]] == [song.name, other.name]
    assert set(frame["model"]) == {"audio"}
    # (0..100 is not checked: predict clips the interval to it.)
    assert ((frame["lower"] <= frame["prediction"]) & (frame["prediction"] <= frame["upper"])).all()


def test_predict_needs_data_or_audio_and_an_audio_model(model_dir, tmp_path, folder):
    runner = CliRunner()
    neither = runner.invoke(app, ["predict", "--model", str(model_dir)])
    assert neither.exit_code == 2 and "--data TABLE or --audio FILE" in neither.output
    typed_with_data = runner.invoke(app, ["predict", "--model", str(model_dir), "--data", "t.csv", "--genre", "pop",
                                          "--out", str(tmp_path / "p.csv")])
    assert typed_with_data.exit_code == 2 and "only with --audio" in typed_with_data.output
    from popdrivers.model import load_model, save_model

    bare = save_model(load_model(model_dir), tmp_path / "no-audio-model")  # saved without its audio model
    missing = runner.invoke(app, ["predict", "--model", str(bare), "--audio", str(folder / "album" / "slow.flac")])
    assert missing.exit_code == 2 and "no audio model" in missing.output


def test_the_commands_defaults_are_the_librarys():
    # cli/analyze.py names them without importing the analysis (so --help is instant).
    from popdrivers import audio
    from popdrivers.cli import analyze

    assert analyze.MAX_SECONDS == audio.MAX_SECONDS and analyze.TIMEOUT_SECONDS == audio.TIMEOUT_SECONDS
    assert analyze.MEMORY_LIMIT_GIB * 2**30 == audio.MEMORY_LIMIT_BYTES


@pytest.mark.slow
def test_killing_analyze_stops_its_workers(tmp_path):
    import os
    import signal
    import time

    # Ten minutes of audio keep a worker busy for many seconds: long enough to kill the command meanwhile.
    long_file = synth.write_audio(tmp_path / "long.flac", np.tile(synth.click_track(120, 10.0), 60))
    command = subprocess.Popen([popdrivers_command(), "analyze", str(long_file), "--out", str(tmp_path / "t.csv")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def workers() -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
                status = (entry / "status").read_text()
            except (OSError, ValueError):
                continue
            parent = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("PPid:")), 0)
            if b"popdrivers.audio._worker" in cmdline and parent == command.pid:
                found.append(int(entry.name))
        return found

    deadline = time.monotonic() + 120
    while not workers() and time.monotonic() < deadline and command.poll() is None:
        time.sleep(0.2)
    started = workers()
    assert started, "the command started a worker"

    def cpu_seconds(pid: int) -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    # Past its start-up and warm-up (~5 CPU s), in the middle of the file (~25 CPU s): a worker that only stops
    # when it next writes to its dead parent would go on for many seconds.
    while cpu_seconds(started[0]) < 9.0 and time.monotonic() < deadline:
        time.sleep(0.2)
    command.send_signal(signal.SIGKILL)  # no clean-up runs in the command itself
    command.wait()
    deadline = time.monotonic() + 10

    def running(pid: int) -> bool:  # a zombie waiting for its new parent to reap it has stopped
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    while any(running(pid) for pid in started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in started if running(pid)], "workers outlived the killed command"
