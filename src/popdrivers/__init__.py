"""popdrivers: predict Spotify track popularity and estimate what causally drives it.

The public API is resolved lazily so that ``import popdrivers`` stays fast (the app and CLI start quickly)
and heavy libraries (LightGBM, DoubleML, SHAP) load only when used.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC: dict[str, str] = {
    "read_tracks": "popdrivers.sources.files",
    "read_tracks_with_report": "popdrivers.sources.files",
    "detect_format": "popdrivers.sources.files",
    "write_tracks": "popdrivers.sources.files",
    "validate": "popdrivers.schema",
    "SchemaError": "popdrivers.schema",
    "simulate_catalog": "popdrivers.sources.simulate",
    "SimulatedCatalog": "popdrivers.sources.simulate",
    "CausalTruth": "popdrivers.sources.simulate",
    "build_features": "popdrivers.features",
    "train": "popdrivers.model",
    "evaluate": "popdrivers.model",
    "load_model": "popdrivers.model",
    "save_model": "popdrivers.model",
    "PopularityModel": "popdrivers.model",
    "estimate_drivers": "popdrivers.drivers",
    "load_drivers": "popdrivers.drivers",
    "train_on_cluster": "popdrivers.model",
    "build_artifacts": "popdrivers.pipeline",
    "load_artifacts": "popdrivers.pipeline",
    "save_drivers": "popdrivers.drivers",
    "implied_change": "popdrivers.drivers",
    "DriverReport": "popdrivers.drivers",
    "collect": "popdrivers.sources.spotify",
    "analyze_file": "popdrivers.audio",
    "analyze_files": "popdrivers.audio",
    "AudioAnalysis": "popdrivers.audio",
}
__all__ = [*_PUBLIC, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'popdrivers' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
