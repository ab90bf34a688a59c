"""Training on a Dask cluster: the same model, fitted by LightGBM's distributed learner on partitioned Parquet.

``train_on_cluster(data_path, "tcp://scheduler:8786")`` (or ``"local:N"`` for a :class:`LocalCluster` of N
single-thread workers) has the *workers* read the Parquet file or folder, validate each partition with
:func:`popdrivers.schema.validate`, build the single-machine model's features with the model's own code
(:class:`popdrivers.model.FeatureLayout`), and train ``lightgbm.dask.DaskLGBMRegressor`` with the parameters
the model itself gives LightGBM. The boosters are brought back with ``.to_local()`` and installed with
:meth:`PopularityModel.set_fitted`, the same call ``fit`` and ``load_model`` end with, so
``save_model``, ``load_model``, predict, explain and the app work unchanged and never import Dask.

What needs the whole table is computed as small reductions (per-artist, per-fold sums): the reference date,
which features the data has, and the artist's track record, which stays strictly out of fold exactly as on
one machine. Folds and held-out artists are drawn by hashing ids with the seed instead of from one random
stream over the whole table, so every partition draws them alone; the distribution is the same.

The 80% interval is calibrated as on one machine: up to ``split_calibration_rows`` tracks from out-of-fold
refits on the mixed folds (whole artists plus single tracks of the other artists held out in turn) until
``calibration_max_residuals`` signed residuals are pooled; above, split conformal on one held-out part, the model
fitted once more without it. The boosters of the stored model are fitted on every track. (One machine above that
size instead stores the fit without the held-out part, to avoid the second fit; a cluster can afford it.)

Dask is an optional extra (``pip install 'popdrivers[dask]'``); it is imported only inside these functions.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from popdrivers import features, schema
from popdrivers.errors import FormatError, InputError, PopdriversError
from popdrivers.features import AUDIO_MODEL_FEATURES, CONTEXT_FEATURES, FEATURE_SOURCES
from popdrivers.model._calibration import too_few_to_calibrate
from popdrivers.model._conformal import Interval, Residuals
from popdrivers.model._design import FeatureLayout
from popdrivers.model._estimator import AUTO_FALLBACK_TREES, FittedState, PopularityModel, training_summary
from popdrivers.model._lightgbm import load_lightgbm
from popdrivers.model._persist import save_model
from popdrivers.model._splits import MIN_FIT_ROWS, mixed_fold_test, track_fold_count
from popdrivers.progress import ProgressCallback, null_progress

if TYPE_CHECKING:
    from distributed import Client

DASK_EXTRA = "pip install 'popdrivers[dask]'"
TARGET = schema.TARGET
# Columns the model can use (plus what identifies and dates a track); text columns stay on disk.
_UNUSED_COLUMNS = frozenset({"track_name", "artist_name", "album_id", "album_name"})
_SEEN = "__artist_seen__"
# Rows gathered to the client for the training summary (medians and ranges the app shows).
SUMMARY_SAMPLE_ROWS = 200_000
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CONNECT_TIMEOUT = "15s"


# --------------------------------------------------------------------------------------------------------
# Connecting


def require_dask() -> None:
    """Raise a :class:`PopdriversError` naming the extra when Dask or ``distributed`` is not installed."""
    try:
        import dask.dataframe  # noqa: F401
        import distributed  # noqa: F401

        load_lightgbm()
        import lightgbm.dask  # noqa: F401
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise PopdriversError(f"training on a cluster needs Dask, which is not installed (missing module "
                              f"'{missing}'): {DASK_EXTRA}") from None


def parse_cluster(cluster: str) -> tuple[str, str | int]:
    """``"local:N"`` -> ``("local", N)``; a scheduler address -> ``("address", address)``.

    Raises
    ------
    InputError
        For anything else, with examples of what is accepted.
    """
    text = str(cluster).strip()
    if text.lower().startswith("local"):
        _, _, count = text.partition(":")
        if not count.strip().isdigit() or int(count) < 1:
            raise InputError(f"--cluster {cluster!r}: write local:N with N >= 1 workers, e.g. local:2")
        return "local", int(count)
    if "://" in text or (":" in text and text.rsplit(":", 1)[1].isdigit()):
        return "address", text
    raise InputError(f"--cluster {cluster!r}: give a Dask scheduler address (tcp://host:8786) or local:N "
                     "for N local workers")


@contextlib.contextmanager
def dask_client(cluster: str | Client) -> Iterator[Client]:
    """A ``distributed.Client`` for ``cluster``; a local cluster it starts is closed on exit.

    Parameters
    ----------
    cluster
        ``"local:N"`` (N single-thread worker processes, no dashboard), a scheduler address, or an existing
        ``Client`` (used as is and left open).
    """
    require_dask()
    from distributed import Client, LocalCluster

    if isinstance(cluster, Client):
        yield cluster
        return
    kind, value = parse_cluster(cluster)
    if kind == "local":
        with LocalCluster(n_workers=int(value), threads_per_worker=1, dashboard_address=None,
                          silence_logs=logging.ERROR) as local, Client(local) as client:
            client.run(_mute_worker_stdout)
            yield client
        return
    try:
        client = Client(str(value), timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise PopdriversError(f"cannot reach a Dask scheduler at {value} ({exc}). Start one with `dask scheduler` "
                              f"and workers with `dask worker {value}`, or use --cluster local:N") from None
    with client:
        yield client


def _mute_worker_stdout() -> None:
    """Point a local worker's stdout at /dev/null: LightGBM's C++ network set-up prints to it from worker
    threads, where its Python log callback does not reach. Worker logs go to stderr and stay visible."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)


