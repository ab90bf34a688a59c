"""A model folder on disk: LightGBM text models, JSON preprocessing, the track-record table, a manifest.

Nothing is pickled; every file is checksummed in ``manifest.json`` and verified before anything is trusted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from popdrivers import artifacts, schema
from popdrivers.errors import ArtifactError
from popdrivers.model._conformal import Interval
from popdrivers.model._design import FeatureLayout
from popdrivers.model._estimator import FittedState, PopularityModel
from popdrivers.model._lightgbm import load_lightgbm
from popdrivers.model._shift import TrainingReference

TARGET = schema.TARGET
KIND = "popularity-model"
MODEL_FILE = "model.txt"
NEW_ARTIST_MODEL_FILE = "model_new_artists.txt"
PREPROCESSING_FILE = "preprocessing.json"
ARTIST_TRACKS_FILE = "artist_tracks.csv.gz"
METRICS_FILE = "metrics.json"
# What the model keeps of its training table to say when tracks to score are unlike it (model._shift).
TRAINING_PROFILE_FILE = "training_profile.json"
TRAINING_SAMPLE_FILE = "training_sample.parquet"


AUDIO_MODEL_DIR = "audio_model"


def save_model(
    model: PopularityModel, out_dir: str | os.PathLike[str], *, metrics: Mapping[str, Any] | None = None,
    data_source: str | None = None, data_sha256: str | None = None, rows_used: int | None = None,
    rows_dropped: int | None = None, audio_model: PopularityModel | None = None,
) -> Path:
    """Write ``model`` to ``out_dir`` atomically: LightGBM text model, JSON preprocessing, manifest.

    Files: ``model.txt`` (LightGBM native; ``model_new_artists.txt`` for the new-artist booster),
    ``preprocessing.json`` (features, categories, reference date, track-record settings, interval offsets,
    training summary, feature sources), ``artist_tracks.csv.gz`` (training tracks' artist and popularity, when the
    track record is used), ``metrics.json`` (when given) and ``manifest.json`` with the sha256 of every file.
    ``audio_model`` (the model that predicts from a song, :func:`popdrivers.model.train`) goes in the
    ``audio_model/`` subfolder, a model folder of its own (:func:`load_audio_model`).
    """
    out_dir = Path(out_dir)
    provenance = dict(data_source=data_source, data_sha256=data_sha256, rows_dropped=rows_dropped)
    with artifacts.atomic_directory(out_dir) as tmp:
        if audio_model is not None:
            (tmp / AUDIO_MODEL_DIR).mkdir()
            _write_model(audio_model, tmp / AUDIO_MODEL_DIR, metrics=None, rows_used=None, **provenance)
        _write_model(model, tmp, metrics=metrics, rows_used=rows_used, **provenance)
    return out_dir


def _write_model(model: PopularityModel, folder: Path, *, metrics: Mapping[str, Any] | None,
                 data_source: str | None, data_sha256: str | None, rows_used: int | None,
                 rows_dropped: int | None) -> None:
    state: FittedState = model.fitted_state
    (folder / MODEL_FILE).write_text(state.booster.model_to_string(), encoding="utf-8")
    if state.new_artist_booster is not None:
        (folder / NEW_ARTIST_MODEL_FILE).write_text(state.new_artist_booster.model_to_string(), encoding="utf-8")
    artifacts.write_json_atomic(folder / PREPROCESSING_FILE, {
        "params": model.get_params(),
        "feature_names": list(state.layout.names),
        "features_unavailable": dict(state.layout.unavailable),
        "categories": {k: list(v) for k, v in state.layout.categories.items()},
        "reference_date": state.reference_date,
        "target": TARGET,
        "target_mean": state.target_mean,
        "n_train_rows": state.n_train_rows,
        "artist_tracks": ARTIST_TRACKS_FILE if state.artist_tracks is not None else None,
        "new_artist_model": NEW_ARTIST_MODEL_FILE if state.new_artist_booster is not None else None,
        "interval": {"level": state.interval.level,
                     "offsets": {k: list(v) for k, v in state.interval.offsets.items()},
                     "calibration_size": dict(state.interval.sizes), "method": state.interval.method,
                     "residual_sample": {k: list(v) for k, v in state.interval.samples.items()}},
        "training_summary": dict(state.training_summary),
        "feature_sources": list(state.feature_sources),
    })
    if state.artist_tracks is not None:
        state.artist_tracks.to_csv(folder / ARTIST_TRACKS_FILE, index=False, compression="gzip")
    reference = state.reference
    if reference is not None:
        artifacts.write_json_atomic(folder / TRAINING_PROFILE_FILE, reference.to_dict())
        if reference.sample is not None:
            # Parquet keeps the canonical dtypes (lists of genres, dates) the model reads back as they were.
            reference.sample.to_parquet(folder / TRAINING_SAMPLE_FILE, index=False)
    if metrics is not None:
        artifacts.write_json_atomic(folder / METRICS_FILE, dict(metrics))
    artifacts.write_manifest(
        folder, KIND, data_source=data_source, data_sha256=data_sha256,
        rows_used=rows_used if rows_used is not None else state.n_train_rows, rows_dropped=rows_dropped,
        features=list(state.layout.names), target=TARGET, model_format="lightgbm-text",
        interval_level=state.interval.level, feature_set=model.feature_set,
        feature_sources=list(state.feature_sources),
        # Where the popularity the model learned came from (a crawl's deezer_rank is not Spotify's popularity).
        popularity_source=reference.profile.get("popularity_source") if reference is not None else None,
        interval_assumes="tracks like the training data (training_profile.json records what they were like)"
        if reference is not None else "tracks like the training data (not recorded by this version)",
    )


def load_audio_model(model_dir: str | os.PathLike[str]) -> PopularityModel | None:
    """The audio model saved beside a model (``audio_model/``), verified like it; None when there is none."""
    model_dir = Path(model_dir)
    artifacts.verify_manifest(model_dir, kind=KIND)  # the parent's checksums cover the subfolder's files
    sub = model_dir / AUDIO_MODEL_DIR
    return load_model(sub) if sub.is_dir() else None


def _read_booster(path: Path):
    lgb = load_lightgbm()

    try:
        return lgb.Booster(model_str=path.read_text(encoding="utf-8"))
    except (lgb.basic.LightGBMError, OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path} is not a readable LightGBM model ({exc}); rebuild it with popdrivers train") \
            from exc


def load_model(model_dir: str | os.PathLike[str]) -> PopularityModel:
    """Load a model saved by :func:`save_model`, after verifying every file against the manifest.

    Raises
    ------
    ArtifactError
        When the folder is missing, incomplete, from another format version, or a file was modified.
    """
    model_dir = Path(model_dir)
    manifest = artifacts.verify_manifest(model_dir, kind=KIND)
    prep = artifacts.read_json(model_dir / PREPROCESSING_FILE)
    booster = _read_booster(model_dir / MODEL_FILE)
    new_artist_booster = _read_booster(model_dir / prep["new_artist_model"]) if prep.get("new_artist_model") else None
    if booster.feature_name() != prep["feature_names"]:
        raise ArtifactError(f"{model_dir}: the model's features {booster.feature_name()} do not match "
                            f"{PREPROCESSING_FILE} {prep['feature_names']}; rebuild it with popdrivers train")
    valid = set(PopularityModel().get_params())
    model = PopularityModel(**{k: v for k, v in prep["params"].items() if k in valid})
    offsets = {k: (float(v[0]), float(v[1])) for k, v in prep["interval"]["offsets"].items()}
    interval = Interval(level=float(prep["interval"].get("level", model.interval_level)),
                        method=prep["interval"].get("method") or ("cross" if offsets else "none"),
                        offsets=offsets, sizes=dict(prep["interval"].get("calibration_size", {})),
                        samples={k: tuple(float(x) for x in v)
                                 for k, v in (prep["interval"].get("residual_sample") or {}).items()})
    artist_tracks = None
    if prep.get("artist_tracks"):
        artist_tracks = pd.read_csv(model_dir / prep["artist_tracks"], compression="gzip",
                                    dtype={"track_id": "string", "artist_id": "string"})
        artist_tracks[TARGET] = artist_tracks[TARGET].astype("int16")
    layout = FeatureLayout(names=tuple(prep["feature_names"]),
                           categories={k: tuple(v) for k, v in prep["categories"].items()},
                           unavailable=dict(prep.get("features_unavailable", {})))
    model.set_fitted(FittedState(
        layout=layout, booster=booster, new_artist_booster=new_artist_booster,
        reference_date=prep["reference_date"], target_mean=float(prep["target_mean"]),
        n_train_rows=int(prep["n_train_rows"]), artist_tracks=artist_tracks, interval=interval,
        training_summary=prep.get("training_summary", {}),
        # Folders written before sources were recorded were all trained on Spotify-feature data.
        feature_sources=tuple(prep.get("feature_sources", ["spotify"])),
        # Folders written before popdrivers recorded its training data: shift and widening cannot be measured.
        reference=_read_reference(model_dir)))
    model.manifest_ = manifest
    metrics_path = model_dir / METRICS_FILE
    model.metrics_ = artifacts.read_json(metrics_path) if metrics_path.exists() else None
    return model


def _read_reference(model_dir: Path) -> TrainingReference | None:
    if not (model_dir / TRAINING_PROFILE_FILE).is_file():
        return None
    sample_path = model_dir / TRAINING_SAMPLE_FILE
    sample = pd.read_parquet(sample_path) if sample_path.is_file() else None
    if sample is not None and "artist_genres" in sample.columns:
        sample["artist_genres"] = sample["artist_genres"].map(lambda v: [] if v is None else list(v))
    return TrainingReference(artifacts.read_json(model_dir / TRAINING_PROFILE_FILE), sample)
