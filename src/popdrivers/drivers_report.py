"""Plots, tables and the self-contained HTML report of the causal drivers (plotly).

Reads only the result types of :mod:`popdrivers.drivers` (never estimates). ``effects_figure`` puts every design
side by side for every driver (95% CI bars, the primary design's simultaneous band, true effects when the data is
simulated); ``curve_figure`` / ``curves_figure`` draw the dose-response curves of the continuous drivers (pointwise
CI and simultaneous band; the true curve on simulated data); ``by_genre_figure`` shows one driver's effects by genre
family; ``importance_figure`` the popularity model's SHAP importance, titled as model association;
``estimates_table``, ``curve_table``, ``heterogeneity_table`` and ``sensitivity_table`` the numbers.

True curves (simulated data) are passed as ``{driver: (values, effects)}`` on any grid and reference: they are
interpolated at the estimate's values and moved to its reference (:func:`truth_on_curve`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from popdrivers import registry
from popdrivers.drivers import DESIGN_LABELS, PLACEBO_WARNING_RATE, DriverReport, DriverResult, driver_sources
from popdrivers.format import number as _fmt
from popdrivers.format import p_value as _p

TruthCurves = Mapping[str, tuple[Sequence[float], Sequence[float]]]

DESIGN_COLOURS = {"within_album": "#1f77b4", "within_artist": "#9467bd", "naive": "#ff7f0e"}
DESIGN_SYMBOLS = {"within_album": "circle", "within_artist": "square", "naive": "diamond"}
TRUTH_COLOUR = "#2ca02c"


def typical_change(feature: str) -> float:
    """The change of a driver the effects plot and summaries show (registry; +1 for unregistered names)."""
    return registry.spec(feature).typical_change if registry.is_registered(feature) else 1.0


def change_label(feature: str) -> str:
    return registry.spec(feature).change_label if registry.is_registered(feature) else "+1"


def _label(feature: str) -> str:
    return f"{feature} ({change_label(feature)})"


def design_label(name: str) -> str:
    return DESIGN_LABELS.get(name, name.replace("_", " "))


def effects_figure(report: DriverReport, truth: dict[str, float] | None = None) -> go.Figure:
    """Effect of a typical change of each driver, every design side by side (95% CI), truth if given.

    The primary design also shows its simultaneous 95% band (thin bar): the range that covers all drivers'
    effects at once.
    """
    features = list(report.features)
    labels = [_label(f) for f in features]
    designs = list(report.designs)
    offsets = {d.name: (i - (len(designs) - 1) / 2) * 0.22 for i, d in enumerate(designs)}
    fig = go.Figure()
    for design in designs:
        estimates = [design[f] for f in features if f in design.features]
        scale = [typical_change(e.feature) for e in estimates]
        ys = [features.index(e.feature) + offsets[design.name] for e in estimates]
        primary = design.name == report.design
        name = design_label(design.name) + (" (primary)" if primary else "")
        if primary:
            fig.add_trace(go.Scatter(
                x=[e.effect * s for e, s in zip(estimates, scale, strict=True)], y=ys, mode="markers",
                marker={"color": DESIGN_COLOURS.get(design.name, "#333"), "size": 1, "opacity": 0.35},
                error_x={"type": "data", "symmetric": False, "thickness": 1, "width": 0,
                         "array": [(e.simultaneous_ci_high - e.effect) * s for e, s in zip(estimates, scale,
                                                                                           strict=True)],
                         "arrayminus": [(e.effect - e.simultaneous_ci_low) * s for e, s in zip(estimates, scale,
                                                                                               strict=True)]},
                name="simultaneous 95% band (all drivers at once)", hoverinfo="skip"))
        fig.add_trace(go.Scatter(
            x=[e.effect * s for e, s in zip(estimates, scale, strict=True)], y=ys, mode="markers", name=name,
            marker={"color": DESIGN_COLOURS.get(design.name, "#333"), "size": 10 if primary else 7,
                    "symbol": DESIGN_SYMBOLS.get(design.name, "circle")},
            text=[_label(e.feature) for e in estimates],
            error_x={"type": "data", "symmetric": False, "thickness": 2.5 if primary else 1.5,
                     "array": [(e.ci_high - e.effect) * s for e, s in zip(estimates, scale, strict=True)],
                     "arrayminus": [(e.effect - e.ci_low) * s for e, s in zip(estimates, scale, strict=True)]},
            hovertemplate="%{text}: %{x:.3g} points<extra>" + name + "</extra>"))
    if truth:
        known = [f for f in features if f in truth]
        fig.add_trace(go.Scatter(
            x=[truth[f] * typical_change(f) for f in known], y=[features.index(f) for f in known],
            mode="markers", name="true effect (simulation)",
            marker={"color": TRUTH_COLOUR, "size": 13, "symbol": "x"}, text=[_label(f) for f in known],
            hovertemplate="%{text}: true %{x:.3g} points<extra></extra>"))
    fig.add_vline(x=0, line={"color": "grey", "dash": "dot"})
    fig.update_layout(
        title="Causal effect on popularity of a typical change (95% CI), by design",
        xaxis_title="popularity points", yaxis={"autorange": "reversed", "tickvals": list(range(len(features))),
                                                "ticktext": labels},
        height=140 + 44 * len(features), legend={"orientation": "h", "y": -0.12},
        margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def by_genre_figure(report: DriverReport, driver: str | None = None) -> go.Figure:
    """Effects of one driver by genre family (95% CI; q-value in the label). Default: the first driver."""
    fig = go.Figure()
    if not report.drivers:
        return fig.update_layout(title="No driver was estimated")
    result = report[driver] if driver is not None else report.drivers[0]
    if not result.by_genre:
        fig.update_layout(title=f"No genre family has enough artists and tracks to estimate {result.feature} alone")
        return fig
    groups = sorted(result.by_genre, key=lambda g: g.effect)
    fig.add_trace(go.Scatter(
        x=[g.effect for g in groups], y=[f"{g.group} (n={g.n:,}, q={_p(g.q_value)})" for g in groups],
        mode="markers", marker={"color": DESIGN_COLOURS.get(report.design, "#333"), "size": 9},
        name="genre family",
        error_x={"type": "data", "symmetric": False, "array": [g.ci_high - g.effect for g in groups],
                 "arrayminus": [g.effect - g.ci_low for g in groups]}))
    fig.add_vline(x=result.effect, line={"color": "black", "dash": "dash"},
                  annotation_text=f"all tracks: {result.effect:.3g}")
    fig.add_vline(x=0, line={"color": "grey", "dash": "dot"})
    fig.update_layout(title=f"Effect of {result.feature} by genre family ({result.unit}, 95% CI; q = "
                            "Benjamini-Hochberg over all group effects)",
                      xaxis_title="popularity points per unit", height=150 + 34 * len(groups),
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, showlegend=False)
    return fig


def truth_on_curve(result: DriverResult, truth_curve: tuple[Sequence[float], Sequence[float]]) -> np.ndarray:
    """The true curve ``(values, effects)`` (any grid and reference) at ``result.curve``'s values, relative to
    ``result.curve_reference`` (linear interpolation; the simulation stores a fine grid)."""
    grid = np.asarray(truth_curve[0], dtype="float64")
    effects = np.asarray(truth_curve[1], dtype="float64")
    order = np.argsort(grid)
    grid, effects = grid[order], effects[order]
    values = np.array([p.value for p in result.curve], dtype="float64")
    return np.interp(values, grid, effects) - float(np.interp(result.curve_reference, grid, effects))


def curve_covered(result: DriverResult, truth_curve: tuple[Sequence[float], Sequence[float]],
                  low: float | None = None, high: float | None = None) -> tuple[int, int]:
    """``(covered, points)``: how many of the curve's points between ``low`` and ``high`` (default: all) have the
    true change inside their pointwise 95% CI; the reference itself (a change of 0 by definition) is not counted."""
    true = truth_on_curve(result, truth_curve)
    covered = points = 0
    for point, value in zip(result.curve, true, strict=True):
        if point.value == result.curve_reference:
            continue
        if (low is not None and point.value < low) or (high is not None and point.value > high):
            continue
        points += 1
        covered += int(point.ci_low <= value <= point.ci_high)
    return covered, points


def _curve_traces(fig: go.Figure, result: DriverResult, truth_curve: tuple[Sequence[float], Sequence[float]] | None,
                  row: int | None = None, col: int | None = None, legend: bool = True) -> None:
    where = {"row": row, "col": col} if row is not None else {}
    colour = DESIGN_COLOURS["within_album"]
    values = [p.value for p in result.curve]
    band = [(p.band_low, p.band_high) for p in result.curve]
    if all(math.isfinite(lo) and math.isfinite(hi) for lo, hi in band):
        fig.add_trace(go.Scatter(x=values + values[::-1], y=[hi for _, hi in band] + [lo for lo, _ in band][::-1],
                                 fill="toself", fillcolor="rgba(31,119,180,0.10)", line={"width": 0},
                                 name="simultaneous 95% band (whole curve)", hoverinfo="skip", showlegend=legend,
                                 legendgroup="band"), **where)
    fig.add_trace(go.Scatter(x=values + values[::-1],
                             y=[p.ci_high for p in result.curve] + [p.ci_low for p in result.curve][::-1],
                             fill="toself", fillcolor="rgba(31,119,180,0.28)", line={"width": 0},
                             name="pointwise 95% CI", hoverinfo="skip", showlegend=legend, legendgroup="ci"), **where)
    fig.add_trace(go.Scatter(x=values, y=[p.effect for p in result.curve], mode="lines",
                             line={"color": colour, "width": 2.5}, name="estimated change", showlegend=legend,
                             legendgroup="estimate",
                             hovertemplate="%{x:.3g}: %{y:+.2f} points<extra>" + result.feature + "</extra>"),
                  **where)
    # What the average effect alone would say (one slope through the reference): where the curve leaves this line,
    # a large change is not slope x change.
    fig.add_trace(go.Scatter(x=values, y=[result.effect * (v - result.curve_reference) for v in values], mode="lines",
                             line={"color": "grey", "width": 1.5, "dash": "dot"}, name="one slope (average effect)",
                             showlegend=legend, legendgroup="slope",
                             hovertemplate="%{x:.3g}: %{y:+.2f} points if one slope<extra></extra>"), **where)
    if truth_curve is not None:
        fig.add_trace(go.Scatter(x=values, y=list(truth_on_curve(result, truth_curve)), mode="lines",
                                 line={"color": TRUTH_COLOUR, "width": 2, "dash": "dash"},
                                 name="true change (simulation)", showlegend=legend, legendgroup="truth"), **where)
    fig.add_trace(go.Scatter(x=[result.curve_reference], y=[0.0], mode="markers",
                             marker={"color": "black", "size": 8, "symbol": "circle-open"},
                             name="reference (median)", showlegend=legend, legendgroup="reference",
                             hovertemplate="reference %{x:.3g}<extra></extra>"), **where)


def curve_figure(result: DriverResult, truth_curve: tuple[Sequence[float], Sequence[float]] | None = None) \
        -> go.Figure:
    """One continuous driver's dose-response: the average change in popularity if every track had the value on
    the x axis instead of the median, with pointwise 95% CIs, the simultaneous band and the truth if given."""
    fig = go.Figure()
    if not result.curve:
        return fig.update_layout(title=f"No dose-response curve for {result.feature} (binary driver, or not estimated)")
    _curve_traces(fig, result, truth_curve)
    axis = registry.spec(result.feature).axis_title if registry.is_registered(result.feature) else result.feature
    fig.add_hline(y=0, line={"color": "grey", "dash": "dot"})
    fig.update_layout(title=f"Change in popularity if every track's {result.feature} were x instead of "
                            f"{_fmt(result.curve_reference)} (its median)",
                      xaxis_title=axis, yaxis_title="popularity points", height=380,
                      legend={"orientation": "h", "y": -0.25}, margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def curves_figure(report: DriverReport, truth_curves: TruthCurves | None = None, columns: int = 3) -> go.Figure:
    """Small multiples: every continuous driver's dose-response curve (as :func:`curve_figure`)."""
    from plotly.subplots import make_subplots

    with_curves = [r for r in report.drivers if r.curve]
    if not with_curves:
        return go.Figure().update_layout(title="No dose-response curves in this report")
    rows = math.ceil(len(with_curves) / columns)
    titles = [f"{r.feature} (median {_fmt(r.curve_reference)})" for r in with_curves]
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=titles, horizontal_spacing=0.07,
                        vertical_spacing=0.5 / max(rows, 1))
    for i, r in enumerate(with_curves):
        truth = truth_curves.get(r.feature) if truth_curves else None
        _curve_traces(fig, r, truth, row=i // columns + 1, col=i % columns + 1, legend=i == 0)
    fig.update_layout(title="Dose-response: change in popularity if every track had the value x instead of the "
                            "median (95% CI, simultaneous band)", height=80 + 250 * rows,
                      legend={"orientation": "h", "y": -0.06}, margin={"l": 10, "r": 10, "t": 70, "b": 10})
    fig.update_yaxes(title_text="points", col=1)
    return fig


def heterogeneity_label(r: DriverResult) -> str:
    """'varies (p ...)' / 'no evidence (p ...)' / '-' for one driver."""
    h = r.heterogeneity
    if h is None or not math.isfinite(h.p_value):
        return "–"
    return f"{'varies' if h.detected else 'no evidence'} (p {_p(h.p_value)})"


def heterogeneity_table(report: DriverReport) -> pd.DataFrame:
    """One row per driver: the test that its effect varies between tracks, the average beside the
    variance-weighted number, and the range of its genre-family effects."""
    rows = []
    for r in report.drivers:
        h = r.heterogeneity
        genres = sorted(r.by_genre, key=lambda g: g.effect)
        rows.append({
            "driver": r.feature, "average effect": _fmt(r.effect),
            "variance-weighted (partially linear)": _fmt(r.estimate.variance_weighted_effect),
            "effect varies?": heterogeneity_label(r),
            "families with their own slope": len(h.groups) if h is not None else 0,
            "spline terms": h.nonlinear_terms if h is not None else 0,
            "lowest family": f"{genres[0].group} {_fmt(genres[0].effect)}" if genres else "–",
            "highest family": f"{genres[-1].group} {_fmt(genres[-1].effect)}" if genres else "–",
            "R-learner finds differences?": learner_label(r),
            "beyond the family x value model (p)": (_p(r.track_learner.beyond_model_p_value)
                                                    if r.track_learner is not None else "–"),
        })
    return pd.DataFrame(rows)


def learner_label(r: DriverResult) -> str:
    """'yes (slope ..., p ...)' / 'no (slope ..., p ...)' / '-': the R-learner's calibration test for one driver."""
    t = r.track_learner
    if t is None or not math.isfinite(t.p_value):
        return "–"
    return f"{'yes' if t.detected else 'no'} (slope {_fmt(t.slope)}, p {_p(t.p_value)})"


def curve_table(report: DriverReport) -> pd.DataFrame:
    """One row per continuous driver: the curve's reference and its change at both ends of the grid (2.5th and
    97.5th percentile), with 95% CIs: how far the effect of a large change departs from one slope."""
    rows = []
    for r in report.drivers:
        if not r.curve:
            continue
        first, last = r.curve[0], r.curve[-1]
        linear_first = r.effect * (first.value - r.curve_reference)
        linear_last = r.effect * (last.value - r.curve_reference)
        rows.append({
            "driver": r.feature, "reference (median)": _fmt(r.curve_reference),
            "low end": _fmt(first.value), "change at low end": f"{_fmt(first.effect)} [{_fmt(first.ci_low)}, "
                                                             f"{_fmt(first.ci_high)}]",
            "one slope would say (low)": _fmt(linear_first),
            "high end": _fmt(last.value), "change at high end": f"{_fmt(last.effect)} [{_fmt(last.ci_low)}, "
                                                               f"{_fmt(last.ci_high)}]",
            "one slope would say (high)": _fmt(linear_last),
        })
    return pd.DataFrame(rows)


def importance_figure(importance: pd.DataFrame) -> go.Figure:
    """Mean |SHAP value| per feature of the popularity model: what the model uses, not what causes popularity."""
    data = importance.sort_values("mean_abs_shap", ascending=True)
    names = data["label"] if "label" in data.columns else data["feature"]
    fig = go.Figure(go.Bar(x=data["mean_abs_shap"], y=names, orientation="h", marker={"color": "#7f7f7f"}))
    fig.update_layout(title="Model association (not causal): mean |SHAP| of the popularity model",
                      xaxis_title="mean |SHAP value| (popularity points)", height=120 + 26 * len(data),
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def _placebo_flagged(r: DriverResult) -> bool:
    return math.isfinite(r.placebo_rejection_rate) and r.placebo_rejection_rate > PLACEBO_WARNING_RATE


def estimates_table(report: DriverReport, truth: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per driver: the primary estimate with its CI, adjusted p and band, the other designs, the checks."""
    rows = []
    others = [d for d in report.designs if d.name != report.design]
    sources = driver_sources(report)
    for r in report.drivers:
        row: dict[str, Any] = {
            "driver": r.feature, "unit": r.unit, "source": sources[r.feature], "effect": _fmt(r.effect),
            "95% CI": f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]", "p": _p(r.p_value), "p (Holm)": _p(r.p_adjusted),
            "simultaneous band": f"[{_fmt(r.simultaneous_ci_low)}, {_fmt(r.simultaneous_ci_high)}]",
            "variance-weighted": _fmt(r.estimate.variance_weighted_effect),
            "effect varies?": heterogeneity_label(r),
        }
        for design in others:
            if r.feature in design.features:
                e = design[r.feature]
                row[design_label(design.name)] = f"{_fmt(e.effect)} [{_fmt(e.ci_low)}, {_fmt(e.ci_high)}]"
        row["placebo rejections"] = ("–" if not math.isfinite(r.placebo_rejection_rate)
                                     else f"{100 * r.placebo_rejection_rate:.0f}%")
        row["permutation p"] = _p(r.placebo_p)
        row["RV"] = _fmt(r.robustness_value, 2)
        row["RV (5%)"] = _fmt(r.robustness_value_ci, 2)
        if truth is not None:
            row["truth"] = _fmt(truth.get(r.feature, math.nan))
        rows.append(row)
    return pd.DataFrame(rows)


def sources_sentence(report: DriverReport) -> str:
    """Where the drivers' values came from, in one sentence ("Drivers measured by popdrivers' audio analysis:
    tempo, ...; from metadata: duration_min, explicit.")."""
    by_source: dict[str, list[str]] = {}
    for feature, source in driver_sources(report).items():
        by_source.setdefault(source, []).append(feature)
    parts = [f"{'measured by ' if s == registry.source_label('audio') else 'from '}{s}: {', '.join(names)}"
             for s, names in by_source.items()]
    return "Driver sources: " + "; ".join(parts) + "."


def sensitivity_table(report: DriverReport, k: float | None = None) -> pd.DataFrame:
    """One row per driver and benchmark: the estimate if a hidden confounder were k times as strong as it."""
    rows = []
    for r in report.drivers:
        for b in r.sensitivity:
            if k is not None and b.k != k:
                continue
            rows.append({"driver": r.feature, "confounder as strong as": f"{b.k:g} x {b.benchmark}",
                         "partial R2 with driver": _fmt(b.r2dz_x, 2), "partial R2 with popularity": _fmt(b.r2yz_dx, 2),
                         "effect": _fmt(r.effect), "adjusted effect": _fmt(b.adjusted_effect),
                         "adjusted 95% CI": f"[{_fmt(b.adjusted_ci_low)}, {_fmt(b.adjusted_ci_high)}]",
                         "still excludes 0": ("–" if not math.isfinite(b.adjusted_ci_low)
                                              else "yes" if b.adjusted_ci_low > 0 or b.adjusted_ci_high < 0
                                              else "no")})
    return pd.DataFrame(rows)


def plain_reading(report: DriverReport, truth: dict[str, float] | None = None) -> list[str]:
    """Sentences a reader without statistics can follow: what survives the adjustment, how robust, the checks."""
    lines = []
    artists = f"{report.artists:,} artists" if report.artists else "unknown artists"
    lines.append(f"Estimated on {report.rows:,} tracks of {artists}. Primary design: "
                 f"{design_label(report.design)}, {report.design_reason}.")
    if report.design == "naive":
        lines.append("No within-group comparison was possible, so these are adjusted associations: an artist's "
                     "style goes with their appeal, which followers measure only roughly.")
    clear = [r for r in report.drivers if r.distinguishable]
    unclear = [r for r in report.drivers if not r.distinguishable]
    for r in sorted(clear, key=lambda r: -abs(r.effect * typical_change(r.feature))):
        scale = typical_change(r.feature)
        direction = "raises" if r.effect > 0 else "lowers"
        rv = r.robustness_value
        robust = ("of unknown robustness" if not math.isfinite(rv) else "robust" if rv >= 0.1
                  else "moderately robust" if rv >= 0.03 else "fragile")
        text = (f"{r.feature} ({change_label(r.feature)}) {direction} popularity by about "
                f"{abs(r.effect * scale):.2g} points (95% CI {r.ci_low * scale:.2g} to {r.ci_high * scale:.2g}, "
                f"Holm-adjusted p {_p(r.p_adjusted)}); {robust}: a hidden confounder explaining {100 * rv:.1f}% of the "
                f"residual variance of both {r.feature} and popularity would erase it")
        strong = [b for b in r.sensitivity if b.k == 1.0 and math.isfinite(b.adjusted_ci_low)
                  and not (b.adjusted_ci_low > 0 or b.adjusted_ci_high < 0)]
        if strong:
            text += ("; one as strong as " + " or ".join(b.benchmark for b in strong)
                     + " would make it indistinguishable from 0")
        lines.append(text + ".")
    if unclear:
        lines.append("Not distinguishable from 0 after the Holm correction for testing "
                     f"{len(report.drivers)} drivers: " + ", ".join(r.feature for r in unclear) + ".")
    lines += _heterogeneity_lines(report)
    for design in report.designs:
        if design.name == report.design:
            continue
        moved = [r.feature for r in report.drivers if r.feature in design.features
                 and (design[r.feature].distinguishable != r.distinguishable
                      or (design[r.feature].distinguishable and math.copysign(1, design[r.feature].effect)
                          != math.copysign(1, r.effect)))]
        if moved:
            lines.append(f"The {design_label(design.name)} comparison reaches a different conclusion for "
                         f"{', '.join(moved)}: what it does not hold fixed moves those estimates.")
    flagged = [r.feature for r in report.drivers if _placebo_flagged(r)]
    if flagged:
        lines.append(f"Warning: shuffled within {'albums' if report.design == 'within_album' else 'groups'}, "
                     f"{', '.join(flagged)} still looked significant in more than {100 * PLACEBO_WARNING_RATE:.0f}% "
                     "of the shuffles (about 5% is expected): their confidence intervals are likely too narrow.")
    if truth:
        covered = [r.feature for r in report.drivers
                   if r.feature in truth and r.ci_low <= truth[r.feature] <= r.ci_high]
        lines.append(f"Simulated data: the 95% CI covers the true effect for {len(covered)} of "
                     f"{sum(r.feature in truth for r in report.drivers)} drivers.")
    return lines


def _heterogeneity_lines(report: DriverReport) -> list[str]:
    """Which effects vary between tracks, and where the average and the variance-weighted number part."""
    lines = []
    tested = [r for r in report.drivers if r.heterogeneity is not None and math.isfinite(r.heterogeneity.p_value)]
    varying = [r for r in tested if r.heterogeneity.detected]
    if varying:
        parts = []
        for r in varying:
            genres = sorted(r.by_genre, key=lambda g: g.effect)
            spread = (f", from {_fmt(genres[0].effect)} ({genres[0].group}) to {_fmt(genres[-1].effect)} "
                      f"({genres[-1].group}) per unit" if len(genres) > 1 else "")
            parts.append(f"{r.feature} (p {_p(r.heterogeneity.p_value)}{spread})")
        lines.append("The effect differs between tracks for " + "; ".join(parts) + ": the average effect is the "
                     "mean over tracks, and the What-if page shows the effect for one track.")
    if tested and len(varying) < len(tested):
        lines.append("No evidence that the effect varies between tracks (by genre family or along the feature's "
                     "own values) for " + ", ".join(r.feature for r in tested if not r.heterogeneity.detected)
                     + ": one average applies to every track.")
    learner = [r for r in report.drivers if r.track_learner is not None and r.track_learner.detected]
    if learner:
        lines.append("An R-learner told nothing about genre families finds per-track differences for "
                     + ", ".join(f"{r.feature} (calibration slope {_fmt(r.track_learner.slope)})" for r in learner)
                     + "; beyond the family x value model for "
                     + (", ".join(r.feature for r in learner if r.track_learner.beyond_model_p_value < 0.05)
                        or "none of them") + ".")
    apart = [r for r in report.drivers if math.isfinite(r.estimate.variance_weighted_effect)
             and math.isfinite(r.estimate.variance_weighted_se)
             and abs(r.effect - r.estimate.variance_weighted_effect)
             > 2 * math.hypot(r.se, r.estimate.variance_weighted_se)]
    if apart:
        lines.append("The average effect and the variance-weighted (partially linear) number differ for "
                     + ", ".join(f"{r.feature} ({_fmt(r.effect)} vs {_fmt(r.estimate.variance_weighted_effect)})"
                                 for r in apart)
                     + ": the latter counts tracks by how much the feature varies within their album.")
    return lines


def drivers_report_html(report: DriverReport, importance: pd.DataFrame | None = None,
                        truth: dict[str, float] | None = None, popularity_source: str | None = None,
                        truth_curves: TruthCurves | None = None) -> str:
    """A self-contained HTML page: effects plot, dose-response curves, by-genre plot, SHAP importance, tables and
    a plain reading (``truth`` / ``truth_curves``: the simulation's true effects and curves, drawn beside)."""
    import plotly.io as pio

    figures: list[tuple[str, Any]] = [("Causal effects, every design", effects_figure(report, truth))]
    if any(r.curve for r in report.drivers):
        figures.append(("Dose-response curves", curves_figure(report, truth_curves)))
    if any(r.by_genre for r in report.drivers):
        figures.append(("Heterogeneity by genre family", by_genre_figure(report)))
    if importance is not None and len(importance):
        figures.append(("Model association", importance_figure(importance)))
    parts = []
    for i, (title, fig) in enumerate(figures):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), default_width="100%"))

    def table(frame: pd.DataFrame) -> str:
        return frame.to_html(index=False, escape=True, border=0, classes="drivers") if len(frame) else ""

    reading = "".join(f"<li>{html.escape(line)}</li>" for line in plain_reading(report, truth))
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in report.warnings)
    group_rows = [{"driver": r.feature, "group": g.group, "kind": kind, "effect": _fmt(g.effect),
                   "95% CI": f"[{_fmt(g.ci_low)}, {_fmt(g.ci_high)}]", "p": _p(g.p_value), "q (BH)": _p(g.q_value),
                   "tracks": g.n, "artists": g.artists}
                  for r in report.drivers for kind, groups in (("genre family", r.by_genre), ("era", r.by_era))
                  for g in groups]
    info = report.info
    method = (f"Double ML ({info.get('learner', '')} nuisances on {info.get('nuisance_features', '')}, "
              f"{info.get('n_folds', '')} folds grouped by artist, {info.get('n_rep', '')} repetitions); standard "
              f"errors {info.get('standard_errors', '')}; multiplicity: {info.get('multiplicity', '')}.")
    designs = "".join(f"<li><b>{html.escape(design_label(d.name))}</b>: {d.rows:,} tracks, {d.groups:,} comparison "
                      f"groups; controls: {html.escape(', '.join(d.controls) or 'none')}</li>"
                      for d in report.designs)
    source = (f"<p>Popularity source: <b>{html.escape(popularity_source)}</b></p>" if popularity_source else "")
    source += f"<p>{html.escape(sources_sentence(report))}</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>popdrivers: causal drivers of popularity</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1150px; margin: 2em auto; color: #222; }}