# --------------------------------------------------------------------------------------------------------
# Work done on the workers, one partition at a time


def _hash_key(seed: int, salt: int) -> str:
    return f"pd{salt:02d}{seed % 10**12:012d}"  # pandas wants exactly 16 characters


def _hashes(values: pd.Series, seed: int, salt: int) -> np.ndarray:
    return pd.util.hash_pandas_object(values.astype("string"), index=False,
                                      hash_key=_hash_key(seed, salt)).to_numpy()


def _uniform(hashes: np.ndarray) -> np.ndarray:
    return (hashes >> np.uint64(11)).astype("float64") / 2.0**53


def _assignments(df: pd.DataFrame, seed: int, n_folds: int, calibration_folds: int,
                 held_out_fold: int = 0) -> pd.DataFrame:
    """Per track: its track-record fold, its calibration parts (``artist_part``, ``track_part``) and whether it is
    in the held-out part of calibration fold ``held_out_fold``.

    The held-out part is that fold of :func:`popdrivers.model.mixed_folds` by the same rule
    (:func:`popdrivers.model.mixed_fold_test`), its folds drawn by hashing ids so each partition draws alone.
    """
    track_hash = _hashes(df["track_id"], seed, 1)
    out = pd.DataFrame({"fold": (track_hash % np.uint64(n_folds)).astype("int8")}, index=df.index)
    if calibration_folds:
        calib_track_fold = _hashes(df["track_id"], seed, 2) % np.uint64(track_fold_count(calibration_folds))
        if "artist_id" in df.columns:
            artist_fold = _hashes(df["artist_id"], seed, 3) % np.uint64(calibration_folds)
            # A track without an artist is its own group, as on one machine.
            own = _hashes(df["track_id"], seed, 5) % np.uint64(calibration_folds)
            artist_fold = np.where(df["artist_id"].isna().to_numpy(), own, artist_fold)
        else:
            artist_fold = calib_track_fold % np.uint64(calibration_folds)
        out["artist_part"] = artist_fold.astype("int64")
        out["track_part"] = calib_track_fold.astype("int64")
        out["held_out"] = _held_out(out, held_out_fold, calibration_folds)
    else:
        out["artist_part"] = out["track_part"] = 0
        out["held_out"] = False
    return out


