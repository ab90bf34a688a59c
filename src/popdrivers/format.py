"""How numbers are written for people: one formatter for the CLI, the HTML report and the app.

Pure Python (no pandas, no numpy), so the CLI can use it without paying their import time.
"""

from __future__ import annotations

import math
from numbers import Real

# The level below which an adjusted p-value is called "distinguishable from 0" (drivers' ALPHA says the same).
ALPHA = 0.05
MISSING = "–"


def _finite(value: object) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def number(value: float | int | None, digits: int = 3) -> str:
    """``digits`` significant digits; whole numbers and values of 1,000 or more as integers with thousands
    separators (``12,345``, not ``1.23e+04``); values below 0.001 in scientific notation; ``–`` when missing."""
    x = _finite(value)
    if x is None:
        return MISSING
    if abs(x) >= 1000 or x.is_integer():
        return f"{x:,.0f}"
    if x != 0 and abs(x) < 1e-3:
        return f"{x:.{max(digits - 1, 1)}e}"
    return f"{x:.{digits}g}"


def p_value(value: float | None, alpha: float = ALPHA, decimals: int = 3) -> str:
    """A p-value with ``decimals`` decimals, more when needed to agree with the decision at ``alpha``: 0.0497 is
    ``0.0497`` (below 0.05, as the decision says), never ``0.05`` or ``0.050``; 0.0503 is ``0.050``; below 0.001
    it is ``<0.001``."""
    x = _finite(value)
    if x is None:
        return MISSING
    if x < 0.001:
        return "<0.001"
    below = x < alpha
    for k in range(decimals, 10):
        text = f"{x:.{k}f}"
        if (float(text) < alpha) == below:
            return text
    return repr(x)


def percent(share: float | None, digits: int = 0) -> str:
    """A share (0..1) as a percentage, ``–`` when missing."""
    x = _finite(share)
    return MISSING if x is None else f"{100 * x:.{digits}f}%"
