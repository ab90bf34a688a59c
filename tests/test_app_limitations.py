"""The model card's limitations say what the causal effects held fixed: the results' primary design, not a fixed
"same artist" (the primary design is within album whenever the table has albums)."""

from __future__ import annotations

import pytest

from popdrivers.app import services
from popdrivers.drivers import DESIGNS


@pytest.mark.parametrize(("design", "says", "not_said"), [
    ("within_album", "tracks of the same album", "tracks of the same artist"),
    ("within_artist", "tracks of the same artist", "tracks of the same album"),
    ("naive", "tracks across artists", "tracks of the same"),
])
def test_the_causal_limitation_names_the_primary_design(design: str, says: str, not_said: str) -> None:
    (causal,) = [item for item in services.limitations(False, design) if item.startswith("Causal effects compare")]
    assert says in causal and not_said not in causal


def test_every_design_has_its_own_words_and_simulated_data_comes_first() -> None:
    texts = {design: " ".join(services.limitations(False, design)) for design in DESIGNS}
    assert len(set(texts.values())) == len(DESIGNS)
    assert services.limitations(True, "within_album")[0].startswith("This model is trained on SIMULATED data")
