"""Hyperparameter search: a seeded random search, within a number of trials or a time budget.

Each trial fits the candidate on 3 mixed folds (whole artists and single tracks of other artists held out) with
early stopping on the held-out tracks each booster answers for, so a trial also finds how many trees its
learning rate needs. The score is the mean of the RMSE on held-out artists and on held-out tracks of known
artists, so the chosen model is good for new and known artists alike. The defaults are the first candidate.

Reproducible: the candidates are drawn from ``seed`` and every fit is deterministic, so the same ``n_trials``
and seed give the same parameters. A time budget runs as many trials as fit, which depends on the machine, and
skips candidates too slow for the time left; ``n_trials`` tries every candidate in order.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from popdrivers import schema
from popdrivers.model._estimator import AUTO_FALLBACK_TREES, PopularityModel
from popdrivers.model._parallel import run_parallel
from popdrivers.model._splits import MIN_FIT_ROWS, artist_sample, mixed_folds
from popdrivers.progress import ProgressCallback, null_progress

TARGET = schema.TARGET
TUNED = ("n_estimators", "learning_rate", "num_leaves", "min_child_samples", "subsample", "colsample_bytree",
         "reg_lambda", "new_artist_num_leaves", "new_artist_min_child_samples", "new_artist_n_estimators")
DEFAULT_PARAMS: dict[str, Any] = {k: v for k, v in PopularityModel().get_params().items() if k in TUNED}
TUNING_FOLDS = 3
TUNING_ROWS = 200_000
EARLY_STOPPING_ROUNDS = 40
# Under a time budget, candidates too slow for the time left are skipped (at most this many) for cheaper ones.
MAX_SKIPPED = 5
# Cost of a fit ~ rows x (main trees + NEW_ARTIST_TREE_COST x new-artist trees): a 7-leaf tree builds fewer
# histograms than a 63-leaf one (measured on catalog-2022: 2.4 ms vs 0.9 ms per tree on 16k rows).
NEW_ARTIST_TREE_COST = 0.4
# Seconds per (row x tree) of one single-threaded fit before any is measured: twice what catalog-2022 costs on an
# idle 2-core EPYC (1.5 s for 16,000 rows x 640 tree units), so that on a busy machine a budget too small for a
# trial and the evaluation skips the search; replaced by the measured cost after the first trial.
PRIOR_SECONDS_PER_UNIT = 3e-7

# (params of the model the tuning would choose, measured seconds per row x tree unit) -> seconds the caller needs
# after tuning (evaluation and final fit) for that choice.
Reserve = Callable[[Mapping[str, Any], float], float]


def tree_units(params: Mapping[str, Any]) -> float:
    """Trees of a parameter set, the new-artist booster's weighted by their relative cost ("auto": a fit to find
    the count plus the refit, counted as twice the old fixed default)."""
    merged = {**DEFAULT_PARAMS, **params}
    new_artist = merged["new_artist_n_estimators"]
    new_artist = 2 * AUTO_FALLBACK_TREES if new_artist == "auto" else float(new_artist)
    return float(merged["n_estimators"]) + NEW_ARTIST_TREE_COST * new_artist


def sample_params(rng: np.random.Generator, n_rows: int) -> dict[str, Any]:
    """One random candidate (tree counts are upper bounds: early stopping finds the number each needs)."""
    learning_rate = float(np.exp(rng.uniform(np.log(0.03), np.log(0.15))))
    return {
        "learning_rate": learning_rate,
        "n_estimators": int(np.clip(round(40 / learning_rate), 200, 1500)),
        "num_leaves": int(round(np.exp(rng.uniform(np.log(7), np.log(127))))),
        "min_child_samples": int(round(np.exp(rng.uniform(np.log(5), np.log(150))))),
        "subsample": float(rng.uniform(0.5, 1.0)),
        "colsample_bytree": float(rng.uniform(0.4, 1.0)),
        "reg_lambda": float(np.exp(rng.uniform(np.log(1e-3), np.log(30)))),
        "new_artist_num_leaves": int(round(np.exp(rng.uniform(np.log(4), np.log(31))))),
        "new_artist_min_child_samples": int(min(round(np.exp(rng.uniform(np.log(20), np.log(500)))),
                                                max(20, n_rows // 10))),
        "new_artist_n_estimators": int(np.clip(round(40 / learning_rate), 200, 1500)),
    }


def _fold_errors(tracks: pd.DataFrame, train_idx: np.ndarray, test_idx: np.ndarray,
                 model: PopularityModel) -> tuple[np.ndarray, np.ndarray, dict[str, int], float, float]:
    """(errors on known-artist tracks, errors on new-artist tracks, trees used, seconds, tree units trained)."""
    start = time.perf_counter()
    train, test = tracks.iloc[train_idx], tracks.iloc[test_idx]
    fitted = clone(model).fit(train, eval_tracks=test)
    err = test[TARGET].to_numpy(dtype="float64") - fitted.predict(test)
    seen = fitted.artist_seen(test)
    trained = {"n_estimators": fitted.booster_.current_iteration()}
    if fitted.new_artist_booster_ is not None:
        trained["new_artist_n_estimators"] = fitted.new_artist_booster_.current_iteration()
    else:
        trained["new_artist_n_estimators"] = 0
    return err[seen], err[~seen], fitted.best_iterations, time.perf_counter() - start, tree_units(trained)


def _trial(tracks: pd.DataFrame, folds: list, candidate: Mapping[str, Any], base: Mapping[str, Any],
           workers: int) -> dict[str, Any]:
    model = PopularityModel(**{**base, **candidate, "calibration_folds": 0, "n_jobs": 1,
                               "early_stopping_rounds": EARLY_STOPPING_ROUNDS})
    results = run_parallel([lambda f=f: _fold_errors(tracks, f.train, f.test, model) for f in folds], workers)
    seen = np.concatenate([r[0] for r in results])
    new = np.concatenate([r[1] for r in results])
    rmses = [float(np.sqrt(np.mean(e ** 2))) for e in (seen, new) if len(e)]
    trees = {"n_estimators": int(round(np.mean([r[2]["main"] for r in results])))}
    if all("new_artist" in r[2] for r in results):
        trees["new_artist_n_estimators"] = int(round(np.mean([r[2]["new_artist"] for r in results])))
    unit_seconds = float(np.median([r[3] / max(r[4] * len(f.train), 1.0) for r, f in zip(results, folds,
                                                                                         strict=True)]))
    return {"score": float(np.mean(rmses)), "rmse_known_artists": rmses[0] if len(seen) else None,
            "rmse_new_artists": rmses[-1] if len(new) else None, "trees": trees, "unit_seconds": unit_seconds,
            "units": float(np.mean([r[4] for r in results]))}


def _expected_units(candidate: Mapping[str, Any], history: list[tuple[float, float]]) -> float:
    """Tree units a trial of ``candidate`` will train: early stopping needs about (units x learning rate) trees,
    as seen in the trials so far; never more than the candidate's caps."""
    if not history:
        return tree_units(candidate)
    scale = float(np.median([units * rate for rate, units in history]))
    return min(tree_units(candidate), scale / float(candidate["learning_rate"]))


