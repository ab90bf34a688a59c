"""The R-learner's per-track effects and their best-linear-predictor calibration (popdrivers.drivers._cate), on
residual-level problems whose per-track effect is known: the calibration's least squares against statsmodels, the
learner against an effect that varies with one feature, and its test against effects that do not vary."""

from __future__ import annotations

import numpy as np
import pytest

from popdrivers.drivers import artist_grouped_folds
from popdrivers.drivers._cate import calibrate, r_learner_proxies
from popdrivers.drivers._inference import ClusterSums


def _problem(seed: int, varies: bool, n_artists: int = 150, per_artist: int = 16):
    """Residuals of a partially linear model: ``y = tau(x) d + artist shock + noise``; tau = 2 + 1.5 x0 or 2."""
    rng = np.random.default_rng(seed)
    artists = np.repeat(np.arange(n_artists), per_artist)
    n = len(artists)
    x = rng.normal(size=(n, 3))
    x[:, 2] = rng.normal(size=n_artists)[artists]  # an artist-level feature, as the family is
    d = rng.normal(size=n) * (1.0 + 0.3 * (x[:, 1] > 0))
    tau = 2.0 + (1.5 * x[:, 0] if varies else 0.0)
    y = tau * d + rng.normal(scale=0.5, size=n_artists)[artists] * d + rng.normal(scale=2.0, size=n)
    return x, d, y, tau, artists


def test_calibration_is_clustered_least_squares_on_the_proxy_as_statsmodels_computes_it():
    sm = pytest.importorskip("statsmodels.api")
    x, d, y, tau, artists = _problem(1, varies=True)
    proxy = x[:, 0] + np.random.default_rng(2).normal(scale=0.7, size=len(d))  # an imperfect proxy
    result = calibrate(y, d, proxy, ClusterSums(artists))
    design = np.column_stack([d, d * (proxy - proxy.mean())])
    ols = sm.OLS(y, design).fit(cov_type="cluster", cov_kwds={"groups": artists})
    # The slope's CI is centred on statsmodels' coefficient and about as wide (CR2 here, CR1 there).
    centre = (result.slope_low + result.slope_high) / 2
    assert result.slope == pytest.approx(ols.params[1], rel=1e-9) and centre == pytest.approx(ols.params[1])
    width = result.slope_high - result.slope_low
    assert width == pytest.approx(2 * 1.96 * ols.bse[1], rel=0.1)
    # Per track: b1 + b2 (proxy - mean); its interval holds the track's point.
    np.testing.assert_allclose(result.effect, ols.params[0] + ols.params[1] * (proxy - proxy.mean()), rtol=1e-9)
    assert np.all(result.ci_low < result.effect) and np.all(result.effect < result.ci_high)
    # The proxy is noisy (corr ~0.8 with x0): its slope is below 1 and far from 0.
    assert 0.3 < result.slope < 1.0 and result.p_value < 1e-6


def test_r_learner_recovers_an_effect_that_varies_with_one_feature():
    x, d, y, tau, artists = _problem(3, varies=True)
    folds = artist_grouped_folds(artists, 5, 0)
    proxy = r_learner_proxies(y[:, None], d[:, None], x, folds, seed=0)[:, 0]
    assert np.corrcoef(proxy, tau)[0, 1] > 0.8
    result = calibrate(y, d, proxy, ClusterSums(artists))
    # Near 1 (regularised trees shrink the proxy a little, which the calibration undoes), far from 0.
    assert 0.8 < result.slope < 1.3 and result.p_value < 1e-6
    # The calibrated per-track effects track the truth, and the slope's CI holds what it estimates: the best
    # linear predictor of the true effect given the proxy (least squares of tau on the proxy, weighted by d^2).
    assert np.corrcoef(result.effect, tau)[0, 1] > 0.8
    assert abs(result.effect.mean() - tau.mean()) < 0.2
    centred = proxy - proxy.mean()
    target = np.linalg.lstsq(np.column_stack([d, d * centred]), tau * d, rcond=None)[0][1]
    assert result.slope_low < target < result.slope_high
    # Per track, the interval is the predictor's, not the track's: it leaves out what the proxy gets wrong, so it
    # covers the track's true effect for far fewer than 95% of tracks (said on the What-if page and in the docs).
    assert np.mean((result.ci_low <= tau) & (tau <= result.ci_high)) < 0.6


def test_r_learner_test_rarely_fires_when_the_effect_is_the_same_for_every_track():
    """Twenty problems whose effect is 2 for every track: the one-sided test at 5% may fire in a few, not more
    (3 of 20 is the 95% upper range of a 5% test)."""
    fired = 0
    for seed in range(20):
        x, d, y, _, artists = _problem(100 + seed, varies=False, n_artists=80, per_artist=12)
        proxy = r_learner_proxies(y[:, None], d[:, None], x, artist_grouped_folds(artists, 5, seed), seed=seed)
        fired += calibrate(y, d, proxy[:, 0], ClusterSums(artists)).p_value < 0.05
    assert fired <= 3


def test_beyond_model_test_sees_what_a_per_family_model_misses():
    """The model's own per-track effects already hold the artist-level part; the learner's proxy also finds the
    part along x0, which the model lacks: the beyond-model test fires. Given the whole truth, it does not."""
    x, d, y, tau, artists = _problem(5, varies=True)
    y = y + 1.0 * x[:, 2] * d  # plus an artist-level part the "model" knows
    proxy = r_learner_proxies(y[:, None], d[:, None], x, artist_grouped_folds(artists, 5, 1), seed=1)[:, 0]
    clusters = ClusterSums(artists)
    partial = calibrate(y, d, proxy, clusters, model_effect=2.0 + x[:, 2])
    complete = calibrate(y, d, proxy, clusters, model_effect=tau + x[:, 2])
    assert partial.beyond_model_p_value < 1e-4
    assert complete.beyond_model_p_value > 0.01
