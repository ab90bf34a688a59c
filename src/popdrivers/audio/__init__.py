"""Audio analysis: one audio file -> one canonical track row, measured from the sound on this machine.

``analyze_file(path)`` returns an :class:`AudioAnalysis` (``.to_row()`` gives the canonical row);
``analyze_files(paths)`` analyses a batch on worker processes and returns ``(table, failures)``: the validated
canonical table and the files that could not be analysed, each with its reason (``analyze_each`` gives the
:class:`AudioAnalysis` of each file instead); :class:`AnalysisStream` analyses files as they arrive.

Physical quantities use Spotify's names and scales (tempo, key, mode, loudness, time_signature, duration_ms);
everything else is one of popdrivers' own descriptors (:func:`descriptors`; their meaning is registered in
:mod:`popdrivers.registry`). Every row says ``features_source = "audio:popdrivers-essentia-<version>"``.

Names resolve lazily: importing this package loads neither Essentia nor pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

from popdrivers.audio.descriptors import ALGORITHMS, DESCRIPTOR_NAMES, DescriptorSpec, descriptor, descriptors

_PUBLIC: dict[str, str] = {
    "analyze_file": "popdrivers.audio.analysis",
    "analyze_files": "popdrivers.audio.analysis",
    "analyze_each": "popdrivers.audio.analysis",
    "AnalysisStream": "popdrivers.audio.analysis",
    "analyses_to_table": "popdrivers.audio.analysis",
    "find_audio_files": "popdrivers.audio.analysis",
    "features_source": "popdrivers.audio.analysis",
    "AudioAnalysis": "popdrivers.audio.analysis",
    "AudioFailure": "popdrivers.audio.analysis",
    "AudioError": "popdrivers.errors",
    "AUDIO_SUFFIXES": "popdrivers.audio.analysis",
    "MAX_SECONDS": "popdrivers.audio.analysis",
    "TIMEOUT_SECONDS": "popdrivers.audio.analysis",
    "MEMORY_LIMIT_BYTES": "popdrivers.audio.analysis",
}
__all__ = ["ALGORITHMS", "DESCRIPTOR_NAMES", "DescriptorSpec", "descriptor", "descriptors", *_PUBLIC]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'popdrivers.audio' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(__all__)