def _held_out(parts: pd.DataFrame, held_out_fold: int, calibration_folds: int) -> np.ndarray:
    """Rows (with ``artist_part`` and ``track_part``) in the held-out part of calibration fold ``held_out_fold``."""
    new, known = mixed_fold_test(parts["artist_part"].to_numpy(), parts["track_part"].to_numpy(), held_out_fold,
                                 calibration_folds)
    return new | known


def _clean_partition(df: pd.DataFrame, source: str, index: int) -> pd.DataFrame:
    try:
        return schema.validate(df, require_popularity=True, source=f"{source} (partition {index})")
    except schema.SchemaError as exc:
        # Re-raised as a plain PopdriversError: it crosses the network pickled, and its message is the point.
        raise PopdriversError(str(exc)) from None


def _witness(feats: pd.DataFrame, columns: list[str]) -> dict[str, Any]:
    """First known value of each feature column (None if all unknown): enough to decide what the data has."""
    out: dict[str, Any] = {}
    for name in columns:
        if name not in feats.columns:
            continue
        values = feats[name]
        if name == "genre_family":
            values = values.astype(object).where(values.astype(object) != "unknown")
        known = values.dropna()
        out[name] = known.iloc[0] if len(known) else None
    return out


def _partition_stats(df: pd.DataFrame, *, seed: int, n_folds: int, calibration_folds: int, candidates: list[str],
                     summary_rows: int) -> dict[str, Any]:
    """What the client needs from one partition: counts, dates, witnesses, per-artist sums, a sample."""
    feats = features.build_features(df)
    stats: dict[str, Any] = {"rows": len(df), "y_sum": float(df[TARGET].to_numpy(dtype="float64").sum())}
    for column in ("collected_at", "release_date"):
        if column in df.columns:
            values = pd.to_datetime(df[column], errors="coerce")
            stats[column] = values.max() if values.notna().any() else None
    stats["witness"] = _witness(feats, candidates)
    parts = _assignments(df, seed, n_folds, calibration_folds)
    stats["held_out_rows"] = [int(_held_out(parts, f, calibration_folds).sum()) if calibration_folds else 0
                              for f in range(max(calibration_folds, 1))]
    stats["feature_sources"] = set(schema.feature_source_families(df))
    if "artist_id" in df.columns:
        # By calibration part too, so the client can leave out any fold's held-out part (_artist_tables).
        table = pd.DataFrame({"artist_id": df["artist_id"].astype("string"), "fold": parts["fold"],
                              "artist_part": parts["artist_part"], "track_part": parts["track_part"],
                              "y": df[TARGET].astype("float64")})
        stats["artists"] = (table.dropna(subset=["artist_id"])
                            .groupby(["artist_id", "artist_part", "track_part", "fold"], observed=True,
                                     sort=False)["y"]
                            .agg(["sum", "count"]).reset_index())
    keep = [c for c in df.columns if c == "release_date" or
            (c in schema.SPECS and schema.SPECS[c].kind in {"int", "float"})]
    n = min(len(df), summary_rows)
    stats["sample"] = df[keep].sample(n=n, random_state=seed) if n < len(df) else df[keep]
    return stats


def _record(df: pd.DataFrame, folds: np.ndarray, table: pd.DataFrame, *, out_of_fold: bool, hide: np.ndarray,
            prior_mean: float, prior_weight: float) -> np.ndarray:
    """Shrunk mean popularity of each track's artist's tracks in ``table`` (outside the track's own fold).

    The same computation as one machine's (:func:`popdrivers.features.out_of_fold_record`), on per-artist sums
    gathered from every partition. Without ``out_of_fold`` every fold counts (a track the table does not hold).
    """
    n_folds = (table.shape[1] - 2) // 2
    fold_sums = table[[f"sum_{k}" for k in range(n_folds)]].to_numpy()
    fold_counts = table[[f"count_{k}" for k in range(n_folds)]].to_numpy()
    positions = table.index.get_indexer(df["artist_id"].astype("string"))
    if not out_of_fold:
        # A fold of its own, empty for every artist: "outside it" is every track of the artist.
        fold_sums = np.column_stack([fold_sums, np.zeros(len(table))])
        fold_counts = np.column_stack([fold_counts, np.zeros(len(table))])
        folds = np.full(len(df), n_folds)
    record = features.out_of_fold_record(positions, folds, fold_sums, fold_counts, prior_mean, prior_weight)
    record[hide] = np.nan
    return record


