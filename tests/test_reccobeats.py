"""ReccoBeats as a feature source, against a real local HTTP double (tests/fake_reccobeats.py) built from its
documentation: lookups by Spotify track id in batches of at most 40, matched on ``href``; 429 with Retry-After;
5xx; malformed replies; ids it does not know; and the opt-in upload of one audio file.

Waits go through a clock shared by the client's pacer and the double's rate limit, so they are counted, not waited.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_deezer import FakeClock
from fake_reccobeats import MAX_IDS, UPLOAD_FEATURES, ReccoBeatsCatalog, features_for
from fake_reccobeats import serve as serve_reccobeats
from fake_spotify import FakeCatalog
from fake_spotify import serve as serve_spotify

from popdrivers.errors import ApiUnavailable, InputError
from popdrivers.sources.api_calls import RetryPolicy
from popdrivers.sources.reccobeats import (
    BATCH,
    LOOKUP_FEATURES,
    ConsentRequired,
    ReccoBeatsApi,
    analyze_file,
    resolve_api_base,
    spotify_id_from_href,
    upload_warning,
)
from popdrivers.sources.spotify import collect
from popdrivers.sources.spotify_client import Credentials

FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.04, max_retry_after=30, timeout=2.0)
CREDENTIALS = Credentials("fake-client", "fake-secret")
CRAWLED = ["Nova", "Long Player", "The Quiet Ones", "Sigur Rós"]


@pytest.fixture(scope="module")
def spotify_catalog() -> FakeCatalog:
    return FakeCatalog(seed=3)


@pytest.fixture(scope="module")
def recco_catalog(spotify_catalog) -> ReccoBeatsCatalog:
    return ReccoBeatsCatalog(spotify_catalog, known_share=0.8, seed=2)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def recco(recco_catalog, clock):
    with serve_reccobeats(recco_catalog, clock=clock) as server:
        yield server


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    for name in ("SPOTIPY_CLIENT_ID", "SPOTIPY_CLIENT_SECRET", "POPDRIVERS_SPOTIFY_API_BASE",
                 "POPDRIVERS_SPOTIFY_TOKEN_URL", "POPDRIVERS_RECCOBEATS_API_BASE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def api_for(recco, clock, **kwargs) -> ReccoBeatsApi:
    return ReccoBeatsApi(recco.api_base, policy=kwargs.pop("policy", FAST), sleep=clock.sleep, clock=clock, **kwargs)


def log_events(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "crawl_log.jsonl").read_text().splitlines()]


# ----------------------------------------------------------------------------------------------- lookups
def test_a_lookup_matches_rows_on_href_and_reports_the_ids_it_does_not_know(recco, recco_catalog, spotify_catalog,
                                                                          clock):
    ids = list(spotify_catalog.tracks)[:BATCH]
    lookup = api_for(recco, clock).audio_features(ids)
    known = [i for i in ids if i in recco_catalog.tracks]
    assert 0 < len(known) < len(ids)  # the double knows some, not all
    assert set(lookup.found) == set(known) and set(lookup.unknown) == set(ids) - set(known)
    for track_id in known:  # the double shuffles its rows: each is matched on href, never on position
        assert lookup.found[track_id] == {k: recco_catalog.tracks[track_id].features[k] for k in LOOKUP_FEATURES}
    assert recco.ids_asked() == [ids]
    with pytest.raises(ValueError, match="1 to 40"):
        api_for(recco, clock).audio_features(list(spotify_catalog.tracks)[:BATCH + 1])
    assert recco.requests_to(".") == 1  # refused before sending
    assert spotify_id_from_href("https://open.spotify.com/track/00aqkszH1FdUiJJWvX6iEl?si=x") == \
        "00aqkszH1FdUiJJWvX6iEl"
    assert spotify_id_from_href("https://open.spotify.com/artist/00aqkszH1FdUiJJWvX6iEl") is None


def test_the_double_refuses_more_than_40_ids_as_the_documentation_says(recco, spotify_catalog):
    import requests

    ids = ",".join(list(spotify_catalog.tracks)[:MAX_IDS + 1])
    reply = requests.get(f"{recco.api_base}/v1/audio-features", params={"ids": ids}, timeout=5)
    assert reply.status_code == 400 and "between 1 and 40" in reply.text
    repeated = [("ids", i) for i in list(spotify_catalog.tracks)[:3]]
    assert requests.get(f"{recco.api_base}/v1/audio-features", params=repeated, timeout=5).status_code == 200


def test_429_waits_retry_after_and_5xx_and_drops_back_off(recco, recco_catalog, spotify_catalog, clock):
    recco.fault(r"/v1/audio-features", "status", status=429, retry_after="7", times=2)
    recco.fault(r"/v1/audio-features", "status", status=503, times=1)  # faults fire in turn: 429, 429, 503, drop
    recco.fault(r"/v1/audio-features", "drop", times=1)
    api = api_for(recco, clock, policy=RetryPolicy(max_attempts=5, backoff_base=0.01, backoff_max=0.04))
    ids = list(spotify_catalog.tracks)[:10]
    lookup = api.audio_features(ids)
    assert set(lookup.found) == {i for i in ids if i in recco_catalog.tracks}
    assert clock.sleeps.count(7.0) == 2  # Retry-After honoured, twice
    assert api.runner.stats.rate_limit_waits == 2 and api.runner.stats.retries == 4
    assert recco.requests_to(".", 429) == 2 and recco.requests_to(".", 503) == 1


def test_the_doubles_own_rate_limit_is_waited_out_without_losing_a_batch(recco_catalog, spotify_catalog, clock):
    """A client paced too fast for the double's limit meets its real 429s and still gets every batch."""
    with serve_reccobeats(recco_catalog, clock=clock, limit=3, window=10.0) as recco:
        api = api_for(recco, clock, quota=(100, 1.0))
        ids = list(spotify_catalog.tracks)[:5 * BATCH]
        found = {}
        for start in range(0, len(ids), BATCH):
            found.update(api.audio_features(ids[start:start + BATCH]).found)
        assert set(found) == {i for i in ids if i in recco_catalog.tracks}
        assert recco.requests_to(".", 429) >= 1 and api.runner.stats.rate_limit_waits == recco.requests_to(".", 429)
        assert len(recco.ids_asked()) == 5


