"""Drivers: within-artist causal effects with 95% CIs vs naive, refutations, by genre; SHAP importance beside."""

import streamlit as st

from popdrivers import explain
from popdrivers import report as figures
from popdrivers.app import services, state

artifacts = state.current()
report = artifacts.drivers
truth = artifacts.truth.effects if artifacts.truth is not None else None
st.title("What drives popularity")
state.data_notice(artifacts)
st.caption("An effect is the average change in popularity points for +1 unit of the feature, comparing tracks "
           "of the same artist (double machine learning, artist fixed effects, cluster-robust 95% CIs).")
for warning in report.warnings:
    st.warning(warning)

left, right = st.columns([3, 2])
with left:
    st.markdown("#### Causal effects: within artist vs naive, 95% CI")
    st.plotly_chart(figures.effects_figure(report, truth=truth), key="drivers_effects")
    if truth is not None:
        st.caption("Simulated data: the markers show the TRUE effects built into the catalogue.")
with right:
    st.markdown("#### Model feature importance (association, not cause)")
    if artifacts.importance is not None:
        figure = state.without_title(explain.importance_figure(artifacts.importance))
        st.plotly_chart(figure.update_xaxes(title_text="mean |SHAP| (points)"), key="drivers_importance")
    st.caption("Mean |SHAP| of the prediction model: how much the model leans on each feature. Followers, genre "
               "and the artist's track record carry the artist's appeal, so they rank high without being levers.")

st.markdown("#### In plain words")
st.markdown("\n".join(f"- {line}" for line in figures.plain_reading(report, truth)))

st.markdown("#### Refutation and sensitivity")
st.caption("placebo: effect of the driver shuffled within artist (should be ~0); random cause: effect after adding "
           "a random control (should barely move); subset: effect on a random subset of artists (should be close); "
           "RV: robustness value, the share of residual variance a hidden confounder would need to explain in both "
           "the driver and popularity to erase the effect.")
table = services.refutation_table(report, truth)
st.dataframe(table, hide_index=True, key="drivers_table", height=38 + 35 * len(table))

st.markdown("#### Effects by genre family")
with_genres = [r.feature for r in report.drivers if r.by_genre]
if with_genres:
    driver = st.selectbox("Driver", with_genres, key="drivers_genre_driver")
    st.plotly_chart(figures.by_genre_figure(report, driver), key="drivers_by_genre")
else:
    st.info("No genre family had enough artists and tracks to estimate effects by genre.")
