"""The Deezer collector against a real local HTTP server (tests/fake_deezer.py) speaking Deezer's public API.

The fake enforces Deezer's quota (50 requests per 5 s, answered with error code 4 inside an HTTP 200) on a
clock shared with the collector's pacer, so waits are counted, not waited. Faults (quota errors, 5xx,
dropped connections, malformed JSON) are injected per request path.
"""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from fake_deezer import DeezerCatalog, FakeClock, expected_popularity, serve

from popdrivers.errors import ApiUnavailable, PopdriversError
from popdrivers.sources.api_calls import RetryPolicy
from popdrivers.sources.deezer import collect, parse_artist_ref, rank_to_popularity, resolve_api_base

FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.04, max_retry_after=5, timeout=2.0)
CRAWLED = ["Nova", "Long Player", "The Quiet Ones", "Sigur Rós"]
QUERIES = ["Nova", "long player", "THE QUIET ONES", "sigur rós"]  # exact names, any case
ID_COLUMNS = {c: str for c in ("track_id", "track_artist_id", "track_album_id", "album_id", "album_artist_id",
                               "artist_id", "album_release_date", "track_isrc")}
TABLES = ("track", "audio", "album", "artist")


@pytest.fixture(scope="module")
def catalog() -> DeezerCatalog:
    return DeezerCatalog(seed=4)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def fake(catalog, clock):
    with serve(catalog, clock=clock) as server:
        yield server


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("POPDRIVERS_DEEZER_API_BASE", raising=False)
    monkeypatch.chdir(tmp_path)


def crawl(fake, out, clock, queries=QUERIES, **kwargs):
    return collect(queries, out, api_base=fake.api_base, policy=kwargs.pop("policy", FAST), sleep=clock.sleep,
                   clock=clock, **kwargs)


def read_out(out: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(out / f"{name}.csv", dtype=ID_COLUMNS) for name in TABLES}


def assert_matches(out: Path, expected: dict[str, pd.DataFrame]) -> None:
    got = read_out(out)
    for name in TABLES:
        want = pd.read_csv(io.StringIO(expected[name].to_csv(index=False)), dtype=ID_COLUMNS)
        key = want.columns[0]
        assert not got[name][key].duplicated().any(), f"{name}.csv repeats a {key}"
        assert list(got[name].columns) == list(want.columns), name
        pd.testing.assert_frame_equal(got[name].sort_values(key).reset_index(drop=True),
                                      want.sort_values(key).reset_index(drop=True), check_dtype=False,
                                      obj=f"{name}.csv")


def log_events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "crawl_log.jsonl").read_text().splitlines()]


def test_rank_transform_is_fixed_monotone_and_bounded():
    assert [rank_to_popularity(r) for r in (0, 9, 999, 999_999, 5_000_000)] == [0, 17, 50, 100, 100]
    assert rank_to_popularity(None) is None and rank_to_popularity(-1) is None
    ranks = [0, 1, 10, 500, 12_000, 300_000, 900_000]
    assert [rank_to_popularity(r) for r in ranks] == sorted(rank_to_popularity(r) for r in ranks)


