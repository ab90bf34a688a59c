"""LightGBM, loaded the way popdrivers needs it on small shared machines."""

from __future__ import annotations

import os
import sys
from types import ModuleType


def load_lightgbm() -> ModuleType:
    """The ``lightgbm`` module, its OpenMP runtime told to wait passively when popdrivers loads it first.

    Why: LightGBM's OpenMP threads spin while waiting by default; on a busy 2-core machine that makes a 2-thread
    fit 10-40x slower than a 1-thread fit, and passive waiting costs nothing measurable when idle. The runtime reads
    ``OMP_WAIT_POLICY`` once, when the library is loaded, so it is set here, just before the first import, and
    never at popdrivers' own import; a user's own setting wins, and a process that loaded LightGBM itself keeps
    whatever it chose.
    """
    if "lightgbm" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import lightgbm

    return lightgbm
