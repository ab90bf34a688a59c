"""Training on a Dask cluster gives the single-machine model, in the same artifact, loadable without Dask."""

from __future__ import annotations

import builtins
import itertools
import json
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

from popdrivers.errors import FormatError, PopdriversError
from popdrivers.model import PopularityModel, load_model, save_model
from popdrivers.model import _distributed as popdask
from popdrivers.sources.files import write_tracks
from popdrivers.sources.simulate import simulate_catalog

pytestmark = pytest.mark.slow  # a LocalCluster of worker processes

# Small trees keep the whole file fast; the same parameters go to both learners.
PARAMS = {"n_estimators": 120, "learning_rate": 0.08, "new_artist_n_estimators": 150, "n_jobs": 1}


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    # Workers are spawned and re-run the parent's __main__; after the app tests that is the Streamlit page
    # AppTest ran (which would build artifacts inside the worker). Spawn them from a bare __main__.
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, processes=True) as cluster, \
                Client(cluster) as dask_client:
            sys.modules["__main__"] = main
            yield dask_client
    finally:
        sys.modules["__main__"] = main


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    tracks, _ = simulate_catalog(150, 30, seed=11)
    new_tracks, _ = simulate_catalog(60, 20, seed=12)
    folder = tmp_path_factory.mktemp("cluster-data")
    # A folder of several Parquet files: partitions the workers read themselves.
    for i, part in enumerate(np.array_split(np.arange(len(tracks)), 3)):
        write_tracks(tracks.iloc[part].reset_index(drop=True), folder / f"part-{i}.parquet")
    return tracks, new_tracks, folder


@pytest.fixture(scope="module")
def cluster_model(client, catalog):
    _, _, folder = catalog
    steps = []
    model = popdask.train_on_cluster(folder, client, params=PARAMS, seed=0,
                                     progress=lambda done, total, message: steps.append((done, total)))
    assert steps[-1][0] == steps[-1][1]
    return model


@pytest.fixture(scope="module")
def single_models(catalog):
    """One-machine models with four seeds: how far two fits of the same model may differ is their spread."""
    tracks, _, _ = catalog
    return tuple(PopularityModel(**PARAMS, random_state=seed).fit(tracks) for seed in range(4))


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, float) - np.asarray(b, float)) ** 2)))


def test_cluster_training_predicts_like_single_machine_training(catalog, cluster_model, single_models):
    tracks, new_tracks, _ = catalog
    single = single_models[0]
    assert cluster_model.feature_names_ == single.feature_names_
    assert cluster_model.reference_date_ == single.reference_date_
    assert cluster_model.n_train_rows_ == len(tracks)
    for table in (new_tracks, tracks.sample(600, random_state=0)):  # new artists, and known ones
        # Not bit-identical: the workers bin features on their own share of rows, and folds and hidden
        # artists are drawn by hashing ids. The tolerance is the model's own randomness: on average the cluster
        # differs from the one-machine fits by no more than 1.5 x the average difference between two of them
        # (6 pairs of seeds). Measured on new artists: 1.06-1.13 over 12 cluster fits (seeds 0-2, and 1.01-1.22
        # over six placements of the partitions on the workers). One pair alone is too noisy a yardstick: its
        # difference ranged 2.37-2.88 over 15 pairs, and a CI run measured against the closest pair failed at 1.50.
        on_cluster = cluster_model.predict(table)
        on_one = [model.predict(table) for model in single_models]
        pairs = list(itertools.combinations(on_one, 2))
        between_seeds = np.mean([_rmse(a, b) for a, b in pairs])
        cluster_to_one = np.mean([_rmse(on_cluster, p) for p in on_one])
        assert cluster_to_one < 1.5 * between_seeds, (cluster_to_one, between_seeds)
        corr_seeds = np.mean([np.corrcoef(a, b)[0, 1] for a, b in pairs])
        corr_cluster = np.mean([np.corrcoef(on_cluster, p)[0, 1] for p in on_one])
        assert corr_cluster > corr_seeds - 0.07
    # Held out (new artists): the cluster predicts as well as one machine. The known artists' sample is training
    # rows, where a closer fit is not better prediction, so it is held to agreement only.
    truth = new_tracks["popularity"].to_numpy()
    assert _rmse(cluster_model.predict(new_tracks), truth) < 1.05 * _rmse(single.predict(new_tracks), truth)


