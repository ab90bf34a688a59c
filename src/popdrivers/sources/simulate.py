"""A simulated catalogue whose true causal effects are known: the embedded default and the yardstick.

It is built to be able to prove an estimator wrong: it carries the structures that make real catalogues hard
(:class:`CatalogStructure`, each switchable, all on by default except the hidden confounder):

``unequal_artists``
    Heavy-tailed artist sizes: many artists with fewer than 10 tracks, a few with more than 150.
``albums``
    Tracks come out on releases. Each album has a *commercial sound* (more danceable, louder, more energetic,
    less acoustic) and a promotion campaign that grows with it: within an artist, commercial-sounding albums are
    more played for reasons other than their tracks' sound.
``singles``
    Promoted one- or two-track singles, more commercial-sounding than album tracks and played more.
``track_position``
    Early album positions are more energetic and louder (artists sequence them so) and more played.
``versions``
    Live albums, remixes, acoustic and instrumental versions, intros and skits, named in their titles
    ("Song 12 - Live"), each with its own popularity; live versions have high liveness, instrumentals high
    instrumentalness, acoustic versions high acousticness.
``featured_artists``
    Tracks featuring another artist ("(feat. ...)") are more played and more speechy.
``clean_duplicates``
    Clean copies of explicit albums (every track non-explicit), far less played than the explicit originals.
``deluxe_editions``
    Re-releases of an album with bonus tracks: the same recordings (same ISRC) again, less played.
``correlated_features``
    Within-artist feature correlations as in catalog-2022 (energy-loudness 0.68, energy-acousticness -0.49, ...).
``heterogeneous_effects``
    Effects that differ by genre family, with unequal within-album spread: danceability +15 per unit in pop, hip
    hop, latin and electronic and +2 elsewhere, where its within-album spread is twice as wide (so an estimator
    that weights tracks by the within-album variance of danceability leans on the +2 families); speechiness +5 in
    hip hop and -14 elsewhere (hip hop's speechiness also varies most).
``saturating_effects``
    Loudness helps about +1 point per dB in quiet masters and nothing above about -6 dB (a smooth saturation).
``popularity_floor``
    Popularity is floored at 0 and about 13% of tracks sit there: a fifth of releases are forgotten (nobody plays
    them any more), on top of 1.5% "dead" copies. A track at the floor gains nothing from a better sound.
``hidden_confounder``
    A track-level push (label promotion) that makes tracks louder, more danceable and more played, and that the
    table does not show. No design can remove it: it is there to show what the sensitivity analysis is for.

How a track's popularity is made: latent popularity = artist baseline (appeal, genre) + release campaign
(album sound, single promotion, copy penalties, forgotten releases) + release age (nonlinear decay) + track
position + version + featured artist + sum_j f_j(x_j; genre family) [+ hidden push] + noise. Observed popularity
rounds and clips it to 0..100, and 1.5% of tracks are "dead" copies at 0.

The truth (:class:`CausalTruth`) is defined on popularity *as observed* (clipped to 0..100, dead copies at 0),
from the structural model with each track's own noise held fixed: ``effects`` is the average over tracks of the
effect of +1 unit (a central finite difference of observed popularity, per unit; for binary drivers the
difference between the flag on and off), ``curves`` the average change if every track's value were ``v`` instead
of the driver's median. Both are computed from the simulated tracks, so they are exactly the quantities an
estimator should recover. See docs/simulation.md.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from popdrivers import registry
from popdrivers.errors import InputError

COLLECTED_AT = pd.Timestamp("2022-06-01")

# Structural effects on latent popularity, points per unit (units: popdrivers.registry). Zeros are real: energy,
# valence, tempo and mode do nothing, so any estimate far from 0 for them is confounding or noise.
STRUCTURAL_EFFECTS: dict[str, float] = {
    "danceability": 10.0, "energy": 0.0, "loudness": 0.6, "speechiness": -5.0, "acousticness": -4.0,
    "instrumentalness": -8.0, "liveness": -6.0, "valence": 0.0, "tempo": 0.0, "duration_min": -1.5,
    "explicit": 3.0, "mode": 0.0,
}
# The drivers the simulation generates (its own fixed set: a driver registered later is not simulated).
DRIVERS: tuple[str, ...] = tuple(STRUCTURAL_EFFECTS)


def driver_units() -> dict[str, str]:
    """What "+1" means for each simulated driver (from the feature registry)."""
    return {d: registry.spec(d).effect_unit for d in DRIVERS}
# heterogeneous_effects: structural effects per genre family (points per unit) replacing STRUCTURAL_EFFECTS for
# those drivers; families not named get the "*" value. Danceability's within-album spread is multiplied by
# DANCEABILITY_SPREAD in the families where it pays least.
FAMILY_EFFECTS: dict[str, dict[str, float]] = {
    "danceability": {"pop": 15.0, "hip hop": 15.0, "latin": 15.0, "electronic": 15.0, "*": 2.0},
    "speechiness": {"hip hop": 5.0, "*": -14.0},
}
DANCEABILITY_SPREAD = 2.0
# saturating_effects: loudness helps LOUDNESS_MAX_SLOPE points per dB in quiet masters, fading out around
# LOUDNESS_SATURATION dB over LOUDNESS_SATURATION_WIDTH dB: slope(L) = max_slope * sigmoid((saturation - L) / width).
LOUDNESS_MAX_SLOPE = 1.0
LOUDNESS_SATURATION = -7.0
LOUDNESS_SATURATION_WIDTH = 1.5
# popularity_floor: a share of releases nobody plays any more, and the points they lose.
FORGOTTEN_RELEASE_SHARE = 0.2
FORGOTTEN_PENALTY = 50.0
FORGOTTEN_BASE_SHIFT = 9.0   # keeps mean popularity where catalog-2022 has it
DEAD_SHARE = 0.015
# Finite-difference step of the truth, in driver units (the effect is then divided by it: points per unit).
TRUTH_STEP = {"loudness": 0.1, "tempo": 1.0, "duration_min": 0.05}
TRUTH_STEP_DEFAULT = 0.01
TRUTH_CURVE_POINTS = 41

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
    "jazz & blues": (0.02, -4.0, ("jazz", "blues")),
    "classical & soundtrack": (0.01, -4.0, ("soundtrack", "classical")),
    "reggae & world": (0.02, -4.0, ("reggae", "afrobeats")),
}
# Style: (global centre on the model scale, loading on appeal, within-artist sd, between-artist sd).
# 0-1 features live on the logit scale; loudness in dB, tempo in BPM, duration in log-minutes.
STYLE: dict[str, tuple[float, float, float, float]] = {
    "danceability": (0.45, 0.25, 0.62, 0.35),
    "energy": (0.55, 0.30, 0.85, 0.45),
    "loudness": (-8.2, 1.2, 2.2, 1.6),
    "speechiness": (-2.4, 0.05, 0.85, 0.6),
    "acousticness": (-1.6, -0.45, 1.7, 0.9),
    "instrumentalness": (-6.5, -0.3, 2.0, 1.5),
    "liveness": (-1.6, 0.0, 0.8, 0.25),
    "valence": (-0.15, 0.25, 1.0, 0.35),
    "tempo": (121.0, 0.0, 28.0, 6.0),
    "duration": (np.log(3.4), 0.02, 0.26, 0.15),
}
STYLE_NAMES = tuple(STYLE)
# Within-artist correlation of the style deviations (logit scale for 0-1 features, log for duration), measured
# on catalog-2022 (features demeaned within artist), in the order of STYLE.
WITHIN_ARTIST_CORRELATION = np.array([
    [1.00, 0.01, 0.12, 0.07, -0.09, -0.10, -0.21, 0.36, -0.09, -0.08],
    [0.01, 1.00, 0.68, 0.03, -0.49, -0.04, 0.18, 0.25, 0.14, 0.18],
    [0.12, 0.68, 1.00, -0.23, -0.41, -0.17, -0.01, 0.19, 0.11, 0.32],
    [0.07, 0.03, -0.23, 1.00, 0.09, -0.14, 0.13, 0.12, 0.03, -0.26],
    [-0.09, -0.49, -0.41, 0.09, 1.00, -0.03, -0.02, -0.07, -0.12, -0.19],
    [-0.10, -0.04, -0.17, -0.14, -0.03, 1.00, -0.02, -0.13, 0.02, -0.05],
    [-0.21, 0.18, -0.01, 0.13, -0.02, -0.02, 1.00, -0.06, 0.00, 0.04],
    [0.36, 0.25, 0.19, 0.12, -0.07, -0.13, -0.06, 1.00, 0.05, -0.14],
    [-0.09, 0.14, 0.11, 0.03, -0.12, 0.02, 0.00, 0.05, 1.00, 0.05],
    [-0.08, 0.18, 0.32, -0.26, -0.19, -0.05, 0.04, -0.14, 0.05, 1.00],
])
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

# Versions: (title suffix, popularity effect, style shifts). Intros and skits are songs of their own.
VERSION_EFFECTS: dict[str, tuple[str, float, dict[str, float]]] = {
    "live": (" - Live", -6.0, {"liveness": 2.8, "energy": 0.2, "loudness": -1.0, "duration": 0.08,
                              "acousticness": 0.3}),
    "remix": (" - Remix", -4.0, {"danceability": 0.5, "energy": 0.4, "tempo": 8.0, "acousticness": -0.8}),
    "acoustic": (" - Acoustic Version", -5.0, {"acousticness": 2.5, "energy": -1.0, "loudness": -4.0}),
    "instrumental": (" (Instrumental)", -14.0, {"instrumentalness": 6.0, "speechiness": -1.5}),
    "interlude": ("", -10.0, {"speechiness": 1.5, "duration": -1.0, "instrumentalness": 1.0}),
}
VERSION_CODES = ("original", *VERSION_EFFECTS)
# Album sound: the shift per unit of an album's commercial sound, and the campaign it earns (points per unit).
COMMERCIAL_SOUND = {"danceability": 0.25, "energy": 0.25, "loudness": 1.0, "acousticness": -0.4, "valence": 0.15,
                    "duration": -0.03}
CAMPAIGN_PER_COMMERCIAL = 5.0
CAMPAIGN_NOISE_SD = 6.0
SINGLE_PROMOTION = 7.0
B_SIDE_PENALTY = -6.0
CLEAN_COPY_PENALTY = -12.0
DELUXE_COPY_PENALTY = -6.0
FEATURED_EFFECT = 4.0
FEATURED_STYLE = {"speechiness": 0.6, "danceability": 0.2}
# Early positions: style and popularity shifts times exp(-(position - 1) / decay).
POSITION_STYLE = {"energy": 0.35, "loudness": 0.8, "danceability": 0.15}
POSITION_POPULARITY = 4.0
POSITION_DECAY = 2.5
# Instrumental music is its own mode, not a tail: some of an artist's recordings have no vocals at all (more in
# electronic, jazz and classical); they get this much more instrumentalness on the logit scale.
INSTRUMENTAL_MODE_SHIFT = 7.5
INSTRUMENTAL_MODE_BASE = -3.0
INSTRUMENTAL_MODE_GENRE = {"electronic": 1.8, "jazz & blues": 2.0, "classical & soundtrack": 3.0, "rock": 0.4}
HIDDEN_STYLE = {"loudness": 1.2, "danceability": 0.3, "energy": 0.2}
HIDDEN_POPULARITY = 5.0
TRACK_NOISE_SD = 4.5


@dataclass(frozen=True)
class CatalogStructure:
    """The structures a simulated catalogue carries (module docstring); all on except the hidden confounder."""

    unequal_artists: bool = True
    albums: bool = True
    singles: bool = True
    track_position: bool = True
    versions: bool = True
    featured_artists: bool = True
    clean_duplicates: bool = True
    deluxe_editions: bool = True
    correlated_features: bool = True
    heterogeneous_effects: bool = True
    saturating_effects: bool = True
    popularity_floor: bool = True
    hidden_confounder: bool = False

    @classmethod
    def plain(cls) -> CatalogStructure:
        """Every switch off: no release structure, independent features, equal sizes, homogeneous linear effects,
        no floor beyond the few clipped and dead tracks."""
        return cls(**{f.name: False for f in fields(cls)})

    def to_dict(self) -> dict[str, bool]:
        return asdict(self)


def _average_over(track_effects: dict[str, np.ndarray], rows: Any) -> dict[str, float]:
    return {d: float(np.mean(np.asarray(v)[rows])) for d, v in track_effects.items()}


@dataclass(frozen=True)
class CausalTruth:
    """The true causal effects built into a simulated catalogue, on popularity as observed (0..100).

    Attributes
    ----------
    effects
        Average over the catalogue's tracks of the effect of +1 unit of each driver on observed popularity
        (clipped, dead copies at 0), points per unit: a central finite difference of the structural model with each
        track's noise held fixed (binary drivers: the flag on minus off).
    structural
        The average structural slope on latent popularity, before clipping and dead tracks.
    effects_by_family
        ``effects`` averaged over the tracks of each genre family.
    curves
        Per continuous driver: ``{"reference": median, "values": [...], "effects": [...]}``, the average change in
        observed popularity if every track's value were ``value`` instead of the reference (a grid from the 1st to
        the 99th percentile); :meth:`curve_at` reads it at other values and references.
    heterogeneous
        Per driver, whether its structural effect differs between tracks (by genre family or by its own value);
        the floor at 0 makes every real effect vary a little on observed popularity besides.
    track_effects
        Per driver, each track's own effect on observed popularity (the terms ``effects`` averages; the table's row
        order): what the truth is for any subset of tracks (:meth:`average_over`). Not serialised by
        :meth:`to_dict`.
    units
        What "+1 unit" means for each driver.
    structure
        The switches of :class:`CatalogStructure` the catalogue was made with.
    """

    effects: dict[str, float]
    structural: dict[str, float]
    effects_by_family: dict[str, dict[str, float]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=driver_units)
    seed: int | None = None
    structure: dict[str, bool] = field(default_factory=dict)
    curves: dict[str, dict[str, Any]] = field(default_factory=dict)
    heterogeneous: dict[str, bool] = field(default_factory=dict)
    track_effects: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    def average_over(self, rows: Any) -> dict[str, float]:
        """The true average effect of each driver over the tracks ``rows`` selects (a boolean mask or positions
        in the table's row order)."""
        if not self.track_effects:
            raise ValueError("this truth has no per-track effects (it was read back from a dict)")
        return _average_over(self.track_effects, rows)

    def curve_at(self, driver: str, values: Any, reference: float | None = None) -> np.ndarray:
        """The true dose-response at ``values`` relative to ``reference`` (default: the stored median), by linear
        interpolation of the stored grid (the grid is fine: 41 points between the 1st and 99th percentile)."""
        curve = self.curves[driver]
        grid, effects = np.asarray(curve["values"], dtype="float64"), np.asarray(curve["effects"], dtype="float64")
        at = np.interp(np.asarray(values, dtype="float64"), grid, effects)
        if reference is None:
            return at
        return at - float(np.interp(reference, grid, effects))

    def to_dict(self) -> dict[str, Any]:
        return {"effects": self.effects, "structural": self.structural,
                "effects_by_family": self.effects_by_family, "units": self.units, "seed": self.seed,
                "structure": self.structure, "curves": self.curves, "heterogeneous": self.heterogeneous,
                "definition": "average over tracks of the effect of +1 unit on observed popularity (0-100, floor "
                              "at 0; points per unit, finite differences of the structural model); curves: average "
                              "change if every track had the value instead of the reference (median)"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CausalTruth:
        return cls(effects=dict(data["effects"]), structural=dict(data["structural"]),
                   effects_by_family={k: dict(v) for k, v in data.get("effects_by_family", {}).items()},
                   units=dict(data.get("units") or driver_units()), seed=data.get("seed"),
                   structure=dict(data.get("structure", {})),
                   curves={k: {"reference": float(v["reference"]), "values": [float(x) for x in v["values"]],
                               "effects": [float(x) for x in v["effects"]]}
                           for k, v in data.get("curves", {}).items()},
                   heterogeneous={k: bool(v) for k, v in data.get("heterogeneous", {}).items()})


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


def _artist_sizes(rng: np.random.Generator, n_artists: int, tracks_per_artist: int, unequal: bool) -> np.ndarray:
    """Tracks per artist, summing to ``n_artists * tracks_per_artist``; heavy-tailed when ``unequal``."""
    if not unequal or n_artists == 1 or tracks_per_artist == 1:
        return np.full(n_artists, tracks_per_artist, dtype=np.int64)
    weights = np.minimum(rng.lognormal(0.0, 1.3, n_artists), 12.0)
    extra = n_artists * (tracks_per_artist - 1)
    return 1 + rng.multinomial(extra, weights / weights.sum())


@dataclass
class _Plan:
    """The release structure of a catalogue, one entry per track / recording / release (filled artist by artist)."""

    # tracks
    track_release: list[int] = field(default_factory=list)
    track_position: list[int] = field(default_factory=list)
    track_recording: list[int] = field(default_factory=list)
    # recordings (a song in one version; copies of a release reuse them)
    rec_artist: list[int] = field(default_factory=list)
    rec_song: list[int] = field(default_factory=list)
    rec_version: list[int] = field(default_factory=list)       # index into VERSION_CODES
    rec_parent: list[int] = field(default_factory=list)        # the original recording of a version, else -1
    rec_release: list[int] = field(default_factory=list)       # release it first came out on
    rec_position: list[int] = field(default_factory=list)      # its position there
    # releases
    rel_artist: list[int] = field(default_factory=list)
    rel_kind: list[str] = field(default_factory=list)          # album, single, live, deluxe, clean
    rel_parent: list[int] = field(default_factory=list)        # the album a deluxe or clean copy copies, else -1
    rel_number: list[int] = field(default_factory=list)        # numbering within the artist, for names


def _plan_releases(rng: np.random.Generator, sizes: np.ndarray, s: CatalogStructure) -> _Plan:
    """Lay each artist's track slots out as releases: albums, singles, live albums, deluxe and clean copies."""
    plan = _Plan()
    version_code = {name: i for i, name in enumerate(VERSION_CODES)}

    def new_recording(artist: int, song: int, version: str, parent: int, release: int, position: int) -> int:
        plan.rec_artist.append(artist)
        plan.rec_song.append(song)
        plan.rec_version.append(version_code[version])
        plan.rec_parent.append(parent)
        plan.rec_release.append(release)
        plan.rec_position.append(position)
        return len(plan.rec_artist) - 1

    def new_release(artist: int, kind: str, parent: int, number: int) -> int:
        plan.rel_artist.append(artist)
        plan.rel_kind.append(kind)
        plan.rel_parent.append(parent)
        plan.rel_number.append(number)
        return len(plan.rel_artist) - 1

    def place(release: int, recordings: list[int]) -> None:
        plan.track_release.extend([release] * len(recordings))
        plan.track_position.extend(range(1, len(recordings) + 1))
        plan.track_recording.extend(recordings)

    for artist, slots in enumerate(sizes.tolist()):
        songs = 0
        originals: list[int] = []
        number = 0
        while slots > 0:
            number += 1
            draw = rng.random()
            if s.singles and (draw < 0.3 or slots <= 2):
                size = min(slots, 1 if rng.random() < 0.7 else 2)
                release = new_release(artist, "single", -1, number)
                recs = [new_recording(artist, songs + k, "original", -1, release, k + 1) for k in range(size)]
                if size == 2 and s.versions and rng.random() < 0.3:  # B-side remix of the A-side
                    recs[1] = new_recording(artist, songs, "remix", recs[0], release, 2)
                songs += size
                originals += [r for r in recs if plan.rec_parent[r] < 0]
                place(release, recs)
                slots -= size
                continue
            if s.versions and draw > 0.9 and len(originals) >= 5:
                size = min(slots, int(rng.integers(8, 15)), len(originals))
                release = new_release(artist, "live", -1, number)
                parents = rng.choice(originals, size=size, replace=False).tolist()
                recs = [new_recording(artist, plan.rec_song[p], "live", p, release, k + 1)
                        for k, p in enumerate(parents)]
                place(release, recs)
                slots -= size
                continue
            size = min(slots, int(rng.integers(7, 17)))
            if not s.singles and slots - size < 3:
                size = slots  # no singles to take the last few tracks: the album does
            release = new_release(artist, "album", -1, number)
            recs = []
            for k in range(size):
                position = k + 1
                if s.versions and ((position == 1 and rng.random() < 0.12) or (position > 3 and rng.random() < 0.02)):
                    recs.append(new_recording(artist, songs, "interlude", -1, release, position))
                elif s.versions and position > size - 2 and recs and rng.random() < 0.35:
                    parent = int(rng.choice([r for r in recs if plan.rec_parent[r] < 0 and
                                             VERSION_CODES[plan.rec_version[r]] == "original"] or recs))
                    version = ("remix", "acoustic", "instrumental")[int(rng.integers(0, 3))]
                    recs.append(new_recording(artist, plan.rec_song[parent], version, parent, release, position))
                else:
                    recs.append(new_recording(artist, songs, "original", -1, release, position))
                songs += 1
            originals += [r for r in recs if VERSION_CODES[plan.rec_version[r]] == "original"]
            place(release, recs)
            slots -= size
            if s.deluxe_editions and slots >= size + 2 and rng.random() < 0.08:
                bonus = [new_recording(artist, songs + k, "original", -1, -1, size + k + 1) for k in range(2)]
                songs += 2
                deluxe = new_release(artist, "deluxe", release, number)
                for r in bonus:
                    plan.rec_release[r] = deluxe
                place(deluxe, recs + bonus)
                slots -= size + 2
            if s.clean_duplicates and slots >= size and rng.random() < 0.1:
                # Decided before explicit flags are drawn; a clean copy of an album with no explicit track is
                # just a second copy (the explicit flag then does not vary between them).
                clean = new_release(artist, "clean", release, number)
                place(clean, recs)
                slots -= size
    return plan


# Where each driver's effect is centred (its contribution is 0 there): near the catalogue's means.
CENTRES = {"danceability": 0.6, "energy": 0.62, "loudness": -8.0, "speechiness": 0.13, "acousticness": 0.27,
           "instrumentalness": 0.08, "liveness": 0.24, "valence": 0.46, "tempo": 121.0, "duration_min": 3.5,
           "explicit": 0.37, "mode": 0.62}


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


@dataclass(frozen=True)
class _EffectModel:
    """The drivers' structural effects on latent popularity, per track: ``f_j(x; family)`` and its slope."""

    beta: dict[str, np.ndarray]          # per-track slope of the linear drivers
    saturating: bool                     # loudness saturates (its slope is a sigmoid of its level)
    family_varying: frozenset[str]

    @classmethod
    def build(cls, structural: dict[str, float], family: np.ndarray, family_effects: bool,
              saturating: bool) -> _EffectModel:
        beta = {d: np.full(len(family), structural[d]) for d in DRIVERS}
        varying = set()
        if family_effects:
            for driver, per_family in FAMILY_EFFECTS.items():
                beta[driver] = np.array([per_family.get(f, per_family["*"]) for f in family], dtype="float64")
                varying.add(driver)
        return cls(beta, saturating, frozenset(varying))

    def _loudness_shape(self, values: np.ndarray) -> np.ndarray:
        w = LOUDNESS_SATURATION_WIDTH
        return LOUDNESS_MAX_SLOPE * (values - w * _softplus((values - LOUDNESS_SATURATION) / w))

    def contribution(self, driver: str, values: np.ndarray) -> np.ndarray:
        if driver == "loudness" and self.saturating:
            return self._loudness_shape(values) - self._loudness_shape(np.full(1, CENTRES[driver]))
        return self.beta[driver] * (values - CENTRES[driver])

    def slope(self, driver: str, values: np.ndarray) -> np.ndarray:
        """d f_j / d x_j per track, on latent popularity."""
        if driver == "loudness" and self.saturating:
            return LOUDNESS_MAX_SLOPE * _sigmoid((LOUDNESS_SATURATION - values) / LOUDNESS_SATURATION_WIDTH)
        return self.beta[driver] * np.ones_like(values)

    def varies(self, driver: str) -> bool:
        return driver in self.family_varying or (driver == "loudness" and self.saturating)

    def total(self, x: dict[str, np.ndarray]) -> np.ndarray:
        return sum(self.contribution(d, x[d]) for d in DRIVERS)

    def truth(self, base: np.ndarray, x: dict[str, np.ndarray], dead: np.ndarray) \
            -> tuple[dict[str, float], dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Average effects, per-track effects and dose-response curves on observed popularity (clipped, dead at 0),
        each track's noise held fixed: central differences for continuous drivers, on minus off for binary ones."""
        total = base + self.total(x)

        def observed(driver: str, values: np.ndarray) -> np.ndarray:
            latent = total - self.contribution(driver, x[driver]) + self.contribution(driver, values)
            return np.where(dead, 0.0, np.clip(latent, 0.0, 100.0))

        effects, per_track, curves = {}, {}, {}
        for d in DRIVERS:
            if registry.spec(d).binary:  # on minus off (explicit, mode)
                per_track[d] = observed(d, np.ones(len(total))) - observed(d, np.zeros(len(total)))
            else:
                h = TRUTH_STEP.get(d, TRUTH_STEP_DEFAULT)
                per_track[d] = (observed(d, x[d] + h / 2) - observed(d, x[d] - h / 2)) / h
                reference = float(np.median(x[d]))
                grid = np.linspace(*np.quantile(x[d], [0.01, 0.99]), TRUTH_CURVE_POINTS)
                at_reference = observed(d, np.full(len(total), reference))
                curve = [float(np.mean(observed(d, np.full(len(total), v)) - at_reference)) for v in grid]
                curves[d] = {"reference": reference, "values": [float(v) for v in grid], "effects": curve}
            effects[d] = float(per_track[d].mean())
        return effects, per_track, curves


# measured=True: popdrivers' descriptors in place of Spotify's features, each an exact linear relabelling
# ``descriptor = offset + scale * feature`` of one simulated feature (so its true effect is the feature's divided
# by ``scale``), on the descriptor's own scale (popdrivers.registry).
MEASURED_DESCRIPTORS: dict[str, tuple[str, float, float]] = {
    "rhythm_regularity": ("danceability", 0.5, 2.5),     # DFA score, music mostly 0.5-3
    "onset_rate": ("energy", 1.0, 6.0),                  # onsets per second
    "percussive_share": ("acousticness", 1.0, -1.0),     # acoustic tracks are the least percussive
    "spectral_flatness": ("speechiness", 0.05, 0.35),    # 0-1, typical music 0.05-0.4
    "beat_confidence": ("instrumentalness", 5.0, -4.5),  # 0-5.32
    "loudness_range_lu": ("liveness", 2.0, 14.0),        # LU: live recordings are the most dynamic
    "key_strength": ("valence", 0.3, 0.6),               # 0-1
}
# A descriptor with no effect at all (no simulated feature behind it): brightness follows energy, with noise.
BRIGHTNESS_HZ = (1200.0, 1800.0, 150.0)                  # offset, per unit of energy, noise sd
SIMULATED_FEATURES_SOURCE = "audio:simulated-preview:popdrivers-simulate-1"


def _measured(catalog: SimulatedCatalog, seed: int) -> SimulatedCatalog:
    """The catalogue as popdrivers' audio analysis would have measured it: descriptors for Spotify's 0-1 features
    (:data:`MEASURED_DESCRIPTORS`), the physical quantities kept, ``features_source`` set; the truth follows."""
    tracks, truth = catalog
    tracks = tracks.copy()
    rng = np.random.default_rng([seed, 21])  # its own stream: the rest of the catalogue is the default one
    energy = tracks["energy"].to_numpy(dtype="float64")
    offset, slope, sd = BRIGHTNESS_HZ
    spotify_only = [name for name, *_ in MEASURED_DESCRIPTORS.values()]
    insert_at = tracks.columns.get_loc("duration_ms")
    for name, (feature, low, scale) in MEASURED_DESCRIPTORS.items():
        values = low + scale * tracks[feature].to_numpy(dtype="float64")
        tracks.insert(insert_at, name, values.astype("float32"))
        insert_at += 1
    brightness = np.clip(offset + slope * energy + rng.normal(0.0, sd, len(tracks)), 200.0, 8000.0)
    tracks.insert(insert_at, "brightness_hz", brightness.astype("float32"))
    tracks = tracks.drop(columns=spotify_only)
    tracks["features_source"] = pd.array(np.full(len(tracks), SIMULATED_FEATURES_SOURCE), dtype="string")

    def relabel(values: dict[str, Any], per_unit: bool) -> dict[str, Any]:
        out = {}
        for name, (feature, _, scale) in MEASURED_DESCRIPTORS.items():
            if feature in values:
                out[name] = values[feature] / scale if per_unit else values[feature]
        out["brightness_hz"] = 0.0 if per_unit else False
        out.update({k: v for k, v in values.items() if k not in spotify_only})
        return out

    track_effects = relabel(truth.track_effects, True)
    track_effects["brightness_hz"] = np.zeros(len(tracks))
    curves = {k: v for k, v in truth.curves.items() if k not in spotify_only}
    for name, (feature, low, scale) in MEASURED_DESCRIPTORS.items():
        if feature in truth.curves:
            curve = truth.curves[feature]
            pairs = sorted(zip((low + scale * v for v in curve["values"]), curve["effects"], strict=True))
            curves[name] = {"reference": low + scale * curve["reference"], "values": [float(v) for v, _ in pairs],
                            "effects": [float(e) for _, e in pairs]}
    units = {d: registry.spec(d).effect_unit for d in relabel(truth.effects, True)}
    return SimulatedCatalog(tracks, CausalTruth(
        effects=relabel(truth.effects, True), structural=relabel(truth.structural, True),
        effects_by_family={f: relabel(v, True) for f, v in truth.effects_by_family.items()}, units=units,
        seed=truth.seed, structure=truth.structure, curves=curves,
        heterogeneous=relabel(truth.heterogeneous, False), track_effects=track_effects))


def simulate_catalog(n_artists: int = 300, tracks_per_artist: int = 60, seed: int = 0,
                     structure: CatalogStructure | None = None,
                     effects: dict[str, float] | None = None, *, measured: bool = False) -> SimulatedCatalog:
    """Simulate a catalogue of ``n_artists * tracks_per_artist`` tracks with known causal effects.

    Parameters
    ----------
    n_artists, tracks_per_artist
        Size of the catalogue (``tracks_per_artist`` is the mean when artist sizes are unequal). Marginals are
        calibrated to the catalog-2022 dataset (see docs/simulation.md).
    seed
        Same seed, same table and truth.
    structure
        Which real-data structures to include (default: :class:`CatalogStructure`, all but the hidden
        confounder).
    effects
        Structural effects per driver replacing :data:`STRUCTURAL_EFFECTS` (missing drivers: 0), linear and the
        same for every track (the family effects and the loudness saturation apply only with the default effects).
        ``{}`` makes a catalogue where nothing is a driver.
    measured
        Emit the catalogue as popdrivers' audio analysis of its previews would give it (off by default: the
        default catalogue is unchanged): popdrivers' descriptors in place of Spotify's 0-1 features, each an exact
        linear relabelling of one of them (:data:`MEASURED_DESCRIPTORS`; ``brightness_hz`` follows energy and has
        no effect), tempo, key, mode, loudness and duration as before, and ``features_source`` =
        :data:`SIMULATED_FEATURES_SOURCE`. The truth is on the descriptors (an effect per unit of the feature
        divided by the relabelling's scale).

    Returns
    -------
    SimulatedCatalog
        ``(tracks, truth)``: a canonical table (validated dtypes) and its :class:`CausalTruth`.
    """
    if n_artists < 1 or tracks_per_artist < 1:
        raise InputError("n_artists and tracks_per_artist must be at least 1")
    s = structure if structure is not None else CatalogStructure()
    structural = dict(STRUCTURAL_EFFECTS) if effects is None else {d: float(effects.get(d, 0.0)) for d in DRIVERS}
    rng = np.random.default_rng(seed)

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
    artist_style = np.empty((n_artists, len(STYLE)))
    for j, (name, (centre, loading, _, between_sd)) in enumerate(STYLE.items()):
        genre_shift = np.array([GENRE_STYLE.get(f, {}).get(name, 0.0) for f in family_names])
        artist_style[:, j] = centre + loading * appeal + genre_shift[artist_family] + rng.normal(0, between_sd,
                                                                                                  n_artists)
    instrumental_rate = _sigmoid(INSTRUMENTAL_MODE_BASE + np.array(
        [INSTRUMENTAL_MODE_GENRE.get(family_names[f], 0.0) for f in artist_family]) + rng.normal(0, 1.0, n_artists))
    featured_rate = np.where(np.array(family_names)[artist_family] == "hip hop", 0.35, 0.12) \
        if s.featured_artists else np.zeros(n_artists)

    sizes = _artist_sizes(rng, n_artists, tracks_per_artist, s.unequal_artists)
    plan = _plan_releases(rng, sizes, s)
    n = len(plan.track_release)
    n_rec, n_rel = len(plan.rec_artist), len(plan.rel_artist)

    # Release level: kind, age, commercial sound and campaign.
    rel_artist = np.asarray(plan.rel_artist)
    rel_kind = np.asarray(plan.rel_kind, dtype=object)
    rel_parent = np.asarray(plan.rel_parent)
    has_parent = rel_parent >= 0
    rel_age = career_years[rel_artist] * rng.beta(1.0, 2.2, n_rel)
    is_single = rel_kind == "single"
    is_live = rel_kind == "live"
    commercial = rng.normal(0.0, 1.0, n_rel) + 0.8 * is_single - 0.5 * is_live
    campaign = CAMPAIGN_PER_COMMERCIAL * commercial + rng.normal(0.0, CAMPAIGN_NOISE_SD, n_rel)
    if not s.albums:
        commercial = np.zeros(n_rel)
        campaign = np.zeros(n_rel)
    if s.singles:
        campaign = campaign + SINGLE_PROMOTION * is_single
    # Copies share their album's sound; a deluxe edition comes out later, a clean copy the same day.
    commercial[has_parent] = commercial[rel_parent[has_parent]]
    rel_age[has_parent] = rel_age[rel_parent[has_parent]]
    deluxe = rel_kind == "deluxe"
    rel_age[deluxe] = np.maximum(rel_age[deluxe] - rng.uniform(0.3, 2.0, int(deluxe.sum())), 0.0)
    penalty = np.where(deluxe, DELUXE_COPY_PENALTY, 0.0) + np.where(rel_kind == "clean", CLEAN_COPY_PENALTY, 0.0)
    campaign[has_parent] = campaign[rel_parent[has_parent]] + penalty[has_parent]
    # Forgotten releases (drawn always, so switching the floor off changes nothing else); copies share the fate
    # of their album.
    forgotten = rng.random(n_rel) < FORGOTTEN_RELEASE_SHARE
    forgotten[has_parent] = forgotten[rel_parent[has_parent]]
    if s.popularity_floor:
        campaign = campaign - FORGOTTEN_PENALTY * forgotten

    # Recording level: sound, explicit lyrics, featured artists, the hidden push.
    rec_artist = np.asarray(plan.rec_artist)
    rec_version = np.asarray(plan.rec_version)
    rec_parent = np.asarray(plan.rec_parent)
    rec_release = np.asarray(plan.rec_release)
    rec_position = np.asarray(plan.rec_position, dtype="float64")
    within_sd = np.array([v[2] for v in STYLE.values()])
    correlation = WITHIN_ARTIST_CORRELATION if s.correlated_features else np.eye(len(STYLE))
    deviation = rng.multivariate_normal(np.zeros(len(STYLE)), correlation, size=n_rec, method="cholesky") * within_sd
    index = {name: j for j, name in enumerate(STYLE_NAMES)}
    family_effects = s.heterogeneous_effects and effects is None
    if family_effects:
        # Danceability varies twice as much between the tracks of an album where it pays least.
        low_payoff = np.array([FAMILY_EFFECTS["danceability"].get(f, FAMILY_EFFECTS["danceability"]["*"])
                               < STRUCTURAL_EFFECTS["danceability"] for f in family_names])
        deviation[:, index["danceability"]] *= np.where(low_payoff[artist_family[rec_artist]], DANCEABILITY_SPREAD,
                                                        1.0)
    sound = artist_style[rec_artist] + deviation
    for name, shift in COMMERCIAL_SOUND.items():
        sound[:, index[name]] += shift * commercial[rec_release]
    if s.track_position:
        early = np.exp(-(rec_position - 1.0) / 3.0) * (~is_single[rec_release])
        for name, shift in POSITION_STYLE.items():
            sound[:, index[name]] += shift * early
    sound[:, index["instrumentalness"]] += INSTRUMENTAL_MODE_SHIFT * (rng.random(n_rec) < instrumental_rate[rec_artist])
    featured = (rng.random(n_rec) < featured_rate[rec_artist]).astype("float64")
    for name, shift in FEATURED_STYLE.items():
        sound[:, index[name]] += shift * featured
    hidden = rng.normal(0.0, 1.0, n_rec) if s.hidden_confounder else np.zeros(n_rec)
    for name, shift in HIDDEN_STYLE.items():
        sound[:, index[name]] += shift * hidden
    explicit_rec = rng.random(n_rec) < _sigmoid(explicit_propensity[rec_artist] + rng.normal(0, 0.5, n_rec))
    # A version is its original's recording, changed: start from the original's sound and shift it.
    version_effect = np.zeros(n_rec)
    is_version = rec_parent >= 0
    parents = rec_parent[is_version]
    sound[is_version] = sound[parents] + 0.25 * deviation[is_version]
    explicit_rec[is_version] = explicit_rec[parents]
    featured[is_version] = featured[parents]
    for code, name in enumerate(VERSION_CODES):
        if name == "original":
            continue
        mask = rec_version == code
        _, effect, shifts = VERSION_EFFECTS[name]
        version_effect[mask] = effect
        for feature, shift in shifts.items():
            sound[mask, index[feature]] += shift
    explicit_rec[rec_version == VERSION_CODES.index("instrumental")] = False

    # Track level.
    track_release = np.asarray(plan.track_release)
    track_recording = np.asarray(plan.track_recording)
    position = np.asarray(plan.track_position, dtype="float64")
    artist_of = rel_artist[track_release]
    fam = artist_family[artist_of]
    kind = rel_kind[track_release]
    tsound = sound[track_recording]
    x: dict[str, np.ndarray] = {}
    for name in ("danceability", "energy", "valence", "acousticness", "speechiness", "instrumentalness",
                 "liveness"):
        x[name] = np.round(_sigmoid(tsound[:, index[name]]), 4)
    age_years = rel_age[track_release]
    recency = -(age_years - 5.0)  # newer releases are louder and shorter (the loudness war)
    x["loudness"] = np.round(np.clip(tsound[:, index["loudness"]] + 0.12 * recency, -45.0, -0.5), 3)
    x["tempo"] = np.round(np.clip(tsound[:, index["tempo"]], 55.0, 215.0), 3)
    duration_ms = np.round(np.clip(np.exp(tsound[:, index["duration"]] - 0.01 * recency), 0.6, 15.0) * 60000.0)
    x["duration_min"] = duration_ms / 60000.0
    x["explicit"] = (explicit_rec[track_recording] & (kind != "clean")).astype(float)
    x["mode"] = (rng.random(n) < 0.62).astype(float)
    key = rng.integers(0, 12, n).astype(float)
    time_signature = rng.choice([4.0, 3.0, 5.0, 1.0], size=n, p=[0.9, 0.06, 0.03, 0.01])

    # Popularity.
    family_shift = np.array([FAMILIES[f][1] for f in family_names])
    position_effect = np.zeros(n)
    if s.track_position:
        position_effect = POSITION_POPULARITY * np.exp(-(position - 1.0) / POSITION_DECAY) - 1.2
        position_effect = np.where((kind == "single") & (position > 1), B_SIDE_PENALTY, position_effect)
    base = (42.0 + (FORGOTTEN_BASE_SHIFT if s.popularity_floor else 0.0) + 10.0 * appeal[artist_of]
            + family_shift[fam] + artist_residual[artist_of]
            + campaign[track_release] - 8.0 * (1.0 - np.exp(-age_years / 4.0)) + position_effect
            + version_effect[track_recording] + FEATURED_EFFECT * featured[track_recording]
            + HIDDEN_POPULARITY * hidden[track_recording] + rng.normal(0, TRACK_NOISE_SD, n))
    effect_model = _EffectModel.build(structural, np.array(family_names, dtype=object)[fam],
                                      family_effects=family_effects,
                                      saturating=s.saturating_effects and effects is None)
    dead = rng.random(n) < DEAD_SHARE
    latent = base + effect_model.total(x)
    popularity = np.where(dead, 0.0, np.clip(np.round(latent), 0, 100))
    truth_effects, per_track, curves = effect_model.truth(base, x, dead)
    family_mask = {f: fam == i for i, f in enumerate(family_names)}
    by_family = {f: _average_over(per_track, family_mask[f]) for f in family_names if family_mask[f].any()}
    structural_average = {d: float(np.mean(effect_model.slope(d, x[d]))) for d in DRIVERS}

    # Canonical table: titles name the version; copies keep their original's title and ISRC.
    artist_ids = _spotify_like_ids(rng, n_artists)
    album_ids = _spotify_like_ids(rng, n_rel)
    micro = [FAMILIES[family_names[f]][2] for f in artist_family]
    artist_genres = [list(rng.choice(m, size=rng.integers(1, min(3, len(m)) + 1), replace=False)) for m in micro]
    release = COLLECTED_AT - pd.to_timedelta(np.round(age_years * 365.25), unit="D")
    rec_song = np.asarray(plan.rec_song)
    interlude = rec_version == VERSION_CODES.index("interlude")
    titles = np.char.add("Song ", (rec_song + 1).astype(str)).astype(object)
    titles[interlude] = np.where(rec_position[interlude] == 1, "Intro",
                                 np.char.add("Skit ", (rec_song[interlude] + 1).astype(str)))
    for code, name in enumerate(VERSION_CODES):
        if name not in ("original", "interlude"):
            mask = rec_version == code
            titles[mask] = titles[mask] + VERSION_EFFECTS[name][0]
    guest = (rec_artist + 1 + rng.integers(1, max(n_artists, 2), n_rec)) % max(n_artists, 1)
    with_guest = featured.astype(bool)
    titles[with_guest] = titles[with_guest] + np.char.add(" (feat. Simulated artist ", guest[with_guest].astype(str)) \
        .astype(object) + ")"
    rel_number = np.asarray(plan.rel_number)
    rel_name = np.char.add(np.where(is_single, "Single ", "Album ").astype(str), rel_number.astype(str)).astype(object)
    rel_name[is_live] = np.char.add("Live Album ", rel_number[is_live].astype(str))
    rel_name[deluxe] = rel_name[deluxe] + " (Deluxe)"
    rel_name[rel_kind == "clean"] = rel_name[rel_kind == "clean"] + " (Clean)"
    rel_total = np.bincount(track_release, minlength=n_rel)
    isrc = np.char.add("SIM", np.char.zfill(np.arange(n_rec).astype(str), 9)).astype(object)
    track_isrc = isrc[track_recording]
    clean_track = kind == "clean"
    track_isrc[clean_track] = np.char.add(track_isrc[clean_track].astype(str), "C")
    tracks = pd.DataFrame({
        "track_id": pd.array(_spotify_like_ids(rng, n), dtype="string"),
        "popularity": popularity.astype("int16"),
        "track_name": pd.array(titles[track_recording].astype(str), dtype="string"),
        "artist_id": pd.array(artist_ids[artist_of], dtype="string"),
        "artist_name": pd.array(np.char.add("Simulated artist ", artist_of.astype(str)), dtype="string"),
        "album_id": pd.array(album_ids[track_release], dtype="string"),
        "album_name": pd.array(rel_name[track_release].astype(str), dtype="string"),
        "release_date": release.values.astype("datetime64[ns]"),
        "release_date_precision": pd.array(np.full(n, "day"), dtype="string"),
        "album_type": pd.array(np.where(is_single, "single", "album")[track_release], dtype="string"),
        "album_total_tracks": rel_total[track_release].astype("float32"),
        "track_number": position.astype("float32"),
        "disc_number": np.ones(n, dtype="float32"),
        "n_artists": (1.0 + featured[track_recording]).astype("float32"),
        "isrc": pd.array(track_isrc.astype(str), dtype="string"),
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
    truth = CausalTruth(effects=truth_effects, structural=structural_average, effects_by_family=by_family,
                        seed=seed, structure=s.to_dict(), curves=curves,
                        heterogeneous={d: effect_model.varies(d) for d in DRIVERS}, track_effects=per_track)
    return _measured(SimulatedCatalog(tracks, truth), seed) if measured else SimulatedCatalog(tracks, truth)
