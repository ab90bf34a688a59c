"""How tracks are held out: random tracks, whole artists, the newest releases, and both kinds at once.

Every function returns positional index arrays ``(train, test)`` into the table it was given.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from popdrivers.errors import SplitUnavailable

Fold = tuple[np.ndarray, np.ndarray]
# A fit needs at least this many tracks; folds whose training part is smaller are skipped.
MIN_FIT_ROWS = 10
# Folds of the library's cross-validation when the caller names none: the evaluation's held-out splits and the
# interval calibration (the app's quicker build asks for fewer; the track record has its own, TRACK_RECORD_FOLDS).
DEFAULT_FOLDS = 5


def artist_groups(tracks: pd.DataFrame) -> np.ndarray:
    """Integer group per track: its artist; a track without artist id is its own group.

    Raises
    ------
    SplitUnavailable
        When the table has no artist ids at all.
    """
    if "artist_id" not in tracks.columns or tracks["artist_id"].isna().all():
        raise SplitUnavailable("the data has no artist_id column, so tracks cannot be grouped by artist")
    codes, _ = pd.factorize(tracks["artist_id"].astype("string"), use_na_sentinel=True)
    codes = codes.astype("int64")
    lonely = codes < 0
    codes[lonely] = codes.max() + 1 + np.arange(int(lonely.sum()))
    return codes


def random_folds(n_rows: int, n_splits: int = DEFAULT_FOLDS, seed: int = 0) -> list[Fold]:
    """K-fold over tracks, shuffled (the original project's split; leaks the artist)."""
    from sklearn.model_selection import KFold

    return list(KFold(n_splits, shuffle=True, random_state=seed).split(np.zeros(n_rows)))


def artist_grouped_folds(tracks: pd.DataFrame, n_splits: int = DEFAULT_FOLDS, seed: int = 0) -> list[Fold]:
    """GroupKFold on ``artist_id``: every artist's tracks fall in one test fold; no artist is on both sides.

    Raises
    ------
    SplitUnavailable
        Without artist ids, or with fewer artists than folds.
    """
    from sklearn.model_selection import GroupKFold

    groups = artist_groups(tracks)
    if len(np.unique(groups)) < n_splits:
        raise SplitUnavailable(f"only {len(np.unique(groups))} artists, fewer than the {n_splits} folds")
    splitter = GroupKFold(n_splits, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(tracks)), groups=groups))


def time_split(tracks: pd.DataFrame, test_share: float = 0.2) -> Fold:
    """Train on older releases, test on the newest ``test_share`` of dated tracks (undated tracks left out).

    Every training release date is on or before the cutoff; every test date is after it.

    Raises
    ------
    SplitUnavailable
        Without release dates, or when the dates do not separate (e.g. all the same day).
    """
    if "release_date" not in tracks.columns or tracks["release_date"].isna().all():
        raise SplitUnavailable("the data has no release_date, so tracks cannot be ordered in time")
    dates = pd.to_datetime(tracks["release_date"])
    dated = np.flatnonzero(dates.notna().to_numpy())
    values = dates.iloc[dated].to_numpy()
    cutoff = np.sort(values)[max(int(math.floor(len(values) * (1 - test_share))) - 1, 0)]
    train = dated[values <= cutoff]
    test = dated[values > cutoff]
    if len(test) < max(10, int(0.05 * len(dated))) or len(train) < 10:
        raise SplitUnavailable("release dates do not separate into older and newer tracks "
                               f"({len(train)} on or before {pd.Timestamp(cutoff).date()}, {len(test)} after)")
    return train, test


# The known-artist part of a mixed fold samples this share of an artist fold's tracks (1/K when K >= 5): with
# fewer folds, 1/K would leave too little to train on (K = 2 would train on a quarter of the tracks).
MIN_TRACK_FOLDS = 5


@dataclass(frozen=True)
class MixedFold:
    """One fold that holds out whole artists and single tracks of artists kept in training.

    Attributes
    ----------
    train
        Rows to fit on.
    new_artists
        Every track of the held-out artists (none of their tracks is in ``train``): the unseen-artist test.
    known_artists
        A random sample of the tracks of other artists, whose remaining tracks are in ``train``: the
        random-track test (an artist with a single track is new there too, as in a random split).
    """

    train: np.ndarray
    new_artists: np.ndarray
    known_artists: np.ndarray

    @property
    def test(self) -> np.ndarray:
        """Both test parts, in table order."""
        return np.union1d(self.new_artists, self.known_artists)