def test_retries_are_bounded(recco, spotify_catalog, clock):
    recco.fault(r".", "status", status=500, times=100)
    with pytest.raises(ApiUnavailable, match="ReccoBeats API.*failed 4 times"):
        api_for(recco, clock).audio_features(list(spotify_catalog.tracks)[:3])
    assert recco.requests_to(".") == FAST.max_attempts


def test_malformed_replies_and_entries_are_reported_not_invented(recco, recco_catalog, spotify_catalog, clock):
    from popdrivers.sources.api_calls import MalformedReply

    ids = [i for i in spotify_catalog.tracks if i in recco_catalog.tracks][:6]
    recco.fault(r".", "malformed")
    with pytest.raises(MalformedReply, match="not valid JSON"):
        api_for(recco, clock).audio_features(ids)
    recco.fault(r".", "bad_entry")
    lookup = api_for(recco, clock).audio_features(ids)
    assert len(lookup.malformed) == 1 and "energy 7.5 is outside 0.0..1.0" in next(iter(lookup.malformed.values()))
    assert len(lookup.found) == 5 and not lookup.unknown
    recco.fault(r".", "no_href")  # a row that cannot be attributed: its id counts as unknown, nothing is guessed
    lookup = api_for(recco, clock).audio_features(ids)
    assert len(lookup.found) == 5 and len(lookup.unknown) == 1


