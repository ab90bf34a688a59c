"""The model's design: which features it uses (what the data has), in which order, and how they become numbers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from popdrivers import schema
from popdrivers.features import (
    ARTIST_RECORD,
    AUDIO_MODEL_FEATURES,
    CATEGORICAL_FEATURES,
    CONTEXT_FEATURES,
    audio_descriptors,
    feature_label,
    model_feature_sources,
    sound_features,
)

# "all": every feature the data has; "audio": Spotify's audio features alone (a baseline); "sound": what
# popdrivers measures from a recording (tempo, key, mode, loudness, meter, duration and its own descriptors)
# plus what a person can type (followers, genre, explicit, release date): the model that predicts from a song.
FEATURE_SETS = ("all", "audio", "sound")


def candidate_features(feature_set: str, artist_record: bool) -> list[str]:
    """The model features a feature set may use, in the order the boosters see them."""
    if feature_set == "sound":
        return [*sound_features(), *CONTEXT_FEATURES]
    extra = [c for c in sound_features() if c not in AUDIO_MODEL_FEATURES]  # popdrivers' descriptors
    candidates = [*AUDIO_MODEL_FEATURES, *extra]
    if feature_set == "all":
        candidates += list(CONTEXT_FEATURES)
        if artist_record:
            candidates.append(ARTIST_RECORD)
    return candidates


@dataclass(frozen=True)
class FeatureLayout:
    """The features a model uses, in order, with the category list of each categorical one.

    Attributes
    ----------
    names
        Model features in the order the boosters see them.
    categories
        Category labels of the categorical features (LightGBM sees a label's position in its list).
    unavailable
        Features the model would use but the training data could not provide, with the reason.
    """

    names: tuple[str, ...]
    categories: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    unavailable: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def choose(cls, feats: pd.DataFrame, *, feature_set: str = "all", artist_record: bool = True) -> FeatureLayout:
        """Every candidate feature ``feats`` (output of :func:`popdrivers.features.build_features`) can provide.

        Raises
        ------
        SchemaError
            When the data provides no feature at all.
        """
        candidates = candidate_features(feature_set, artist_record)
        measured_only = set(audio_descriptors())
        used: list[str] = []
        missing: dict[str, str] = {}
        for name in candidates:
            sources = model_feature_sources(name)
            if not any(s in feats.columns for s in sources):
                if name not in measured_only:  # a descriptor is absent from every dataset but an analysed one
                    missing[name] = f"no {' or '.join(repr(s) for s in sources)} column in the training data"
            elif name == ARTIST_RECORD:
                if not (feats["artist_id"].value_counts(dropna=True) >= 2).any():
                    missing[name] = "no artist has two or more tracks"
                else:
                    used.append(name)
            elif name not in feats.columns or feats[name].isna().all():
                missing[name] = f"'{sources[0]}' has no values in the training data"
            elif name == "genre_family" and feats[name].isin(["unknown"]).all():
                missing[name] = "no genre is known for any track"
            else:
                used.append(name)
        if not used:
            raise schema.SchemaError([schema.Problem(
                "*", "has no feature the model can use", fix="provide audio features (danceability, energy, "
                "...), artist_followers, release_date or genres")])
        return cls(tuple(used), {n: tuple(CATEGORICAL_FEATURES[n]) for n in used if n in CATEGORICAL_FEATURES},
                   missing)

    @property
    def uses_record(self) -> bool:
        """Whether the artist's track record is among the features."""
        return ARTIST_RECORD in self.names

    @property
    def without_record(self) -> list[int]:
        """Positions of every feature but the track record (the new-artist booster's columns)."""
        return [i for i, n in enumerate(self.names) if n != ARTIST_RECORD]

    def frame(self, feats: pd.DataFrame, record: np.ndarray | None) -> pd.DataFrame:
        """The design frame: one column per feature, categories as labels, the track record from ``record``."""
        columns: dict[str, Any] = {}
        for name in self.names:
            if name == ARTIST_RECORD:
                columns[name] = record if record is not None else np.full(len(feats), np.nan)
            elif name in self.categories:
                columns[name] = pd.Categorical(feats[name].astype(object) if name in feats.columns else
                                               [None] * len(feats), categories=list(self.categories[name]))
            else:
                columns[name] = feats[name].to_numpy(dtype="float64", na_value=np.nan)
        return pd.DataFrame(columns, index=feats.index)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Float matrix for LightGBM: categories as their codes in the stored category list (NaN unknown)."""
        matrix = np.empty((len(frame), len(self.names)), dtype="float64")
        for j, name in enumerate(self.names):
            column = frame[name]
            if name in self.categories:
                codes = column.cat.codes.to_numpy().astype("float64")
                codes[codes < 0] = np.nan
                matrix[:, j] = codes
            else:
                matrix[:, j] = column.to_numpy(dtype="float64", na_value=np.nan)
        return matrix

    def absent_sources(self, tracks: pd.DataFrame) -> list[str]:
        """The first source column of each feature ``tracks`` has no column for (it is then read as unknown)."""
        absent = []
        for name in self.names:
            sources = model_feature_sources(name)
            if name != ARTIST_RECORD and not any(s in tracks.columns for s in sources):
                absent.append(sources[0])
        return absent

    def require_sources(self, tracks: pd.DataFrame) -> None:
        """Raise a :class:`SchemaError` naming each canonical column a feature needs and ``tracks`` lacks."""
        problems = []
        for name in self.names:
            sources = model_feature_sources(name)
            if name == ARTIST_RECORD or any(s in tracks.columns for s in sources):
                continue
            # Named by every column it can come from and by its readable name (never an internal name).
            either = " or ".join(f"'{s}'" for s in sources)
            problems.append(schema.Problem(
                sources[0] if len(sources) == 1 else "*",
                f"is missing; the model was trained with it ({feature_label(name)})" if len(sources) == 1 else
                f"has no {either} column; the model was trained with {feature_label(name)} from it",
                fix=f"add {either}, use a model trained without it, or score with popdrivers predict / "
                "popdrivers.model.score_tracks, which predict it as unknown and widen the interval"))
        if problems:
            raise schema.SchemaError(problems)

    def source_columns(self) -> set[str]:
        """Canonical columns the features are built from (plus the ids the track record needs)."""
        return {"track_id", "artist_id"} | {s for n in self.names for s in model_feature_sources(n)}