def _design_partition(df: pd.DataFrame, *, template: PopularityModel, layout: FeatureLayout,
                      reference_date: str | None, mode: str,
                      tables: Mapping[str, pd.DataFrame] | None, seed: int, n_folds: int, calibration_folds: int,
                      prior_mean: float, hidden_share: float, held_out_fold: int = 0) -> pd.DataFrame:
    """The model's float design matrix for one partition (plus the target), for ``mode``:

    ``"final"`` every track, track record out of fold over all tracks; ``"calibration_fit"`` the tracks
    outside the held-out part (of calibration fold ``held_out_fold``), record out of fold over those tracks;
    ``"calibration_test"`` the held-out tracks, record over the calibration fit's tracks (as the fitted model would
    see them at prediction time).
    """
    parts = _assignments(df, seed, n_folds, calibration_folds, held_out_fold)
    if mode != "final":
        keep = parts["held_out"].to_numpy(bool)
        keep = keep if mode == "calibration_test" else ~keep
        df, parts = df[keep], parts[keep]
    feats = features.build_features(df, at=reference_date)
    record = None
    if layout.uses_record and tables is not None:
        table = tables["all" if mode == "final" else "fit"]
        if mode == "calibration_test":
            hide = np.zeros(len(df), dtype=bool)
        else:
            artist_hash = _hashes(df["artist_id"], seed, 4)
            hide = _uniform(artist_hash) < hidden_share
        record = _record(df, parts["fold"].to_numpy(dtype="int64"), table, out_of_fold=mode != "calibration_test",
                         hide=hide, prior_mean=prior_mean, prior_weight=float(template.record_prior_weight))
    matrix = layout.matrix(layout.frame(feats, record))
    out = pd.DataFrame(matrix, columns=list(layout.names))
    out[TARGET] = df[TARGET].to_numpy(dtype="float64")
    if mode == "calibration_test":
        out[_SEEN] = (~np.isnan(record)).astype("float64") if record is not None else 0.0
    return out


def _calibration_residuals(df: pd.DataFrame, *, sub: PopularityModel, **design_args: Any) -> pd.DataFrame:
    """Signed residuals of the calibration model on this partition's held-out tracks, and whether each
    track's artist was seen by it (the model's own :meth:`PopularityModel.predict_raw` routes the rows)."""
    design = _design_partition(df, template=sub, layout=sub.layout_, mode="calibration_test", **design_args)
    matrix = design[list(sub.layout_.names)].to_numpy(dtype="float64")
    predicted = np.clip(sub.predict_raw(matrix), 0.0, 100.0) if len(matrix) else np.empty(0)
    return pd.DataFrame({"residual": design[TARGET].to_numpy() - predicted,
                         "seen": design[_SEEN].to_numpy().astype(bool)})


def _artist_key_columns(df: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in ("track_id", "artist_id", TARGET) if c in df.columns]
    return df[columns]


# --------------------------------------------------------------------------------------------------------
# Client side


def _resolve_data(data_path: str | os.PathLike[str]) -> str:
    """An absolute path (or URL) of Parquet the workers can read; CSV and others get a clear message."""
    text = os.fspath(data_path)
    if "://" in text:
        return text  # s3://, gs://, hdfs://: read by the workers through fsspec
    path = Path(text).expanduser()
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    if path.is_dir():
        if not any(p.suffix.lower() in _PARQUET_SUFFIXES for p in path.rglob("*") if p.is_file()):
            raise FormatError(f"{path}: a cluster reads partitioned Parquet (a .parquet file or a folder of them); "
                              "this folder has none")
    elif path.suffix.lower() not in _PARQUET_SUFFIXES:
        raise FormatError(
            f"{path}: training on a cluster reads Parquet (the workers read partitions of it), not "
            f"'{path.suffix or 'no extension'}'. Fix: convert it once on one machine: popdrivers inspect {path} "
            f"--out {path.with_suffix('.parquet')}")
    # Absolute, so that workers started in another folder find it (it must be on storage they all see).
    return str(path.resolve())


