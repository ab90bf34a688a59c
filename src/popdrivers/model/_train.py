"""``train``: tune within the budget, evaluate honestly, fit the final model, all in about ``budget_seconds``.

How the budget is split: the evaluation (K mixed folds + the time split, fitted side by side) and the final fit
must happen; their cost is estimated from the cost of a fit measured during tuning, and tuning gets whatever the
budget leaves. When even the evaluation does not fit (a small budget), it is cut to what does: fewer folds, the
newest-releases interval without its refit, then a sample of whole artists (``plan_evaluation``), said in
``metrics["budget_note"]``. The final model's interval reuses the evaluation's out-of-fold residuals (the same folds and
parameters its own calibration would refit), so calibrating it costs nothing more.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from popdrivers import features, schema
from popdrivers.model._estimator import PopularityModel
from popdrivers.model._evaluate import EVALUATION_ROWS, EvaluationPlan, plan_evaluation, run_evaluation
from popdrivers.model._splits import DEFAULT_FOLDS
from popdrivers.model._tune import PRIOR_SECONDS_PER_UNIT, TUNING_ROWS, tree_units, tune
from popdrivers.progress import ProgressCallback, null_progress

# Besides the model, each held-out fit of the evaluation fits the audio-only baseline and the linear one and
# predicts the test rows; measured on catalog-2022 that adds about a third of a fit.
EVALUATION_FIT_OVERHEAD = 1.35
# Estimates are rough (a shared machine, early stopping, feature building): keep a margin.
SAFETY = 1.2


# The audio model is evaluated inside the same held-out fits (one more, smaller fit each) and fitted once more
# at the end: about this share of the evaluation and of the final fit on top (measured on catalog-2022).
AUDIO_MODEL_OVERHEAD = 0.35


@dataclass(frozen=True)
class TrainResult:
    """A fitted model, its evaluation (``metrics.json`` schema) and how it was made.

    ``audio_model`` predicts from what popdrivers measures in a recording plus typed context (feature set
    "sound"); its held-out errors sit beside the model's in ``metrics["splits"][...]["audio_model"]``.
    """

    model: PopularityModel
    metrics: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)
    audio_model: PopularityModel | None = None


def audio_model_unavailable(tracks: pd.DataFrame) -> str | None:
    """Why no audio model can be trained on ``tracks`` (None when one can): it needs a feature measured from audio."""
    feats = features.build_features(tracks)
    measured = [c for c in features.sound_features() if c in feats.columns and feats[c].notna().any()]
    if not measured:
        return ("the data has none of the features popdrivers measures from audio ("
                + ", ".join(features.feature_label(c) for c in features.sound_features()) + ")")
    return None


def _after_tuning_seconds(params: Mapping[str, Any], unit_seconds: float, *, rows: int, n_splits: int,
                          workers: int, evaluate_model: bool, max_eval_rows: int, audio_model: bool = False) -> float:
    """Expected seconds of the evaluation and the final fit for ``params`` (cost per row x tree measured)."""
    fit_all = unit_seconds * tree_units(params) * rows
    seconds = fit_all * 0.6  # the final fit: its two boosters side by side
    if audio_model:
        seconds *= 1 + AUDIO_MODEL_OVERHEAD
    seconds = SAFETY * seconds + 1.0
    if evaluate_model:
        job = _evaluation_job_seconds(params, unit_seconds, rows, audio_model)
        seconds += EvaluationPlan(n_splits, max_eval_rows).seconds(rows, job, 0.0, workers)
    return seconds


def _evaluation_job_seconds(params: Mapping[str, Any], unit_seconds: float, rows: int, audio_model: bool) -> float:
    """Seconds of one held-out fit (model and baselines) on all ``rows`` (see EvaluationPlan): the search
    reserves, and a small budget's plan cuts, by the same estimate."""
    return unit_seconds * tree_units(params) * rows * EVALUATION_FIT_OVERHEAD * SAFETY * (
        1.0 + AUDIO_MODEL_OVERHEAD if audio_model else 1.0)


