"""The one text normaliser: each caller's form, written out by hand (not by calling another normaliser)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from popdrivers.text import normal_text, normal_texts


def test_the_default_form_forgets_case_accents_punctuation_and_spacing():
    # The crawl's merge matches (artist, title) this way.
    assert normal_text("  Sigur Rós!  ") == "sigur ros"
    assert normal_text("AC/DC_live\t\u00a0 Straße") == "ac dc live strasse"
    assert normal_text(None) == "" and normal_text(math.nan) == ""


def test_nfkc_keeps_accents_and_punctuation_but_unifies_compatibility_forms():
    # The crawl's exact artist-name match: "Sigur Rós" is not "Sigur Ros", but full-width letters are letters.
    assert normal_text("  Sigur   RÓS ", unicode="NFKC", punctuation=True) == "sigur rós"
    assert normal_text("ＡＢＢＡ", unicode="NFKC", punctuation=True) == "abba"
    assert normal_text("AC/DC", unicode="NFKC", punctuation=True) == "ac/dc"
    # A decomposed accent (e + combining acute) is the same name as the precomposed one.
    assert normal_text("Beyonce\u0301", unicode="NFKC", punctuation=True) == "beyonc\u00e9"


def test_as_is_only_folds_case_and_spacing():
    # The file readers' ids from names: code points untouched.
    assert normal_text(" ＡＢＢＡ  Gold ", unicode="as-is", punctuation=True) == "ａｂｂａ gold"
    assert normal_text("Beyonce\u0301", unicode="as-is", punctuation=True) == "beyonce\u0301"
    with pytest.raises(ValueError, match="unicode must be"):
        normal_text("x", unicode="NFC")  # type: ignore[arg-type]


def test_a_series_keeps_its_index_and_reads_blank_as_missing():
    values = pd.Series(["  The  Beatles ", "", "   ", None, "Björk"], index=[3, 1, 4, 1, 5])
    out = normal_texts(values, unicode="as-is", punctuation=True)
    assert list(out.index) == [3, 1, 4, 1, 5] and str(out.dtype) == "string"
    assert out.iloc[0] == "the beatles" and out.iloc[4] == "björk"
    assert out.iloc[1:4].isna().all()
