"""Issue 23, what a user reads: the model card's interval assumptions, the training budget, popularity_source in a
crawl-trained model's manifest, split names in the README's words."""

from __future__ import annotations

from popdrivers.model import interval_assumptions


def test_the_model_card_states_what_the_conformal_interval_assumes():
    lines = interval_assumptions({"level": 0.8, "coverage": 0.793, "measured_on": "by_artist"})
    assert [line.split(":")[0] for line in lines] == ["Tracks like the training data", "Exchangeability",
                                                      "By-artist clusters"]
    assert "the 80% prediction interval" in lines[0] and "79.3% on held-out unseen artists" in lines[0]
    assert "exchangeable with the calibration tracks" in lines[1]
    assert "new artists" in lines[2] and "whole artists held out" in lines[2]
    # Without metrics (an older folder) the assumptions are still stated, with no number made up.
    bare = interval_assumptions(None)
    assert len(bare) == 3 and "%" not in bare[0]
