"""`collect --source deezer --audio`: previews fetched from the Deezer double and measured by popdrivers.audio.

The double (tests/fake_deezer.py) serves real MP3 previews at signed links that expire, each a click track at a
known tempo over a chord in a known key and mode, and also tracks without a preview and previews that are not
audio. The tests check what the crawl measured against that truth, what it reports as lost, that links and
audio are not kept, and that a killed crawl resumes without fetching an analysed preview again.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from fake_deezer import DeezerCatalog, FakeClock, serve

from popdrivers.sources.api_calls import RetryPolicy
from popdrivers.sources.deezer import collect

FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.04, max_retry_after=5, timeout=5.0)
NAMES = ["Sigur Rós", "The Quiet Ones"]


@pytest.fixture(scope="module")
def catalog() -> DeezerCatalog:
    return DeezerCatalog(seed=4)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("POPDRIVERS_DEEZER_API_BASE", raising=False)
    monkeypatch.chdir(tmp_path)


def log_events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "crawl_log.jsonl").read_text().splitlines()]


def kinds(catalog: DeezerCatalog, names: list[str]) -> dict[str, set[str]]:
    """Track ids of ``names`` by what the double serves as their preview (audio, none, broken)."""
    ids = set(catalog.expected(names)["track"]["track_id"])
    out: dict[str, set[str]] = {"audio": set(), "none": set(), "broken": set()}
    for track_id in ids:
        out[catalog.preview_kind(int(track_id))].add(track_id)
    return out


def test_audio_crawl_measures_every_preview_once_and_says_what_was_lost(catalog, tmp_path):
    clock = FakeClock()
    by_kind = kinds(catalog, NAMES)
    assert len(by_kind["audio"]) >= 8 and by_kind["none"] and by_kind["broken"]  # the double's mix
    stale, refused, flaky = sorted(by_kind["audio"])[:3]
    out, kept = tmp_path / "out", tmp_path / "kept"
    with serve(catalog, clock=clock) as fake:
        fake.stale_links(int(stale))  # its first link has expired when the crawl gets it: one fresh link
        fake.stale_links(int(refused), times=2)  # refused again after the fresh link: failed, with the status
        fake.fault(rf"/preview/{flaky}\.mp3", "status", status=503)  # the CDN fails once: retried
        fake.fault(r"/track/\d+", "quota", times=2, after=3)  # Deezer's quota error inside a 200
        summary = collect(NAMES, out, api_base=fake.api_base, policy=FAST, sleep=clock.sleep, clock=clock,
                          audio=True, keep_audio=kept, analysis_workers=2)
        previews = {t: fake.requests_to(rf"/preview/{t}\.mp3") for t in by_kind["audio"] | by_kind["broken"]}
        requests_so_far = len(fake.log)

        # Every track with a playable preview was analysed exactly once (the refused one excepted).
        analysed = by_kind["audio"] - {refused}
        events = [e for e in log_events(out) if e["event"].startswith("preview_")]
        assert Counter(e["track_id"] for e in events if e["event"] == "preview_analysed") == dict.fromkeys(
            analysed, 1)
        assert {t: n for t, n in previews.items() if n != 1} == {stale: 2, refused: 2, flaky: 2}
        assert fake.requests_to(r"/preview/", "refused") == 3 and summary.rate_limit_waits == 2

        # Counted and reported, with the reasons; nothing invented for tracks without a preview.
        report = summary.previews
        assert (report["analysed"], report["missing"], report["failed"], report["pending"]) == (
            len(analysed), len(by_kind["none"]), len(by_kind["broken"]) + 1, 0)
        assert report["reasons"]["failed: link refused twice (HTTP 403)"] == 1
        assert sum(n for r, n in report["reasons"].items() if r.startswith("failed: not analysable")) == len(
            by_kind["broken"])
        assert report["reasons"]["missing: Deezer gives no preview for this track"] == len(by_kind["none"])
        info = json.loads((out / "crawl.json").read_text())
        assert info["previews"] == report and info["audio_features"] == "measured from previews"
        assert any(e["event"] == "previews" and e["analysed"] == len(analysed) for e in log_events(out))
        assert any(n.startswith(f"previews: {len(analysed)} analysed") for n in summary.notes)

        # What was measured is what the previews hold (click tempo, chord key and mode), track by track.
        audio = pd.read_csv(out / "audio.csv", dtype={"track_id": str}).set_index("track_id")
        measured = audio.loc[sorted(analysed)]
        assert measured["features_source"].str.fullmatch(r"audio:deezer-preview:popdrivers-essentia-.+").all()
        for track_id, row in measured.iterrows():
            truth = catalog.preview_truth(int(track_id))
            assert abs(row["tempo"] / truth["tempo"] - 1) < 0.04, (track_id, row["tempo"], truth)
            assert (row["key"], row["mode"]) == (truth["key"], truth["mode"]), (track_id, truth)
        assert measured["time_signature"].eq(4).all() and measured["loudness"].between(-30, 0).all()
        assert {"rhythm_regularity", "onset_rate", "key_strength"} <= set(audio.columns)  # popdrivers' descriptors
        assert measured[["danceability", "energy", "valence"]].isna().all().all()  # never filled from the sound
        # The others keep what the API gave: Deezer's bpm (apart, as deezer_bpm), said so; no descriptor invented.
        for track_id in by_kind["none"] | by_kind["broken"] | {refused}:
            bpm = catalog.tracks[int(track_id)].bpm
            row = audio.loc[track_id]
            assert row["features_source"] == "deezer" if bpm > 0 else pd.isna(row["features_source"])
            assert pd.isna(row["key"]) and pd.isna(row["rhythm_regularity"])

        # The links are never stored, the audio is kept only where asked (--keep-audio), nothing left in the spool.
        for path in [*out.iterdir(), out / "crawl.sqlite"]:
            if path.is_file():
                data = path.read_bytes()
                assert b"hdnea" not in data and b"/preview/" not in data, path.name
        assert not list((out / ".previews").iterdir()) and not list(out.rglob("*.mp3"))
        assert {p.stem for p in kept.iterdir()} == by_kind["audio"] - {refused} | by_kind["broken"]

        # The folder reads as a canonical table with the measured features; a rerun asks nothing.
        from popdrivers import read_tracks

        table = read_tracks(out).set_index("track_id")
        assert table.loc[sorted(analysed), "features_source"].str.startswith("audio:deezer-preview:").all()
        assert (table.loc[sorted(analysed), "tempo"] - measured["tempo"]).abs().max() < 1e-3  # float32 in the table
        again = collect(NAMES, out, api_base=fake.api_base, policy=FAST, sleep=clock.sleep, clock=clock,
                        audio=True, analysis_workers=2)
        assert len(fake.log) == requests_so_far and again.previews["analysed"] == len(analysed)


def test_audio_options_are_checked_before_anything_is_fetched(tmp_path):
    from typer.testing import CliRunner

    import popdrivers.cli  # noqa: F401 (registers the commands)
    from popdrivers.cli import app

    (tmp_path / "artists.txt").write_text("Nova\n", encoding="utf-8")
    runner = CliRunner()
    base = ["collect", "--artists", "artists.txt", "--out", "crawl"]
    result = runner.invoke(app, [*base, "--audio"])  # Spotify (the default source) serves no previews
    assert result.exit_code == 2 and "--source deezer" in result.output and "Traceback" not in result.output
    result = runner.invoke(app, [*base, "--source", "deezer", "--keep-audio", "kept"])
    assert result.exit_code == 2 and "add --audio" in result.output
    assert not (tmp_path / "crawl").exists() and not (tmp_path / "kept").exists()


def _analysed(out: Path) -> set[str]:
    with sqlite3.connect(f"file:{out / 'crawl.sqlite'}?mode=ro", uri=True, timeout=5) as db:
        try:
            return {r[0] for r in db.execute("SELECT track_id FROM preview WHERE status = 'analysed'")}
        except sqlite3.OperationalError:  # the table is not created yet
            return set()


@pytest.mark.slow
def test_a_killed_audio_crawl_resumes_without_fetching_an_analysed_preview_again(catalog, tmp_path):
    """A real `popdrivers collect --source deezer --audio` is SIGKILLed with previews analysed and others in
    flight; the rerun finishes, every preview is analysed exactly once and none analysed is downloaded again."""
    (tmp_path / "artists.txt").write_text("\n".join(NAMES) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    by_kind = kinds(catalog, NAMES)
    command = [str(Path(sys.executable).with_name("popdrivers")), "collect", "--source", "deezer", "--audio",
               "--analysis-workers", "2", "--artists", str(tmp_path / "artists.txt"), "--out", str(out)]
    with serve(catalog) as fake:  # a real process: real time for the quota window and the links
        env = {**os.environ, "POPDRIVERS_DEEZER_API_BASE": fake.api_base}
        # Hold the 7th preview download until the kill: the process then has analysed some, and has others in
        # flight (downloaded, or being analysed).
        gate = fake.fault(r"/preview/", "gate", after=6)
        with open(tmp_path / "stderr.txt", "wb") as stderr:
            process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr)
            try:
                deadline = time.monotonic() + 240
                while not (gate.reached.is_set() and len(_analysed(out)) >= 2):
                    assert process.poll() is None, (tmp_path / "stderr.txt").read_text()[-2000:]
                    assert time.monotonic() < deadline, "the crawl did not get far enough to be killed"
                    time.sleep(0.2)
                process.send_signal(signal.SIGKILL)
                assert process.wait(10) == -signal.SIGKILL
            finally:
                process.kill()
                gate.release.set()
        before = _analysed(out)
        assert before and not (out / "crawl.json").exists()
        finished = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=400)
        assert finished.returncode == 0, finished.stderr[-3000:]
        assert re.search(r"previews analysed / missing / failed\s*│\s*"
                         rf"{len(by_kind['audio'])} / {len(by_kind['none'])} / {len(by_kind['broken'])}",
                         finished.stdout), finished.stdout

        analysed = [e["track_id"] for e in log_events(out) if e["event"] == "preview_analysed"]
        assert Counter(analysed) == dict.fromkeys(by_kind["audio"], 1)  # each exactly once, over both runs
        downloads = Counter(re.match(r"/preview/(\d+)", p)[1] for p, _, _ in fake.log if p.startswith("/preview/"))
        assert all(downloads[t] == 1 for t in before)  # an analysed preview is never fetched again
        # Only what was in flight at the kill is fetched twice (a new link: the old one is not kept).
        assert sum(n - 1 for n in downloads.values()) <= 2 * 2 + 1
        assert [e["resumed"] for e in log_events(out) if e["event"] == "start"] == [False, True]
        assert not list((out / ".previews").iterdir())