def train(
    tracks: pd.DataFrame, *, budget_seconds: float = 60, n_trials: int | None = None, seed: int = 0,
    reference: bool = False, progress: ProgressCallback | None = None, n_splits: int = DEFAULT_FOLDS,
    evaluate_model: bool = True, params: Mapping[str, Any] | None = None,
    reference_params: Mapping[str, Any] | None = None, max_eval_rows: int = EVALUATION_ROWS,
    clock_start: float | None = None, audio_model: bool = True,
) -> TrainResult:
    """Tune within the budget, evaluate honestly, and fit the final model on all tracks.

    Parameters
    ----------
    tracks
        Canonical track table with popularity (validated here).
    budget_seconds
        About how long the whole call may take: the evaluation and the final fit are estimated and the
        search gets the rest (none if nothing is left). 0: no search, default hyperparameters. The split is
        reported in ``info["budget"]``.
    n_trials
        Run exactly this many search trials instead of filling the budget (reproducible: same seed, same
        model). 0: no search.
    seed
        Seed of the search, the folds and the model.
    reference
        Include the original project's random forest in the evaluation (slow; not in the budget).
    progress
        Called with (done, total, message) during tuning, evaluation and the final fit.
    n_splits
        Mixed folds of the evaluation (random and unseen-artist splits).
    evaluate_model
        False skips the evaluation (``metrics`` then only records that).
    params
        Fixed :class:`PopularityModel` parameters (e.g. ``n_jobs``, small trees in tests); tuned values
        override the hyperparameters among them.
    reference_params
        Overrides for the reference forest (see :func:`popdrivers.model.evaluate`).
    max_eval_rows
        Above this many tracks the evaluation runs on a fixed sample of whole artists (said in the metrics).
    clock_start
        ``time.perf_counter()`` value the budget counts from (the CLI passes its start, so reading counts).
    audio_model
        Also fit (and evaluate on the same folds) the audio model, which predicts from what popdrivers measures
        in a recording (tempo, key, mode, loudness, meter, duration, its descriptors) plus followers, genre,
        explicit and release date; skipped, with the reason in ``info``, when the data has none of those.
    """
    progress = progress or null_progress
    start = time.perf_counter() if clock_start is None else clock_start
    clean, report = schema.check_tracks(tracks, require_popularity=True)
    if len(clean) < 10:
        # Said before tuning and evaluation, whose folds would otherwise report a fold's smaller count.
        raise schema.SchemaError([schema.Problem("*", f"has {len(clean)} tracks, too few to fit a model",
                                                 fix="provide at least 10 tracks (hundreds to be useful)")])
    base = dict(params or {})
    workers = int(base.get("n_jobs", 2))
    audio_reason = audio_model_unavailable(clean) if audio_model else "not asked for (audio_model=False)"
    with_audio = audio_reason is None

    def reserve(candidate: Mapping[str, Any], unit_seconds: float) -> float:
        return _after_tuning_seconds(candidate, unit_seconds, rows=len(clean), n_splits=n_splits, workers=workers,
                                     evaluate_model=evaluate_model, max_eval_rows=max_eval_rows,
                                     audio_model=with_audio)

    tuning_start = time.perf_counter()
    tuning_budget = max(budget_seconds - (tuning_start - start), 0.0) if budget_seconds > 0 else 0.0
    best, tuning = tune(clean, budget_seconds=tuning_budget, n_trials=n_trials, seed=seed, base=base,
                        progress=progress, reserve=reserve, n_jobs=workers)
    tuning_seconds = time.perf_counter() - tuning_start
    final_params = {**base, **best, "random_state": seed}

    evaluation = None
    eval_start = time.perf_counter()
    plan = None
    if evaluate_model and budget_seconds > 0 and n_trials is None:
        # The budget is the whole call: what the final fit leaves is the evaluation's; a small budget evaluates less.
        unit = float(tuning.get("unit_seconds") or PRIOR_SECONDS_PER_UNIT)
        final_fit = _after_tuning_seconds(final_params, unit, rows=len(clean), n_splits=n_splits, workers=workers,
                                          evaluate_model=False, max_eval_rows=max_eval_rows, audio_model=with_audio)
        job = _evaluation_job_seconds(final_params, unit, len(clean), with_audio)
        left = budget_seconds - (eval_start - start) - final_fit
        plan = plan_evaluation(len(clean), left, job, workers=workers, n_splits=n_splits, max_rows=max_eval_rows)
    if evaluate_model:
        evaluation = run_evaluation(clean, reference=reference, n_splits=n_splits, seed=seed, progress=progress,
                                    params=final_params, reference_params=reference_params, max_rows=max_eval_rows,
                                    n_jobs=workers, sound=with_audio, plan=plan)
        metrics = evaluation.metrics
    else:
        metrics = {"splits": {}, "interval": {"level": final_params.get("interval_level", 0.8), "coverage": None},
                   "note": "evaluation skipped"}
    eval_seconds = time.perf_counter() - eval_start

    progress(0, 1, "final fit")
    fit_start = time.perf_counter()
    model = PopularityModel(**final_params)
    if plan is not None and plan.max_rows < min(len(clean), max_eval_rows) and \
            model.calibration_method(len(clean)) == "cross":
        # A budget-cut evaluation on a sample leaves no residuals for every track: one refit calibrates the
        # interval instead of K.
        model.set_params(calibration="holdout_refit")
    reuse = evaluation is not None and evaluation.residuals is not None and \
        model.calibration_method(len(clean)) == "cross"
    model.fit(clean, oof_residuals=evaluation.residuals if reuse else None)
    sound = None
    if with_audio:
        sound = PopularityModel(**{**final_params, "feature_set": "sound", "artist_record": False})
        residuals = evaluation.sound_residuals if evaluation is not None else None
        if residuals is None or sound.calibration_method(len(clean)) != "cross":
            # Without the evaluation's residuals, one refit without a held-out part calibrates it (not K refits).
            sound.set_params(calibration="holdout_refit" if sound.calibration_method(len(clean)) == "cross"
                             else sound.calibration)
            residuals = None
        sound.fit(clean, oof_residuals=residuals)
    fit_seconds = time.perf_counter() - fit_start
    progress(1, 1, "final fit done")
    total = time.perf_counter() - start
    budget = {"budget_seconds": budget_seconds, "n_trials": n_trials, "trials": tuning["trials"],
              "before_training_seconds": round(tuning_start - start, 2), "tuning_seconds": round(tuning_seconds, 2),
              "evaluation_seconds": round(eval_seconds, 2), "final_fit_seconds": round(fit_seconds, 2),
              "seconds": round(total, 2), "interval_from_evaluation": reuse,
              "evaluation_note": plan.note if plan is not None else None}
    info = {
        "params": model.get_params(), "tuning": tuning, "budget": budget, "rows_in": report.rows_in,
        "rows_used": report.rows_out, "rows_dropped": report.rows_in - report.rows_out,
        "validation": report.to_dict(), "features": list(model.feature_names_),
        "features_unavailable": dict(model.features_unavailable_), "interval": model.calibration_description(),
        "fit_seconds": round(fit_seconds, 2), "seconds": round(total, 2),
        "evaluation_sample": metrics.get("sample"), "tuning_rows_limit": TUNING_ROWS,
        "audio_model": ({"features": list(sound.feature_names_), "interval": sound.calibration_description()}
                        if sound is not None else {"skipped": audio_reason}),
    }
    return TrainResult(model=model, metrics=metrics, info=info, audio_model=sound)


def budget_summary(info: Mapping[str, Any]) -> str:
    """One line saying how the time went (for the CLI and logs)."""
    budget = info["budget"]
    trials = budget["trials"]
    if budget["n_trials"] is not None:
        how = f"{trials} search trial(s) as asked (--n-trials)"
    elif budget["budget_seconds"] > 0:
        how = f"budget {budget['budget_seconds']:g} s: {trials} search trial(s)"
    else:
        how = "no search (budget 0: default hyperparameters)"
    parts = [f"{how} in {budget['tuning_seconds']:.1f} s", f"evaluation {budget['evaluation_seconds']:.1f} s",
             f"final fit {budget['final_fit_seconds']:.1f} s"]
    if budget["before_training_seconds"] >= 0.05:
        parts.insert(0, f"reading {budget['before_training_seconds']:.1f} s")
    return "; ".join(parts) + f"; total {budget['seconds']:.1f} s"
