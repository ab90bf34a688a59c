"""The popularity model: fit, tune, evaluate honestly, predict with intervals, save and load without pickle.

One concept per module:

=================  ===========================================================================================
``_estimator``     :class:`PopularityModel` (LightGBM + the artist's track record; parameters, no globals)
``_design``        :class:`FeatureLayout`: which features a model uses and how they become numbers
``_splits``        random / artist-grouped / time / mixed hold-out folds, samples of whole artists
``_conformal``     split-conformal intervals (:class:`Interval`) from held-out residuals
``_evaluate``      metrics and baselines per split (:func:`evaluate`)
``_tune``          search within a budget or a number of trials (:func:`tune`)
``_train``         :func:`train`: search, evaluation and final fit within one budget
``_persist``       :func:`save_model` / :func:`load_model`, manifest and checksums
``_distributed``   :func:`train_on_cluster`: the same model fitted on a Dask cluster (optional extra)
``_card``          the model card's tables (metrics, coverage)
``_scoring``       :func:`score_tracks`: the scored-file format, and what the interval can promise for a table
``_shift``         what the model keeps of its training data; where a table to score differs from it
``_missing``       features a table lacks: predicted as unknown (marginalised), the interval widened
``_calibration``   how the interval is calibrated (cross, holdout_refit, split)
``_lightgbm``      :func:`load_lightgbm`: LightGBM loaded with passive OpenMP waiting (why: shared 2-core machines)
=================  ===========================================================================================

Other modules import from ``popdrivers.model`` only; tests may reach into the private modules.
"""

from popdrivers.features import ARTIST_RECORD, feature_label, out_of_fold_artist_record
from popdrivers.model._card import (
    METHOD_LABELS,
    SPLIT_LABELS,
    coverage_frame,
    interval_assumptions,
    metrics_frame,
    split_label,
)
from popdrivers.model._conformal import MIN_POOL, Interval, Residuals, conformal_offsets
from popdrivers.model._design import FeatureLayout
from popdrivers.model._distributed import (
    DASK_EXTRA,
    cluster_metrics,
    parse_cluster,
    quiet_lightgbm,
    require_dask,
    train_and_save_on_cluster,
    train_on_cluster,
)
from popdrivers.model._estimator import AUTO_FALLBACK_TREES, FittedState, PopularityModel, training_summary
from popdrivers.model._evaluate import (
    EVALUATION_ROWS,
    Evaluation,
    baseline_inputs,
    evaluate,
    linear_predictions,
    reference_features,
    reference_rf,
    run_evaluation,
    scores,
)
from popdrivers.model._lightgbm import load_lightgbm
from popdrivers.model._missing import interval_without, missing_features, predict_without
from popdrivers.model._persist import AUDIO_MODEL_DIR, KIND, METRICS_FILE, load_audio_model, load_model, save_model
from popdrivers.model._scoring import ModelPart, ScoringReport, interval_assumption, score_tracks, scored_table
from popdrivers.model._shift import ShiftFinding, ShiftReport, TrainingReference, detect_shift, population_stability
from popdrivers.model._splits import (
    DEFAULT_FOLDS,
    MixedFold,
    SplitUnavailable,
    artist_grouped_folds,
    artist_sample,
    mixed_fold_test,
    mixed_folds,
    mixed_holdout_folds,
    random_folds,
    time_split,
    track_fold_count,
)
from popdrivers.model._train import TrainResult, budget_summary, train
from popdrivers.model._tune import DEFAULT_PARAMS, sample_params, tune

__all__ = [
    "AUDIO_MODEL_DIR", "load_audio_model",
    "METHOD_LABELS", "SPLIT_LABELS", "coverage_frame", "interval_assumptions", "metrics_frame", "scored_table",
    "split_label",
    "ModelPart", "ScoringReport", "interval_assumption", "score_tracks", "ShiftFinding", "ShiftReport",
    "TrainingReference", "detect_shift", "interval_without", "missing_features", "population_stability",
    "predict_without",
    "DASK_EXTRA", "cluster_metrics", "parse_cluster", "quiet_lightgbm", "require_dask", "train_and_save_on_cluster",
    "train_on_cluster",
    "ARTIST_RECORD", "AUTO_FALLBACK_TREES", "DEFAULT_PARAMS", "EVALUATION_ROWS", "KIND", "METRICS_FILE", "MIN_POOL",
    "DEFAULT_FOLDS", "Evaluation",
    "FeatureLayout", "FittedState", "Interval", "MixedFold", "PopularityModel", "Residuals", "SplitUnavailable",
    "TrainResult", "artist_grouped_folds", "artist_sample", "baseline_inputs", "budget_summary", "conformal_offsets",
    "evaluate", "feature_label", "linear_predictions", "load_lightgbm", "load_model", "mixed_folds",
    "mixed_fold_test", "mixed_holdout_folds", "track_fold_count",
    "out_of_fold_artist_record", "random_folds", "reference_features", "reference_rf", "run_evaluation",
    "sample_params", "save_model", "scores", "time_split", "train", "training_summary", "tune",
]