# ----------------------------------------------------------------------------------------------- a Spotify crawl
def test_spotify_crawl_with_reccobeats_fills_spotify_style_features_and_reports_unknown_ids(
        spotify_catalog, recco, recco_catalog, clock, tmp_path):
    """A Development Mode crawl (audio features 403) takes ReccoBeats' values, by Spotify id, with their source."""
    from popdrivers import read_tracks

    out = tmp_path / "out"
    with serve_spotify(spotify_catalog, client_id="fake-client", client_secret="fake-secret",
                       profile="development") as spotify:
        summary = collect(CRAWLED, out, credentials=CREDENTIALS, api_base=spotify.api_base,
                          token_url=spotify.token_url, policy=FAST, sleep=clock.sleep, clock=clock,
                          audio_features_service="reccobeats", service_api_base=recco.api_base)
        assert summary.complete and summary.audio_features == "forbidden"
        expected = spotify_catalog.expected(CRAWLED, audio=False)
        ids = list(expected["track"]["track_id"])
        known = [i for i in ids if i in recco_catalog.tracks]
        service = summary.audio_features_service
        assert service["asked"] == len(ids) and service["found"] == len(known)
        assert service["unknown"] == len(ids) - len(known) and service["skipped"] == 0
        assert summary.tracks_with_audio_features == len(known)
        # Batches of at most 40 ids, each track asked once.
        asked = recco.ids_asked()
        assert max(len(b) for b in asked) <= BATCH and sorted(i for b in asked for i in b) == sorted(ids)
        assert service["requests"] == len(asked) and any("ReccoBeats" in n for n in summary.notes)
        audio = pd.read_csv(out / "audio.csv", dtype={"track_id": str}).set_index("track_id")
        for track_id in ids:
            row = audio.loc[track_id]
            if track_id in recco_catalog.tracks:
                want = recco_catalog.tracks[track_id].features
                assert row["features_source"] == "reccobeats"
                assert [row[f] for f in LOOKUP_FEATURES] == pytest.approx([want[f] for f in LOOKUP_FEATURES])
                assert math.isnan(row["time_signature"])  # ReccoBeats has none: left empty, not invented
            else:
                assert pd.isna(row["features_source"]) and row[list(LOOKUP_FEATURES)].isna().all()
        unknown_logged = {t for e in log_events(out) if e["event"] == "reccobeats_unknown" for t in e["track_ids"]}
        assert unknown_logged == set(ids) - set(known)
        info = json.loads((out / "crawl.json").read_text())
        assert info["audio_features_service"]["found"] == len(known)
        tracks = read_tracks(out, require_popularity=False)
        assert set(tracks["features_source"].dropna()) == {"reccobeats"}

        # A rerun of the finished crawl asks ReccoBeats nothing (unknown ids included) and writes the same tables.
        before = (out / "audio.csv").read_bytes()
        again = collect(CRAWLED, out, credentials=CREDENTIALS, api_base=spotify.api_base,
                        token_url=spotify.token_url, policy=FAST, sleep=clock.sleep, clock=clock,
                        audio_features_service="reccobeats", service_api_base=recco.api_base)
        assert len(recco.ids_asked()) == len(asked) and (out / "audio.csv").read_bytes() == before
        assert again.audio_features_service["found"] == len(known)


def test_a_bad_reccobeats_batch_is_skipped_then_asked_again_by_the_next_run(spotify_catalog, recco, recco_catalog,
                                                                            clock, tmp_path):
    out = tmp_path / "out"
    names = ["The Quiet Ones", "Sigur Rós"]
    recco.fault(r"/v1/audio-features", "malformed", times=1)
    with serve_spotify(spotify_catalog, client_id="fake-client", client_secret="fake-secret",
                       profile="development") as spotify:
        def run():
            return collect(names, out, credentials=CREDENTIALS, api_base=spotify.api_base,
                           token_url=spotify.token_url, policy=FAST, sleep=clock.sleep, clock=clock,
                           audio_features_service="reccobeats", service_api_base=recco.api_base)

        first = run()
        skipped = [e for e in log_events(out) if e["event"] == "skipped" and e["what"] == "reccobeats features"]
        assert len(skipped) == 1 and "not valid JSON" in skipped[0]["reason"]
        assert first.audio_features_service["skipped"] == len(skipped[0]["track_ids"]) > 0
        second = run()
        ids = list(spotify_catalog.expected(names, audio=False)["track"]["track_id"])
        assert second.audio_features_service["asked"] == len(ids)
        assert second.audio_features_service["found"] == sum(1 for i in ids if i in recco_catalog.tracks)
        assert second.audio_features_service["skipped"] == 0


def test_spotify_own_features_are_kept_and_only_the_missing_ones_are_looked_up(spotify_catalog, recco, clock,
                                                                               tmp_path):
    """With a full-access app Spotify's features stay Spotify's; ReccoBeats is asked only about the rest."""
    out = tmp_path / "out"
    with serve_spotify(spotify_catalog, client_id="fake-client", client_secret="fake-secret") as spotify:
        collect(["Sigur Rós", "The Quiet Ones"], out, credentials=CREDENTIALS, api_base=spotify.api_base,
                token_url=spotify.token_url, policy=FAST, sleep=clock.sleep, clock=clock,
                audio_features_service="reccobeats", service_api_base=recco.api_base)
    audio = pd.read_csv(out / "audio.csv", dtype={"track_id": str}).set_index("track_id")
    without = [t for t in audio.index if spotify_catalog.tracks[t].features is None]
    asked = {i for batch in recco.ids_asked() for i in batch}
    assert asked == set(without)
    assert (audio.loc[[t for t in audio.index if t not in without], "features_source"] == "spotify").all()