def mixed_folds(tracks: pd.DataFrame, n_folds: int, seed: int = 0) -> list[MixedFold]:
    """Folds whose test part holds out whole artists AND single tracks of artists kept in training.

    A model serves both artists it knows (through the track record) and new ones, so interval calibration,
    tuning and evaluation need both kinds of held-out tracks; one fit per fold serves both tests. Artists are
    dealt to ``n_folds`` artist folds in a shuffled round (every fold gets at least one artist); fold k tests
    every track of artist fold k plus a 1/max(K, 5) sample of the tracks of artist fold k+1, and trains on the
    rest (76% of the tracks for K = 5). With fewer artists than folds there are as many folds as artists;
    without artist ids (or with a single artist) it is a plain shuffled K-fold over tracks, all "known".

    Raises
    ------
    ValueError
        When ``n_folds`` < 2.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds={n_folds}: use at least 2 folds")
    rng = np.random.default_rng(seed)
    n = len(tracks)
    try:
        groups = artist_groups(tracks)
        n_groups = int(groups.max()) + 1
    except SplitUnavailable:
        n_groups = 0
    if n_groups < 2:
        track_fold = rng.permutation(n) % n_folds
        empty = np.empty(0, dtype=np.int64)
        return [MixedFold(np.flatnonzero(track_fold != k), empty, np.flatnonzero(track_fold == k))
                for k in range(n_folds)]
    n_folds = min(n_folds, n_groups)
    artist_fold = (rng.permutation(n_groups) % n_folds)[groups]
    track_fold = rng.integers(0, track_fold_count(n_folds), n)
    folds = []
    for k in range(n_folds):
        new, known = mixed_fold_test(artist_fold, track_fold, k, n_folds)
        folds.append(MixedFold(np.flatnonzero(~(new | known)), np.flatnonzero(new), np.flatnonzero(known)))
    return folds


def track_fold_count(n_folds: int) -> int:
    """How many track folds the known-artist part of :func:`mixed_folds` samples from (at least 5)."""
    return max(n_folds, MIN_TRACK_FOLDS)


def mixed_fold_test(artist_fold: np.ndarray, track_fold: np.ndarray, k: int, n_folds: int
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Masks of mixed fold ``k``'s test parts: (every track of artist fold k, track fold k of artist fold k+1).

    The rule :func:`mixed_folds` and the Dask fit share (the Dask fit draws the folds by hashing ids instead).
    """
    new = artist_fold == k
    known = (artist_fold == (k + 1) % n_folds) & (track_fold == k)
    return new, known


def mixed_holdout_folds(tracks: pd.DataFrame, n_folds: int, seed: int = 0) -> Iterator[Fold]:
    """:func:`mixed_folds` as ``(train, test)`` pairs."""
    for fold in mixed_folds(tracks, n_folds, seed):
        yield fold.train, fold.test


def artist_sample(tracks: pd.DataFrame, max_rows: int, seed: int = 0) -> tuple[pd.DataFrame, dict | None]:
    """``tracks`` itself, or for more than ``max_rows`` tracks a fixed sample of whole artists of about that size.

    Returns the sample and, when it is one, a description (rows, artists, a sentence for the output).
    """
    if len(tracks) <= max_rows:
        return tracks, None
    rng = np.random.default_rng(seed)
    try:
        groups = artist_groups(tracks)
    except SplitUnavailable:
        keep = np.sort(rng.choice(len(tracks), max_rows, replace=False))
        return tracks.iloc[keep].reset_index(drop=True), {
            "rows": max_rows, "of_rows": len(tracks), "artists": None,
            "note": f"a random sample of {max_rows:,} of the {len(tracks):,} tracks (no artist ids)"}
    sizes = np.bincount(groups)
    order = rng.permutation(len(sizes))
    chosen = order[: int(np.searchsorted(np.cumsum(sizes[order]), max_rows)) + 1]
    sample = tracks[np.isin(groups, chosen)].reset_index(drop=True)
    return sample, {"rows": len(sample), "of_rows": len(tracks), "artists": len(chosen), "of_artists": len(sizes),
                    "note": f"a fixed sample of {len(chosen):,} of the {len(sizes):,} artists "
                            f"({len(sample):,} of the {len(tracks):,} tracks)"}
