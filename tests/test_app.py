"""The Streamlit app, driven headless with AppTest: every page renders, widgets change what the model says.

Each test compares what the page shows with the product's own numbers: the model's predictions, the causal
report, metrics.json, the training data.
"""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import APPTEST_TIMEOUT, open_page
from streamlit.testing.v1 import AppTest

from popdrivers import explain, pipeline, schema
from popdrivers.app import MAIN_SCRIPT, services
from popdrivers.app.config import artifacts_dir_from
from popdrivers.drivers import implied_change

pytestmark = pytest.mark.slow  # AppTest runs every page's script: seconds per test


def metric(at: AppTest, label: str) -> str:
    matches = [m.value for m in at.metric if m.label == label]
    assert matches, f"no metric '{label}' among {[m.label for m in at.metric]}"
    return matches[0]


def table_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table on the page having these columns (AppTest does not expose a plain dataframe's key)."""
    for frame in at.dataframe:
        if set(columns) <= set(frame.value.columns):
            return frame.value
    raise AssertionError(f"no table with columns {columns} among {[list(f.value.columns) for f in at.dataframe]}")


def inputs_from(at: AppTest, artifacts: pipeline.Artifacts) -> dict:
    """The values the Predict page's widgets hold now."""
    used, unused = services.used_inputs(services.predict_inputs(artifacts.tracks, artifacts.model), artifacts.model)
    assert not unused  # the simulated catalogue has every feature
    values = {}
    for spec in used:
        kind = {"slider": "slider", "number": "number_input", "select": "selectbox", "toggle": "toggle"}[spec.kind]
        values[spec.name] = getattr(at, kind)(key=f"predict_{spec.name}").value
    return values


def expected_prediction(values: dict, artifacts: pipeline.Artifacts) -> pd.Series:
    """The model's answer for the widgets' values, from a canonical row built here (not by the page's helpers)."""
    reference = pd.Timestamp(artifacts.model.reference_date_)
    audio = ("danceability", "energy", "key", "loudness", "mode", "speechiness", "acousticness", "instrumentalness",
             "liveness", "valence", "tempo", "time_signature")
    row = {"track_id": "oracle", "artist_id": "an artist the model never saw", "collected_at": reference,
           "release_date": reference - pd.Timedelta(days=int(values["track_age_days"])),
           "artist_followers": float(values["artist_followers"]), "artist_genres": [values["genre"]],
           "genre": values["genre"], "duration_ms": float(round(values["duration_min"] * 60000)),
           "explicit": bool(values["explicit"]), **{name: float(values[name]) for name in audio}}
    return artifacts.model.predict_interval(pd.DataFrame([row])).iloc[0]


def test_artifacts_folder_comes_from_the_command_line_then_the_environment() -> None:
    assert artifacts_dir_from(["--artifacts", "x/y"], {"POPDRIVERS_ARTIFACTS": "z"}) == Path("x/y")
    assert artifacts_dir_from(["--other", "1"], {"POPDRIVERS_ARTIFACTS": "z"}) == Path("z")
    assert artifacts_dir_from([], {}) == Path("artifacts/default")


def test_predict_defaults_are_the_training_medians(app: AppTest, artifacts: pipeline.Artifacts) -> None:
    tracks = artifacts.tracks
    assert app.title[0].value.startswith("Predict")
    assert app.slider(key="predict_danceability").value == pytest.approx(tracks["danceability"].median(), abs=0.006)
    assert app.slider(key="predict_loudness").value == pytest.approx(tracks["loudness"].median(), abs=0.06)
    assert app.number_input(key="predict_artist_followers").value == round(tracks["artist_followers"].median())
    followers = next(s for s in services.predict_inputs(tracks, artifacts.model) if s.name == "artist_followers")
    assert app.number_input(key="predict_artist_followers").max == int(followers.high)  # the reach services gives
    loudness = app.slider(key="predict_loudness")
    # The page offers exactly what validation accepts (they once disagreed: -60..5 against -70..10).
    assert (loudness.min, loudness.max) == (schema.SPECS["loudness"].low, schema.SPECS["loudness"].high)
    assert "dB" in loudness.label
    assert all(w.help for w in app.slider), "every slider explains its feature"


def test_predict_shows_what_the_model_predicts_and_changes_with_the_inputs(
        app: AppTest, artifacts: pipeline.Artifacts) -> None:
    assert not [m for m in app.metric if m.label == "Predicted popularity"]  # nothing until Predict is pressed
    app.number_input(key="predict_artist_followers").set_value(20_000_000)
    app.slider(key="predict_danceability").set_value(0.9)
    app.toggle(key="predict_explicit").set_value(True)
    app.button[0].click().run()
    assert not app.exception
    first = expected_prediction(inputs_from(app, artifacts), artifacts)
    assert metric(app, "Predicted popularity") == f"{first['prediction']:.1f}"
    assert any(f"{first['lower']:.1f} to {first['upper']:.1f}" in m.value for m in app.markdown)
    assert len(app.get("plotly_chart")) == 1  # the SHAP waterfall

    app.number_input(key="predict_artist_followers").set_value(1_000)
    app.slider(key="predict_danceability").set_value(0.1)
    app.button[0].click().run()
    second = expected_prediction(inputs_from(app, artifacts), artifacts)
    assert metric(app, "Predicted popularity") == f"{second['prediction']:.1f}"
    assert second["prediction"] != pytest.approx(first["prediction"], abs=0.05)


def test_a_prediction_comes_with_its_interval_and_an_explanation_that_adds_up(artifacts: pipeline.Artifacts) -> None:
    specs = services.predict_inputs(artifacts.tracks, artifacts.model)
    row = services.track_from_inputs({s.name: s.default for s in specs},
                                     services.model_reference_date(artifacts.model, artifacts.tracks))
    result = explain.explained_prediction(artifacts.model, row)
    interval = artifacts.model.predict_interval(row).iloc[0]
    assert (result.prediction, result.lower, result.upper) == pytest.approx(
        (interval["prediction"], interval["lower"], interval["upper"]))
    # (Its latency is measured in benchmarks/bench_model.py, not asserted here.)


def test_what_if_shows_model_and_causal_changes_side_by_side(app: AppTest, artifacts: pipeline.Artifacts) -> None:
    tracks, model, report = artifacts.tracks, artifacts.model, artifacts.drivers
    open_page(app, "what_if")
    artist = tracks["artist_name"].iloc[0]
    app.text_input(key="whatif_query").input(artist).run()
    options = app.selectbox(key="whatif_track").options
    assert options and all(artist in option for option in options)
    track_id = tracks.loc[tracks["artist_name"] == artist].sort_values("popularity", ascending=False,
                                                                      kind="stable")["track_id"].iloc[1]
    app.selectbox(key="whatif_track").set_value(track_id).run()
    row = tracks[tracks["track_id"] == track_id].reset_index(drop=True)
    assert metric(app, "Actual popularity") == str(int(row["popularity"].iloc[0]))
    assert metric(app, "Predicted popularity") == f"{model.predict(row)[0]:.1f}"
    assert metric(app, "Implied change in popularity (average over tracks)") == "+0.0"  # nothing edited yet

    old = float(row["danceability"].iloc[0])
    new = 0.95 if old < 0.5 else 0.05
    app.slider(key=f"whatif_{track_id}_danceability").set_value(new).run()
    assert not app.exception
    edited = row.assign(danceability=new)
    assert metric(app, "Predicted popularity after the edit") == f"{model.predict(edited)[0]:.1f}"
    # One driver: the change reads its curve between the old and the new value (not one slope times the change),
    # and the interval is that difference's own; the curve is checked against the slope when it is near linear.
    effect, low, high = implied_change(report, {"danceability": new - old}, at={"danceability": old})
    curve_free = report["danceability"].effect * (new - old)
    assert abs(effect - curve_free) < 4 * report["danceability"].se * abs(new - old)
    assert metric(app, "Implied change in popularity (average over tracks)") == f"{effect:+.1f}"
    assert any(f"95% CI {low:+.1f} to {high:+.1f}" in c.value for c in app.caption)
    assert {"Model prediction (association)", "Causal estimate (within album effects)"} <= {
        m.value.removeprefix("#### ") for m in app.markdown}
    assert len(app.get("plotly_chart")) == 1  # the curve over one feature's range
    # This track's own effect from the R-learner, where its test finds differences (read from track_effects.csv).
    from popdrivers.explain import learner_effects

    expected = learner_effects(report, row, {"danceability": new - old})
    shown = [m.value for m in app.markdown if "from a learner told nothing about genre families" in m.value]
    assert len(shown) == len(expected) == int(report["danceability"].track_learner.detected)
    if expected:
        assert f"for this edit about **{expected[0].implied:+.1f}**" in shown[0]


def test_what_if_curve_marks_the_track_and_follows_the_model(artifacts: pipeline.Artifacts) -> None:
    row = artifacts.tracks.iloc[[5]].reset_index(drop=True)
    curve = explain.feature_curve(artifacts.model, row, "loudness", artifacts.tracks)
    current = float(row["loudness"].iloc[0])
    assert curve["value"].min() <= current <= curve["value"].max()
    probe = curve.iloc[7]
    assert probe["prediction"] == pytest.approx(artifacts.model.predict(row.assign(loudness=probe["value"]))[0])


def test_drivers_page_shows_every_design_the_checks_and_importance(app: AppTest,
                                                                    artifacts: pipeline.Artifacts) -> None:
    open_page(app, "drivers")
    report, truth = artifacts.drivers, artifacts.truth.effects
    charts = app.get("plotly_chart")
    assert len(charts) >= 2  # effects and SHAP importance (by genre when estimable)
    assert any("Primary design" in info.value and "within album" in info.value for info in app.info)
    table = table_with(app, "driver", "effect", "p (Holm)", "placebo rejections", "RV")
    assert list(table["driver"]) == list(report.features)
    assert {"within artist", "naive, across artists", "truth"} <= set(table.columns)
    for i, estimate in enumerate(report.drivers):  # the report's numbers, to the 3 digits shown
        assert float(table.loc[i, "effect"]) == pytest.approx(estimate.effect, rel=0.01, abs=1e-3)
        assert float(table.loc[i, "truth"]) == pytest.approx(truth[estimate.feature], rel=0.01, abs=1e-3)
    strength = app.radio(key="drivers_sensitivity_k")
    rows_at_1 = len(table_with(app, "driver", "confounder as strong as"))
    strength.set_value(3.0).run()
    assert not app.exception
    shown = table_with(app, "driver", "confounder as strong as")
    assert len(shown) == rows_at_1 and all(v.startswith("3 x ") for v in shown["confounder as strong as"])
    with_genres = [r.feature for r in report.drivers if r.by_genre]
    genre_driver = app.selectbox(key="drivers_genre_driver")
    assert list(genre_driver.options) == with_genres and len(with_genres) >= 2
    genre_driver.set_value(with_genres[1]).run()
    assert not app.exception and len(app.get("plotly_chart")) == len(charts)


def test_drivers_page_draws_the_curves_and_says_which_effects_vary(app: AppTest,
                                                                   artifacts: pipeline.Artifacts) -> None:
    open_page(app, "drivers")
    report = artifacts.drivers
    continuous = [r.feature for r in report.drivers if r.curve]
    chooser = app.selectbox(key="drivers_curve_driver")
    assert list(chooser.options) == continuous and chooser.value == "loudness"
    assert any("instead of its median" in c.value and "TRUE curve" in c.value for c in app.caption)
    chooser.set_value(continuous[0]).run()
    assert not app.exception
    table = table_with(app, "driver", "average effect", "variance-weighted (partially linear)", "effect varies?")
    assert list(table["driver"]) == list(report.features)
    tested = 0
    for i, r in enumerate(report.drivers):  # the report's own test result, worded ("–": no test was possible)
        has_test = r.heterogeneity is not None and math.isfinite(r.heterogeneity.p_value)
        tested += has_test
        expected = ("varies" if r.heterogeneous else "no evidence") if has_test else "–"
        assert table.loc[i, "effect varies?"].startswith(expected), r.feature
        assert float(table.loc[i, "variance-weighted (partially linear)"]) == pytest.approx(
            r.estimate.variance_weighted_effect, rel=0.01, abs=1e-3)
    assert tested >= len(report.drivers) // 2    # the continuous drivers' spline terms can always be tested


def test_data_page_explores_the_table(app: AppTest, artifacts: pipeline.Artifacts) -> None:
    open_page(app, "data")
    assert metric(app, "tracks") == f"{len(artifacts.tracks):,}"
    vif = table_with(app, "feature", "vif")
    assert set(vif["feature"]) >= {"danceability", "loudness", "log_followers"} and (vif["vif"] >= 1).all()
    app.selectbox(key="data_dist_column").set_value("loudness").run()
    assert not app.exception


def test_a_bad_upload_lists_every_problem_without_a_traceback(app: AppTest) -> None:
    open_page(app, "data")
    bad = b"track_id,popularity,danceability,loudness\nt1,50,-0.5,-5\nt2,abc,0.5,-200\n"
    app.file_uploader(key="data_upload").set_value(("mine.csv", bad, "text/csv")).run()
    assert not app.exception
    errors = " ".join(e.value for e in app.error)
    assert "mine.csv" in errors
    for column in ("popularity", "danceability", "loudness"):
        assert f"column '{column}'" in errors, errors
    assert "Traceback" not in errors

    app.file_uploader(key="data_upload").set_value(("notes.csv", b"hello,world\n1,2\n", "text/csv")).run()
    assert not app.exception
    assert "canonical" in " ".join(e.value for e in app.error)  # names the formats it knows


def test_a_valid_upload_is_scored_and_downloadable(app: AppTest, artifacts: pipeline.Artifacts,
                                                   small_catalog) -> None:
    from popdrivers.sources.files import write_tracks

    open_page(app, "data")
    tracks = small_catalog.tracks.head(40).drop(columns=["popularity"])
    csv = tmp_csv(tracks)
    app.file_uploader(key="data_upload").set_value(("new releases.csv", csv, "text/csv")).run()
    assert not app.exception and not app.error
    app.button(key="data_score").click().run()
    scored = table_with(app, "prediction", "lower", "upper")
    assert len(scored) == 40
    expected = artifacts.model.predict_interval(tracks)["prediction"].to_numpy()
    assert scored["prediction"].to_numpy() == pytest.approx(expected, abs=0.006)
    assert list(scored["track_id"]) == list(tracks["track_id"])
    assert app.get("download_button"), "the scores can be downloaded"
    del write_tracks


def tmp_csv(tracks: pd.DataFrame) -> bytes:
    import tempfile

    from popdrivers.sources.files import write_tracks

    with tempfile.TemporaryDirectory() as folder:
        return write_tracks(tracks, Path(folder) / "t.csv").read_bytes()


# The README's words for the splits (written out here, not read from the code that prints them).
SPLIT_WORDS = {"random": "random tracks", "by_artist": "unseen artists", "by_time": "newest releases"}


def test_model_card_shows_metrics_against_baselines(app: AppTest, artifacts: pipeline.Artifacts) -> None:
    open_page(app, "model_card")
    table = table_with(app, "split", "method", "rmse", "mae", "r2")
    metrics = artifacts.metrics
    shown = 0
    for split, result in metrics["splits"].items():
        if not result.get("available", True):
            continue
        rows = table[table["split"] == SPLIT_WORDS[split]].set_index("method")
        assert rows.loc["popdrivers model", "rmse"] == pytest.approx(result["model"]["rmse"])
        for name, scores in result["baselines"].items():
            assert rows.loc[f"baseline: {name.replace('_', ' ')}", "mae"] == pytest.approx(scores["mae"])
        shown += 1
    assert shown == 3
    coverage = metrics["interval"]["coverage"]
    assert any(m.value == f"{100 * coverage:.1f}%" for m in app.metric)
    assert any("SIMULATED" in m.value for m in app.markdown)  # limitations say the data is simulated
    provenance = table_with(app, "field", "value")
    assert "simulated catalogue" in set(provenance["value"])


def wait_for_builder(target: Path, pid: int | None, timeout: float = 240) -> None:
    """Wait until the build of ``target`` has ended and its process ``pid`` has exited."""
    import time

    from popdrivers.processes import pid_alive

    deadline = time.monotonic() + timeout
    while pipeline.build_status(target).state == "running" or (pid is not None and pid_alive(pid)):
        assert time.monotonic() < deadline, "the build did not finish"
        time.sleep(0.2)


def test_without_artifacts_the_page_shows_one_background_build_then_becomes_the_app(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    monkeypatch.setenv(pipeline.ENV_BUILD_OPTIONS, "--n-artists 20 --tracks-per-artist 12 --budget-seconds 0")
    target = tmp_path / "fresh"
    monkeypatch.setenv("POPDRIVERS_ARTIFACTS", str(target))
    at = AppTest.from_file(MAIN_SCRIPT, default_timeout=APPTEST_TIMEOUT).run()  # returns while the build runs
    assert not at.exception, at.exception
    assert at.title[0].value == "Building the artifacts"
    assert any("simulated catalogue" in w.value for w in at.warning)
    assert at.get("progress"), "the build shows its progress"
    builder = pipeline.build_status(target)
    assert builder.state == "running" and builder.pid
    second_tab = AppTest.from_file(MAIN_SCRIPT, default_timeout=APPTEST_TIMEOUT).run()
    assert second_tab.title[0].value == "Building the artifacts"
    assert pipeline.build_status(target).pid in (builder.pid, None)  # the same build, not a second one
    wait_for_builder(target, builder.pid)
    at.run()
    assert not at.exception and at.title[0].value.startswith("Predict")
    assert pipeline.is_artifact_dir(target)


def test_a_failed_build_shows_its_error_and_a_retry_button(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    target = tmp_path / "broken"
    folder = pipeline.build_dir(target)
    folder.mkdir(parents=True)
    (folder / "status.json").write_text('{"state": "failed", "error": "SchemaError: tracks.csv: column popularity",'
                                        ' "command": "popdrivers build --out broken --data tracks.csv"}')
    monkeypatch.setenv("POPDRIVERS_ARTIFACTS", str(target))
    monkeypatch.setenv(pipeline.ENV_BUILD_OPTIONS, "--n-artists 20 --tracks-per-artist 12 --budget-seconds 0")
    at = AppTest.from_file(MAIN_SCRIPT, default_timeout=APPTEST_TIMEOUT).run()
    assert not at.exception
    assert "column popularity" in at.error[0].value
    assert any("popdrivers build --out broken --data tracks.csv" in c.value for c in at.caption)
    assert pipeline.build_status(target).state == "failed"  # nothing restarted behind the user's back
    at.button(key="retry_build").click().run()
    retried = pipeline.build_status(target)
    assert retried.state in ("running", "done")
    wait_for_builder(target, retried.pid)  # let the retried build finish before cleanup
    assert pipeline.build_status(target).state == "done"


def test_tampered_artifacts_are_refused_with_a_message(small_artifacts: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    copy = shutil.copytree(small_artifacts, tmp_path / "copy")
    (copy / "truth.json").write_text("{}")
    monkeypatch.setenv("POPDRIVERS_ARTIFACTS", str(copy))
    at = AppTest.from_file(MAIN_SCRIPT, default_timeout=APPTEST_TIMEOUT).run()
    assert not at.exception
    assert "checksum" in at.error[0].value


def test_predict_asks_only_for_what_the_model_was_trained_on(small_catalog) -> None:
    from popdrivers.model import PopularityModel

    tracks = small_catalog.tracks.drop(columns=["explicit", "artist_followers"])
    model = PopularityModel(n_estimators=20, calibration_folds=0, n_jobs=1).fit(tracks)
    used, unused = services.used_inputs(services.predict_inputs(tracks, model), model)
    assert {s.name for s in unused} == {"explicit", "artist_followers"}
    values = {s.name: s.default for s in used + unused}
    row = services.track_from_inputs(values, services.model_reference_date(model, tracks))
    # What the page does not ask for cannot move the prediction: the model never saw it.
    other = services.track_from_inputs({**values, "explicit": not values["explicit"], "artist_followers": 10**8},
                                       services.model_reference_date(model, tracks))
    assert model.predict(row)[0] == pytest.approx(model.predict(other)[0])
    assert np.isfinite(model.predict(row)[0])


def test_a_song_upload_is_analysed_here_and_predicted_by_the_audio_model(app: AppTest, artifacts: pipeline.Artifacts,
                                                                         tmp_path: Path) -> None:
    """Predict page, "From a song file": a synthesised 120 BPM click track in 4/4 is analysed on this machine, its
    measured tempo shown with popdrivers' source (not Spotify's), and the audio model predicts with an interval."""
    from popdrivers.audio.synth import click_track, write_audio

    assert artifacts.audio_model is not None
    song = write_audio(tmp_path / "demo.wav", click_track(120, 20, seed=1))
    at = open_page(app, "predict")
    at.file_uploader(key="song_upload").set_value(("demo.wav", song.read_bytes(), "audio/wav")).run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert any("Measured from `demo.wav`" in m.value for m in at.markdown)
    assert any("popdrivers' analysis, not Spotify's" in c.value and "audio:" in c.value for c in at.caption)
    tempo = next(w for w in [*at.slider, *at.number_input] if w.key == "song_tempo")
    assert abs(tempo.value - 120) < 120 * 0.04
    at.button(key="FormSubmitter:song_form-Predict from the song").click().run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    predicted = float(metric(at, "Predicted popularity"))
    shown = next(m.value for m in at.markdown if m.value.startswith("80% interval:"))
    lower, upper = (float(x) for x in re.findall(r"-?\d+\.\d", shown))
    assert lower <= predicted <= upper and upper > lower