def test_cluster_model_has_calibrated_intervals_of_the_single_machine_width(catalog, cluster_model, single_models):
    """Calibrated as on one machine (out-of-fold refits, every track once among the new artists' residuals).
    Before: one held-out part of 30 artists, read against the track record of the wrong tables, covered 62% of the
    new artists' tracks against one machine's 76%."""
    tracks, new_tracks, _ = catalog
    single = single_models[0]
    assert cluster_model.calibration_method_ == single.calibration_method_ == "cross"
    sizes, single_sizes = dict(cluster_model.fitted_state.interval.sizes), dict(single.fitted_state.interval.sizes)
    assert sizes["new"] == pytest.approx(len(tracks), rel=0.02)
    assert sizes["seen"] == pytest.approx(single_sizes["seen"], rel=0.2)
    for group in ("seen", "new"):
        lo, hi = cluster_model.interval_offsets_[group]
        s_lo, s_hi = single.interval_offsets_[group]
        assert lo < 0 < hi
        assert (hi - lo) == pytest.approx(s_hi - s_lo, rel=0.25)
    intervals = cluster_model.predict_interval(new_tracks)
    inside = intervals["lower"].to_numpy() <= new_tracks["popularity"].to_numpy()
    inside &= new_tracks["popularity"].to_numpy() <= intervals["upper"].to_numpy()
    assert 0.7 < inside.mean() < 0.9  # 80% intervals, 1,200 tracks of new artists


def test_a_second_fit_on_the_same_cluster_uses_its_own_track_record_tables(client, catalog, cluster_model):
    """Another seed holds out other artists; its calibration must read its own per-artist tables (they were once
    scattered under fixed names, and the second fit got the first one's: most held-out artists looked seen)."""
    tracks, _, folder = catalog
    other = popdask.train_on_cluster(folder, client, params=PARAMS, seed=1)
    sizes = dict(other.fitted_state.interval.sizes)
    assert sizes["new"] == pytest.approx(len(tracks), rel=0.02)
    assert sizes["seen"] < 0.3 * len(tracks)


def test_artist_tables_leave_out_each_calibration_folds_held_out_part(catalog):
    tracks, _, _ = catalog
    frame = popdask._clean_partition(tracks, "test", 0)
    folds = PopularityModel().calibration_folds
    parts = np.array_split(np.arange(len(frame)), 3)
    stats = [popdask._partition_stats(frame.iloc[p], seed=0, n_folds=5, calibration_folds=folds,
                                      candidates=popdask._witness_columns(), summary_rows=100) for p in parts]
    artists = frame["artist_id"].astype("string")
    held_out_total = 0
    for fold in range(folds):
        tables = popdask._artist_tables(stats, 5, folds, fold)
        held_out = popdask._assignments(frame, 0, 5, folds, fold)["held_out"].to_numpy()
        held_out_total += held_out.sum()
        assert tables["all"]["count"].sum() == len(frame)
        assert tables["fit"]["count"].sum() == len(frame) - held_out.sum()
        whole = frame.index[held_out & ~artists.isin(artists[~held_out]).to_numpy()]
        assert len(whole) and not artists[whole].isin(tables["fit"].index).any()
        assert sum(s["held_out_rows"][fold] for s in stats) == held_out.sum()
    assert len(frame) <= held_out_total <= 1.3 * len(frame)  # every track new once, some also known once