def _artist_tables(stats: list[dict[str, Any]], n_folds: int, calibration_folds: int,
                   held_out_fold: int = 0) -> dict[str, pd.DataFrame] | None:
    """Per-artist popularity sums and counts, in total and per fold: over all tracks and over the calibration fit
    (the tracks outside calibration fold ``held_out_fold``'s held-out part)."""
    pieces = [s["artists"] for s in stats if "artists" in s and len(s["artists"])]
    if not pieces:
        return None
    long = pd.concat(pieces, ignore_index=True)
    held_out = _held_out(long, held_out_fold, calibration_folds) if calibration_folds else np.zeros(len(long), bool)
    tables = {}
    for name, rows in (("all", long), ("fit", long[~held_out])):
        by_fold = rows.groupby(["artist_id", "fold"], observed=True)[["sum", "count"]].sum().unstack("fold")
        by_fold = by_fold.reindex(columns=pd.MultiIndex.from_product([["sum", "count"], range(n_folds)]),
                                  fill_value=0.0).fillna(0.0)
        table = pd.DataFrame({"sum": by_fold["sum"].sum(axis=1), "count": by_fold["count"].sum(axis=1)})
        for k in range(n_folds):
            table[f"sum_{k}"] = by_fold[("sum", k)]
        for k in range(n_folds):
            table[f"count_{k}"] = by_fold[("count", k)]
        tables[name] = table.astype("float64")
    return tables


def _reference_date(stats: list[dict[str, Any]]) -> pd.Timestamp | None:
    """As :func:`popdrivers.features.reference_date`: latest collection date, else newest release."""
    for column in ("collected_at", "release_date"):
        values = [s[column] for s in stats if s.get(column) is not None]
        if values:
            return pd.Timestamp(max(values)).normalize()
    return None


def _witness_frame(stats: list[dict[str, Any]], has_artists: bool, repeat_artist: bool) -> pd.DataFrame:
    """Two rows that have a feature exactly when the whole table does (for the model's own feature choice)."""
    merged: dict[str, Any] = {}
    for s in stats:
        for name, value in s["witness"].items():
            if merged.get(name) is None:
                merged[name] = value
    frame = pd.DataFrame({name: [value, value] for name, value in merged.items()})
    for name in frame.columns:
        if name == "genre_family":
            frame[name] = frame[name].fillna("unknown")
    if has_artists:
        frame["artist_id"] = ["a", "a"] if repeat_artist else ["a", "b"]
    return frame


def _fit_booster(client: Client, design: Any, model: PopularityModel, layout: FeatureLayout, names: list[str], *,
                 new_artist: bool, n_rows: int):
    """``DaskLGBMRegressor`` on columns ``names`` of a Dask DataFrame, with the parameters the model itself would
    give LightGBM on one machine (:meth:`PopularityModel.booster_params`); returns the local booster."""
    from lightgbm.dask import DaskLGBMRegressor


    # The new-artist booster's "auto" tree count needs a held-out fit of its own; on a cluster it is the fixed
    # count "auto" falls back to.
    trees = AUTO_FALLBACK_TREES if new_artist and model.new_artist_n_estimators == "auto" else None
    params = model.booster_params(names, new_artist=new_artist, n_rows=n_rows, trees=trees)
    # Each Dask worker uses its own thread count (lightgbm.dask sets num_threads per worker).
    params.pop("n_jobs", None)
    categorical = [n for n in names if n in layout.categories]
    regressor = DaskLGBMRegressor(client=client, **params)
    with warnings.catch_warnings():
        # lightgbm.dask says it ignores n_jobs; nothing for the user to act on.
        warnings.filterwarnings("ignore", message=".*n_jobs will be ignored")
        regressor.fit(design[names], design[TARGET], feature_name=names, categorical_feature=categorical or "auto")
    return regressor.to_local().booster_


