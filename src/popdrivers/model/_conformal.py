"""Split-conformal prediction intervals, Mondrian by "artist seen in training" vs "new artist".

A fitted model's interval is ``prediction + offsets[group]``, where the offsets are finite-sample quantiles of
signed residuals of models that did not see the tracks they were measured on. Where those residuals come from
is the calibration ``method``:

``cross``          out-of-fold refits on mixed folds (whole artists and single tracks held out); the boosters
                   of the stored model are fitted on every track
``holdout_refit``  one refit without one held-out part, the stored boosters on every track
``split``          the stored boosters themselves are fitted without the held-out part (cheapest: no refit)
``none``           no interval
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

GROUPS = ("seen", "new")
# Residuals a group needs before it gets its own interval width; below, it borrows the pooled residuals.
MIN_POOL = 30
METHODS = ("cross", "holdout_refit", "split", "none")


def conformal_offsets(residuals: np.ndarray, level: float) -> tuple[float, float]:
    """Lower/upper offsets from signed residuals with the finite-sample split-conformal ranks."""
    r = np.sort(np.asarray(residuals, dtype="float64"))
    n = len(r)
    if n == 0:
        raise ValueError("no residuals to calibrate an interval on")
    alpha = 1.0 - level
    lo_rank = math.floor((n + 1) * alpha / 2)
    hi_rank = math.ceil((n + 1) * (1 - alpha / 2))
    lower = r[max(lo_rank, 1) - 1] if lo_rank >= 1 else r[0]
    upper = r[min(hi_rank, n) - 1]
    return float(lower), float(upper)


@dataclass(frozen=True)
class Residuals:
    """Signed held-out residuals (actual - predicted), by whether the track's artist was seen in training."""

    seen: np.ndarray
    new: np.ndarray

    @property
    def size(self) -> int:
        return len(self.seen) + len(self.new)

    @classmethod
    def pooled(cls, parts: list[Residuals]) -> Residuals:
        """All parts together."""
        empty = np.empty(0)
        return cls(np.concatenate([p.seen for p in parts] or [empty]),
                   np.concatenate([p.new for p in parts] or [empty]))


# Calibration residuals kept per group (evenly spaced order statistics): enough to recompute the interval's
# quantiles for tracks that lack features (popdrivers.model._shift.interval_without).
RESIDUAL_SAMPLE = 2000


def residual_sample(values: np.ndarray, size: int = RESIDUAL_SAMPLE) -> tuple[float, ...]:
    """Up to ``size`` evenly spaced order statistics of ``values`` (their distribution, compactly)."""
    values = np.sort(np.asarray(values, dtype="float64"))
    if len(values) > size:
        values = values[np.linspace(0, len(values) - 1, size).round().astype(int)]
    return tuple(round(float(v), 3) for v in values)


@dataclass(frozen=True)
class Interval:
    """A calibrated prediction interval: offsets per group, how many residuals set each, and how.

    ``samples`` keeps a sample of each group's calibration residuals (see :data:`RESIDUAL_SAMPLE`).
    """

    level: float
    method: str = "none"
    offsets: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    sizes: Mapping[str, int] = field(default_factory=dict)
    samples: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return bool(self.offsets)

    @classmethod
    def from_residuals(cls, residuals: Residuals, level: float, method: str) -> Interval:
        """Offsets per group; a group with fewer than :data:`MIN_POOL` residuals uses everyone's."""
        if method not in METHODS:
            raise ValueError(f"method={method!r}: use one of {', '.join(METHODS)}")
        everything = np.concatenate([residuals.seen, residuals.new])
        offsets: dict[str, tuple[float, float]] = {}
        sizes: dict[str, int] = {}
        samples: dict[str, tuple[float, ...]] = {}
        for group, values in (("seen", residuals.seen), ("new", residuals.new)):
            source = values if len(values) >= MIN_POOL else everything
            offsets[group] = conformal_offsets(source, level)
            sizes[group] = int(len(source))
            samples[group] = residual_sample(source)
        return cls(level=level, method=method, offsets=offsets, sizes=sizes, samples=samples)

    def bounds(self, prediction: np.ndarray, seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) around ``prediction`` (clipped to 0..100), the seen-artist width where ``seen``."""
        lo_seen, hi_seen = self.offsets["seen"]
        lo_new, hi_new = self.offsets["new"]
        lower = prediction + np.where(seen, lo_seen, lo_new)
        upper = prediction + np.where(seen, hi_seen, hi_new)
        return np.clip(lower, 0.0, 100.0), np.clip(upper, 0.0, 100.0)
