"""Text as compared for a match (artist names, titles, album names): the one normaliser.

Every form case-folds and collapses runs of whitespace to one space (trimming the ends). Two switches say how
much more is forgotten, so each caller keeps what it has always compared:

- ``unicode``: ``"no-accents"`` decomposes (NFKD) and drops the combining marks ("Rós" -> "ros"); ``"NFKC"``
  unifies compatibility forms (full-width letters, ligatures) but keeps accents; ``"as-is"`` leaves code points alone.
- ``punctuation``: False turns every run of non-word characters (and ``_``) into a space ("AC/DC" -> "ac dc").

Callers: the crawl's merge of sources matches (artist, title) with the defaults (no accents, no punctuation);
the crawl matches an artist name exactly with ``unicode="NFKC", punctuation=True``; the file readers make track
and album ids from names with ``unicode="as-is", punctuation=True``.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Any, Literal

import pandas as pd

UnicodeForm = Literal["no-accents", "NFKC", "as-is"]

_NOT_WORD = re.compile(r"[^\w]+")


def normal_text(value: Any, *, unicode: UnicodeForm = "no-accents", punctuation: bool = False) -> str:
    """``value`` as compared for a match: case-folded, whitespace collapsed, and as the switches say (module doc).

    None and NaN are "" ("Sigur Rós!" -> "sigur ros" with the defaults).
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = str(value)
    if unicode == "no-accents":
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    elif unicode == "NFKC":
        text = unicodedata.normalize("NFKC", text)
    elif unicode != "as-is":
        raise ValueError(f"unicode must be 'no-accents', 'NFKC' or 'as-is', not {unicode!r}")
    text = text.casefold()
    if not punctuation:
        text = _NOT_WORD.sub(" ", text).replace("_", " ")
    return " ".join(text.split())


def normal_texts(values: pd.Series, *, unicode: UnicodeForm = "no-accents", punctuation: bool = False) -> pd.Series:
    """:func:`normal_text` of each value, as a string Series; missing and blank values are <NA>."""
    text = values.astype("string").map(lambda v: normal_text(v, unicode=unicode, punctuation=punctuation),
                                       na_action="ignore").astype("string")
    return text.where(text.fillna("") != "")