def test_deezer_crawl_matches_the_server_catalogue_and_stays_under_the_quota(fake, catalog, clock, tmp_path):
    out = tmp_path / "out"
    progress = []
    summary = crawl(fake, out, clock, progress=lambda *a: progress.append(a))
    expected = catalog.expected(CRAWLED)
    assert_matches(out, expected)
    assert summary.complete and summary.source == "deezer" and summary.tracks == len(expected["track"])
    assert summary.popularity == "deezer_rank" and summary.popularity_source == "deezer_rank"
    assert summary.tracks_with_popularity == summary.tracks and progress[-1][:2] == (4, 4)
    # Every page was followed through its next link: "Nova" is on the 2nd search page, its 60 releases on 2
    # pages, the 120-track album on 3 (the fake refuses a page URL that did not come from a next link).
    assert fake.requests_to(r"/search/artist\?.*index=50") >= 1
    assert fake.requests_to(r"/artist/\d+/albums\?.*index=50") == 1
    assert fake.requests_to(r"/album/\d+/tracks\?.*index=100") == 1
    assert fake.requests_to(r".", "error") == 0
    # The pacer kept the crawl under Deezer's quota on the shared clock: no quota error, waits instead.
    assert summary.requests > 50 and fake.requests_to(r".", "quota") == 0 and sum(clock.sleeps) > 0
    assert summary.requests == len(fake.log)
    info = json.loads((out / "crawl.json").read_text())
    assert info["source"] == "deezer" and info["popularity"] == "deezer_rank"
    assert "log10" in info["popularity_transform"] and info["access_level"] == "public"

    from popdrivers import read_tracks

    tracks = read_tracks(out)
    assert len(tracks) == len(expected["track"])
    assert (tracks["popularity_source"] == "deezer_rank").all() and tracks["deezer_rank"].notna().all()
    for column in ("album_type", "album_total_tracks", "track_number", "disc_number", "n_artists", "isrc"):
        assert tracks[column].notna().all(), column
    assert set(tracks["album_type"]) == {"album", "single", "ep"}
    by_id = tracks.set_index("track_id")
    track = next(t for t in catalog.tracks.values() if str(t.id) in by_id.index and t.bpm > 0)
    assert by_id.loc[str(track.id), "popularity"] == expected_popularity(track.rank)
    assert by_id.loc[str(track.id), "tempo"] == track.bpm and by_id.loc[str(track.id), "features_source"] == "deezer"
    assert by_id.loc[str(track.id), "duration_ms"] == track.duration * 1000
    assert "loudness" not in tracks.columns or tracks["loudness"].isna().all()  # gain is not loudness
    assert by_id.loc[str(track.id), "deezer_gain"] == track.gain
    assert tracks["genre"].notna().all()  # the album's main genre

    # Rerunning a finished crawl asks nothing and rewrites the same tables.
    before = {name: (out / f"{name}.csv").read_bytes() for name in TABLES}
    requests_so_far = len(fake.log)
    assert crawl(fake, out, clock).tracks == summary.tracks
    assert len(fake.log) == requests_so_far
    assert before == {name: (out / f"{name}.csv").read_bytes() for name in TABLES}


def test_quota_errors_inside_200_replies_are_waited_out_without_losing_or_duplicating(fake, catalog, clock,
                                                                                      tmp_path):
    fake.fault(r"/track/\d+", "quota", times=3)
    fake.fault(r"/album/\d+/tracks", "quota", times=1, after=2)
    summary = crawl(fake, tmp_path / "out", clock)
    assert summary.rate_limit_waits == 4 and summary.retries == 4
    assert fake.requests_to(r".", "quota") == 4
    assert Counter(clock.sleeps)[FAST.quota_wait] >= 4  # Deezer's window: wait 5 s, then ask again
    retries = [e for e in log_events(tmp_path / "out") if e["event"] == "retry"]
    assert len(retries) == 4 and all("code 4" in e["reason"] for e in retries)
    assert_matches(tmp_path / "out", catalog.expected(CRAWLED))


def test_the_servers_own_quota_is_honoured_when_the_client_runs_too_fast(fake, catalog, clock, tmp_path):
    """With a pacer twice too generous the fake's real quota answers code 4; the crawl still comes out exact."""
    summary = crawl(fake, tmp_path / "out", clock, quota=(100, 5.0))
    assert summary.complete and summary.rate_limit_waits > 0
    assert fake.requests_to(r".", "quota") == summary.rate_limit_waits
    assert_matches(tmp_path / "out", catalog.expected(CRAWLED))