def test_cli_takes_reccobeats_as_the_audio_features_source_and_refuses_it_for_deezer(spotify_catalog, recco,
                                                                                     tmp_path):
    from typer.testing import CliRunner

    import popdrivers.cli  # noqa: F401 (registers the commands)
    from popdrivers.cli import app

    (tmp_path / "artists.txt").write_text("Sigur Rós\n", encoding="utf-8")
    runner = CliRunner()
    with serve_spotify(spotify_catalog, client_id="fake-client", client_secret="fake-secret",
                       profile="development") as spotify:
        env = {"SPOTIPY_CLIENT_ID": "fake-client", "SPOTIPY_CLIENT_SECRET": "fake-secret",
               "POPDRIVERS_SPOTIFY_API_BASE": spotify.api_base, "POPDRIVERS_SPOTIFY_TOKEN_URL": spotify.token_url,
               "POPDRIVERS_RECCOBEATS_API_BASE": recco.api_base}
        result = runner.invoke(app, ["collect", "--artists", "artists.txt", "--out", "crawl", "--audio-features",
                                     "reccobeats"], env=env)
    assert result.exit_code == 0, result.output
    assert "ReccoBeats" in result.output and "features_source = reccobeats" in result.output
    assert recco.requests_to("/v1/audio-features") >= 1
    result = runner.invoke(app, ["collect", "--source", "deezer", "--artists", "artists.txt", "--out", "dz",
                                 "--audio-features", "reccobeats"])
    assert result.exit_code == 2 and "Spotify track id" in result.output and "--audio" in result.output
    result = runner.invoke(app, ["collect", "--artists", "artists.txt", "--out", "c3", "--audio-features",
                                 "no-such-file.csv"])
    assert result.exit_code == 2 and "no such file" in result.output and "Traceback" not in result.output


# ----------------------------------------------------------------------------------------------- one file, opt-in
def tone_wav(path: Path, seconds: float = 2.0, rate: int = 22050) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    path.write_bytes(buffer.getvalue())
    return path


def test_without_consent_nothing_is_sent(recco, tmp_path):
    song = tone_wav(tmp_path / "demo.wav")
    with pytest.raises(ConsentRequired, match="was not sent.*leaves this machine"):
        analyze_file(song, consent=False, api_base=recco.api_base)
    with pytest.raises(ConsentRequired):
        analyze_file(song, consent="yes", api_base=recco.api_base)  # only True is consent
    assert recco.log == [] and recco.uploads == []


def test_with_consent_the_file_is_sent_once_after_the_warning_and_its_features_come_back(recco, clock, tmp_path):
    song = tone_wav(tmp_path / "demo.wav")
    told = []
    recco.fault(r"/v1/analysis", "status", status=429, retry_after="3")
    result = analyze_file(song, consent=True, api_base=recco.api_base, policy=FAST, sleep=clock.sleep,
                          notify=told.append)
    digest = hashlib.sha256(song.read_bytes()).hexdigest()
    assert result.features == features_for(digest, UPLOAD_FEATURES)  # what the service computed for those bytes
    assert [u["sha256"] for u in recco.uploads] == [digest, digest]  # the 429 made it send twice, nothing else
    assert result.sent_bytes == song.stat().st_size and result.destination.endswith("/v1/analysis/audio-features")
    assert len(told) == 1 and recco.api_base in told[0] and "leaves this machine" in told[0]
    assert clock.sleeps == [3.0]
    row = result.to_row()
    assert row["features_source"] == "reccobeats:upload" and row["track_name"] == "demo"
    assert "key" not in row and "mode" not in row  # the upload endpoint gives neither


def test_files_reccobeats_cannot_take_are_refused_here_before_anything_is_sent(recco, tmp_path):
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all")
    with pytest.raises(InputError, match="notes.mp3: not an MP3"):
        analyze_file(text, consent=True, api_base=recco.api_base)
    big = tmp_path / "big.wav"
    big.write_bytes(b"RIFF" + b"\0" * 4 + b"WAVE" + b"\0" * (5 * 1024 * 1024))
    with pytest.raises(InputError, match="5 MB.*30-second excerpt"):
        analyze_file(big, consent=True, api_base=recco.api_base)
    with pytest.raises(InputError, match="no such file"):
        analyze_file(tmp_path / "missing.mp3", consent=True, api_base=recco.api_base)
    assert recco.log == []


def test_a_refusal_by_the_service_names_the_file_and_the_reason(recco, tmp_path):
    song = tone_wav(tmp_path / "demo.wav")
    recco.fault(r"/v1/analysis", "status", status=400)
    with pytest.raises(InputError, match="demo.wav: ReccoBeats refused the file.*HTTP 400"):
        analyze_file(song, consent=True, api_base=recco.api_base, policy=FAST)