table.drivers {{ border-collapse: collapse; font-size: 0.82em; }}
table.drivers td, table.drivers th {{ padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: right; }}
.warn {{ color: #a15c00; }}
</style></head><body>
<h1>What drives popularity</h1>
<p>Primary design: <b>{html.escape(design_label(report.design))}</b> ({html.escape(report.design_reason)}).
{html.escape(method)}</p>
{source}
<ul>{designs}</ul>
{f'<ul class="warn">{warnings}</ul>' if warnings else ''}
<h2>Reading</h2><ul>{reading}</ul>
{''.join(parts)}
<h2>Estimates and checks</h2>
<p>Effects are popularity points per unit: the average over the design's tracks of each track's effect of +1 unit
(variance-weighted: the partially linear number beside it). p (Holm): adjusted for testing every driver; an effect
is called distinguishable from 0 when it is below 0.05. Simultaneous band: covers all drivers' effects at once with 95%
probability. Placebo rejections: the driver's residual shuffled within the comparison groups
{info.get('placebo', '')}; the share of shuffles the 95% CI calls significant should be about 5%. Permutation p:
how often a shuffle beats the real estimate. RV: share of residual variance of both driver and popularity a hidden
confounder must explain to erase the effect (RV 5%: to make it insignificant).</p>
{table(estimates_table(report, truth))}
<h2>Does the effect vary between tracks?</h2>
<p>The average effect is the mean over the design's tracks of each track's own effect (a slope per genre family
and a spline along the feature's values); the variance-weighted number is the partially linear slope, which counts
tracks by how much the feature varies within their album. Heterogeneity: {html.escape(str(info.get('heterogeneity',
'')))}.</p>
{table(heterogeneity_table(report))}
{'<h2>Dose-response curves: large changes</h2><p>The change in popularity if every track had the value at the '
 'ends of the curve instead of the median, beside what one slope would say.</p>' + table(curve_table(report))
 if any(r.curve for r in report.drivers) else ''}
<h2>Sensitivity: a hidden confounder as strong as what we observe</h2>
<p>The estimate after removing the largest bias an unobserved confounder k times as strong as an observed control
could cause (Cinelli &amp; Hazlett 2020; strength measured in the design's linear fixed-effects analogue).</p>
{table(sensitivity_table(report))}
{'<h2>By genre family and release era</h2>' + table(pd.DataFrame(group_rows)) if group_rows else ''}
</body></html>
"""
