"""Issue 23, what a user reads: the model card's interval assumptions, the training budget, popularity_source in a
crawl-trained model's manifest, split names in the README's words."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from popdrivers import simulate_catalog
from popdrivers.model import interval_assumptions


def test_the_model_card_states_what_the_conformal_interval_assumes():
    lines = interval_assumptions({"level": 0.8, "coverage": 0.793, "measured_on": "by_artist"})
    assert [line.split(":")[0] for line in lines] == ["Tracks like the training data", "Exchangeability",
                                                      "By-artist clusters"]
    assert "the 80% prediction interval" in lines[0] and "79.3% on held-out unseen artists" in lines[0]
    assert "exchangeable with the calibration tracks" in lines[1]
    assert "new artists" in lines[2] and "whole artists held out" in lines[2]
    # Without metrics (an older folder) the assumptions are still stated, with no number made up.
    bare = interval_assumptions(None)
    assert len(bare) == 3 and "%" not in bare[0]


# ---------------------------------------------------------------------------------------------------------------
# train --budget-seconds: the budget is the whole command, so a small one evaluates less, and says so


def test_the_evaluation_plan_shrinks_with_the_time_left_and_says_what_it_cut():
    from popdrivers.model._evaluate import MIN_PLAN_ROWS, plan_evaluation

    roomy = plan_evaluation(10_000, 60.0, 8.0, round_seconds=1.6)
    assert (roomy.n_splits, roomy.time_calibration, roomy.note) == (5, "holdout_refit", None)
    plans = [plan_evaluation(10_000, left, 8.0, round_seconds=1.6) for left in (20.0, 12.0, 8.0, 4.9, 1.0)]
    for plan, left in zip(plans, (20.0, 12.0, 8.0, 4.9), strict=False):
        assert plan.seconds(10_000, 8.0, 1.6, 2) <= left
    assert [p.n_splits for p in plans] == [3, 2, 2, 2, 2]
    assert plans[1].max_rows >= 10_000 and plans[2].max_rows < 10_000 and plans[3].max_rows < plans[2].max_rows
    assert plans[-1].max_rows == MIN_PLAN_ROWS  # never below a usable sample, even when nothing fits
    assert "2 mixed folds instead of 5" in plans[3].note and "sample of whole artists" in plans[3].note


@pytest.mark.slow
def test_a_small_budget_evaluates_less_says_so_and_keeps_every_split():
    from popdrivers.model import train

    tracks = simulate_catalog(n_artists=60, tracks_per_artist=50, seed=2).tracks
    fast = {"n_estimators": 60, "num_leaves": 15, "new_artist_n_estimators": 60, "n_jobs": 1}
    small = train(tracks, budget_seconds=1.0, params=fast, seed=0)
    assert small.metrics["splits"]["random"]["folds"] < 5
    assert "the budget is small" in small.metrics["budget_note"]
    assert small.info["budget"]["evaluation_note"] == small.metrics["budget_note"]
    assert all(small.metrics["splits"][s]["available"] for s in ("random", "by_artist", "by_time"))
    assert small.model.interval_.available
    # With time for it (or an exact number of trials, which the budget does not bind), the full evaluation.
    exact = train(tracks, n_trials=0, params=fast, seed=0)
    assert exact.metrics["splits"]["random"]["folds"] == 5 and "budget_note" not in exact.metrics


@pytest.mark.slow
def test_train_cli_says_the_evaluation_was_cut_for_the_budget(tmp_path):
    from popdrivers.cli import app

    data = tmp_path / "sim.parquet"
    simulate_catalog(n_artists=60, tracks_per_artist=50, seed=2).tracks.to_parquet(data)
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "model"),
                                      "--budget-seconds", "1", "--n-jobs", "1"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "the budget is small, so the evaluation is smaller" in result.output
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["budget_note"] in " ".join(result.output.split())


# ---------------------------------------------------------------------------------------------------------------
# A model trained on a Deezer crawl records where its popularity came from


def test_a_model_trained_on_a_deezer_crawl_records_its_popularity_source(tmp_path, monkeypatch):
    from fake_deezer import DeezerCatalog, FakeClock, serve

    from popdrivers.cli import app
    from popdrivers.model import detect_shift, load_model
    from popdrivers.sources.deezer import collect

    catalog = DeezerCatalog(seed=5, extra_artists=16)  # 16 artists x 18 tracks
    monkeypatch.chdir(tmp_path)
    clock = FakeClock()  # the pacer's waits pass at once
    with serve(catalog, clock=clock) as fake:
        collect(catalog.extra_names, tmp_path / "crawl", api_base=fake.api_base, sleep=clock.sleep, clock=clock)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "--data", "crawl", "--out", "model", "--budget-seconds", "0",
                                  "--no-evaluate", "--n-jobs", "1"], env={"COLUMNS": "200"})
    assert trained.exit_code == 0, trained.output
    assert "popularity source: deezer_rank" in trained.output
    model_dir = tmp_path / "model"
    assert json.loads((model_dir / "manifest.json").read_text())["popularity_source"] == "deezer_rank"
    if (model_dir / "audio_model").is_dir():
        assert json.loads((model_dir / "audio_model" / "manifest.json").read_text())["popularity_source"] == \
            "deezer_rank"
    model = load_model(model_dir)
    assert model.manifest_["popularity_source"] == "deezer_rank"
    # ... and tracks whose popularity is Spotify's are told apart from it when scored.
    spotify = simulate_catalog(n_artists=5, tracks_per_artist=8, seed=1).tracks.assign(popularity_source="spotify")
    kinds = {f.kind for f in detect_shift(model, spotify).shifted}
    assert "popularity_source" in kinds


# ---------------------------------------------------------------------------------------------------------------
# Split names: the README's words wherever a person reads them; the machine keys stay in metrics.json

README_WORDS = {"random": "random tracks", "by_artist": "unseen artists", "by_time": "newest releases"}


def test_evaluate_speaks_of_random_tracks_unseen_artists_and_newest_releases(tmp_path):
    from popdrivers.cli import app

    data = tmp_path / "sim.parquet"
    simulate_catalog(n_artists=30, tracks_per_artist=20, seed=4).tracks.to_parquet(data)
    runner = CliRunner()
    table = runner.invoke(app, ["evaluate", "--data", str(data), "--n-splits", "2", "--n-jobs", "1"],
                          env={"COLUMNS": "200"})
    assert table.exit_code == 0, table.output
    for words in README_WORDS.values():
        assert words in table.output
    assert not any(key in table.output for key in ("by_artist", "by_time", "by-artist", "by-time"))
    metrics = json.loads(runner.invoke(app, ["evaluate", "--data", str(data), "--n-splits", "2", "--n-jobs", "1",
                                             "--json"]).stdout)
    assert set(metrics["splits"]) == set(README_WORDS)  # the keys files are read by
    assert metrics["split_labels"] == README_WORDS
    assert metrics["interval"]["measured_on"] == "by_artist"
    assert metrics["interval"]["measured_on_label"] == "unseen artists"
    assert "by_artist" not in metrics["interval"]["calibration"] and "by_time" not in metrics["interval"]["calibration"]
    for command in ("evaluate", "train"):
        text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
        assert "unseen artists" in text and "by-artist" not in text and "by-time" not in text, command
