"""The artifact set behind the app: built atomically, verified on load, and the CLI commands that build and serve it."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import popdrivers.cli  # noqa: F401  (registers every command on the Typer app)
from popdrivers import pipeline
from popdrivers.cli import app as cli_app
from popdrivers.errors import ArtifactError

runner = CliRunner()


def test_build_writes_every_part_of_the_artifact_set(small_artifacts: Path) -> None:
    for name in ("tracks.parquet", "truth.json", "build.json", "manifest.json", "model", "drivers"):
        assert (small_artifacts / name).exists(), name
    manifest = json.loads((small_artifacts / "manifest.json").read_text())
    assert manifest["kind"] == "popdrivers-artifacts"
    assert {"tracks.parquet", "truth.json", "model/model.txt", "drivers/drivers.json"} <= set(manifest["files"])
    build = json.loads((small_artifacts / "build.json").read_text())
    assert build["simulated"] is True and build["source"] == pipeline.SIMULATED_SOURCE
    assert build["rows"] == 40 * 20 and build["created_at"]


def test_loaded_artifacts_are_the_simulated_catalogue_with_its_truth(small_artifacts: Path) -> None:
    from popdrivers import simulate_catalog

    art = pipeline.load_artifacts(small_artifacts)
    tracks, truth = simulate_catalog(n_artists=40, tracks_per_artist=20, seed=3)
    assert art.simulated
    assert list(art.tracks["track_id"]) == list(tracks["track_id"])
    assert art.truth is not None and art.truth.effects == pytest.approx(truth.effects)
    assert set(art.drivers.features) <= set(truth.effects)
    predictions = art.model.predict(art.tracks)
    assert predictions.shape == (len(tracks),)
    assert np.corrcoef(predictions, tracks["popularity"])[0, 1] > 0.5, "the built model has learned something"
    assert art.importance is not None and {"feature", "mean_abs_shap"} <= set(art.importance.columns)
    assert "splits" in art.metrics


def test_a_modified_file_is_refused(small_artifacts: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(small_artifacts, tmp_path / "copy")
    with open(copy / "tracks.parquet", "ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ArtifactError, match="checksum"):
        pipeline.load_artifacts(copy)


def test_a_missing_folder_says_how_to_build_it(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="popdrivers build"):
        pipeline.load_artifacts(tmp_path / "nowhere")


def test_a_killed_build_leaves_the_previous_folder_intact(small_artifacts: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import popdrivers.model

    target = shutil.copytree(small_artifacts, tmp_path / "artifacts")
    before = (target / "manifest.json").read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    # Ctrl-C while training: the canonical table is already written into the temporary folder.
    monkeypatch.setattr(popdrivers.model, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.build_artifacts(target, n_artists=20, tracks_per_artist=12, budget_seconds=0.5, n_jobs=1)
    assert (target / "manifest.json").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts"]  # no half-written sibling left behind
    pipeline.load_artifacts(target)
    with pytest.raises(KeyboardInterrupt):
        pipeline.build_artifacts(tmp_path / "fresh", n_artists=20, tracks_per_artist=12, budget_seconds=0.5)
    assert not (tmp_path / "fresh").exists()


def test_cli_build_from_a_dataset_file_records_its_provenance(tmp_path: Path, quick_learners) -> None:
    from popdrivers import simulate_catalog
    from popdrivers.sources.files import write_tracks

    tracks, _ = simulate_catalog(n_artists=30, tracks_per_artist=15, seed=11)
    data = write_tracks(tracks.drop(columns=["collected_at"]), tmp_path / "my tracks.csv")
    out = tmp_path / "built"
    result = runner.invoke(cli_app, ["build", "--out", str(out), "--data", str(data), "--budget-seconds", "1"])
    assert result.exit_code == 0, result.output
    art = pipeline.load_artifacts(out)
    assert not art.simulated and art.truth is None and not (out / "truth.json").exists()
    assert art.build["source"] == str(data.resolve()) and len(art.build["data_sha256"]) == 64
    assert len(art.tracks) == len(tracks)


def test_cli_build_on_a_bad_file_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    result = runner.invoke(cli_app, ["build", "--out", str(tmp_path / "out"), "--data", str(bad)])
    assert result.exit_code == 2
    assert "error:" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_progress_reaches_the_end_and_never_goes_back(tmp_path: Path, quick_learners) -> None:
    seen: list[tuple[int, int]] = []
    pipeline.build_artifacts(tmp_path / "a", n_artists=25, tracks_per_artist=12, budget_seconds=0.5, n_jobs=1,
                             progress=lambda done, total, message: seen.append((done, total)))
    fractions = [done / total for done, total in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(seen) >= 5


@pytest.fixture
def no_streamlit(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Record the command `popdrivers app` would run instead of starting a server."""
    app_module = importlib.import_module("popdrivers.cli.serve")
    calls: list[list[str]] = []
    monkeypatch.setattr(app_module, "run_process_group", lambda cmd, env=None, on_stop=None: calls.append(cmd) or 0)
    return calls


