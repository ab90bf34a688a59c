"""Plots and the self-contained HTML report of the causal drivers (plotly).

``effects_figure`` puts the within-artist estimate and the naive one side by side for every driver (95% CI
bars; true effects as markers when the data is simulated); ``by_genre_figure`` shows effects by genre family;
``importance_figure`` shows the popularity model's SHAP importance, titled as model association.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from popdrivers.drivers import DriverReport, DriverResult

WITHIN_COLOUR = "#1f77b4"
NAIVE_COLOUR = "#ff7f0e"
TRUTH_COLOUR = "#2ca02c"
DESIGN_LABELS = {"within_artist": "within artist (causal)", "naive": "naive, across artists"}


def _fmt(value: float, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def _scale(result: DriverResult) -> float:
    """Points per unit differ by orders of magnitude (tempo per BPM vs danceability per 0-1); plots use the
    effect of a typical change (see ``TYPICAL_CHANGE``) so every driver fits on one axis."""
    return TYPICAL_CHANGE.get(result.feature, 1.0)


# A typical within-artist change of each driver: what the effects plot multiplies effects by.
TYPICAL_CHANGE: dict[str, float] = {
    "danceability": 0.1, "energy": 0.1, "loudness": 1.0, "speechiness": 0.1, "acousticness": 0.1,
    "instrumentalness": 0.1, "liveness": 0.1, "valence": 0.1, "tempo": 10.0, "duration_min": 1.0,
    "explicit": 1.0, "mode": 1.0,
}
CHANGE_LABELS: dict[str, str] = {
    "danceability": "+0.1", "energy": "+0.1", "loudness": "+1 dB", "speechiness": "+0.1", "acousticness": "+0.1",
    "instrumentalness": "+0.1", "liveness": "+0.1", "valence": "+0.1", "tempo": "+10 BPM",
    "duration_min": "+1 min", "explicit": "explicit", "mode": "major",
}


def _label(feature: str) -> str:
    return f"{feature} ({CHANGE_LABELS.get(feature, '+1')})"


def effects_figure(report: DriverReport, truth: dict[str, float] | None = None) -> go.Figure:
    """Effect of a typical change of each driver with 95% CI bars: within artist vs naive, truth if given."""
    results = list(report.drivers)
    labels = [_label(r.feature) for r in results]
    both = report.design != "naive"
    # Numeric rows with small offsets keep the two designs of one driver side by side and readable.
    pos = list(range(len(results)))
    fig = go.Figure()
    primary_name = DESIGN_LABELS.get(report.design, report.design)
    fig.add_trace(go.Scatter(
        x=[r.effect * _scale(r) for r in results], y=[p - 0.15 * both for p in pos], mode="markers",
        name=primary_name, marker={"color": WITHIN_COLOUR, "size": 9}, text=labels,
        error_x={"type": "data", "symmetric": False,
                 "array": [(r.ci_high - r.effect) * _scale(r) for r in results],
                 "arrayminus": [(r.effect - r.ci_low) * _scale(r) for r in results]},
        hovertemplate="%{text}: %{x:.3g} points<extra>" + primary_name + "</extra>"))
    if both:
        fig.add_trace(go.Scatter(
            x=[r.naive_effect * _scale(r) for r in results], y=[p + 0.15 for p in pos], mode="markers",
            name=DESIGN_LABELS["naive"], marker={"color": NAIVE_COLOUR, "size": 8, "symbol": "diamond"}, text=labels,
            error_x={"type": "data", "symmetric": False,
                     "array": [(r.naive_ci_high - r.naive_effect) * _scale(r) for r in results],
                     "arrayminus": [(r.naive_effect - r.naive_ci_low) * _scale(r) for r in results]},
            hovertemplate="%{text}: %{x:.3g} points<extra>naive</extra>"))
    if truth:
        known = [(p, r) for p, r in zip(pos, results, strict=True) if r.feature in truth]
        fig.add_trace(go.Scatter(
            x=[truth[r.feature] * _scale(r) for _, r in known], y=[p for p, _ in known], mode="markers",
            name="true effect (simulation)", marker={"color": TRUTH_COLOUR, "size": 12, "symbol": "x"},
            text=[_label(r.feature) for _, r in known],
            hovertemplate="%{text}: true %{x:.3g} points<extra></extra>"))
    fig.add_vline(x=0, line={"color": "grey", "dash": "dot"})
    fig.update_layout(
        title="Causal effect on popularity of a typical change (95% CI)", xaxis_title="popularity points",
        yaxis={"autorange": "reversed", "tickvals": pos, "ticktext": labels},
        height=120 + 38 * len(results), legend={"orientation": "h", "y": -0.15},
        margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def by_genre_figure(report: DriverReport, driver: str | None = None) -> go.Figure:
    """Effects by genre family (95% CI) for one driver (default: the one with the largest |t|)."""
    candidates = [r for r in report.drivers if r.by_genre]
    if driver is None:
        ranked = sorted(candidates, key=lambda r: -abs(r.effect / r.se) if r.se and math.isfinite(r.se) else 0)
        result = ranked[0] if ranked else (report.drivers[0] if report.drivers else None)
    else:
        result = report[driver]
    fig = go.Figure()
    if result is None or not result.by_genre:
        name = result.feature if result is not None else "any driver"
        fig.update_layout(title=f"No genre family has enough artists and tracks to estimate {name} on its own")
        return fig
    groups = sorted(result.by_genre, key=lambda g: g.effect)
    fig.add_trace(go.Scatter(
        x=[g.effect for g in groups], y=[f"{g.genre} (n={g.n:,})" for g in groups], mode="markers",
        marker={"color": WITHIN_COLOUR, "size": 9}, name="genre family",
        error_x={"type": "data", "symmetric": False, "array": [g.ci_high - g.effect for g in groups],
                 "arrayminus": [g.effect - g.ci_low for g in groups]}))
    fig.add_vline(x=result.effect, line={"color": "black", "dash": "dash"},
                  annotation_text=f"all tracks: {result.effect:.3g}")
    fig.add_vline(x=0, line={"color": "grey", "dash": "dot"})
    fig.update_layout(title=f"Effect of {result.feature} by genre family ({result.unit}, 95% CI)",
                      xaxis_title="popularity points per unit", height=140 + 34 * len(groups),
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, showlegend=False)
    return fig


def importance_figure(importance: pd.DataFrame) -> go.Figure:
    """Mean |SHAP value| per feature of the popularity model: what the model uses, not what causes popularity."""
    data = importance.sort_values("mean_abs_shap", ascending=True)
    names = data["label"] if "label" in data.columns else data["feature"]
    fig = go.Figure(go.Bar(x=data["mean_abs_shap"], y=names, orientation="h",
                           marker={"color": "#7f7f7f"}))
    fig.update_layout(title="Model association (not causal): mean |SHAP| of the popularity model",
                      xaxis_title="mean |SHAP value| (popularity points)", height=120 + 26 * len(data),
                      margin={"l": 10, "r": 10, "t": 50, "b": 10})
    return fig


def refutation_table(report: DriverReport) -> pd.DataFrame:
    """One row per driver: effect, CI, naive, refutations and sensitivity, as display strings."""
    rows = []
    for r in report.drivers:
        rows.append({
            "driver": r.feature, "unit": r.unit, "effect": _fmt(r.effect),
            "95% CI": f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]", "p": _fmt(r.p_value, 2),
            "naive": _fmt(r.naive_effect), "naive 95% CI": f"[{_fmt(r.naive_ci_low)}, {_fmt(r.naive_ci_high)}]",
            "placebo (p)": f"{_fmt(r.placebo_effect)} ({_fmt(r.placebo_p, 2)})",
            "random cause": _fmt(r.random_common_cause_effect), "subset": _fmt(r.subset_effect),
            "RV": _fmt(r.robustness_value, 2), "RV (5%)": _fmt(r.robustness_value_ci, 2),
        })
    return pd.DataFrame(rows)


def plain_reading(report: DriverReport, truth: dict[str, float] | None = None) -> list[str]:
    """Sentences a reader without statistics can follow: what is distinguishable from 0, how robust."""
    lines = []
    design = DESIGN_LABELS.get(report.design, report.design)
    lines.append(f"Estimated on {report.rows:,} tracks of {report.artists:,} artists, design: {design}.")
    if report.design == "naive":
        lines.append("No within-artist comparison was possible, so these are adjusted associations: an artist's "
                     "style goes with their appeal, which followers measure only roughly.")
    clear = [r for r in report.drivers if r.significant]
    unclear = [r for r in report.drivers if not r.significant]
    for r in sorted(clear, key=lambda r: -abs(r.effect * _scale(r))):
        direction = "raises" if r.effect > 0 else "lowers"
        change = CHANGE_LABELS.get(r.feature, "+1")
        rv = r.robustness_value
        robust = ("of unknown robustness" if not math.isfinite(rv) else "robust" if rv >= 0.1
                  else "moderately robust" if rv >= 0.03 else "fragile")
        text = (f"{r.feature} ({change}) {direction} popularity by about {abs(r.effect * _scale(r)):.2g} points "
                f"(95% CI {r.ci_low * _scale(r):.2g} to {r.ci_high * _scale(r):.2g}); {robust}: a hidden confounder "
                f"explaining {100 * rv:.1f}% of the residual variance of both {r.feature} and popularity "
                "would erase it")
        if report.design != "naive" and math.isfinite(r.naive_effect):
            text += f"; the naive comparison says {r.naive_effect * _scale(r):.2g}"
        lines.append(text + ".")
    if unclear:
        lines.append("Not distinguishable from 0 at 95%: " + ", ".join(r.feature for r in unclear) + ".")
    placebo_bad = [r.feature for r in report.drivers if math.isfinite(r.placebo_p) and r.placebo_p < 0.01]
    if placebo_bad:
        lines.append("Warning: the placebo check failed (permuted driver still shows an effect) for "
                     + ", ".join(placebo_bad) + "; treat those estimates with suspicion.")
    unstable = [r.feature for r in report.drivers
                if math.isfinite(r.random_common_cause_effect) and math.isfinite(r.subset_effect)
                and abs(r.random_common_cause_effect - r.subset_effect) > 0.5 * max(r.ci_high - r.ci_low, 1e-12)]
    if unstable:
        lines.append("Adding a random control moved the estimate by more than half a CI width for "
                     + ", ".join(unstable) + ".")
    if truth:
        covered = [r.feature for r in report.drivers
                   if r.feature in truth and r.ci_low <= truth[r.feature] <= r.ci_high]
        lines.append(f"Simulated data: the 95% CI covers the true effect for {len(covered)} of "
                     f"{sum(r.feature in truth for r in report.drivers)} drivers.")
    return lines


def drivers_report_html(report: DriverReport, importance: pd.DataFrame | None = None,
                        truth: dict[str, float] | None = None) -> str:
    """A self-contained HTML page: effects plot, by-genre plot, SHAP importance, tables and a plain reading."""
    import plotly.io as pio

    figures: list[tuple[str, Any]] = [("Causal effects", effects_figure(report, truth))]
    if any(r.by_genre for r in report.drivers):
        figures.append(("Heterogeneity by genre family", by_genre_figure(report)))
    if importance is not None and len(importance):
        figures.append(("Model association", importance_figure(importance)))
    parts = []
    for i, (title, fig) in enumerate(figures):
        parts.append(f"<h2>{html.escape(title)}</h2>")
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), default_width="100%"))
    table = refutation_table(report).to_html(index=False, escape=True, border=0, classes="drivers")
    reading = "".join(f"<li>{html.escape(line)}</li>" for line in plain_reading(report, truth))
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in report.warnings)
    genre_rows = [{"driver": r.feature, "genre family": g.genre, "effect": _fmt(g.effect),
                   "95% CI": f"[{_fmt(g.ci_low)}, {_fmt(g.ci_high)}]", "tracks": g.n}
                  for r in report.drivers for g in r.by_genre]
    era_rows = [{"driver": r.feature, "era": e.era, "effect": _fmt(e.effect),
                 "95% CI": f"[{_fmt(e.ci_low)}, {_fmt(e.ci_high)}]", "tracks": e.n}
                for r in report.drivers for e in r.by_era]
    info = report.info
    method = (f"Double ML ({html.escape(str(info.get('learner', '')))} nuisances, "
              f"{html.escape(str(info.get('score', '')))} score, {info.get('n_folds', '')} folds grouped by artist); "
              f"standard errors {html.escape(str(info.get('standard_errors', '')))}. Refutations on "
              f"{info.get('refutation_rows', 0):,} tracks. Sensitivity: "
              f"{html.escape(str(info.get('sensitivity', '')))}.")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>popdrivers: causal drivers of popularity</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; }}
table.drivers {{ border-collapse: collapse; font-size: 0.85em; }}
table.drivers td, table.drivers th {{ padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: right; }}
.warn {{ color: #a15c00; }}
</style></head><body>
<h1>What drives popularity</h1>
<p>Design: <b>{html.escape(DESIGN_LABELS.get(report.design, report.design))}</b>;
{report.rows:,} tracks, {report.artists:,} artists. {method}</p>
{f'<ul class="warn">{warnings}</ul>' if warnings else ''}
<h2>Reading</h2><ul>{reading}</ul>
{''.join(parts)}
<h2>Estimates, refutations and sensitivity</h2>
<p>Effects are popularity points per unit. Placebo: the driver shuffled within artist (should be near 0).
Random cause: estimate with a random extra control (should match "subset", the estimate on the same random
subset of artists). RV: share of residual variance of both driver and popularity a hidden confounder must
explain to erase the effect (RV 5%: to make it insignificant).</p>
{table}
{'<h2>By genre family</h2>' + pd.DataFrame(genre_rows).to_html(index=False, border=0, classes="drivers")
 if genre_rows else ''}
{'<h2>By release era</h2>' + pd.DataFrame(era_rows).to_html(index=False, border=0, classes="drivers")
 if era_rows else ''}
</body></html>
"""