def test_server_errors_and_dropped_connections_back_off_and_recover(fake, catalog, clock, tmp_path):
    fake.fault(r"/artist/\d+$", "status", status=500, times=2)
    fake.fault(r"/album/\d+$", "status", status=503, times=1, after=3)
    fake.fault(r"/track/\d+", "drop", times=1, after=10)
    summary = crawl(fake, tmp_path / "out", clock)
    assert summary.retries == 4 and summary.rate_limit_waits == 0
    assert [w for w in clock.sleeps if w in (0.01, 0.02)].count(0.01) >= 3
    assert_matches(tmp_path / "out", catalog.expected(CRAWLED))


def test_retries_are_bounded_and_the_crawl_stops_resumable(fake, catalog, clock, tmp_path):
    long_player = catalog.artist_named("Long Player")
    fake.fault(rf"/artist/{long_player.id}/albums", "status", status=502, times=100)
    with pytest.raises(ApiUnavailable, match="Deezer API.*failed 4 times.*rerun the same command"):
        crawl(fake, tmp_path / "out", clock)
    assert fake.requests_to(rf"/artist/{long_player.id}/albums") == FAST.max_attempts
    assert json.loads((tmp_path / "out" / "crawl.json").read_text())["complete"] is False
    assert set(read_out(tmp_path / "out")["artist"]["artist_name"]) == {"Nova", "Long Player"}
    fake.faults.clear()
    assert crawl(fake, tmp_path / "out", clock).complete
    assert_matches(tmp_path / "out", catalog.expected(CRAWLED))


def test_malformed_json_is_skipped_with_a_reason_then_a_rerun_completes(fake, catalog, clock, tmp_path):
    long_box = next(a for a in catalog.albums.values() if len(a.track_ids) == 120)
    fake.fault(rf"/album/{long_box.id}/tracks\?.*index=50", "malformed")
    fake.fault(r"/track/\d+", "malformed", after=5)
    out = tmp_path / "out"
    summary = crawl(fake, out, clock)
    skipped = [e for e in log_events(out) if e["event"] == "skipped"]
    assert {(e["what"], e["reason"]) for e in skipped} == {("album tracks", "reply is not valid JSON"),
                                                           ("track", "reply is not valid JSON")}
    assert summary.skipped_replies == 2 and summary.complete
    got = set(read_out(out)["track"]["track_id"])
    expected = catalog.expected(CRAWLED)
    missing = set(expected["track"]["track_id"]) - got
    broken_track = next(e["track_id"] for e in skipped if e["what"] == "track")
    assert missing == {str(t) for t in long_box.track_ids[50:]} | {broken_track}
    crawl(fake, out, clock)  # the next run asks again for what was skipped
    assert_matches(out, expected)


def test_unknown_and_ambiguous_names_are_reported_not_guessed(fake, catalog, clock, tmp_path):
    echo_a, echo_b = (a for a in catalog.artists.values() if a.name == "Echo")
    notes = []
    queries = ["echo", "Nobody Here", f"https://www.deezer.com/fr/artist/{echo_b.id}",
               "https://www.deezer.com/artist/999999999"]
    summary = crawl(fake, tmp_path / "out", clock, queries=queries, notify=notes.append)
    assert summary.artists_ambiguous == ("echo",)
    assert summary.artists_not_found == ("Nobody Here", "https://www.deezer.com/artist/999999999")
    assert summary.artists_resolved == 1
    assert list(read_out(tmp_path / "out")["artist"]["artist_id"]) == [str(echo_b.id)]
    assert any("ambiguous" in n and str(echo_a.id) in n and str(echo_b.id) in n for n in notes)
    events = {e["query"]: e for e in log_events(tmp_path / "out") if "query" in e}
    assert "code 800" in events["https://www.deezer.com/artist/999999999"]["detail"]  # Deezer's "no data"
    assert parse_artist_ref("deezer:artist:27") == ("link", "27") and parse_artist_ref("311") == ("name", None)


