"""Cross-fitting: folds grouped by artist, nuisance learners, out-of-fold residuals.

Double ML needs ``E[popularity | controls]`` and ``E[driver | controls]`` predicted for each track by a model
that never saw that track's artist (an artist's tracks share unobserved traits; a model that saw the artist's
other tracks would partly memorise them). Folds therefore hold whole artists.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

LEARNERS = ("linear+lgbm", "lgbm", "linear")


def artist_grouped_folds(groups: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold number of each row such that all rows of one group (artist) share a fold.

    Groups are shuffled, then dealt largest first to the lightest fold, so folds have similar numbers of rows
    even when a few artists are very large.
    """
    _, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(sizes))
    order = order[np.argsort(-sizes[order], kind="stable")]
    fold_of_group = np.empty(len(sizes), dtype=np.int64)
    load = np.zeros(n_folds)
    for g in order:
        k = int(np.argmin(load))
        fold_of_group[g] = k
        load[k] += sizes[g]
    return fold_of_group[inverse]


@dataclass(frozen=True)
class NuisanceLearner:
    """Nuisance models: ``"linear"`` least squares, ``"lgbm"`` boosting, or ``"linear+lgbm"`` (boosting on the
    least-squares residuals: within-artist relations are mostly linear, and trees alone approximate them coarsely,
    leaving residual confounding; the linear start removes that and the trees pick up what is not linear).

    ``max_fit_rows`` caps the rows each model is trained on (predictions are still made for every row).
    ``linear_only``: the last ``linear_only`` columns of ``x`` enter the least squares only (interactions the
    linear start needs, which would only slow the trees down).
    """

    kind: str = "linear+lgbm"
    n_estimators: int = 60
    num_leaves: int = 15
    learning_rate: float = 0.1
    max_fit_rows: int | None = 20_000
    seed: int = 0
    max_bin: int = 63
    linear_tree: bool = True
    linear_only: int = 0

    def fit_predict(self, x_train: np.ndarray, y_train: np.ndarray, d_train: np.ndarray, x_test: np.ndarray,
                    excluded: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """For every driver j: predictions on ``x_test`` of ``E[y | x without excluded[j]]`` and of
        ``E[d_j | x without excluded[j]]`` (``d_train`` holds one driver per column)."""
        n_drivers = d_train.shape[1]
        targets = np.column_stack([np.repeat(y_train[:, None], n_drivers, axis=1), d_train])
        predicted = self.fit_predict_targets(x_train, targets, x_test, [*excluded, *excluded])
        return predicted[:, :n_drivers], predicted[:, n_drivers:]

    def fit_predict_targets(self, x_train: np.ndarray, targets: np.ndarray, x_test: np.ndarray,
                            excluded: list[list[int]], groups: NuisanceGroups | None = None) -> np.ndarray:
        """Predictions on ``x_test`` of ``E[target_t | x without excluded[t]]`` for every column t of ``targets``.

        All the models of one fold share one binned LightGBM dataset; a target's excluded columns are kept out of
        its models through LightGBM's ``feature_contri`` (their split gain is zeroed) and out of the least squares
        by solving on the other columns of one Gram matrix. ``groups``: the targets it marks get their least
        squares fitted within each group (:class:`NuisanceGroups`); the trees stay pooled.
        """
        if self.max_fit_rows is not None and len(x_train) > self.max_fit_rows:
            keep = np.random.default_rng(self.seed).choice(len(x_train), self.max_fit_rows, replace=False)
            x_train, targets = x_train[keep], targets[keep]
            if groups is not None:
                groups = groups.rows(keep, None)
        n_targets = targets.shape[1]
        n_features = x_train.shape[1]
        predicted = np.zeros((len(x_test), n_targets))
        resid = targets.astype("float64", copy=True)
        if self.kind in ("linear", "linear+lgbm"):
            design = np.column_stack([np.ones(len(x_train)), x_train])
            test_design = np.column_stack([np.ones(len(x_test)), x_test])
            gram = design.T @ design
            coef = _least_squares(design, targets, excluded, gram=gram)
            resid -= design @ coef
            predicted += test_design @ coef
            if groups is not None and groups.grouped.any():
                members = np.flatnonzero(groups.grouped)
                # Enough rows for the columns a group's fit can use: the linear-only columns (driver x family) are
                # copies of the drivers within one family, or 0.
                needed = groups.rows_per_column * (n_features - self.linear_only + 1)
                for code in np.unique(groups.train):
                    train_rows, test_rows = groups.train == code, groups.test == code
                    if train_rows.sum() < needed:
                        continue  # too few tracks for a fit of their own: the pooled one stays
                    prior = None
                    if groups.prior_rows > 0:
                        # Shrunk toward the pooled fit: as if the group had prior_rows more tracks drawn like all
                        # the training tracks and fitted by the pooled coefficients.
                        prior = (gram * (groups.prior_rows / len(design)), coef[:, members])
                    own = _least_squares(design[train_rows], targets[np.ix_(train_rows, members)],
                                         [excluded[t] for t in members], prior)
                    resid[np.ix_(train_rows, members)] = (targets[np.ix_(train_rows, members)]
                                                          - design[train_rows] @ own)
                    predicted[np.ix_(test_rows, members)] = test_design[test_rows] @ own
            if self.kind == "linear":
                return predicted
        import lightgbm as lgb

        if self.linear_only:
            n_features -= self.linear_only
            # Contiguous: LightGBM copies a strided test matrix in every one of its predict calls.
            x_train, x_test = x_train[:, :n_features], np.ascontiguousarray(x_test[:, :n_features])
            excluded = [[c for c in cols if c < n_features] for cols in excluded]

        # num_threads=1: parallelism comes from fitting folds side by side (OpenMP inside each fit spins
        # badly when the machine is shared).
        params = {"objective": "regression", "num_leaves": self.num_leaves, "learning_rate": self.learning_rate,
                  "min_data_in_leaf": 40, "bagging_fraction": 0.8, "bagging_freq": 1, "feature_fraction": 0.8,
                  "num_threads": 1, "seed": self.seed, "verbose": -1, "deterministic": True,
                  "linear_tree": self.linear_tree, "linear_lambda": 1.0, "force_col_wise": True}
        # force_col_wise: what LightGBM picks itself for these shapes (identical models), without the 3 ms test
        # it runs in every one of the ~1,000 fits of a 100k-track run.
        # linear_tree: leaves hold a linear model of the features on their branch, so a smooth confounder
        # (x^2, steep in the tails where leaves are wide) is followed instead of averaged over a leaf; constant
        # leaves left ~10% bias in the Mundlak check of tests/test_drivers.py.
        dataset = lgb.Dataset(x_train, label=resid[:, 0], free_raw_data=False,
                              params={"max_bin": self.max_bin, "verbose": -1, "linear_tree": self.linear_tree}
                              ).construct()
        for t in range(n_targets):
            contribution = np.ones(n_features)
            contribution[list(excluded[t])] = 0.0
            dataset.set_label(resid[:, t])
            # keep_training_booster: predict with the booster as trained; by default LightGBM round-trips it
            # through its text form first (same model, ~3% of the worker's time).
            booster = lgb.train({**params, "feature_contri": contribution.tolist()}, dataset,
                                num_boost_round=self.n_estimators, keep_training_booster=True)
            predicted[:, t] += booster.predict(x_test, num_threads=1)
        return predicted


def _least_squares(design: np.ndarray, targets: np.ndarray, excluded: list[list[int]],
                   prior: tuple[np.ndarray, np.ndarray] | None = None, gram: np.ndarray | None = None) -> np.ndarray:
    """Coefficients (intercept first) of each target's least squares on ``design`` without its excluded columns
    (indices into the columns after the intercept); 0 on those. ``prior = (P, b)`` adds the penalty
    ``(beta - b)' P (beta - b)`` (``b``: one column per target, 0 on its excluded columns); ``gram``: ``design' design``
    when the caller has it."""
    n_features = design.shape[1] - 1
    gram = design.T @ design if gram is None else gram
    cross = design.T @ targets
    if prior is not None:
        gram = gram + prior[0]
        cross = cross + prior[0] @ prior[1]
    by_exclusion: dict[tuple[int, ...], list[int]] = {}
    for t in range(targets.shape[1]):
        by_exclusion.setdefault(tuple(sorted(excluded[t])), []).append(t)
    # Every target's coefficients in one matrix, 0 on its excluded columns, so the fitted values come from two
    # products instead of one copy of the design per exclusion.
    coef = np.zeros((n_features + 1, targets.shape[1]))
    for exclusion, members in by_exclusion.items():
        cols = np.array([0] + [1 + c for c in range(n_features) if c not in set(exclusion)])
        # lstsq on the small Gram block: the minimum-norm solution when a control is constant (or a copy of
        # another) within the training folds, where a plain solve would fail.
        coef[np.ix_(cols, members)] = np.linalg.lstsq(gram[np.ix_(cols, cols)], cross[np.ix_(cols, members)],
                                                      rcond=None)[0]
    return coef


@dataclass(frozen=True)
class NuisanceGroups:
    """Groups whose tracks get least squares of their own for the targets marked ``grouped``: ``train`` and
    ``test`` hold the group code of each training and predicted row; a group with fewer than ``rows_per_column``
    training rows per column keeps the pooled fit. ``prior_rows`` > 0 shrinks each group's fit toward the pooled
    one with the weight of that many tracks (a group of n tracks moves about n / (n + prior_rows) of the way to its
    own fit)."""

    train: np.ndarray
    test: np.ndarray
    grouped: np.ndarray
    rows_per_column: float = 2.0
    prior_rows: float = 0.0

    def rows(self, train: np.ndarray | None, test: np.ndarray | None) -> NuisanceGroups:
        """The same groups on a subset of the rows (None: unchanged)."""
        return dataclasses.replace(self, train=self.train if train is None else self.train[train],
                                   test=self.test if test is None else self.test[test])


def cross_fit_residuals(x: np.ndarray, y: np.ndarray, treatments: np.ndarray, excluded: list[list[int]],
                        folds: np.ndarray, learner: NuisanceLearner, n_jobs: int = 1,
                        on_fold: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold residuals ``y - E[y | x_-j]`` and ``d_j - E[d_j | x_-j]`` for every driver j (columns)."""
    n_drivers = treatments.shape[1]
    targets = np.column_stack([np.repeat(np.asarray(y, dtype="float64")[:, None], n_drivers, axis=1), treatments])
    residuals = cross_fit_targets(x, targets, [*excluded, *excluded], folds, learner, n_jobs, on_fold)
    return residuals[:, :n_drivers], residuals[:, n_drivers:]


def target_chunks(n_targets: int, n_folds: int, n_jobs: int) -> list[np.ndarray]:
    """Target columns split so that folds x chunks fill every round of ``n_jobs`` workers: 5 folds on 2 workers
    run as 3 rounds, the last with one worker idle; each fold's targets in 2 halves run as 5 full half-rounds."""
    pieces = 1
    if n_jobs > 1 and n_folds % n_jobs:
        pieces = min(n_jobs // math.gcd(n_folds, n_jobs), n_targets)
    return [chunk for chunk in np.array_split(np.arange(n_targets), pieces) if len(chunk)]


def training_rows(folds: np.ndarray, k: int, max_fit_rows: int | None, seed: int) -> np.ndarray:
    """The rows fold ``k``'s models train on: the other folds', at most ``max_fit_rows`` of them (drawn here, so
    only the rows a model trains on go to its worker)."""
    train = np.flatnonzero(folds != k)
    if max_fit_rows is not None and len(train) > max_fit_rows:
        train = train[np.random.default_rng(seed).choice(len(train), max_fit_rows, replace=False)]
    return train


def run_tasks(func: Callable[..., np.ndarray], tasks: list[tuple], n_jobs: int) -> Iterator[np.ndarray]:
    """``func(*task)`` for every task, in order, in ``n_jobs`` worker processes (loky; LightGBM's linear trees
    crash when trained on several threads of one process) or in this one; results arrive as they are done."""
    if n_jobs > 1:
        from joblib import Parallel, delayed

        return Parallel(n_jobs=min(n_jobs, len(tasks)), backend="loky", return_as="generator")(
            delayed(func)(*task) for task in tasks)
    return (func(*task) for task in tasks)


def cross_fit_targets(x: np.ndarray, targets: np.ndarray, excluded: list[list[int]], folds: np.ndarray,
                      learner: NuisanceLearner, n_jobs: int = 1,
                      on_fold: Callable[[int], None] | None = None,
                      groups: NuisanceGroups | None = None) -> np.ndarray:
    """Out-of-fold residuals ``target_t - E[target_t | x without excluded[t]]`` for every column t.

    Each fold is predicted by models trained on the other folds; folds run side by side in ``n_jobs`` worker
    processes (LightGBM's linear trees crash when trained on several threads of one process; joblib hands the
    arrays to the workers as memory maps). ``on_fold(k)`` is called as each fold's predictions arrive.
    ``groups``: least squares fitted within each group (:class:`NuisanceGroups`, codes of every row of ``x`` in
    both ``train`` and ``test``; each fold's task gets its rows and targets).
    """
    n_folds = int(folds.max()) + 1
    fold_rows = [np.flatnonzero(folds == k) for k in range(n_folds)]
    chunks = target_chunks(targets.shape[1], n_folds, n_jobs)
    tasks = []
    for k in range(n_folds):
        train = training_rows(folds, k, learner.max_fit_rows, learner.seed)
        x_train, x_test = x[train], x[fold_rows[k]]
        for chunk in chunks:
            task = (x_train, targets[np.ix_(train, chunk)], x_test, [excluded[t] for t in chunk])
            if groups is not None:
                task += (dataclasses.replace(groups.rows(train, fold_rows[k]), grouped=groups.grouped[chunk]),)
            tasks.append(task)
    results = run_tasks(learner.fit_predict_targets, tasks, n_jobs)
    residuals = np.asarray(targets, dtype="float64").copy()
    for i, prediction in enumerate(results):
        k, c = divmod(i, len(chunks))
        residuals[np.ix_(fold_rows[k], chunks[c])] -= prediction
        if on_fold is not None and c == len(chunks) - 1:
            on_fold(k)
    return residuals
