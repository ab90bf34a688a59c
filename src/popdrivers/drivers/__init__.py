"""Causal drivers of popularity: double/debiased ML within album, within artist and across artists.

What is estimated: for each driver (``popdrivers.registry.drivers_for_source``: the table's features source
decides which) the average effect on popularity points of +1 unit of it, holding the other track features and
the track's place in its release fixed: ``theta``
of the partially linear model ``popularity = theta * driver + g(controls) + group effect + noise``. See docs/drivers.md.

Modules: ``_designs`` (who is compared with whom), ``_crossfit`` (folds and nuisance learners), ``_inference``
(final stage, covariance, multiplicity), ``_checks`` (placebo, sensitivity, heterogeneity), ``_estimate`` (the
steps in order), ``_results`` (the frozen result types), ``_persist`` (the folder on disk).
"""

from popdrivers.drivers._checks import (
    PLACEBO_WARNING_RATE,
    adjusted_estimate,
    confounder_bound,
    partial_r2,
    robustness_value,
)
from popdrivers.drivers._crossfit import (
    LEARNERS,
    NuisanceLearner,
    artist_grouped_folds,
    cross_fit_residuals,
    cross_fit_targets,
)
from popdrivers.drivers._designs import DESIGNS
from popdrivers.drivers._estimate import estimate_drivers, implied_change
from popdrivers.drivers._persist import (
    DRIVERS_JSON,
    REPORT_HTML,
    driver_sources,
    load_drivers,
    load_importance,
    save_drivers,
)
from popdrivers.drivers._results import (
    DESIGN_LABELS,
    DesignEstimate,
    DesignResult,
    DriverReport,
    DriverResult,
    GroupEffect,
    SensitivityBound,
    TrackLearner,
)

__all__ = [
    "DESIGNS", "DESIGN_LABELS", "DRIVERS_JSON", "LEARNERS", "PLACEBO_WARNING_RATE", "REPORT_HTML",
    "DesignEstimate", "DesignResult", "DriverReport", "DriverResult", "GroupEffect", "NuisanceLearner",
    "SensitivityBound", "TrackLearner", "adjusted_estimate", "artist_grouped_folds", "confounder_bound",
    "cross_fit_residuals", "cross_fit_targets",
    "driver_sources", "estimate_drivers", "implied_change", "load_drivers", "load_importance", "partial_r2",
    "robustness_value", "save_drivers",
]