def test_artifact_loads_and_predicts_without_dask(tmp_path, catalog, cluster_model):
    _, new_tracks, _ = catalog
    out = save_model(cluster_model, tmp_path / "model", data_source="cluster")
    new_tracks.head(50).to_parquet(tmp_path / "new.parquet")
    expected = cluster_model.predict(new_tracks.head(50))
    # A fresh interpreter where importing Dask fails: loading and predicting must not need it.
    script = textwrap.dedent(f"""
        import json, sys
        class NoDask:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("dask", "distributed"):
                    raise ImportError(f"blocked: {{name}}")
        sys.meta_path.insert(0, NoDask())
        import pandas as pd
        from popdrivers.model import load_model
        model = load_model({str(out)!r})
        tracks = pd.read_parquet({str(tmp_path / "new.parquet")!r})
        pred = model.predict(tracks).tolist()
        interval = model.predict_interval(tracks)
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))
        print(json.dumps({{"pred": pred, "rows": len(interval), "dask_modules": loaded}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert payload["dask_modules"] == []
    assert payload["rows"] == 50
    np.testing.assert_allclose(payload["pred"], expected, atol=1e-9)
    assert load_model(out).feature_names_ == cluster_model.feature_names_


def test_without_dask_the_message_names_the_extra(monkeypatch, catalog):
    _, _, folder = catalog
    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.split(".")[0] in ("dask", "distributed"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    for module in [m for m in sys.modules if m.split(".")[0] in ("dask", "distributed") or m == "lightgbm.dask"]:
        monkeypatch.delitem(sys.modules, module)
    with pytest.raises(PopdriversError, match=r"pip install 'popdrivers\[dask\]'"):
        popdask.train_on_cluster(folder, "local:2")


def test_csv_is_refused_with_the_conversion_command(tmp_path, catalog):
    tracks, _, _ = catalog
    path = tmp_path / "tracks.csv"
    write_tracks(tracks.head(100), path)
    # The fix is a command a CLI user can run (not Python), and it is real: test_readers runs it.
    with pytest.raises(FormatError, match=r"reads Parquet.*popdrivers inspect \S*tracks.csv --out \S*tracks.parquet"):
        popdask.train_on_cluster(path, "local:1")
    with pytest.raises(FileNotFoundError):
        popdask.train_on_cluster(tmp_path / "missing.parquet", "local:1")


def test_schema_problems_found_by_a_worker_name_the_column(tmp_path, client, catalog):
    tracks, _, _ = catalog
    bad = tracks.head(300).copy()
    bad["danceability"] = bad["danceability"].astype("float64")
    bad.loc[5, "danceability"] = 7.0
    write_tracks(bad, tmp_path / "bad.parquet")
    with pytest.raises(PopdriversError, match=r"danceability.*outside 0 to 1"):
        popdask.train_on_cluster(tmp_path / "bad.parquet", client, params=PARAMS)


@pytest.mark.parametrize("text, expected", [
    ("local:3", ("local", 3)), ("tcp://10.0.0.5:8786", ("address", "tcp://10.0.0.5:8786")),
    ("scheduler:8786", ("address", "scheduler:8786")), ("tls://dask.example.org:8786",
                                                        ("address", "tls://dask.example.org:8786")),
])
def test_cluster_addresses_are_understood(text, expected):
    assert popdask.parse_cluster(text) == expected


@pytest.mark.parametrize("text", ["local", "local:0", "local:two", "my-laptop", ""])
def test_unclear_cluster_addresses_are_refused_with_examples(text):
    with pytest.raises(ValueError, match="local:N|local:2"):
        popdask.parse_cluster(text)


def test_unreachable_scheduler_says_how_to_start_one(monkeypatch, catalog):
    _, _, folder = catalog
    monkeypatch.setattr(popdask, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(PopdriversError, match="dask scheduler"):
        popdask.train_on_cluster(folder, "tcp://127.0.0.1:9")



def test_cli_trains_on_a_scheduler_address_and_the_model_predicts(tmp_path, client, catalog):
    from typer.testing import CliRunner

    from popdrivers.cli import app

    tracks, new_tracks, _ = catalog
    data = tmp_path / "tracks.parquet"
    write_tracks(tracks.head(900), data)
    # The running test cluster's scheduler, reached by address as `--cluster tcp://host:port` would be.
    result = CliRunner().invoke(app, ["train", "--data", str(data), "--out", str(tmp_path / "model"),
                                      "--cluster", client.scheduler.address])
    assert result.exit_code == 0, result.output
    assert "2 Dask worker(s)" in result.output
    model = load_model(tmp_path / "model")
    assert model.n_train_rows_ == 900
    assert model.metrics_["note"].startswith("trained on a Dask cluster")
    predictions = model.predict(new_tracks.head(20))
    assert predictions.std() > 1


def test_cli_cluster_without_dask_names_the_extra(tmp_path, catalog):
    tracks, _, _ = catalog
    data = tmp_path / "tracks.parquet"
    write_tracks(tracks.head(200), data)
    script = textwrap.dedent(f"""
        import sys
        class NoDask:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("dask", "distributed"):
                    raise ImportError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, NoDask())
        from popdrivers.cli import main
        sys.argv = ["popdrivers", "train", "--data", {str(data)!r}, "--out", {str(tmp_path / "m")!r},
                    "--cluster", "local:2"]
        main()
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "pip install 'popdrivers[dask]'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "m").exists()


def test_cluster_uses_the_features_the_data_has_like_one_machine(tmp_path, client, catalog):
    tracks, new_tracks, _ = catalog
    partial = tracks.head(1200).drop(columns=["artist_id", "tempo"])
    write_tracks(partial, tmp_path / "partial.parquet")
    model = popdask.train_on_cluster(tmp_path / "partial.parquet", client, params={**PARAMS, "calibration_folds": 0})
    single = PopularityModel(**PARAMS, calibration_folds=0).fit(partial)
    assert model.feature_names_ == single.feature_names_
    assert set(model.features_unavailable_) == set(single.features_unavailable_) == {"tempo", "artist_track_record"}
    assert model.new_artist_booster_ is None and model.artist_tracks_ is None
    assert model.predict(new_tracks.drop(columns=["tempo"]).head(30)).shape == (30,)
