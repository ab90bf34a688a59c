"""Designs: which tracks are compared with which, under which controls.

``within_album``
    Tracks of the same album (album fixed effects): one campaign, one release date, one clean-or-explicit copy.
    Controls: the other drivers, track position (nonlinear), version, featured artist.
``within_artist``
    Tracks of the same artist (artist fixed effects): one voice, one fan base. Controls: the other drivers, track
    position, version, featured artist, single vs album track, track age.
``naive``
    Across artists: the same controls plus followers and genre family, no fixed effects. Styles that go with an
    artist's appeal look like drivers; it is shown so the gap is visible.

Fixed effects are removed by demeaning within the group; the nuisance models then see the demeaned controls
*and* the group means of the controls (Mundlak / correlated random effects): with a nonlinear control whose level
differs between groups, the demeaned values alone do not determine the demeaned confounding term.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from popdrivers import registry
from popdrivers.drivers._basis import FLOOR_GROUP_MEAN, OTHER_FAMILIES, family_groups
from popdrivers.features import VERSIONS

DESIGNS = ("within_album", "within_artist", "naive")
# A within-group comparison needs enough groups with two or more tracks, and enough artists to cluster on.
MIN_ARTISTS = 20
MIN_ALBUMS = 30
MIN_ROWS = 200
# A version gets its own control when it has at least this many tracks in the sample.
MIN_VERSION_TRACKS = 10
ERAS: tuple[tuple[str, float, float], ...] = (
    ("before 2000", -math.inf, 2000), ("2000-2009", 2000, 2010), ("2010-2014", 2010, 2015),
    ("2015-2019", 2015, 2020), ("2020 and later", 2020, math.inf),
)
# Controls that are constant within a comparison group carry nothing there and are left out of that design.
# "key" exists only for tables whose features were measured from the sound (``prepare_sample(key_control=True)``).
DESIGN_BLOCKS: dict[str, tuple[str, ...]] = {
    "within_album": ("track position", "version", "featured artist", "key"),
    "within_artist": ("track position", "version", "featured artist", "single", "track age", "key"),
    "naive": ("track position", "version", "featured artist", "single", "track age", "artist followers",
              "genre family", "key"),
}
# A pitch class gets its own control when at least this many tracks of the sample are in it.
MIN_KEY_TRACKS = 10
TRACK_BLOCKS = ("track position", "version", "featured artist", "single")
# A track at 0 whose album's other tracks average at least this many points is set aside (set_aside_zeros).
SET_ASIDE_MATES_MEAN = 20.0


@dataclass(frozen=True)
class SetAside:
    """Tracks at popularity 0 whose album's other tracks are played (their mean >= SET_ASIDE_MATES_MEAN):
    left out of every comparison and counted in the averages with an effect of 0 (:func:`set_aside_zeros`).
    Codes are those of the :class:`Sample` they were taken from."""

    albums: np.ndarray
    artists: np.ndarray
    family: np.ndarray
    era: np.ndarray

    def __len__(self) -> int:
        return len(self.albums)

    def in_groups(self, design: str, sample: Sample) -> SetAside:
        """The set-aside tracks whose comparison group (album, artist; naive: any) has tracks in ``sample``."""
        if design == "naive" or not len(self):
            keep = np.ones(len(self), dtype=bool)
        elif design == "within_album":
            keep = np.isin(self.albums, sample.albums) if sample.albums is not None else np.zeros(len(self), bool)
        else:
            keep = np.isin(self.artists, sample.artists)
        return SetAside(self.albums[keep], self.artists[keep], self.family[keep], self.era[keep])


@dataclass
class Sample:
    """The complete-case table every design draws from: outcome, drivers, named control blocks, groups."""

    y: np.ndarray
    drivers: dict[str, np.ndarray]
    blocks: dict[str, dict[str, np.ndarray]]       # block name -> {control name: values}
    artists: np.ndarray                            # artist code per row (-1 unknown)
    albums: np.ndarray | None                      # album code per row, None without album ids
    family: np.ndarray
    era: np.ndarray
    has_artists: bool
    notes: list[str] = field(default_factory=list)
    track_ids: np.ndarray | None = None            # the table's track_id per row, when it has one
    aside: SetAside | None = None                  # tracks at 0 in played albums, left out (set_aside_zeros)

    def __len__(self) -> int:
        return len(self.y)

    @property
    def n_set_aside(self) -> int:
        """Tracks set aside at 0 among played album-mates (:func:`set_aside_zeros`)."""
        return len(self.aside) if self.aside is not None else 0

    def subset(self, rows: np.ndarray) -> Sample:
        return Sample(
            y=self.y[rows], drivers={k: v[rows] for k, v in self.drivers.items()},
            blocks={b: {k: v[rows] for k, v in cols.items()} for b, cols in self.blocks.items()},
            artists=self.artists[rows], albums=None if self.albums is None else self.albums[rows],
            family=self.family[rows], era=self.era[rows], has_artists=self.has_artists, notes=list(self.notes),
            track_ids=None if self.track_ids is None else self.track_ids[rows], aside=self.aside)


def _filled(values: np.ndarray, name: str, columns: dict[str, np.ndarray]) -> None:
    """Add ``values`` as a control; missing cells get the median and a ``<name> missing`` flag."""
    missing = ~np.isfinite(values)
    if missing.all():
        return
    if missing.any():
        values = np.where(missing, np.nanmedian(values), values)
        columns[f"{name} missing"] = missing.astype("float64")
    columns[name] = values.astype("float64")


def _column(df: pd.DataFrame, name: str) -> np.ndarray | None:
    if name not in df.columns:
        return None
    values = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return values if np.isfinite(values).any() else None


def _era_labels(years: np.ndarray) -> np.ndarray:
    out = np.full(len(years), "", dtype=object)
    for label, lo, hi in ERAS:
        out[(years >= lo) & (years < hi)] = label
    return out


def control_blocks(df: pd.DataFrame, track_controls: bool, notes: list[str],
                   key_control: bool = False) -> dict[str, dict[str, np.ndarray]]:
    """The named blocks of controls the table supports (``df`` has ``build_features`` and release structure).

    ``key_control``: the key (a label, not a quantity: one column per pitch class) controls for the drivers, as
    for a table measured by popdrivers.audio, where key comes with tempo, mode and loudness from the same sound.
    """
    blocks: dict[str, dict[str, np.ndarray]] = {}
    key = _column(df, "key") if key_control else None
    if key is not None:
        classes = [k for k in sorted(pd.unique(key[np.isfinite(key)])) if (key == k).sum() >= MIN_KEY_TRACKS]
        dummies = {f"key {registry.KEY_NAMES[int(k)] if k >= 0 else 'not detected'}": (key == k).astype("float64")
                   for k in classes[1:]}
        if dummies and not np.isfinite(key).all():
            dummies["key missing"] = (~np.isfinite(key)).astype("float64")
        if dummies:
            blocks["key"] = dummies
    if track_controls:
        position: dict[str, np.ndarray] = {}
        number = _column(df, "track_number")
        if number is not None:
            number = np.clip(number, 1, 40)
            _filled(number, "track number", position)
            _filled(np.log(number), "log track number", position)
            _filled((number == 1).astype("float64"), "first track", position)
            relative = _column(df, "relative_position")
            if relative is not None:
                _filled(relative, "relative position", position)
            disc = _column(df, "disc_number")
            if disc is not None and np.nanmax(disc) > 1:
                _filled((disc > 1).astype("float64"), "disc 2 or later", position)
        else:
            notes.append("no track_number: track position is not controlled for")
        if position:
            blocks["track position"] = position
        if "version" in df.columns:
            version = df["version"].astype(str).to_numpy()
            dummies = {f"version {v}": (version == v).astype("float64") for v in VERSIONS[1:]
                       if (version == v).sum() >= MIN_VERSION_TRACKS}
            if dummies:
                blocks["version"] = dummies
        featured: dict[str, np.ndarray] = {}
        flag = _column(df, "featured")
        if flag is not None and np.nanmax(flag) > 0:
            _filled(flag, "featured artist", featured)
        credited = _column(df, "n_artists")
        if credited is not None and np.nanmax(credited) > 1:
            _filled(np.clip(credited, 1, 4), "credited artists", featured)
        if featured:
            blocks["featured artist"] = featured
        if "release_type" in df.columns and df["release_type"].notna().any():
            single = (df["release_type"].astype("string") == "single").fillna(False).to_numpy(dtype="float64")
            if single.any() and not single.all():
                blocks["single"] = {"single": single}
    age = _column(df, "track_age_days")
    if age is not None:
        age_years = age / 365.25
        block: dict[str, np.ndarray] = {}
        _filled(age_years, "age years", block)
        _filled(np.log1p(np.maximum(age_years, 0.0)), "log age years", block)
        blocks["track age"] = block
    else:
        notes.append("no release dates: track age is not controlled for")
    followers = _column(df, "log_followers")
    if followers is not None:
        block = {}
        _filled(followers, "log followers", block)
        blocks["artist followers"] = block
    else:
        notes.append("no artist followers: the naive design cannot control for artist reach")
    if "genre_family" in df.columns:
        family = df["genre_family"].astype(object).fillna("unknown").to_numpy(dtype=object)
        present = sorted(f for f in pd.unique(family) if f != "unknown")
        if len(present) > 1:
            blocks["genre family"] = {f"genre {f}": (family == f).astype("float64") for f in present[1:]}
    return blocks


def prepare_sample(df: pd.DataFrame, drivers: list[str], track_controls: bool,
                   key_control: bool = False) -> tuple[Sample, int]:
    """Complete cases of outcome, drivers and group ids; returns the sample and how many rows were dropped
    (``key_control``: see :func:`control_blocks`)."""
    notes: list[str] = []
    y = pd.to_numeric(df["popularity"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    treatments = {d: pd.to_numeric(df[registry.spec(d).column], errors="coerce").to_numpy(dtype="float64",
                                                                                          na_value=np.nan)
                  for d in drivers}
    blocks = control_blocks(df, track_controls, notes, key_control)
    has_artists = "artist_id" in df.columns and df["artist_id"].notna().any()
    artists = pd.factorize(df["artist_id"])[0] if has_artists else np.arange(len(df))
    albums = pd.factorize(df["album_id"])[0] if "album_id" in df.columns and df["album_id"].notna().any() else None
    family = (df["genre_family"].astype(object).fillna("unknown").to_numpy(dtype=object)
              if "genre_family" in df.columns else np.full(len(df), "unknown", dtype=object))
    if has_artists:
        family = artist_family(family, artists)
    era = (_era_labels(pd.to_numeric(df["release_year"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan))
           if "release_year" in df.columns else np.full(len(df), "", dtype=object))
    complete = np.isfinite(y) & np.all(np.isfinite(np.column_stack(list(treatments.values()))), axis=1)
    if has_artists:
        complete &= artists >= 0
    sample = Sample(y=y, drivers=treatments, blocks=blocks, artists=artists, albums=albums, family=family, era=era,
                    has_artists=has_artists, notes=notes,
                    track_ids=df["track_id"].to_numpy(dtype=object) if "track_id" in df.columns else None)
    return sample.subset(np.flatnonzero(complete)), int((~complete).sum())


def set_aside_zeros(sample: Sample) -> Sample:
    """``sample`` without the tracks at popularity 0 whose album's other tracks average at least
    :data:`SET_ASIDE_MATES_MEAN`; they go to ``sample.aside`` (and a note says how many).

    Such a 0 does not measure the track's sound: on Spotify it is a copy whose plays are credited to another
    (relinking of duplicates, a clean or deluxe copy) or one not available where it was counted. Kept, each is an
    outlier of about minus its album's mean in the within-album comparison: in one simulated catalogue 210 dead
    copies moved energy by 5 SE, where 210 random tracks of the same albums set to 0 moved it by 1 (BENCHMARKS.md).
    A track at 0 gains nothing from a small change, so the averages count them with an effect of 0. A track a
    worse sound pushed below 0 (clipped) is a different case: its 0 is the floor's doing and belongs to the
    comparison (leaving such tracks out selects on the outcome and flattened danceability by 0.7 SE); those sit
    in albums near the floor, hence the threshold on the other tracks' mean (in the simulated catalogue it keeps 96%
    of the clipped tracks and sets aside 87% of the dead copies). Albums at the floor are not touched (``_basis``).
    """
    if sample.albums is None or not len(sample):
        return sample
    known = sample.albums >= 0
    codes = np.where(known, sample.albums, 0)
    counts = np.bincount(codes[known], minlength=codes.max() + 1).astype("float64")
    sums = np.bincount(codes[known], weights=sample.y[known], minlength=codes.max() + 1)
    others = counts[codes] - 1.0
    mates_mean = np.where(known & (others > 0), (sums[codes] - sample.y) / np.maximum(others, 1.0), np.nan)
    aside = (sample.y <= 0) & (np.nan_to_num(mates_mean, nan=0.0) >= SET_ASIDE_MATES_MEAN)
    if not aside.any():
        return sample
    rows = np.flatnonzero(aside)
    kept = dataclasses.replace(sample.subset(np.flatnonzero(~aside)), aside=SetAside(
        sample.albums[rows], sample.artists[rows], sample.family[rows], sample.era[rows]))
    kept.notes.append(
        f"{len(rows):,} {'track' if len(rows) == 1 else 'tracks'} at popularity 0 whose album's other tracks "
        f"average {SET_ASIDE_MATES_MEAN:g} or more left out of the comparisons: such a 0 is most often a copy whose "
        "plays Spotify credits to another, and says nothing about the sound; the averages count them with an effect "
        "of 0")
    return kept


def artist_family(family: np.ndarray, artists: np.ndarray) -> np.ndarray:
    """Each track's artist's most common genre family (known families first; ties: alphabetical).

    A family slope needs the family to be constant within an artist (and so within an album): a playlist's genre
    can differ between one artist's tracks, and then ``1_family x driver`` would not be demeaned by the album.
    """
    frame = pd.DataFrame({"artist": artists, "family": family.astype(str)})
    frame["known"] = ~frame["family"].isin(["unknown", ""])
    counts = frame.groupby(["artist", "known", "family"], sort=True).size().reset_index(name="n")
    counts = counts.sort_values(["artist", "known", "n", "family"], ascending=[True, False, False, True],
                                kind="stable")
    modal = counts.drop_duplicates("artist").set_index("artist")["family"]
    return frame["artist"].map(modal).to_numpy(dtype=object)


def _multi_member_rows(groups: np.ndarray) -> np.ndarray:
    """Rows whose group has at least two rows (the ones a within-group comparison can use)."""
    valid = groups >= 0
    counts = np.bincount(groups[valid]) if valid.any() else np.zeros(0, dtype=np.int64)
    sizes = np.zeros(len(groups), dtype=np.int64)
    sizes[valid] = counts[groups[valid]]
    return np.flatnonzero(sizes >= 2)


def design_support(sample: Sample, design: str) -> tuple[np.ndarray | None, str]:
    """The rows ``design`` can use, or None with the reason it cannot be estimated on this table."""
    if design == "naive":
        if len(sample) < MIN_ROWS:
            return None, f"only {len(sample)} complete tracks (need {MIN_ROWS})"
        return np.arange(len(sample)), f"{len(sample):,} tracks across artists"
    if design == "within_album":
        if sample.albums is None:
            return None, "the table has no album ids"
        rows = _multi_member_rows(sample.albums)
        albums = len(np.unique(sample.albums[rows]))
        artists = len(np.unique(sample.artists[rows]))
        if albums < MIN_ALBUMS or len(rows) < MIN_ROWS or artists < MIN_ARTISTS:
            return None, (f"only {albums} albums with two or more tracks ({len(rows)} tracks, {artists} artists); "
                          f"need {MIN_ALBUMS} albums, {MIN_ROWS} tracks and {MIN_ARTISTS} artists")
        return rows, f"{albums:,} albums with two or more tracks ({len(rows):,} tracks of {artists:,} artists)"
    if design == "within_artist":
        if not sample.has_artists:
            return None, "the table has no artist ids"
        rows = _multi_member_rows(sample.artists)
        artists = len(np.unique(sample.artists[rows]))
        if artists < MIN_ARTISTS or len(rows) < MIN_ROWS:
            return None, (f"only {artists} artists with two or more tracks ({len(rows)} tracks); need "
                          f"{MIN_ARTISTS} artists and {MIN_ROWS} tracks")
        return rows, f"{artists:,} artists with two or more tracks ({len(rows):,} tracks)"
    raise ValueError(f"unknown design '{design}'")


def choose_design(sample: Sample, requested: str) -> tuple[str, np.ndarray, str, list[str]]:
    """The design to report as primary, its rows, the reason, and warnings for designs that fell through.

    ``requested="auto"`` takes the strictest design the table supports: within album, else within artist, else
    naive. A named design falls back the same way, with a warning.
    """
    order = list(DESIGNS) if requested == "auto" else list(DESIGNS[DESIGNS.index(requested):])
    warnings: list[str] = []
    for design in order:
        rows, reason = design_support(sample, design)
        if rows is not None:
            why = {"within_album": "the strictest comparison the table supports: ",
                   "within_artist": "albums are not usable, so tracks of one artist are compared: ",
                   "naive": "no within-group comparison is possible, so these are adjusted associations: "}[design]
            return design, rows, why + reason, warnings
        label = design.replace("_", " ")
        follow = "; falling back" if design != "naive" else ""
        warnings.append(f"{label} design unavailable: {reason}{follow}")
    raise ValueError("no design can be estimated: " + "; ".join(warnings))


@dataclass(frozen=True)
class DesignMatrices:
    """One design's matrices, ready for cross-fitting (outcome, drivers and controls, demeaned where it has fixed
    effects) and for the linear analogue the sensitivity analysis uses."""

    name: str
    y: np.ndarray
    treatments: dict[str, np.ndarray]
    controls: np.ndarray
    control_names: tuple[str, ...]
    block_columns: dict[str, tuple[int, ...]]     # block name -> column indices in ``controls``
    driver_means: np.ndarray | None               # group means of the drivers (Mundlak), rows x drivers
    control_means: np.ndarray | None
    log_group_size: np.ndarray | None
    clusters: np.ndarray                          # artist code per row (SEs clustered on it)
    groups: np.ndarray                            # comparison group per row (album / artist / row)
    n_groups: int
    family: np.ndarray | None = None              # genre family per row (constant within artist)
    levels: dict[str, np.ndarray] | None = None   # the drivers' own values (not demeaned), for the basis
    floor: np.ndarray | None = None               # row's comparison group sits at popularity ~0 (_basis)
    aside: SetAside | None = None                 # set-aside tracks at 0 of this design's groups (effect 0 in averages)

    def level(self, driver: str) -> np.ndarray:
        """The driver's own values on this design's rows (the treatments are demeaned in fixed-effects designs)."""
        return self.levels[driver] if self.levels is not None else self.treatments[driver]

    def demean(self, values: np.ndarray) -> np.ndarray:
        """``values`` minus their comparison-group means (naive: unchanged): how a column enters this design."""
        if self.name == "naive":
            return values
        counts = np.bincount(self.groups).astype("float64")
        return values - _group_means(values, self.groups, counts)

    @property
    def drivers(self) -> tuple[str, ...]:
        return tuple(self.treatments)

    def nuisance_features(self) -> tuple[np.ndarray, list[list[int]]]:
        """Nuisance features and, per driver, the columns its own models must not see.

        Naive design: the drivers and the controls. Fixed-effects designs: the drivers and controls *at their own
        level* (not demeaned), their group means (Mundlak) and the log group size: a confounder that acts through
        a track's own level (``x^2``) is then a simple function of the features, while in demeaned values it would
        be an interaction with the group mean; the targets are demeaned, and so are the residuals afterwards.
        Driver j's models leave out driver j and its group mean. Fixed-effects designs also see the genre family
        (constant within the group, so it removes nothing; it lets the residual of ``family x driver`` be the
        family times the driver's residual, see ``_basis``).
        """
        drivers = np.column_stack(list(self.treatments.values()))
        n_drivers = drivers.shape[1]
        excluded = [[j] for j in range(n_drivers)]
        if self.driver_means is None or self.control_means is None:
            return np.column_stack([drivers, self.controls]).astype("float64"), excluded
        offset = n_drivers + self.controls.shape[1]
        parts = [drivers + self.driver_means, self.controls + self.control_means, self.driver_means,
                 self.control_means]
        if self.log_group_size is not None:
            parts.append(self.log_group_size[:, None])
        if self.family is not None:
            labels = self.family.astype(str)
            present = sorted(set(labels))
            if len(present) > 1:
                parts.append(np.column_stack([(labels == f).astype("float64") for f in present[1:]]))
        excluded = [[j, offset + j] for j in range(n_drivers)]
        return np.column_stack(parts).astype("float64"), excluded

    def family_slope_features(self, min_rows: int, min_artists: int) -> tuple[np.ndarray, list[list[int]]]:
        """Each driver (demeaned where the design demeans) times each genre family's indicator but the first, and
        per driver its columns: for the least-squares start of the nuisances. Where one driver's effect differs by
        family, the outcome's dependence on it does too, and so does a correlated driver's; with one slope per
        driver both residuals kept part of that difference and their product biased the correlated driver
        (valence +1.6 SE and danceability -1.8 SE on average over the grid's equal-artist catalogues; energy
        -4.8 SE in one default catalogue; BENCHMARKS.md). Families as the final stage groups them (``min_rows``
        tracks and ``min_artists`` artists for a slope of their own, the rest pooled): a slope for a family of three
        artists, fitted on two, only adds noise to the third's residuals. Empty without families."""
        n_drivers = len(self.treatments)
        groups = family_groups(self.family, self.clusters, min_rows, min_artists) if self.family is not None else ()
        named = [g for g in groups if g != OTHER_FAMILIES]
        present = named if OTHER_FAMILIES in groups else named[1:]
        if not present:
            return np.empty((len(self.y), 0)), [[] for _ in range(n_drivers)]
        labels = self.family.astype(str)
        indicators = np.column_stack([(labels == f).astype("float64") for f in present])
        # The driver as the design sees it (demeaned in fixed-effects designs): the targets are demeaned, and a
        # family's slope acts on the within-group deviation.
        columns = [indicators * values[:, None] for values in self.treatments.values()]
        owned = [list(range(j * len(present), (j + 1) * len(present))) for j in range(n_drivers)]
        return np.column_stack(columns), owned

    def linear_controls_for(self, driver: str) -> np.ndarray:
        """The linear fixed-effects analogue's regressors besides the driver: other drivers and controls."""
        others = [self.treatments[d] for d in self.treatments if d != driver]
        return np.column_stack([*others, self.controls]) if others or self.controls.shape[1] else \
            np.empty((len(self.y), 0))

    def within(self, residuals: np.ndarray) -> np.ndarray:
        """Residuals demeaned again within the comparison groups (columns separately; naive: unchanged).

        The nuisances see a track's own controls and its group's means, not every other track of the group, so a
        group-level part of the confounding (e.g. how spread a group's controls are) survives in both residuals;
        it is constant within the group, and demeaning removes it.
        """
        return self.demean(residuals)

    @property
    def fixed_effects(self) -> int:
        """Parameters the demeaning absorbed (one per group; the intercept for the naive design)."""
        return self.n_groups if self.name != "naive" else 1


def _group_means(values: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    if values.ndim == 1:
        return (np.bincount(codes, weights=values, minlength=len(counts)) / counts)[codes]
    if not values.shape[1]:
        return values
    return np.column_stack([_group_means(values[:, j], codes, counts) for j in range(values.shape[1])])


def build_design(name: str, sample: Sample, track_controls: bool = True) -> DesignMatrices:
    """The matrices of design ``name`` on ``sample`` (the rows it supports)."""
    blocks = [b for b in DESIGN_BLOCKS[name] if b in sample.blocks and (track_controls or b not in TRACK_BLOCKS)]
    names: list[str] = []
    columns: list[np.ndarray] = []
    block_columns: dict[str, tuple[int, ...]] = {}
    for block in blocks:
        start = len(names)
        for column_name, values in sample.blocks[block].items():
            names.append(column_name)
            columns.append(values)
        block_columns[block] = tuple(range(start, len(names)))
    controls = np.column_stack(columns) if columns else np.empty((len(sample), 0))
    y = sample.y
    treatments = dict(sample.drivers)
    aside = sample.aside.in_groups(name, sample) if sample.aside is not None else None
    if name == "naive":
        groups = np.arange(len(sample))
        return DesignMatrices(name, y, treatments, controls, tuple(names), block_columns, None, None, None,
                              sample.artists, groups, len(groups), family=sample.family, levels=None, aside=aside)
    raw_groups = sample.albums if name == "within_album" else sample.artists
    assert raw_groups is not None
    _, groups, counts = np.unique(raw_groups, return_inverse=True, return_counts=True)
    counts = counts.astype("float64")
    driver_matrix = np.column_stack(list(treatments.values()))
    driver_means = _group_means(driver_matrix, groups, counts)
    control_means = _group_means(controls, groups, counts)
    # Controls constant within every group (e.g. age within an album) carry nothing after demeaning.
    demeaned_controls = controls - control_means
    varying = [j for j in range(controls.shape[1]) if np.ptp(demeaned_controls[:, j]) > 1e-12] \
        if controls.shape[1] else []
    keep = np.asarray(varying, dtype=np.int64)
    remap = {old: new for new, old in enumerate(varying)}
    block_columns = {b: tuple(remap[c] for c in cols if c in remap) for b, cols in block_columns.items()}
    block_columns = {b: cols for b, cols in block_columns.items() if cols}
    return DesignMatrices(
        name=name, y=y - _group_means(y, groups, counts),
        treatments={d: v - driver_means[:, i] for i, (d, v) in enumerate(treatments.items())},
        controls=demeaned_controls[:, keep], control_names=tuple(names[j] for j in varying),
        block_columns=block_columns, driver_means=driver_means, control_means=control_means[:, keep],
        log_group_size=np.log(counts[groups]), clusters=sample.artists, groups=groups, n_groups=len(counts),
        family=sample.family, levels=dict(treatments),
        floor=_group_means(y, groups, counts) < FLOOR_GROUP_MEAN, aside=aside)


def driver_support(sample: Sample, requested: list[str] | None) -> tuple[list[str], list[str]]:
    """Drivers to estimate (requested or every one with variation) and the reasons others were skipped."""
    chosen = requested if requested is not None else list(registry.driver_names())
    kept, skipped = [], []
    for name in chosen:
        values = sample.drivers.get(name)
        if values is None or np.nanstd(values) < 1e-12:
            skipped.append(f"driver '{name}' skipped: it does not vary in the sample")
        else:
            kept.append(name)
    return kept, skipped
