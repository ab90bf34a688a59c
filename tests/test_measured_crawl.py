"""A Deezer crawl measured from its previews, end to end: collect --audio, train, drivers on the measured descriptors;
and a crawl never mixes two feature sources in one column (Deezer's bpm, measured tempo, a file's Spotify tempo).

The Deezer double (tests/fake_deezer.py) serves real MP3 previews (click tracks over chords); its popularity (from
Deezer's rank) is random, so the estimates are not checked against a truth here (the measured simulated catalogue
does that, tests/test_measured_drivers.py): the drivers run on what was measured and name its source.
"""

from __future__ import annotations

import functools
import json

import pandas as pd
import pytest
from fake_deezer import DeezerCatalog, FakeClock, serve

from popdrivers import registry
from popdrivers.errors import PopdriversError
from popdrivers.sources import deezer
from popdrivers.sources.api_calls import RetryPolicy
from popdrivers.sources.crawl_merge import keep_sources_apart

FAST = RetryPolicy(max_attempts=4, backoff_base=0.01, backoff_max=0.04, max_retry_after=5, timeout=5.0)
# 22 bands of the double, 18 tracks each on 2 albums and a 2-track single: enough albums and artists for the
# within-album design once the tracks without a playable preview are left out.
BANDS = 22


@pytest.fixture(autouse=True)
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("POPDRIVERS_DEEZER_API_BASE", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.slow
def test_collect_audio_then_train_then_drivers_on_the_measured_descriptors(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import popdrivers.cli  # noqa: F401 (registers the commands)
    from popdrivers.cli import app

    catalog = DeezerCatalog(seed=5, extra_artists=BANDS)
    (tmp_path / "artists.txt").write_text("\n".join(catalog.extra_names) + "\n", encoding="utf-8")
    # The double has no quota here, so the crawl is not paced at Deezer's 50 requests per 5 s (the pacing has its
    # own tests): the command is otherwise what a user runs.
    monkeypatch.setattr(deezer, "collect", functools.partial(deezer.collect, quota=(100_000, 1.0), policy=FAST))
    runner = CliRunner()
    with serve(catalog, quota=100_000) as fake:
        result = runner.invoke(app, ["collect", "--source", "deezer", "--audio", "--analysis-workers", "2",
                                     "--artists", "artists.txt", "--out", "crawl"],
                               env={"POPDRIVERS_DEEZER_API_BASE": fake.api_base})
    assert result.exit_code == 0, result.output
    audio = pd.read_csv(tmp_path / "crawl" / "audio.csv", dtype={"track_id": str}).set_index("track_id")
    measured = audio["features_source"].fillna("").str.startswith("audio:deezer-preview:")
    assert measured.sum() >= 300
    # Deezer's bpm of the tracks without an analysed preview is kept apart from the measured tempo, and said.
    bpm_only = audio[audio["features_source"] == "deezer"]
    assert len(bpm_only) > 0 and bpm_only["tempo"].isna().all()
    assert (bpm_only["deezer_bpm"] == [catalog.tracks[int(t)].bpm for t in bpm_only.index]).all()
    assert audio.loc[measured, "deezer_bpm"].isna().all()
    assert "kept apart as deezer_bpm" in " ".join(json.loads((tmp_path / "crawl" / "crawl.json").read_text())["notes"])

    result = runner.invoke(app, ["train", "--data", "crawl", "--out", "model", "--budget-seconds", "0"])
    assert result.exit_code == 0, result.output
    model = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert {"rhythm_regularity", "onset_rate", "key_strength", "tempo"} <= set(model["features"])
    result = runner.invoke(app, ["drivers", "--data", "crawl", "--out", "drivers", "--n-rep", "1", "--no-refute"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "drivers" / "drivers.json").read_text())
    drivers = [d["feature"] for d in report["drivers"]]
    descriptors = [d for d in drivers if registry.spec(d).sources == ("audio",)]
    assert len(descriptors) >= 5 and not {"danceability", "energy", "valence"} & set(drivers)
    assert {"tempo", "loudness", "duration_min"} <= set(drivers)
    assert report["info"]["features_source"] == "audio" and report["design"] == "within_album"
    assert report["driver_sources"]["tempo"] == "popdrivers' audio analysis"
    assert report["driver_sources"]["duration_min"] == "metadata"
    assert "Driver sources: measured by popdrivers' audio analysis: " in result.output
    html = (tmp_path / "drivers" / "report.html").read_text()
    assert "popdrivers&#x27; audio analysis" in html and "rhythm_regularity" in html


def test_a_features_file_is_refused_for_a_crawl_measured_from_previews(tmp_path):
    pd.DataFrame({"artist_name": ["Sigur Rós"], "track_name": ["Song 1 of Sigur Rós album 0"], "danceability": [0.5],
                  "tempo": [120.0]}).to_csv(tmp_path / "features.csv", index=False)
    clock = FakeClock()
    with serve(DeezerCatalog(seed=4), clock=clock) as fake:
        with pytest.raises(PopdriversError, match=r"^--audio-features features.csv: this crawl's features are "
                                                  r"measured from Deezer's previews.*Fix: drop --audio-features"):
            deezer.collect(["Sigur Rós"], tmp_path / "out", api_base=fake.api_base, policy=FAST, sleep=clock.sleep,
                           clock=clock, audio=True, audio_features_file=tmp_path / "features.csv")
        assert fake.log == []  # refused before anything was asked


def test_deezer_bpm_leaves_tempo_when_a_merged_file_gives_other_tracks_spotify_tempo():
    tables = {"audio.csv": [
        {"track_id": "1", "tempo": 121.0, "danceability": 0.6, "features_source": "file:spotify.csv"},
        {"track_id": "2", "tempo": 98.5, "features_source": "deezer"},
        {"track_id": "3", "tempo": None, "features_source": None},
    ]}
    extra, note = keep_sources_apart(tables)
    rows = {r["track_id"]: r for r in tables["audio.csv"]}
    assert extra == ("deezer_bpm",) and rows["2"]["tempo"] is None and rows["2"]["deezer_bpm"] == 98.5
    assert rows["1"]["tempo"] == 121.0 and "deezer_bpm" not in rows["1"]
    assert note == ("Deezer's bpm of 1 tracks kept apart as deezer_bpm (not tempo): the other tracks' tempo comes "
                    "from spotify.csv, and one column never mixes two sources")


def test_a_deezer_crawl_with_one_source_keeps_bpm_as_tempo():
    tables = {"audio.csv": [{"track_id": "2", "tempo": 98.5, "features_source": "deezer"},
                            {"track_id": "3", "tempo": None, "features_source": None}]}
    assert keep_sources_apart(tables) == ((), None)
    assert tables["audio.csv"][0]["tempo"] == 98.5