def _best_text(score: float) -> str:
    return f", best RMSE {score:.2f}" if math.isfinite(score) else ""


def tune(
    tracks: pd.DataFrame, *, budget_seconds: float = 30, n_trials: int | None = None, seed: int = 0,
    base: Mapping[str, Any] | None = None, progress: ProgressCallback | None = None, reserve: Reserve | None = None,
    max_rows: int = TUNING_ROWS, n_jobs: int | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Seeded random search of LightGBM hyperparameters, artist-grouped 3-fold CV with early stopping.

    Parameters
    ----------
    tracks
        Validated canonical track table with popularity.
    budget_seconds
        Time the search may take (with ``reserve``: the search and what the caller needs afterwards); a
        trial starts only if its expected time still fits. 0 returns the defaults untouched.
    n_trials
        Run exactly this many trials instead (the budget then does not limit the search): reproducible.
    seed
        Seed of the candidates, the folds and the models.
    base
        Fixed :class:`PopularityModel` parameters; candidates override the tuned ones among them.
    progress
        Called with (seconds spent, seconds budgeted, message) before each trial.
    reserve
        Seconds the caller needs after the search for given parameters (see :data:`Reserve`).
    max_rows
        Above this many tracks the search runs on a fixed sample of whole artists.
    n_jobs
        Fold fits side by side (default ``base['n_jobs']``, else 2).

    Returns
    -------
    (best parameters, tuning report)
    """
    progress = progress or null_progress
    base = dict(base or {})
    workers = int(n_jobs if n_jobs is not None else base.get("n_jobs", 2))
    defaults = {**DEFAULT_PARAMS, **{k: v for k, v in base.items() if k in DEFAULT_PARAMS}}
    report: dict[str, Any] = {
        "budget_seconds": budget_seconds, "n_trials": n_trials, "trials": 0, "history": [],
        "objective": f"mean of RMSE on held-out artists and on held-out tracks of known artists ({TUNING_FOLDS} "
                     "mixed folds, early stopping on the held-out tracks)"}
    if n_trials is None and budget_seconds <= 0 or n_trials == 0:
        report["note"] = "no tuning: default hyperparameters"
        return defaults, report
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    sample, note = artist_sample(tracks, max_rows, seed)
    if note is not None:
        report["sample"] = note["note"]
    folds = [f for f in mixed_folds(sample, TUNING_FOLDS, seed=seed + 2)
             if len(f.train) >= MIN_FIT_ROWS and len(f.test)]
    if not folds:
        report["note"] = f"no tuning: {len(sample)} tracks are too few to hold some out"
        return defaults, report
    reserve = reserve or (lambda params, unit_seconds: 0.0)
    unit_seconds = PRIOR_SECONDS_PER_UNIT
    train_rows = float(np.mean([len(f.train) for f in folds]))
    rounds = math.ceil(len(folds) / max(workers, 1))
    best, best_score, trial_seconds = dict(defaults), math.inf, []
    trained: list[tuple[float, float]] = []  # (learning rate, tree units trained) per trial
    skipped = 0  # candidates drawn but not tried because they would not fit the budget
    candidate = dict(defaults)
    stopped = "n_trials"
    while n_trials is None or report["trials"] < n_trials:
        elapsed = time.perf_counter() - start
        if n_trials is None:
            # A trial costs about (trees it will train x fold rows x unit cost) per round of parallel fold fits;
            # what follows the search costs most for the heavier of the best and this candidate.
            expected = rounds * unit_seconds * _expected_units(candidate, trained) * train_rows * 1.2
            scale = _expected_units(candidate, trained) / tree_units(candidate)
            likely = {**candidate, **{k: v * scale for k, v in candidate.items()
                                      if k in ("n_estimators", "new_artist_n_estimators") and v != "auto"}}
            heavier = max(best, likely, key=tree_units)
            if elapsed + expected + reserve(heavier, unit_seconds) > budget_seconds:
                # Too slow for what is left (a low learning rate needs many trees): a cheaper candidate may fit.
                skipped += 1
                if report["trials"] == 0 or skipped > MAX_SKIPPED or \
                        elapsed + min(trial_seconds) + reserve(best, unit_seconds) > budget_seconds:
                    stopped = "budget"
                    break
                candidate = sample_params(rng, len(sample))
                continue
            progress(int(min(elapsed, budget_seconds)), int(math.ceil(budget_seconds)),
                     f"tuning: trial {report['trials'] + 1}{_best_text(best_score)}")
        else:
            progress(report["trials"], n_trials,
                     f"tuning: trial {report['trials'] + 1} of {n_trials}{_best_text(best_score)}")
        trial_start = time.perf_counter()
        outcome = _trial(sample, folds, candidate, base, workers)
        trial_seconds.append(time.perf_counter() - trial_start)
        unit_seconds = outcome["unit_seconds"]
        trained.append((float(candidate["learning_rate"]), outcome["units"]))
        chosen = {**candidate, **outcome["trees"]}
        report["trials"] += 1
        report["history"].append({"score": round(outcome["score"], 4), "seconds": round(trial_seconds[-1], 2),
                                  **{k: chosen[k] for k in ("learning_rate", "n_estimators", "num_leaves",
                                                            "new_artist_n_estimators")}})
        if report["trials"] == 1:
            report["default_score"] = outcome["score"]
        if outcome["score"] < best_score:
            best, best_score = chosen, outcome["score"]
        candidate = sample_params(rng, len(sample))
    total = n_trials if n_trials is not None else int(math.ceil(budget_seconds))
    progress(total, total, f"tuning done: {report['trials']} trial(s){_best_text(best_score)}")
    report.update(seconds=round(time.perf_counter() - start, 2), best_score=best_score if report["trials"] else None,
                  rows=len(sample), stopped_by=stopped, unit_seconds=unit_seconds, skipped=skipped)
    if report["trials"] == 0:
        report["note"] = "no tuning: the budget leaves no time for a trial after the evaluation and the final fit"
    return best, report