def _fit_boosters(client: Client, design: Any, model: PopularityModel, layout: FeatureLayout,
                  n_rows: int) -> tuple[Any, Any | None]:
    """(main booster, new-artist booster or None), as :meth:`PopularityModel.fit` fits them, on the cluster."""
    names = list(layout.names)
    booster = _fit_booster(client, design, model, layout, names, new_artist=False, n_rows=n_rows)
    new_artist_booster = None
    if layout.uses_record and model.new_artist_model:
        without_record = [names[i] for i in layout.without_record]
        new_artist_booster = _fit_booster(client, design, model, layout, without_record, new_artist=True,
                                          n_rows=n_rows)
    return booster, new_artist_booster


def _scatter(client: Client, tables: dict[str, pd.DataFrame] | None) -> Any:
    """One future holding ``tables``, on every worker. Scattering the dict itself would name its futures by its
    keys ("all", "fit"): a later scatter under the same names (another calibration fold, another fit on the same
    cluster) silently got the first one's tables."""
    return client.scatter([tables], broadcast=True, hash=False)[0]


def quiet_lightgbm() -> None:
    """Send LightGBM's Python-side log ("Finding random open ports for workers" on every distributed fit) to a
    logger that shows errors only. The CLI runs it locally; ``train_on_cluster`` runs it on each worker."""
    logger = logging.getLogger("popdrivers.lightgbm")
    logger.setLevel(logging.ERROR)
    load_lightgbm().register_logger(logger)