def test_warning_and_api_base():
    assert "api.reccobeats.com/v1/analysis/audio-features" in upload_warning()
    assert resolve_api_base(None, {"POPDRIVERS_RECCOBEATS_API_BASE": "http://127.0.0.1:9/"}) == "http://127.0.0.1:9"
    with pytest.raises(InputError, match="host root"):
        resolve_api_base("https://api.reccobeats.com/v1")


def test_analyze_service_warns_then_sends_the_named_files_and_writes_their_rows(recco, tmp_path):
    from typer.testing import CliRunner

    import popdrivers.cli  # noqa: F401 (registers the commands)
    from popdrivers.cli import app

    good, other = tone_wav(tmp_path / "demo.wav"), tone_wav(tmp_path / "take2.wav", seconds=1.0)
    (tmp_path / "notes.mp3").write_text("not audio")
    env = {"POPDRIVERS_RECCOBEATS_API_BASE": recco.api_base}
    result = CliRunner().invoke(app, ["analyze", "--service", "reccobeats", str(good), str(tmp_path / "notes.mp3"),
                                      str(other), "--out", "remote.csv"], env=env)
    assert result.exit_code == 0, result.output
    assert "warning: This sends the audio file to ReccoBeats" in result.output and recco.api_base in result.output
    assert "notes.mp3" in result.output and "not an MP3" in result.output  # listed, the batch went on
    assert [u["name"] for u in recco.uploads] == ["demo.wav", "take2.wav"]  # the bad file never left
    table = pd.read_csv(tmp_path / "remote.csv")
    assert list(table["track_name"]) == ["demo", "take2"] and set(table["features_source"]) == {"reccobeats:upload"}
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    assert table.loc[0, "energy"] == pytest.approx(features_for(digest, UPLOAD_FEATURES)["energy"])

    result = CliRunner().invoke(app, ["analyze", "--service", "reccobeats", str(tmp_path), "--out", "x.csv"], env=env)
    assert result.exit_code == 2 and "is a folder" in result.output and "nothing was sent" in result.output
    result = CliRunner().invoke(app, ["analyze", "--service", "elsewhere", str(good), "--out", "x.csv"], env=env)
    assert result.exit_code == 2 and "unknown analysis service" in result.output
    assert len(recco.uploads) == 2


@pytest.mark.slow
def test_analyze_without_service_sends_nothing(recco, tmp_path):
    """The same file analysed without --service is analysed here: the service hears nothing."""
    from typer.testing import CliRunner

    import popdrivers.cli  # noqa: F401 (registers the commands)
    from popdrivers.cli import app

    song = tone_wav(tmp_path / "demo.wav", seconds=6.0)
    result = CliRunner().invoke(app, ["analyze", str(song), "--out", "local.csv", "--jobs", "1", "--no-cache"],
                                env={"POPDRIVERS_RECCOBEATS_API_BASE": recco.api_base})
    assert result.exit_code == 0, result.output
    assert recco.log == [] and recco.uploads == []
    assert pd.read_csv(tmp_path / "local.csv")["features_source"].str.startswith("audio:").all()


def test_reccobeats_down_does_not_stop_the_spotify_crawl_and_a_rerun_fills_the_rest(spotify_catalog, recco,
                                                                                    recco_catalog, clock, tmp_path):
    out = tmp_path / "out"
    names = ["The Quiet Ones", "Sigur Rós"]
    recco.fault(r"/v1/audio-features", "status", status=503, times=FAST.max_attempts)
    with serve_spotify(spotify_catalog, client_id="fake-client", client_secret="fake-secret",
                       profile="development") as spotify:
        def run():
            return collect(names, out, credentials=CREDENTIALS, api_base=spotify.api_base,
                           token_url=spotify.token_url, policy=FAST, sleep=clock.sleep, clock=clock,
                           audio_features_service="reccobeats", service_api_base=recco.api_base)

        first = run()
        assert first.complete and first.tracks > 0  # the Spotify crawl finished
        assert first.audio_features_service["found"] == 0 and "failed 4 times" in first.audio_features_service[
            "unavailable"]
        assert recco.requests_to(".") == FAST.max_attempts  # not asked again in that run
        assert any("stopped answering" in n for n in first.notes)
        second = run()
        ids = list(spotify_catalog.expected(names, audio=False)["track"]["track_id"])
        assert second.audio_features_service["found"] == sum(1 for i in ids if i in recco_catalog.tracks)
        assert second.audio_features_service["unavailable"] is None
