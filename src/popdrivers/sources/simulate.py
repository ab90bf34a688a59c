"""A simulated catalogue whose true causal effects are known: the embedded default and the yardstick.

How a track's popularity is made (all vectorised; 1M tracks take seconds):

1. Each artist has a latent *appeal* ``a ~ N(0, 1)`` and a genre family.
2. Appeal drives the artist's followers (noisily: ``log10 followers = 6.46 + 0.55 a + N(0, 0.45)``), their
   baseline popularity, and their *style*: more appealing artists make more danceable, louder, more energetic,
   happier, less acoustic music. Genre shifts both style and popularity.
3. A track's features are its artist's style plus within-artist variation; newer releases are louder and
   shorter (the loudness war), older releases have lost popularity.
4. Latent popularity = intercept + 10 a + genre shift + sum_j beta_j (x_j - centre_j) + age effect
   + artist residual + noise. Observed popularity rounds and clips it to 0..100, and 1.5% of tracks are
   "dead" copies at 0 (as Spotify's duplicate releases are), giving about 3-4% zeros.

Because appeal is only noisily measured by followers, an across-artist regression that controls for
followers is biased for the style features (energy and valence have no effect at all, yet look like
drivers). Within one artist, appeal is constant and the comparison recovers the truth.

The truth reported (:class:`CausalTruth.effects`) is the *average marginal effect on observed popularity*
per unit of each driver: beta times the share of tracks whose popularity is neither clipped nor dead, and
for binary drivers the average difference between switching the flag on and off. It is computed from the
simulated tracks, so it is exactly the quantity an estimator should recover.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from popdrivers.features import BINARY_DRIVERS, DRIVER_UNITS, DRIVERS

COLLECTED_AT = pd.Timestamp("2022-06-01")

# Structural effects on latent popularity, points per unit (see DRIVER_UNITS). Zeros are real: energy,
# valence, tempo and mode do nothing, so any estimate far from 0 for them is confounding or noise.
STRUCTURAL_EFFECTS: dict[str, float] = {
    "danceability": 10.0, "energy": 0.0, "loudness": 0.6, "speechiness": -5.0, "acousticness": -4.0,
    "instrumentalness": -8.0, "liveness": -6.0, "valence": 0.0, "tempo": 0.0, "duration_min": -1.5,
    "explicit": 3.0, "mode": 0.0,
}
# Danceability pays more in the families built for dancing: the heterogeneity GATEs should find.
DANCEABILITY_BONUS = {"hip hop": 6.0, "latin": 6.0, "electronic": 6.0}

# family: (share of artists, popularity shift, micro-genres)
FAMILIES: dict[str, tuple[float, float, tuple[str, ...]]] = {
    "pop": (0.25, 4.0, ("pop", "dance pop", "post-teen pop", "electropop")),
    "hip hop": (0.22, 3.0, ("rap", "hip hop", "trap", "melodic rap")),
    "r&b": (0.08, 0.0, ("r&b", "urban contemporary", "neo soul")),
    "rock": (0.10, -3.0, ("rock", "modern rock", "alternative rock")),
    "electronic": (0.08, -1.0, ("edm", "house", "electro house")),
    "latin": (0.10, 4.0, ("reggaeton", "latin pop", "urbano latino")),
    "country": (0.06, 0.0, ("country", "contemporary country")),
    "metal": (0.03, -5.0, ("metal", "metalcore")),
    "folk & acoustic": (0.03, -4.0, ("folk", "indie folk")),
    "jazz & blues": (0.02, -8.0, ("jazz", "blues")),
    "classical & soundtrack": (0.01, -8.0, ("soundtrack", "classical")),
    "reggae & world": (0.02, -4.0, ("reggae", "afrobeats")),
}
# Style: (global centre on the model scale, loading on appeal, within-artist sd, between-artist sd).
# 0-1 features live on the logit scale; loudness in dB, tempo in BPM, duration in log-minutes.
STYLE: dict[str, tuple[float, float, float, float]] = {
    "danceability": (0.45, 0.25, 0.75, 0.35),
    "energy": (0.55, 0.30, 0.95, 0.45),
    "valence": (-0.15, 0.25, 1.05, 0.35),
    "acousticness": (-1.6, -0.45, 1.6, 0.9),
    "speechiness": (-2.4, 0.05, 0.8, 0.6),
    "instrumentalness": (-6.5, -0.3, 2.5, 1.5),
    "liveness": (-1.5, 0.0, 0.9, 0.25),
    "loudness": (-8.2, 1.2, 2.6, 1.6),
    "tempo": (121.0, 0.0, 29.0, 6.0),
    "duration": (np.log(3.4), 0.02, 0.28, 0.15),
}
# Genre shifts of style, same scales as STYLE.
GENRE_STYLE: dict[str, dict[str, float]] = {
    "hip hop": {"danceability": 0.5, "speechiness": 1.4, "acousticness": -0.4, "valence": -0.2},
    "latin": {"danceability": 0.7, "valence": 0.5, "energy": 0.3},
    "electronic": {"danceability": 0.4, "energy": 0.7, "instrumentalness": 1.5, "acousticness": -1.0},
    "rock": {"energy": 0.8, "loudness": 1.5, "acousticness": -0.6, "danceability": -0.4},
    "metal": {"energy": 2.0, "loudness": 2.5, "acousticness": -1.5, "danceability": -0.8, "valence": -0.5},
    "folk & acoustic": {"acousticness": 2.0, "energy": -0.9, "loudness": -3.0},
    "jazz & blues": {"acousticness": 1.5, "instrumentalness": 2.0, "energy": -0.8, "loudness": -4.0},
    "classical & soundtrack": {"acousticness": 2.5, "instrumentalness": 4.0, "energy": -1.8, "loudness": -9.0,
                               "danceability": -1.2},
    "country": {"acousticness": 0.5, "valence": 0.3},
    "r&b": {"danceability": 0.2, "energy": -0.3},
    "reggae & world": {"danceability": 0.6, "valence": 0.4},
}
EXPLICIT_BASE = {"hip hop": 1.6, "latin": -0.3, "r&b": -0.4, "metal": -0.8}


@dataclass(frozen=True)
class CausalTruth:
    """The true causal effects built into a simulated catalogue.

    Attributes
    ----------
    effects
        Average marginal effect on observed (clipped) popularity, points per unit of each driver.
    structural
        The coefficient on latent popularity, before clipping and dead tracks.
    effects_by_family
        ``effects`` restricted to the tracks of each genre family (danceability differs by family).
    units
        What "+1 unit" means for each driver.
    """

    effects: dict[str, float]
    structural: dict[str, float]
    effects_by_family: dict[str, dict[str, float]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=lambda: dict(DRIVER_UNITS))
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"effects": self.effects, "structural": self.structural,
                "effects_by_family": self.effects_by_family, "units": self.units, "seed": self.seed,
                "definition": "average marginal effect on observed popularity (points per unit)"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CausalTruth:
        return cls(effects=dict(data["effects"]), structural=dict(data["structural"]),
                   effects_by_family={k: dict(v) for k, v in data.get("effects_by_family", {}).items()},
                   units=dict(data.get("units", DRIVER_UNITS)), seed=data.get("seed"))


class SimulatedCatalog(NamedTuple):
    """A canonical track table and the causal truth behind it (unpacks as ``tracks, truth``)."""

    tracks: pd.DataFrame
    truth: CausalTruth


_BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype="S1")


def _spotify_like_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n distinct 22-character base62 ids, like Spotify's."""
    chars = _BASE62[rng.integers(0, 62, size=(n, 22))]
    ids = chars.view("S22").ravel().astype(str)
    if len(pd.unique(ids)) != n:  # astronomically unlikely; regenerate rather than hand out a duplicate
        return _spotify_like_ids(rng, n)
    return ids


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def simulate_catalog(n_artists: int = 300, tracks_per_artist: int = 60, seed: int = 0) -> SimulatedCatalog:
    """Simulate a catalogue of ``n_artists * tracks_per_artist`` tracks with known causal effects.

    Parameters
    ----------
    n_artists, tracks_per_artist
        Size of the catalogue. Marginals are calibrated to the catalog-2022 dataset (see docs/simulation.md).
    seed
        Same seed, same table and truth.

    Returns
    -------
    SimulatedCatalog
        ``(tracks, truth)``: a canonical table (validated dtypes) and its :class:`CausalTruth`.
    """
    if n_artists < 1 or tracks_per_artist < 1:
        raise ValueError("n_artists and tracks_per_artist must be at least 1")
    rng = np.random.default_rng(seed)
    n = n_artists * tracks_per_artist
    artist_of = np.repeat(np.arange(n_artists), tracks_per_artist)

    # Artist level.
    family_names = list(FAMILIES)
    shares = np.array([FAMILIES[f][0] for f in family_names])
    artist_family = rng.choice(len(family_names), size=n_artists, p=shares / shares.sum())
    appeal = rng.normal(size=n_artists)
    log_followers = 6.46 + 0.55 * appeal + rng.normal(0, 0.45, n_artists)
    followers = np.round(10 ** np.clip(log_followers, 1.0, 8.3)).astype("float64")
    career_years = rng.uniform(1.0, 22.0, n_artists)
    artist_residual = rng.normal(0, 4.0, n_artists)
    explicit_propensity = (-1.4 + np.array([EXPLICIT_BASE.get(family_names[f], 0.0) for f in artist_family])
                           + 0.4 * appeal + rng.normal(0, 0.8, n_artists))

    # Track level: release date (recent releases more common), then features.
    fam = artist_family[artist_of]
    age_years = career_years[artist_of] * rng.beta(1.0, 2.2, n)
    recency = -(age_years - 5.0)  # newer tracks are louder and shorter
    features: dict[str, np.ndarray] = {}
    for name, (centre, loading, within_sd, between_sd) in STYLE.items():
        genre_shift = np.array([GENRE_STYLE.get(f, {}).get(name, 0.0) for f in family_names])
        artist_mean = centre + loading * appeal + genre_shift[artist_family] + rng.normal(0, between_sd, n_artists)
        features[name] = artist_mean[artist_of] + rng.normal(0, within_sd, n)
    features["loudness"] = features["loudness"] + 0.12 * recency
    features["duration"] = features["duration"] - 0.01 * recency

    x: dict[str, np.ndarray] = {}
    for name in ("danceability", "energy", "valence", "acousticness", "speechiness", "instrumentalness",
                 "liveness"):
        x[name] = np.round(_sigmoid(features[name]), 4)
    x["loudness"] = np.round(np.clip(features["loudness"], -45.0, -0.5), 3)
    x["tempo"] = np.round(np.clip(features["tempo"], 55.0, 215.0), 3)
    x["duration_min"] = np.clip(np.exp(features["duration"]), 0.6, 15.0)
    duration_ms = np.round(x["duration_min"] * 60000.0)
    x["duration_min"] = duration_ms / 60000.0
    x["explicit"] = (rng.random(n) < _sigmoid(explicit_propensity[artist_of] + rng.normal(0, 0.5, n))).astype(float)
    x["mode"] = (rng.random(n) < 0.62).astype(float)
    key = rng.integers(0, 12, n).astype(float)
    time_signature = rng.choice([4.0, 3.0, 5.0, 1.0], size=n, p=[0.9, 0.06, 0.03, 0.01])

    # Popularity.
    centres = {"danceability": 0.6, "energy": 0.62, "loudness": -8.0, "speechiness": 0.13, "acousticness": 0.27,
               "instrumentalness": 0.08, "liveness": 0.24, "valence": 0.46, "tempo": 121.0, "duration_min": 3.5,
               "explicit": 0.37, "mode": 0.62}
    beta = {d: np.full(n, STRUCTURAL_EFFECTS[d]) for d in DRIVERS}
    # Family masks on the integer code, built once: comparing 1M-long object arrays of names per driver was
    # a quarter of the run time at 1M tracks.
    family_mask = {f: fam == i for i, f in enumerate(family_names)}
    for family, bonus in DANCEABILITY_BONUS.items():
        beta["danceability"][family_mask[family]] += bonus
    family_shift = np.array([FAMILIES[f][1] for f in family_names])
    base = (43.0 + 10.0 * appeal[artist_of] + family_shift[fam] + artist_residual[artist_of]
            - 5.0 * np.log1p(age_years) + rng.normal(0, 10.5, n))
    contribution = {d: beta[d] * (x[d] - centres[d]) for d in DRIVERS}
    latent = base + sum(contribution.values())
    dead = rng.random(n) < 0.015
    popularity = np.where(dead, 0.0, np.clip(np.round(latent), 0, 100))

    # Truth: average marginal effect on observed popularity (derivative of the clipped, live outcome;
    # for binary drivers, the average difference between the flag on and off).
    alive_unclipped = (~dead) & (latent > 0) & (latent < 100)
    truth_effects: dict[str, float] = {}
    per_track: dict[str, np.ndarray] = {}
    for d in DRIVERS:
        if d in BINARY_DRIVERS:
            without = latent - contribution[d]
            on = np.clip(without + beta[d] * (1 - centres[d]), 0, 100)
            off = np.clip(without + beta[d] * (0 - centres[d]), 0, 100)
            per_track[d] = np.where(dead, 0.0, on - off)
        else:
            per_track[d] = beta[d] * alive_unclipped
        truth_effects[d] = float(per_track[d].mean())
    by_family = {
        f: {d: float(per_track[d][family_mask[f]].mean()) for d in DRIVERS}
        for f in family_names if family_mask[f].any()
    }

    # Canonical table.
    artist_ids = _spotify_like_ids(rng, n_artists)
    micro = [FAMILIES[family_names[f]][2] for f in artist_family]
    artist_genres = [list(rng.choice(m, size=rng.integers(1, min(3, len(m)) + 1), replace=False)) for m in micro]
    release = COLLECTED_AT - pd.to_timedelta(np.round(age_years * 365.25), unit="D")
    tracks = pd.DataFrame({
        "track_id": pd.array(_spotify_like_ids(rng, n), dtype="string"),
        "popularity": popularity.astype("int16"),
        "track_name": pd.array(np.char.add("Simulated track ", np.arange(n).astype(str)), dtype="string"),
        "artist_id": pd.array(artist_ids[artist_of], dtype="string"),
        "artist_name": pd.array(np.char.add("Simulated artist ", artist_of.astype(str)), dtype="string"),
        "release_date": release.values.astype("datetime64[ns]"),
        "release_date_precision": pd.array(np.full(n, "day"), dtype="string"),
        "explicit": x["explicit"].astype(bool),
        "artist_followers": followers[artist_of],
        "artist_genres": pd.Series([artist_genres[a] for a in artist_of], dtype=object),
        "genre": pd.array(np.array(family_names, dtype=object)[fam].astype(str), dtype="string"),
        "danceability": x["danceability"].astype("float32"),
        "energy": x["energy"].astype("float32"),
        "key": key.astype("float32"),
        "loudness": x["loudness"].astype("float32"),
        "mode": x["mode"].astype("float32"),
        "speechiness": x["speechiness"].astype("float32"),
        "acousticness": x["acousticness"].astype("float32"),
        "instrumentalness": x["instrumentalness"].astype("float32"),
        "liveness": x["liveness"].astype("float32"),
        "valence": x["valence"].astype("float32"),
        "tempo": x["tempo"].astype("float32"),
        "time_signature": time_signature.astype("float32"),
        "duration_ms": duration_ms.astype("float32"),
        "collected_at": np.full(n, COLLECTED_AT.to_datetime64()).astype("datetime64[ns]"),
    })
    truth = CausalTruth(effects=truth_effects, structural=dict(STRUCTURAL_EFFECTS), effects_by_family=by_family,
                        seed=seed)
    return SimulatedCatalog(tracks, truth)