def test_api_base_is_a_host_root_and_a_folder_holds_one_source(fake, clock, tmp_path):
    assert resolve_api_base(None, {"POPDRIVERS_DEEZER_API_BASE": "http://127.0.0.1:9/"}) == "http://127.0.0.1:9"
    assert resolve_api_base(None, {}) == "https://api.deezer.com"
    with pytest.raises(ValueError, match="host root without a path"):
        resolve_api_base("https://api.deezer.com/v1")
    crawl(fake, tmp_path / "out", clock, queries=["Sigur Rós"])
    from popdrivers.sources.spotify import collect as spotify_collect
    from popdrivers.sources.spotify_client import Credentials

    with pytest.raises(PopdriversError, match="--source deezer, not spotify.*--refresh"):
        spotify_collect(["Sigur Rós"], tmp_path / "out", credentials=Credentials("x", "y"),
                        api_base="http://127.0.0.1:9/v1", token_url="http://127.0.0.1:9/token")


def test_audio_features_file_joins_on_isrc_then_artist_title_and_says_where_they_came_from(
        fake, catalog, clock, tmp_path):
    from popdrivers import read_tracks
    from popdrivers.sources.files import write_tracks

    expected = catalog.expected(["Sigur Rós", "The Quiet Ones"])
    ids = list(expected["track"]["track_id"])
    tracks = [catalog.tracks[int(t)] for t in ids]
    by_isrc, by_name = tracks[0::3], tracks[1::3]
    rows = [{"track_id": f"sp{t.id}", "isrc": t.isrc, "danceability": 0.5, "energy": 0.25, "tempo": 99.0}
            for t in by_isrc]
    rows += [{"track_id": f"sq{t.id}", "artist_name": catalog.artists[t.artist_id].name.lower(),
              "track_name": t.title, "danceability": 0.75, "energy": 0.5, "tempo": 111.0} for t in by_name]
    write_tracks(pd.DataFrame(rows), tmp_path / "feat.csv")
    summary = crawl(fake, tmp_path / "out", clock, queries=["Sigur Rós", "The Quiet Ones"],
                    audio_features_file=tmp_path / "feat.csv")
    assert summary.audio_features_from_file == len(by_isrc) + len(by_name)
    info = json.loads((tmp_path / "out" / "crawl.json").read_text())["audio_features_merge"]
    assert info["matched_on"] == {"track id": 0, "ISRC": len(by_isrc), "artist + title": len(by_name)}
    table = read_tracks(tmp_path / "out").set_index("track_id")
    for t in by_isrc:
        assert table.loc[str(t.id), ["tempo", "danceability", "features_source"]].tolist() == [99.0, 0.5,
                                                                                               "file:feat.csv"]
    for t in by_name:
        assert table.loc[str(t.id), "tempo"] == 111.0 and table.loc[str(t.id), "features_source"] == "file:feat.csv"
    rest = [t for t in tracks if t not in by_isrc and t not in by_name]
    for t in rest:  # unmatched tracks keep Deezer's bpm, and say so; no Spotify-style feature is invented
        assert pd.isna(table.loc[str(t.id), "danceability"])
        assert table.loc[str(t.id), "features_source"] == ("deezer" if t.bpm > 0 else None) or (
            t.bpm == 0 and pd.isna(table.loc[str(t.id), "features_source"]))


