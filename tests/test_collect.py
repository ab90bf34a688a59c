"""The Spotify collector against a real local HTTP server (tests/fake_spotify.py) speaking the Web API.

The real spotipy client talks HTTP to the fake server; faults (429, 500, dropped and slow connections,
malformed and partial replies, 403 on audio features) are injected per request path. Waits go through an
injected sleep so the test counts them instead of waiting.
"""

from __future__ import annotations

import base64
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
from fake_spotify import FEATURES, FakeCatalog, serve

from popdrivers.errors import CredentialsError, PopdriversError
from popdrivers.sources.spotify import (
    AUDIO_FORBIDDEN_MESSAGE,
    DEVELOPMENT_MODE_MESSAGE,
    collect,
    parse_artist_ref,
    read_artist_list,
)
from popdrivers.sources.spotify_client import ApiUnavailable, Credentials, RetryPolicy, load_credentials

CLIENT_ID, SECRET = "fake-client", "s3cr3t-do-not-print"
CREDENTIALS = Credentials(CLIENT_ID, SECRET)
FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.04, max_retry_after=5, timeout=0.5)
CRAWLED = ["Nova", "Long Player", "The Quiet Ones", "Sigur Rós"]
QUERIES = ["Nova", "long player", "THE QUIET ONES", "sigur rós"]  # exact names, any case
ID_COLUMNS = {c: str for c in ("track_id", "track_artist_id", "track_album_id", "album_id", "album_artist_id",
                               "artist_id", "album_release_date", "track_isrc")}
HEADERS = {  # the catalog-2022 headers (also checked against the real files below)
    "track": "track_id,track_name,track_artist_id,track_album_id,track_number,track_popularity,track_explicit,"
             "track_homepage",
    "audio": "track_id,track_duration,danceability,energy,loudness,speechiness,acousticness,instrumentalness,"
             "liveness,valence,tempo,key,mode,time_signature",
    "album": "album_id,album_name,album_release_date,album_total_tracks,album_artist_id,album_image,album_homepage",
    "artist": "artist_id,artist_name,artist_genre,artist_popularity,artist_followers,artist_image,artist_homepage",
}