def train_on_cluster(
    data_path: str | os.PathLike[str],
    cluster: str | Client,
    *,
    params: Mapping[str, Any] | None = None,
    seed: int = 0,
    progress: ProgressCallback | None = None,
) -> PopularityModel:
    """Train the popularity model on a Dask cluster from partitioned Parquet; return an ordinary fitted model.

    Parameters
    ----------
    data_path
        A canonical Parquet file or a folder of Parquet files (e.g. written by ``popdrivers simulate`` or
        :func:`popdrivers.sources.files.write_tracks`). Every worker must be able to read it at this path:
        a shared file system, or an ``s3://`` / ``gs://`` URL. CSV is refused with the command that converts it.
    cluster
        ``"tcp://host:8786"`` (a running ``dask scheduler``), ``"local:N"`` (a ``LocalCluster`` of N
        single-thread workers, closed afterwards) or an existing ``distributed.Client``.
    params
        :class:`~popdrivers.model.PopularityModel` parameters (default: its defaults, the single-machine
        ``train(..., budget_seconds=0)`` choice). ``calibration_folds=0`` skips the interval calibration.
    seed
        Seeds folds, held-out artists, and LightGBM (``random_state``).
    progress
        Called with (done, total, message) after each step.

    Returns
    -------
    PopularityModel
        Fitted, with the same attributes as one fitted by ``PopularityModel.fit``: save it with
        :func:`popdrivers.model.save_model`; loading it needs no Dask.

    Raises
    ------
    PopdriversError
        Dask not installed (names the extra), scheduler unreachable, data not Parquet, schema problems
        found by a worker (with the partition).
    """
    require_dask()
    import dask.dataframe as dd


    progress = progress or null_progress
    total_steps = 7
    source = _resolve_data(data_path)
    model = PopularityModel(**{**dict(params or {}), "random_state": seed})
    model.check_params()
    n_folds = features.TRACK_RECORD_FOLDS
    calibration_folds = int(model.calibration_folds)
    start = time.perf_counter()

    progress(0, total_steps, "connecting to the cluster")
    with dask_client(cluster) as client:
        n_workers = max(len(client.scheduler_info().get("workers", {})), 1)
        client.run(quiet_lightgbm)
        progress(1, total_steps, f"reading {source} on {n_workers} worker(s)")
        columns = [c for c in dd.read_parquet(source).columns if c not in _UNUSED_COLUMNS]
        frame = dd.read_parquet(source, columns=columns)
        if frame.npartitions < 2 * n_workers:
            # One file is often one partition; split it so every worker gets a share to train on.
            frame = frame.repartition(npartitions=2 * n_workers)
        clean = client.compute([
            _delayed_clean(part, source, i) for i, part in enumerate(frame.to_delayed())])

        progress(2, total_steps, "validating and summarising partitions")
        candidates = _witness_columns()
        per_partition = max(1, SUMMARY_SAMPLE_ROWS // len(clean))
        stats = client.gather(client.map(_partition_stats, clean, seed=seed, n_folds=n_folds,
                                          calibration_folds=calibration_folds, candidates=candidates,
                                          summary_rows=per_partition))
        rows = sum(s["rows"] for s in stats)
        if rows < 10:
            raise schema.SchemaError([schema.Problem("*", f"has {rows} tracks, too few to fit a model",
                                                     fix="provide at least 10 tracks (hundreds to be useful)")])
        prior_mean = sum(s["y_sum"] for s in stats) / rows
        ref = _reference_date(stats)
        reference_date = None if ref is None else ref.strftime("%Y-%m-%d")
        tables = _artist_tables(stats, n_folds, calibration_folds)
        repeat_artist = tables is not None and bool((tables["all"]["count"] >= 2).any())
        witness = _witness_frame(stats, tables is not None, repeat_artist)
        layout = FeatureLayout.choose(witness, feature_set=model.feature_set, artist_record=model.artist_record)
        tables_future = _scatter(client, tables) if layout.uses_record else None
        design_args = dict(reference_date=reference_date, tables=tables_future, seed=seed, n_folds=n_folds,
                           calibration_folds=calibration_folds, prior_mean=prior_mean,
                           hidden_share=model.record_hidden_share)
        meta = pd.DataFrame({name: pd.Series(dtype="float64") for name in [*layout.names, TARGET]})

        def fitted(boosters: tuple[Any, Any | None], n_rows: int, **more: Any) -> FittedState:
            return FittedState(layout=layout, booster=boosters[0], new_artist_booster=boosters[1],
                               reference_date=reference_date, target_mean=float(prior_mean), n_train_rows=n_rows,
                               artist_tracks=more.get("artist_tracks"),
                               interval=more.get("interval", Interval(model.interval_level)),
                               training_summary=more.get("training_summary", {}),
                               feature_sources=tuple(sorted(set().union(*(s["feature_sources"] for s in stats)))))

        interval = Interval(model.interval_level)
        if calibration_folds:
            # As on one machine: up to split_calibration_rows tracks, out-of-fold refits on the mixed folds until
            # calibration_max_residuals are pooled (one held-out part of 30 artists, on 4,500 tracks, gave 80%
            # intervals that covered 63-70% of new artists' tracks against one machine's 76%); above, one part.
            cross = model.calibration_method(rows) == "cross"
            pooled: list[pd.DataFrame] = []
            for fold in range(calibration_folds if cross else 1):
                fold_args = design_args
                if fold:
                    fold_tables = _artist_tables(stats, n_folds, calibration_folds, fold)
                    fold_args = {**design_args, "held_out_fold": fold,
                                 "tables": _scatter(client, fold_tables) if layout.uses_record else None}
                held_out = sum(s["held_out_rows"][fold] for s in stats)
                if not held_out or rows - held_out < MIN_FIT_ROWS:
                    continue
                label = f" (fold {fold + 1} of {calibration_folds})" if cross else ""
                progress(3, total_steps, f"calibrating the 80% interval{label}: fitting without the held-out tracks")
                fit_part = dd.from_delayed(client.map(_design_partition, clean, template=model, layout=layout,
                                                      mode="calibration_fit", **fold_args),
                                           meta=meta, verify_meta=False)
                sub = PopularityModel(**model.get_params()).set_fitted(
                    fitted(_fit_boosters(client, fit_part, model, layout, n_rows=rows - held_out), rows - held_out))
                del fit_part
                progress(4, total_steps, f"calibrating the 80% interval{label}: residuals on held-out tracks")
                pooled.append(pd.concat(client.gather(client.map(_calibration_residuals, clean, sub=sub,
                                                                 **fold_args)), ignore_index=True))
                del sub
                if sum(len(part) for part in pooled) >= model.calibration_max_residuals:
                    break  # enough residuals for two quantiles per group, as on one machine
            if not pooled:
                raise too_few_to_calibrate(rows)
            residuals = pd.concat(pooled, ignore_index=True)
            seen = residuals["seen"].to_numpy(dtype=bool)
            values = residuals["residual"].to_numpy()
            interval = Interval.from_residuals(Residuals(values[seen], values[~seen]), model.interval_level,
                                               "cross" if cross else "holdout_refit")

        progress(5, total_steps, f"fitting LightGBM on {rows:,} tracks across {n_workers} worker(s)")
        design = dd.from_delayed(client.map(_design_partition, clean, template=model, layout=layout, mode="final",
                                            **design_args), meta=meta, verify_meta=False)
        boosters = _fit_boosters(client, design, model, layout, n_rows=rows)
        del design

        progress(6, total_steps, "collecting the track record table and training summary")
        sample = pd.concat([s["sample"] for s in stats], ignore_index=True)
        artist_tracks = None
        if layout.uses_record:
            keys = pd.concat(client.gather(client.map(_artist_key_columns, clean)), ignore_index=True)
            duplicated = int(keys["track_id"].duplicated().sum())
            artist_tracks = (keys.drop_duplicates("track_id").dropna(subset=["artist_id"])
                             .astype({"track_id": "string", "artist_id": "string", TARGET: "int16"})
                             .reset_index(drop=True))
            if duplicated:
                logging.getLogger(__name__).warning("%d track ids appear in more than one partition; the first "
                                                    "copy is kept in the track record", duplicated)
        del clean
    model.set_fitted(fitted(boosters, int(rows), artist_tracks=artist_tracks, interval=interval,
                            training_summary=training_summary(sample)))
    model.cluster_info_ = {"workers": n_workers, "rows": rows, "seconds": round(time.perf_counter() - start, 2),
                           "data": source}
    progress(total_steps, total_steps, "done")
    return model


def _delayed_clean(part: Any, source: str, index: int) -> Any:
    import dask

    return dask.delayed(_clean_partition)(part, source, index)


def _witness_columns() -> list[str]:
    """Model feature columns and the canonical columns they come from (the model checks both)."""

    names = [*AUDIO_MODEL_FEATURES, *CONTEXT_FEATURES]
    for sources in FEATURE_SOURCES.values():
        names += [s for s in sources if s != "artist_id"]  # artist repeats are decided from global counts
    return list(dict.fromkeys(names))


def cluster_metrics(model: PopularityModel) -> dict[str, Any]:
    """``metrics.json`` for a cluster-trained model: the schema's shape, with evaluation marked as not run.

    Evaluating means refitting on folds; on a cluster-sized table run ``popdrivers evaluate`` on a sample.
    """
    info = getattr(model, "cluster_info_", {})
    return {"splits": {}, "interval": {"level": model.interval_level, "coverage": None,
                                       "calibration_size": dict(model.calibration_size_)},
            "note": "trained on a Dask cluster: evaluation not run (run popdrivers evaluate on a sample)",
            "cluster": info, "rows": model.n_train_rows_, "features": list(model.features_used)}



def train_and_save_on_cluster(
    data_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], cluster: str | Client, *,
    params: Mapping[str, Any] | None = None, seed: int = 0, progress: ProgressCallback | None = None,
) -> PopularityModel:
    """:func:`train_on_cluster`, then :func:`popdrivers.model.save_model` into ``out_dir`` (what ``--cluster`` runs)."""

    model = train_on_cluster(data_path, cluster, params=params, seed=seed, progress=progress)
    save_model(model, out_dir, metrics=cluster_metrics(model), data_source=os.fspath(data_path),
               rows_used=model.n_train_rows_)
    return model