def test_app_command_starts_streamlit_on_the_packaged_app(small_artifacts: Path, no_streamlit) -> None:
    from popdrivers.app import MAIN_SCRIPT

    result = runner.invoke(cli_app, ["app", "--artifacts", str(small_artifacts), "--port", "8765"])
    assert result.exit_code == 0, result.output
    (command,) = no_streamlit
    assert command[:4] == [sys.executable, "-m", "popdrivers.app.launch", "run"]  # streamlit run, preloading
    assert Path(command[4]) == MAIN_SCRIPT and MAIN_SCRIPT.is_file()
    assert command[command.index("--server.port") + 1] == "8765"
    assert command[command.index("--artifacts") + 1] == str(small_artifacts.resolve())


def test_run_starts_the_app_at_once_and_leaves_missing_artifacts_to_the_page(tmp_path: Path,
                                                                            no_streamlit) -> None:
    target = tmp_path / "default"
    result = runner.invoke(cli_app, ["run", "--artifacts", str(target)])
    assert result.exit_code == 0, result.output
    assert len(no_streamlit) == 1 and not target.exists()  # nothing built before the server starts
    assert "the page builds them" in " ".join(result.output.split())
    data = tmp_path / "tracks.csv"
    result = runner.invoke(cli_app, ["app", "--artifacts", str(target), "--data", str(data)])
    assert result.exit_code == 0, result.output
    command = no_streamlit[-1]
    assert command[command.index("--data") + 1] == str(data.resolve())  # the page's build reads it


SMALL_BUILD = "--n-artists 20 --tracks-per-artist 12 --budget-seconds 0"


def wait_until_not_running(target: Path, timeout: float = 240) -> pipeline.BuildStatus:
    import time

    from popdrivers.processes import pid_alive

    deadline = time.monotonic() + timeout
    builder = pipeline.build_status(target).pid
    while (status := pipeline.build_status(target)).state == "running":
        assert time.monotonic() < deadline, f"the build of {target} did not finish in {timeout} s"
        builder = status.pid or builder
        time.sleep(0.2)
    while builder is not None and pid_alive(builder):  # its process exits a moment after it says so
        assert time.monotonic() < deadline, f"the builder of {target} did not exit"
        time.sleep(0.1)
    return status


@pytest.mark.slow
def test_one_background_build_however_often_it_is_asked_for(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pipeline.ENV_BUILD_OPTIONS, SMALL_BUILD)
    target = tmp_path / "artifacts"
    assert pipeline.build_status(target).state == "missing"
    first = pipeline.start_background_build(target)
    again = pipeline.start_background_build(target)  # a second tab, a rerun
    assert first.state == "running" and again.state == "running" and again.pid == first.pid
    assert (pipeline.build_dir(target) / "lock").read_text() == str(first.pid)
    status = wait_until_not_running(target)
    assert status.state == "done" and pipeline.is_artifact_dir(target)
    assert not (pipeline.build_dir(target) / "lock").exists()
    log = (pipeline.build_dir(target) / "build.log").read_text()
    assert "train:" in log and "%" in log  # plain progress lines: the log shows where the time went
    pipeline.load_artifacts(target)
    assert pipeline.start_background_build(target).state == "done"  # built: nothing more to start


@pytest.mark.slow
def test_a_failed_background_build_says_why_and_can_be_retried(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    target = tmp_path / "artifacts"
    pipeline.start_background_build(target, ["--data", str(bad)])
    status = wait_until_not_running(target)
    assert status.state == "failed" and "bad.csv" in status.error and status.command.startswith("popdrivers build")
    assert pipeline.start_background_build(target).state == "failed"  # not retried behind the user's back
    pipeline.clear_build_status(target)
    monkeypatch.setenv(pipeline.ENV_BUILD_OPTIONS, SMALL_BUILD)
    assert pipeline.start_background_build(target).state == "running"
    assert wait_until_not_running(target).state == "done"


def test_app_refuses_tampered_artifacts_before_starting(small_artifacts: Path, tmp_path: Path, no_streamlit) -> None:
    copy = shutil.copytree(small_artifacts, tmp_path / "copy")
    (copy / "build.json").write_text("{}")
    result = runner.invoke(cli_app, ["app", "--artifacts", str(copy)])
    assert result.exit_code == 2 and "checksum" in result.output and not no_streamlit


def test_tracks_round_trip_keeps_genre_lists(small_artifacts: Path) -> None:
    tracks = pipeline.load_tracks(small_artifacts)
    assert isinstance(tracks["artist_genres"].iloc[0], list)
    assert pd.api.types.is_datetime64_any_dtype(tracks["release_date"])