class Waits(list):
    """A sleep that records instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="module")
def catalog() -> FakeCatalog:
    return FakeCatalog(seed=3)


@pytest.fixture
def fake(catalog):
    with serve(catalog, client_id=CLIENT_ID, client_secret=SECRET) as server:
        yield server


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("SPOTIPY_CLIENT_ID", "SPOTIPY_CLIENT_SECRET", "POPDRIVERS_SPOTIFY_API_BASE",
                 "POPDRIVERS_SPOTIFY_TOKEN_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env or token cache from elsewhere


def crawl(fake, out, queries=QUERIES, waits=None, **kwargs):
    return collect(queries, out, credentials=kwargs.pop("credentials", CREDENTIALS), api_base=fake.api_base,
                   token_url=fake.token_url, policy=kwargs.pop("policy", FAST),
                   sleep=waits if waits is not None else Waits(), **kwargs)


def read_out(out: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(out / f"{name}.csv", dtype=ID_COLUMNS) for name in HEADERS}


def assert_matches(out: Path, expected: dict[str, pd.DataFrame], tables=tuple(HEADERS)) -> None:
    got = read_out(out)
    for name in tables:
        want = pd.read_csv(io.StringIO(expected[name].to_csv(index=False)), dtype=ID_COLUMNS)
        key = want.columns[0]
        assert not got[name][key].duplicated().any(), f"{name}.csv repeats a {key}"
        assert list(got[name].columns) == list(want.columns)
        pd.testing.assert_frame_equal(got[name].sort_values(key).reset_index(drop=True),
                                      want.sort_values(key).reset_index(drop=True), check_dtype=False,
                                      obj=f"{name}.csv")


def log_events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "crawl_log.jsonl").read_text().splitlines()]


def test_full_crawl_matches_the_server_catalogue_exactly(fake, catalog, tmp_path):
    progress = []
    summary = crawl(fake, tmp_path / "out", progress=lambda *a: progress.append(a))
    out = tmp_path / "out"
    expected = catalog.expected(CRAWLED)
    assert_matches(out, expected)
    # Every page was followed: "Nova" sits on the 2nd search page, its 60 releases on 2 pages, the 120-track
    # album on 3 pages; appears_on and compilation releases were not asked for.
    assert fake.requests_to(r"/search\?.*offset=50") >= 1
    assert fake.requests_to(r"/artists/[^/]+/albums\?.*offset=50") == 1
    assert fake.requests_to(r"/tracks/?\?.*offset=100") == 1
    assert fake.requests_to(r"/artists/[^/]+/albums\?.*include_groups=album%2Csingle&") == len(CRAWLED) + 1
    assert fake.requests_to(r"/artists/[^/]+/albums\?") == len(CRAWLED) + 1
    assert fake.requests_to(r".", status=400) == 0  # no batch above 50 tracks / 100 audio features
    assert summary.tracks == len(expected["track"]) and summary.artists_resolved == 4 and summary.complete
    # An Extended Quota app keeps the batch path: no one-track request, popularity from Spotify.
    assert fake.requests_to(r"/v1/tracks/[^/?]+") == 0
    assert summary.access_level == "extended_quota" and summary.popularity == "spotify"
    assert summary.tracks_with_popularity == summary.tracks
    assert summary.requests == len(fake.log) - 1  # every request but the token one
    assert progress[-1][:2] == (4, 4)
    for name, header in HEADERS.items():  # catalog-2022's columns first, no BOM; then the release structure
        assert (out / f"{name}.csv").read_text(encoding="utf-8").splitlines()[0].startswith(header)
    info = json.loads((out / "crawl.json").read_text())
    assert info["market"] == "US" and info["artists_requested"] == 4 and info["audio_features"] == "available"
    assert pd.Timestamp(info["collected_at"]).year >= 2025
    assert not (tmp_path / ".cache").exists()  # spotipy's token cache file is not used
    # Rerunning a finished crawl asks the API nothing and rewrites the same tables.
    before = {name: (out / f"{name}.csv").read_bytes() for name in HEADERS}
    requests_so_far = len(fake.log)
    assert crawl(fake, out).tracks == summary.tracks
    assert len(fake.log) == requests_so_far
    assert before == {name: (out / f"{name}.csv").read_bytes() for name in HEADERS}

    from popdrivers import read_tracks

    tracks = read_tracks(out)
    assert len(tracks) == len(expected["track"]) and set(tracks["artist_name"]) == set(CRAWLED)
    assert tracks["artist_followers"].notna().all()
    by_id = tracks.set_index("track_id")
    nova = catalog.artist_named("Nova")
    some = next(t for t in catalog.tracks.values() if catalog.albums[t.album_id].artist_ids == [nova.id])
    assert by_id.loc[some.id, "popularity"] == some.popularity
    assert by_id.loc[some.id, "duration_ms"] == some.duration_ms


def test_output_headers_are_those_of_catalog_2022(catalog_2022):
    for name, header in HEADERS.items():
        assert (catalog_2022 / f"{name}.csv").read_text(encoding="utf-8-sig").splitlines()[0] == header


def test_a_killed_crawl_resumes_without_losing_or_duplicating_tracks(fake, catalog, tmp_path):
    """A real `popdrivers collect` process is SIGKILLed three times mid-crawl; reruns finish the job."""
    artists = tmp_path / "artists.txt"
    artists.write_text("\n".join(QUERIES) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    env = {**os.environ, "SPOTIPY_CLIENT_ID": CLIENT_ID, "SPOTIPY_CLIENT_SECRET": SECRET,
           "POPDRIVERS_SPOTIFY_API_BASE": fake.api_base, "POPDRIVERS_SPOTIFY_TOKEN_URL": fake.token_url}
    command = [str(Path(sys.executable).with_name("popdrivers")), "collect", "--artists", str(artists),
               "--out", str(out)]
    # Held requests: the 12th album track listing, the 3rd batch of full tracks, the 2nd audio-features batch.
    kill_points = [(r"/albums/[^/]+/tracks", 11), (r"/v1/tracks/?\?ids=", 2), (r"/audio-features", 1)]
    for pattern, after in kill_points:
        gate = fake.fault(pattern, "gate", after=after)
        with open(tmp_path / "stderr.txt", "wb") as stderr:
            process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=stderr)
            try:
                while not gate.reached.wait(0.1):
                    assert process.poll() is None, (tmp_path / "stderr.txt").read_text()  # died on its own
                process.send_signal(signal.SIGKILL)
                assert process.wait(10) == -signal.SIGKILL
            finally:
                process.kill()
                gate.release.set()
        assert not (out / "crawl.json").exists()  # killed before the end
    finished = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert finished.returncode == 0, finished.stderr
    assert_matches(out, catalog.expected(CRAWLED))
    starts = [e for e in log_events(out) if e["event"] == "start"]
    assert [e["resumed"] for e in starts] == [False, True, True, True]
    assert SECRET not in finished.stdout + finished.stderr
    # Checkpoints are per batch: across the four runs only the three requests in flight at a kill were repeated.
    counts = Counter(path for method, path, _ in fake.log if method == "GET")
    for pattern, _ in kill_points:
        assert [p for p, n in counts.items() if n > 1 and re.search(pattern, p)] != []
    assert sum(n - 1 for n in counts.values()) == len(kill_points)


def test_rate_limits_are_honoured_with_retry_after(fake, catalog, tmp_path):
    fake.fault(r"/artists/[^/]+/albums", "status", status=429, retry_after="3", times=2)
    fake.fault(r"/audio-features", "status", status=429, retry_after="3600", times=1)  # capped at 5 s
    fake.fault(r"/api/token", "status", status=429, retry_after="2", times=1)
    waits = Waits()
    summary = crawl(fake, tmp_path / "out", waits=waits)
    assert sorted(waits) == [2, 3, 3, 5]
    assert summary.rate_limit_waits == 4 and summary.retries == 4
    assert fake.requests_to(r".", status=429) == 4
    assert_matches(tmp_path / "out", catalog.expected(CRAWLED))
    retries = [e for e in log_events(tmp_path / "out") if e["event"] == "retry"]
    assert len(retries) == 4 and all("429" in e["reason"] for e in retries)


def test_server_errors_drops_and_slow_replies_back_off_and_recover(fake, catalog, tmp_path):
    fake.fault(r"/v1/tracks/?\?ids=", "status", status=500, times=2)
    fake.fault(r"/v1/tracks/?\?ids=", "status", status=503, times=1, after=4)
    fake.fault(r"/audio-features", "drop", times=1)
    fake.fault(r"/search", "slow", delay=1.5, times=1)  # longer than the 0.5 s timeout
    waits = Waits()
    summary = crawl(fake, tmp_path / "out", waits=waits)
    assert_matches(tmp_path / "out", catalog.expected(CRAWLED))
    assert summary.retries == 5 and summary.rate_limit_waits == 0
    assert sorted(waits) == pytest.approx(sorted([0.01, 0.02, 0.01, 0.01, 0.01]))  # 2 in a row, then 3 single


def test_retries_are_bounded_and_the_crawl_stops_resumable(fake, catalog, tmp_path):
    long_player = catalog.artist_named("Long Player")
    fake.fault(rf"/artists/{long_player.id}/albums", "status", status=502, times=100)
    waits = Waits()
    with pytest.raises(ApiUnavailable, match="failed 4 times.*rerun the same command"):
        crawl(fake, tmp_path / "out", waits=waits)
    assert fake.requests_to(rf"/artists/{long_player.id}/albums") == FAST.max_attempts
    assert waits == [0.01, 0.02, 0.04]
    info = json.loads((tmp_path / "out" / "crawl.json").read_text())
    assert info["complete"] is False
    assert set(read_out(tmp_path / "out")["artist"]["artist_name"]) == {"Nova", "Long Player"}
    fake.faults.clear()
    summary = crawl(fake, tmp_path / "out")
    assert summary.complete
    assert_matches(tmp_path / "out", catalog.expected(CRAWLED))


def test_malformed_and_partial_replies_are_skipped_with_a_reason_then_retried_by_a_rerun(fake, catalog, tmp_path):
    long_box = next(a for a in catalog.albums.values() if a.name.endswith("long-box"))
    fake.fault(rf"/albums/{long_box.id}/tracks/?\?.*offset=50", "malformed")
    fake.fault(r"/v1/tracks/?\?ids=", "missing", drop_field="popularity")
    fake.fault(r"/v1/artists/[^/]+$", "malformed", after=1)  # the 2nd artist lookup
    out = tmp_path / "out"
    summary = crawl(fake, out, queries=QUERIES[1:] + QUERIES[:1])
    skipped = [e for e in log_events(out) if e["event"] == "skipped"]
    reasons = {e["what"]: e["reason"] for e in skipped}
    assert reasons == {"album tracks": "reply is not valid JSON", "track": "track object lacks popularity",
                       "artist": "reply is not valid JSON"}
    assert summary.skipped_replies == 3 and summary.complete
    got = read_out(out)["track"]
    expected = catalog.expected(CRAWLED)["track"]
    missing = set(expected["track_id"]) - set(got["track_id"])
    assert missing == {t for t in long_box.track_ids[50:100]} | {skipped[1]["track_id"]} | {
        t for a in catalog.discography[catalog.artist_named("The Quiet Ones").id] for t in catalog.albums[a].track_ids
        if catalog.albums[a].group in ("album", "single")}
    assert set(got["track_id"]) <= set(expected["track_id"])
    # The next run asks again for what was skipped and completes the dataset.
    crawl(fake, out)
    assert_matches(out, catalog.expected(CRAWLED))


def test_audio_features_403_is_detected_once_and_a_file_fills_them(catalog, tmp_path):
    notes = []
    with serve(catalog, client_id=CLIENT_ID, client_secret=SECRET, audio_forbidden=True) as fake:
        summary = crawl(fake, tmp_path / "out", notify=notes.append)
        assert fake.requests_to(r"/audio-features") == 1  # asked once, then stopped asking
        assert summary.audio_features == "forbidden" and summary.tracks_with_audio_features == 0
        assert any("27 Nov 2024" in note for note in notes)
        assert AUDIO_FORBIDDEN_MESSAGE in summary.notes
        assert [e["status"] for e in log_events(tmp_path / "out") if e["event"] == "audio_features_forbidden"] == [403]
        assert json.loads((tmp_path / "out" / "crawl.json").read_text())["audio_features"] == "forbidden"
        # Everything else is there; audio.csv keeps the durations from the track objects.
        assert_matches(tmp_path / "out", catalog.expected(CRAWLED, audio=False))

        # Audio features from a dataset file, joined on track id (here: a canonical CSV of 2/3 of the tracks).
        from popdrivers.sources.files import write_tracks

        have = [t for t in catalog.tracks.values() if t.features is not None][::3]
        file_rows = pd.DataFrame([{"track_id": t.id, "popularity": t.popularity, **t.features} for t in have])
        write_tracks(file_rows, tmp_path / "features.csv")
        summary = crawl(fake, tmp_path / "out", audio_features_file=tmp_path / "features.csv")
        assert fake.requests_to(r"/audio-features") == 1  # a resumed crawl remembers the 403
    expected = catalog.expected(CRAWLED)
    audio = expected["audio"].astype({c: "float64" for c in FEATURES})
    from_file = audio["track_id"].isin([t.id for t in have])
    audio.loc[~from_file, list(FEATURES)] = None
    audio["features_source"] = from_file.map({True: "file:features.csv", False: None})  # provenance per track
    expected["audio"] = audio
    assert_matches(tmp_path / "out", expected)
    assert summary.audio_features_from_file == int(from_file.sum()) == summary.tracks_with_audio_features > 0


def test_rejected_and_missing_credentials_are_clear_and_the_secret_is_never_shown(fake, tmp_path, monkeypatch):
    with pytest.raises(CredentialsError, match="SPOTIPY_CLIENT_SECRET") as caught:
        crawl(fake, tmp_path / "out", credentials=Credentials(CLIENT_ID, "wrong-secret"))
    assert "wrong-secret" not in str(caught.value)
    assert "wrong-secret" not in repr(Credentials(CLIENT_ID, "wrong-secret"))
    assert "credentials_rejected" in (tmp_path / "out" / "crawl_log.jsonl").read_text()
    assert "wrong-secret" not in (tmp_path / "out" / "crawl_log.jsonl").read_text()
    assert fake.requests_to(r"/v1/") == 0

    with pytest.raises(CredentialsError, match=r"SPOTIPY_CLIENT_ID, SPOTIPY_CLIENT_SECRET not set.*\.env"):
        load_credentials()
    (tmp_path / ".env").write_text('# app "popdrivers"\nexport SPOTIPY_CLIENT_ID=abc\nSPOTIPY_CLIENT_SECRET="x y#z"\n')
    assert load_credentials() == Credentials("abc", "x y#z", "environment / .env")
    monkeypatch.setenv("SPOTIPY_CLIENT_ID", "from-env")
    monkeypatch.setenv("SPOTIPY_CLIENT_SECRET", "env-secret")
    assert load_credentials().client_id == "from-env"


def test_cli_collects_prints_a_summary_and_never_the_secret(fake, catalog, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import popdrivers.cli  # noqa: F401 (registers the commands)
    from popdrivers.cli import app

    artists = tmp_path / "artists.txt"
    artists.write_text("# artists to crawl\nNova\n\nSigur Rós\nEcho\nNobody Here\n", encoding="utf-8")
    (tmp_path / ".env").write_text(f"SPOTIPY_CLIENT_ID={CLIENT_ID}\nSPOTIPY_CLIENT_SECRET={SECRET}\n")
    monkeypatch.setenv("POPDRIVERS_SPOTIFY_API_BASE", fake.api_base)
    fake.fault(r"/search", "status", status=500, times=1)
    result = CliRunner().invoke(app, ["collect", "--artists", str(artists), "--out", str(tmp_path / "out"),
                                      "--token-url", fake.token_url])
    assert result.exit_code == 0, result.output
    assert "tracks" in result.output and "ambiguous" in result.output and "Nobody Here" in result.output
    assert_matches(tmp_path / "out", catalog.expected(["Nova", "Sigur Rós"]))
    secret_forms = (SECRET, base64.b64encode(f"{CLIENT_ID}:{SECRET}".encode()).decode())
    for path in (tmp_path / "out").iterdir():
        data = path.read_bytes()
        assert not any(form.encode() in data for form in secret_forms), path.name
    assert SECRET not in result.output

    (tmp_path / ".env").write_text(f"SPOTIPY_CLIENT_ID={CLIENT_ID}\nSPOTIPY_CLIENT_SECRET=nope\n")
    result = CliRunner().invoke(app, ["collect", "--artists", str(artists), "--out", str(tmp_path / "out2"),
                                      "--token-url", fake.token_url])
    assert result.exit_code == 2 and "error:" in result.output and "rejected" in result.output
    assert "nope" not in result.output and "Traceback" not in result.output


def test_ambiguous_and_unknown_artists_are_reported_not_guessed(fake, catalog, tmp_path):
    echo_a, echo_b = (a for a in catalog.artists.values() if a.name == "Echo")
    nova = catalog.artist_named("Nova")
    queries = ["echo", f"https://open.spotify.com/intl-de/artist/{echo_b.id}?si=abc", "Nobody Here",
               f"spotify:artist:{nova.id}", "spotify:album:" + "A" * 22, "Z" * 22]
    notes = []
    summary = crawl(fake, tmp_path / "out", queries=queries, notify=notes.append)
    assert summary.artists_ambiguous == ("echo",)
    assert summary.artists_not_found == ("Nobody Here", "spotify:album:" + "A" * 22, "Z" * 22)
    assert summary.artists_resolved == 2
    artists = read_out(tmp_path / "out")["artist"]
    assert list(artists["artist_id"]) == [echo_b.id, nova.id]  # only what was named unambiguously
    events = {e["query"]: e for e in log_events(tmp_path / "out") if "query" in e}
    assert events["echo"]["event"] == "ambiguous" and echo_a.id in events["echo"]["detail"]
    assert events["Nobody Here"]["event"] == "not_found"
    assert any("ambiguous" in n and echo_a.id in n and echo_b.id in n for n in notes)
    assert parse_artist_ref(f"https://open.spotify.com/artist/{nova.id}") == ("url", nova.id)
    assert parse_artist_ref("Nova") == ("name", None)


def test_since_keeps_recent_releases_and_a_folder_refuses_to_mix_crawls(fake, catalog, tmp_path):
    out = tmp_path / "out"
    crawl(fake, out, since="2015-01-01")
    assert_matches(out, catalog.expected(CRAWLED, since="2015-01-01"))
    assert (read_out(out)["album"]["album_release_date"].str[:4] >= "2015").all()
    with pytest.raises(PopdriversError, match="--since 2015-01-01.*--refresh"):
        crawl(fake, out)
    requests_before = len(fake.log)
    crawl(fake, out, refresh=True)
    assert len(fake.log) > requests_before + 50  # fetched again from scratch
    assert_matches(out, catalog.expected(CRAWLED))
    with pytest.raises(ValueError, match="not a date"):
        crawl(fake, tmp_path / "x", since="last year")


def test_artist_list_file_ignores_comments_blanks_and_repeats(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("\ufeff# mine\nNova\n\n  Nova  \nSigur Rós\n", encoding="utf-8")
    assert read_artist_list(path) == ["Nova", "Sigur Rós"]
    path.write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="lists no artists"):
        read_artist_list(path)


@pytest.mark.slow
def test_collect_then_train_and_drivers_end_to_end(tmp_path, monkeypatch):
    """`popdrivers collect` output goes straight into `popdrivers train` and `popdrivers drivers`."""
    from typer.testing import CliRunner

    import popdrivers.cli  # noqa: F401 (registers the commands)
    from popdrivers.cli import app

    catalog = FakeCatalog(seed=5, extra_artists=16)  # 16 artists x 18 tracks
    (tmp_path / "bands.txt").write_text("\n".join(catalog.extra_names) + "\n", encoding="utf-8")
    runner = CliRunner()
    with serve(catalog, client_id=CLIENT_ID, client_secret=SECRET) as fake:
        env = {"SPOTIPY_CLIENT_ID": CLIENT_ID, "SPOTIPY_CLIENT_SECRET": SECRET,
               "POPDRIVERS_SPOTIFY_API_BASE": fake.api_base, "POPDRIVERS_SPOTIFY_TOKEN_URL": fake.token_url}
        result = runner.invoke(app, ["collect", "--artists", "bands.txt", "--out", "crawl"], env=env)
        assert result.exit_code == 0, result.output
    assert_matches(tmp_path / "crawl", catalog.expected(catalog.extra_names))

    result = runner.invoke(app, ["train", "--data", "crawl", "--out", "model", "--budget-seconds", "0",
                                 "--n-jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "read 288 tracks from crawl (relational layout" in result.output
    assert json.loads((tmp_path / "model" / "manifest.json").read_text())["rows_used"] == 288

    result = runner.invoke(app, ["drivers", "--data", "crawl", "--out", "drivers", "--no-refute"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "drivers" / "drivers.json").read_text())
    with_features = sum(1 for name in catalog.extra_names for album in catalog.discography[
        catalog.artist_named(name).id] for t in catalog.albums[album].track_ids if catalog.tracks[t].features)
    # Every track with features is compared, or set aside at 0 among played album-mates (said in the warnings).
    set_aside = report["info"]["set_aside_zero_tracks"]
    assert report["rows"] + set_aside == with_features and report["artists"] == 16
    assert not set_aside or any("at popularity 0 whose album's other tracks" in w for w in report["warnings"])
    assert {d["feature"] for d in report["drivers"]} >= {"danceability", "explicit", "duration_min"}
    assert (tmp_path / "drivers" / "report.html").is_file()


# ----- Spotify as it is for a Development Mode app since February / March 2026


@pytest.fixture
def dev(catalog):
    with serve(catalog, client_id=CLIENT_ID, client_secret=SECRET, profile="development") as server:
        yield server


def test_development_mode_crawl_completes_says_why_once_and_records_popularity_unavailable(dev, catalog, tmp_path):
    notes = []
    out = tmp_path / "out"
    summary = crawl(dev, out, notify=notes.append)
    assert summary.complete and summary.access_level == "development_mode"
    assert summary.popularity == "unavailable" and summary.tracks_with_popularity == 0
    assert [n for n in notes if "Development Mode" in n] == [DEVELOPMENT_MODE_MESSAGE]  # said once
    for option in ("Extended Quota", "--popularity FILE", "--source deezer", "9 Mar 2026"):
        assert option in DEVELOPMENT_MODE_MESSAGE
    # Only a handful of refused requests before switching paths: one search page of 50, one batch of tracks,
    # one batch of audio features. Then pages of 10 and one track per request.
    assert dev.requests_to(r".", status=400) == 1 and dev.requests_to(r"/search\?.*limit=50", status=400) == 1
    assert dev.requests_to(r".", status=403) == 2
    assert dev.requests_to(r"/v1/tracks/?\?ids=") == 1 and dev.requests_to(r"/audio-features") == 1
    assert dev.requests_to(r"/search\?.*limit=10", status=200) >= 7  # "Nova" is behind 60 decoys
    expected = catalog.expected(CRAWLED, audio=False, profile="development")
    assert dev.requests_to(r"/v1/tracks/[^/?]+\?", status=200) == len(expected["track"])
    # What is still collected is written: release structure, ISRCs, explicit, durations; popularity empty.
    assert_matches(out, expected)
    info = json.loads((out / "crawl.json").read_text())
    assert info["access_level"] == "development_mode" and info["popularity"] == "unavailable"
    assert info["tracks_with_popularity"] == 0 and DEVELOPMENT_MODE_MESSAGE in info["notes"]
    events = [e["event"] for e in log_events(out)]
    assert events.count("development_mode") == 1

    from popdrivers import read_tracks
    from popdrivers.schema import SchemaError

    tracks = read_tracks(out, require_popularity=False)  # every crawled track, for prediction
    assert len(tracks) == len(expected["track"]) and tracks["popularity"].isna().all()
    for column in ("album_type", "album_total_tracks", "track_number", "disc_number", "n_artists", "isrc"):
        assert tracks[column].notna().all(), column
    with pytest.raises(SchemaError, match=r"popularity.*Development Mode.*--popularity FILE.*--source deezer"):
        read_tracks(out)

    # A resumed run knows the access level: it says so again, asks nothing refused, makes no request at all.
    before = len(dev.log)
    notes.clear()
    assert crawl(dev, out, notify=notes.append).access_level == "development_mode"
    assert len(dev.log) == before and notes == [DEVELOPMENT_MODE_MESSAGE]


def test_popularity_file_completes_a_development_mode_crawl_on_id_isrc_and_artist_title_duration(
        dev, catalog, tmp_path):
    from popdrivers import read_tracks
    from popdrivers.sources.files import write_tracks

    out = tmp_path / "out"
    crawl(dev, out)
    requests_after_crawl = len(dev.log)
    crawled = [t for t in catalog.expected(CRAWLED)["track"]["track_id"]]
    by_id, by_isrc, by_name = crawled[0::4], crawled[1::4], crawled[2::4]  # the 4th quarter stays unmatched
    tracks = catalog.tracks
    # One file of each kind the issue names: a small CSV on track id, a small CSV on ISRC, a dataset file whose
    # ids are another service's (matched on normalised artist + title + duration).
    (tmp_path / "ids.csv").write_text("track_id,popularity\n" + "".join(
        f"{t},{tracks[t].popularity}\n" for t in by_id))
    (tmp_path / "isrc.csv").write_text("isrc,popularity\n" + "".join(
        f"{tracks[t].isrc.lower()},{tracks[t].popularity}\n" for t in by_isrc))
    artist_of = {row.track_id: row.track_artist_id for row in catalog.expected(CRAWLED)["track"].itertuples()}
    other = pd.DataFrame([{
        "track_id": f"other-{i}", "popularity": tracks[t].popularity,
        "artist_name": catalog.artists[artist_of[t]].name.upper() + "!",  # case and punctuation do not matter
        "track_name": tracks[t].name, "duration_ms": tracks[t].duration_ms + 1500,
        "artist_followers": catalog.artists[artist_of[t]].followers} for i, t in enumerate(by_name)])
    # A same-titled recording of another length (a live take) must not match.
    decoy = other.iloc[[0]].assign(track_id="other-live", duration_ms=other["duration_ms"].iloc[0] + 60_000,
                                   popularity=1)
    write_tracks(pd.concat([decoy, other]), tmp_path / "names.csv")

    summaries = {}
    for name in ("ids.csv", "isrc.csv", "names.csv"):
        summaries[name] = crawl(dev, out, popularity_file=tmp_path / name)
    assert len(dev.log) == requests_after_crawl  # merging makes no request
    matched = {name: dict(json.loads((out / "crawl.json").read_text())["popularity_merge"]["matched_on"])
               for name in ("names.csv",)}
    assert matched["names.csv"] == {"track id": 0, "ISRC": 0, "artist + title": len(by_name)}
    assert summaries["ids.csv"].popularity_from_file == len(by_id)
    assert summaries["isrc.csv"].popularity_from_file == len(by_isrc)
    assert summaries["names.csv"].popularity == "file"
    assert any("matched" in n and "names.csv" in n for n in summaries["names.csv"].notes)

    got = read_out(out)["track"].set_index("track_id")
    assert got.loc[by_name, "track_popularity"].tolist() == [tracks[t].popularity for t in by_name]
    assert got.loc[by_name, "track_popularity_source"].eq("file:names.csv").all()
    assert got.loc[by_id + by_isrc, "track_popularity"].isna().all()  # one file at a time: the last one counts
    followers = read_out(out)["artist"].set_index("artist_id")["artist_followers"]
    assert followers.notna().all()  # every crawled artist has a matched track in names.csv
    assert followers.loc[catalog.artist_named("Nova").id] == catalog.artist_named("Nova").followers

    table = read_tracks(out)  # trainable now: the matched tracks, with their provenance
    assert len(table) == len(by_name) and set(table["popularity_source"]) == {"file:names.csv"}


def test_a_popularity_file_with_bad_values_is_refused_with_line_and_fix(dev, tmp_path):
    (tmp_path / "bad.csv").write_text("isrc,popularity\nQZ1,55\nQZ2,high\nQZ3,140\n")
    with pytest.raises(PopdriversError, match=r"bad.csv.*'popularity'.*2 value.*line 3, line 4.*0 to 100"):
        crawl(dev, tmp_path / "out", popularity_file=tmp_path / "bad.csv")
    assert dev.requests_to(r".") == 0  # refused before any request


def test_cli_development_mode_names_it_and_train_drivers_stop_naming_popularity(dev, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import popdrivers.cli  # noqa: F401 (registers the commands)
    from popdrivers.cli import app

    (tmp_path / "artists.txt").write_text("Sigur Rós\nThe Quiet Ones\n", encoding="utf-8")
    env = {"SPOTIPY_CLIENT_ID": CLIENT_ID, "SPOTIPY_CLIENT_SECRET": SECRET,
           "POPDRIVERS_SPOTIFY_API_BASE": dev.api_base, "POPDRIVERS_SPOTIFY_TOKEN_URL": dev.token_url}
    runner = CliRunner()
    result = runner.invoke(app, ["collect", "--artists", "artists.txt", "--out", "crawl"], env=env)
    assert result.exit_code == 0, result.output
    assert "Development Mode" in result.output and "UNAVAILABLE" in result.output
    assert "--popularity FILE" in result.output
    for command in (["train", "--data", "crawl", "--out", "model"], ["drivers", "--data", "crawl", "--out", "d"]):
        result = runner.invoke(app, command, env=env)
        assert result.exit_code == 2, result.output
        assert "popularity" in result.output and "--popularity FILE" in result.output
        assert "Traceback" not in result.output


@pytest.mark.slow
def test_development_mode_crawl_completed_by_files_trains_and_estimates_drivers(tmp_path):
    """The issue's promise: a Development Mode crawl explains itself, --popularity FILE completes it, then
    `train` and `drivers` run on the result."""
    from typer.testing import CliRunner

    import popdrivers.cli  # noqa: F401 (registers the commands)
    from popdrivers.cli import app
    from popdrivers.sources.files import write_tracks

    catalog = FakeCatalog(seed=5, extra_artists=16)  # 16 artists x 18 tracks
    (tmp_path / "bands.txt").write_text("\n".join(catalog.extra_names) + "\n", encoding="utf-8")
    crawled = catalog.expected(catalog.extra_names)["track"]["track_id"]
    # A public dataset holding these tracks: Spotify popularity and audio features, keyed by track id.
    dataset = pd.DataFrame([{"track_id": t, "popularity": catalog.tracks[t].popularity,
                             **(catalog.tracks[t].features or {})} for t in crawled])
    write_tracks(dataset, tmp_path / "dataset.csv")
    runner = CliRunner()
    with serve(catalog, client_id=CLIENT_ID, client_secret=SECRET, profile="development") as fake:
        env = {"SPOTIPY_CLIENT_ID": CLIENT_ID, "SPOTIPY_CLIENT_SECRET": SECRET,
               "POPDRIVERS_SPOTIFY_API_BASE": fake.api_base, "POPDRIVERS_SPOTIFY_TOKEN_URL": fake.token_url}
        command = ["collect", "--artists", "bands.txt", "--out", "crawl"]
        result = runner.invoke(app, command, env=env)
        assert result.exit_code == 0 and "Development Mode" in result.output, result.output
        requests = len(fake.log)
        result = runner.invoke(app, [*command, "--popularity", "dataset.csv", "--audio-features", "dataset.csv"],
                               env=env)
        assert result.exit_code == 0, result.output
        assert len(fake.log) == requests  # completing the crawl from files asks Spotify nothing
    assert "288 of 288 tracks matched (288 on track id" in result.output

    result = runner.invoke(app, ["train", "--data", "crawl", "--out", "model", "--budget-seconds", "0",
                                 "--n-jobs", "1"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "model" / "manifest.json").read_text())["rows_used"] == 288
    result = runner.invoke(app, ["drivers", "--data", "crawl", "--out", "drivers", "--no-refute"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "drivers" / "drivers.json").read_text())["artists"] == 16


def test_a_crawl_folder_from_the_previous_version_is_resumed_with_its_checkpoints(fake, catalog, tmp_path):
    """crawl.sqlite of the pre-2026 collector (no release-structure columns) gains them and keeps its rows."""
    import sqlite3

    out = tmp_path / "out"
    out.mkdir()
    db = sqlite3.connect(out / "crawl.sqlite")
    db.executescript("""
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
        CREATE TABLE album (album_id TEXT PRIMARY KEY, name TEXT, release_date TEXT, total_tracks INTEGER,
            artist_id TEXT, image TEXT, homepage TEXT, tracks_listed INTEGER NOT NULL DEFAULT 0);
        CREATE TABLE track (track_id TEXT PRIMARY KEY, name TEXT, popularity INTEGER, explicit INTEGER,
            duration_ms INTEGER, homepage TEXT);
        INSERT INTO meta VALUES ('market', 'US'), ('since', '');
        INSERT INTO track VALUES ('t1', 'Old', 40, 0, 1000, 'h');
    """)
    db.commit()
    db.close()
    from popdrivers.sources.crawl_store import CrawlStore

    store = CrawlStore.open(out)
    columns = {row[1] for row in store.db.execute("PRAGMA table_info(track)")}
    assert {"isrc", "n_artists", "rank"} <= columns
    assert store.db.execute("SELECT name, popularity FROM track").fetchall() == [("Old", 40)]
    store.close()
    summary = crawl(fake, out, queries=["Sigur Rós"])  # an old folder counts as a Spotify crawl
    assert summary.complete and summary.artists_resolved == 1