def test_cli_deezer_crawl_shows_the_popularity_source(fake, tmp_path):
    from typer.testing import CliRunner

    import popdrivers.cli  # noqa: F401 (registers the commands)
    from popdrivers.cli import app

    (tmp_path / "artists.txt").write_text("Sigur Rós\nEcho\n", encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(app, ["collect", "--source", "deezer", "--artists", "artists.txt", "--out", "crawl"],
                           env={"POPDRIVERS_DEEZER_API_BASE": fake.api_base})
    assert result.exit_code == 0, result.output
    assert "Deezer crawl" in result.output and "derived from Deezer rank" in result.output
    assert "ambiguous" in result.output and "log10" in result.output
    result = runner.invoke(app, ["collect", "--source", "deezer", "--artists", "artists.txt", "--out", "c2",
                                 "--api-base", fake.api_base + "/v1"])
    assert result.exit_code == 2 and "host root" in result.output and "Traceback" not in result.output


def test_a_killed_deezer_crawl_resumes_to_the_same_dataset(fake, catalog, tmp_path):
    """A real `popdrivers collect --source deezer` process is SIGKILLed twice mid-crawl; reruns finish the job."""
    names = ["Sigur Rós", "The Quiet Ones"]
    (tmp_path / "artists.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    fake.clock = __import__("time").monotonic  # a real process: real time for the quota window
    env = {**os.environ, "POPDRIVERS_DEEZER_API_BASE": fake.api_base}
    command = [str(Path(sys.executable).with_name("popdrivers")), "collect", "--source", "deezer", "--artists",
               str(tmp_path / "artists.txt"), "--out", str(out)]
    kill_points = [(r"/album/\d+/tracks", 1), (r"/track/\d+", 3)]  # the 2nd album listing; a later 4th track
    for pattern, after in kill_points:
        gate = fake.fault(pattern, "gate", after=after)
        with open(tmp_path / "stderr.txt", "wb") as stderr:
            process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr)
            try:
                while not gate.reached.wait(0.1):
                    assert process.poll() is None, (tmp_path / "stderr.txt").read_text()
                process.send_signal(signal.SIGKILL)
                assert process.wait(10) == -signal.SIGKILL
            finally:
                process.kill()
                gate.release.set()
        assert not (out / "crawl.json").exists()
    finished = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert_matches(out, catalog.expected(names))
    assert [e["resumed"] for e in log_events(out) if e["event"] == "start"] == [False, True, True]
    # Checkpoints are per step: across the three runs only the steps in flight at a kill were repeated, i.e. one
    # album (its details and its track listing commit together) and one track.
    counts = Counter(path for path, _, _ in fake.log)
    repeated = sorted(re.sub(r"\d+", "N", p) for p, n in counts.items() if n > 1)
    assert repeated == ["/album/N", "/album/N/tracks?limit=N", "/track/N"]
    assert sum(n - 1 for n in counts.values()) == 3


@pytest.mark.slow
def test_deezer_crawl_trains_and_estimates_drivers_with_its_popularity_source(tmp_path):
    from typer.testing import CliRunner

    import popdrivers.cli  # noqa: F401 (registers the commands)
    from popdrivers import read_tracks
    from popdrivers.cli import app

    catalog = DeezerCatalog(seed=5, extra_artists=16)  # 16 artists x 18 tracks
    (tmp_path / "bands.txt").write_text("\n".join(catalog.extra_names) + "\n", encoding="utf-8")
    runner = CliRunner()
    with serve(catalog) as fake:
        result = runner.invoke(app, ["collect", "--source", "deezer", "--artists", "bands.txt", "--out", "crawl"],
                               env={"POPDRIVERS_DEEZER_API_BASE": fake.api_base})
        assert result.exit_code == 0, result.output
    table = read_tracks(tmp_path / "crawl")
    assert len(table) == 288 and set(table["popularity_source"]) == {"deezer_rank"}
    result = runner.invoke(app, ["train", "--data", "crawl", "--out", "model", "--budget-seconds", "0",
                                 "--n-jobs", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "model" / "manifest.json").read_text())["rows_used"] == 288
    result = runner.invoke(app, ["drivers", "--data", "crawl", "--out", "drivers", "--no-refute"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "drivers" / "drivers.json").read_text())["artists"] == 16


def test_the_pacer_never_lets_more_than_the_quota_through_in_any_window():
    from popdrivers.sources.api_calls import RequestPacer

    clock = FakeClock()
    pacer = RequestPacer(50, 5.0, clock=clock, sleep=clock.sleep)
    sent = []
    for i in range(230):
        pacer.wait()
        sent.append(clock())
        clock.sleep(0.01 if i % 7 else 0.3)  # uneven work between requests
    assert all(sum(1 for t in sent if start <= t < start + 5.0) <= 50 for start in sent)
    assert sent[-1] - sent[0] < 5.0 * (230 / 50)  # and it does not wait longer than the quota requires
