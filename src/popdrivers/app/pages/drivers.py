"""Drivers: every design's causal effects with 95% CIs, dose-response curves, whether effects vary between tracks,
checks, sensitivity, by genre; SHAP beside (association)."""

import streamlit as st

from popdrivers import drivers_report as figures
from popdrivers import explain
from popdrivers.app import cache, widgets

artifacts = cache.current()
report = artifacts.drivers
truth = artifacts.truth.effects if artifacts.truth is not None else None
truth_curves = ({d: (c["values"], c["effects"]) for d, c in artifacts.truth.curves.items()}
                if artifacts.truth is not None else None)
st.title("What drives popularity")
widgets.data_notice(artifacts)
st.caption(f"An effect is the change in popularity points for +1 unit of the feature, averaged over the tracks, "
           f"comparing {'tracks of the same album' if report.design == 'within_album' else 'tracks of the same artist'}"
           " (double machine learning with fixed effects; each track's effect may differ by genre family and along "
           "the feature's own values; 95% CIs clustered by artist).")
st.info(f"Primary design: **{figures.design_label(report.design)}**: {report.design_reason}.")
st.caption(figures.sources_sentence(report) + " The table below names each driver's source.")
for warning in report.warnings:
    st.warning(warning)

left, right = st.columns([3, 2])
with left:
    st.markdown("#### Causal effects by design, 95% CI")
    st.plotly_chart(figures.effects_figure(report, truth=truth), key="drivers_effects")
    st.caption("Thick bars: 95% CI of each design. Thin bar: the primary design's simultaneous band, which covers "
               "all drivers at once." + (" Green crosses: the TRUE effects built into the simulated catalogue."
                                          if truth is not None else ""))
with right:
    st.markdown("#### Model feature importance (association, not cause)")
    if artifacts.importance is not None:
        figure = widgets.without_title(explain.importance_figure(artifacts.importance))
        st.plotly_chart(figure.update_xaxes(title_text="mean |SHAP| (points)"), key="drivers_importance")
    st.caption("Mean |SHAP| of the prediction model: how much the model leans on each feature. Followers, genre "
               "and the artist's track record carry the artist's appeal, so they rank high without being levers.")

st.markdown("#### In plain words")
st.markdown("\n".join(f"- {line}" for line in figures.plain_reading(report, truth)))

st.markdown("#### Estimates and checks")
st.caption("p (Holm): adjusted for testing every driver. Simultaneous band: all drivers at once. Placebo "
           "rejections: the driver shuffled within the comparison groups, share of shuffles the 95% CI calls "
           "significant (about 5% expected). RV: how much of the residual variance of both the driver and "
           "popularity a hidden confounder must explain to erase the effect.")
table = figures.estimates_table(report, truth)
st.dataframe(table, hide_index=True, key="drivers_table", height=38 + 35 * len(table))

st.markdown("#### Dose-response: large changes")
with_curves = [r.feature for r in report.drivers if r.curve]
if with_curves:
    curve_driver = st.selectbox("Feature", with_curves, key="drivers_curve_driver",
                                index=with_curves.index("loudness") if "loudness" in with_curves else 0)
    result = report[curve_driver]
    st.plotly_chart(figures.curve_figure(result, truth_curves.get(curve_driver) if truth_curves else None),
                    key="drivers_curve")
    st.caption(f"The average change in popularity if every track's {curve_driver} were the value on the x axis "
               f"instead of its median ({result.curve_reference:.3g}). Dark ribbon: pointwise 95% CI; light: the band "
               "that covers the whole curve at once." + (" Dashed green: the TRUE curve of the simulated catalogue."
                                                         if truth_curves and curve_driver in truth_curves else ""))
else:
    st.info("No continuous driver has a dose-response curve in this report.")

st.markdown("#### Does the effect vary between tracks?")
st.caption("A test per driver that its effect is the same for every track (the same slope in every genre family "
           "and no bend along its own values). Where it varies, the What-if page gives the effect for one track. "
           "Variance-weighted: the partially linear number, which counts tracks by how much the feature varies "
           "within their album; it is not the average effect when effects differ.")
het = figures.heterogeneity_table(report)
st.dataframe(het, hide_index=True, key="drivers_heterogeneity", height=38 + 35 * len(het))

st.markdown("#### Sensitivity: a hidden confounder as strong as an observed one")
sensitivity = figures.sensitivity_table(report)
if len(sensitivity):
    k = st.radio("Confounder strength (times an observed control)", [1.0, 2.0, 3.0], horizontal=True,
                 format_func=lambda v: f"{v:g}x", key="drivers_sensitivity_k")
    shown = figures.sensitivity_table(report, k=k)
    st.dataframe(shown, hide_index=True, key="drivers_sensitivity", height=38 + 35 * min(len(shown), 14))
else:
    st.info("The sensitivity analysis was not run for this report.")

st.markdown("#### Effects by genre family")
with_genres = [r.feature for r in report.drivers if r.by_genre]
if with_genres:
    driver = st.selectbox("Driver", with_genres, key="drivers_genre_driver")
    st.plotly_chart(figures.by_genre_figure(report, driver), key="drivers_by_genre")
else:
    st.info("No genre family had enough artists and tracks to estimate effects by genre.")
