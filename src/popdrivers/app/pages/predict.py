"""Predict: a track's popularity from its inputs, with an 80% interval and a SHAP waterfall."""

import streamlit as st

from popdrivers import explain
from popdrivers.app import services, state

artifacts = state.current()
st.title("Predict a track's popularity")
state.data_notice(artifacts)
st.caption("Set the track's features (defaults are the training data's medians) and press **Predict**. "
           "The model predicts what tracks like this one score: an association, not a recipe.")

specs, unused = services.used_inputs(state.predict_specs(*state.cache_key()), artifacts.model)
with st.form("predict_form"):
    columns = st.columns(3)
    values = {spec.name: spec.default for spec in unused}
    for i, spec in enumerate(specs):
        with columns[i % 3]:
            values[spec.name] = state.input_widget(spec, key=f"predict_{spec.name}")
    if unused:
        st.caption("Not asked: the training data had no " + ", ".join(s.label.lower() for s in unused) + ".")
    if st.form_submit_button("Predict", type="primary"):
        st.session_state["predict_values"] = values

if st.session_state["predict_values"] is not None:
    row = services.track_from_inputs(st.session_state["predict_values"],
                                     services.model_reference_date(artifacts.model, artifacts.tracks))
    result = explain.explained_prediction(artifacts.model, row)
    left, right = st.columns([1, 2])
    with left:
        st.metric("Predicted popularity", f"{result.prediction:.1f}", border=True,
                  help="Spotify popularity, 0 to 100, predicted by the LightGBM model.")
        st.markdown(f"80% interval: **{result.lower:.1f} to {result.upper:.1f}**")
        st.caption(f"Average track: {result.explanation.base_value:.1f}. Computed with its explanation in "
                   f"{1000 * result.seconds:.0f} ms. A new artist (no track record) gets the wider interval.")
    with right:
        st.markdown("#### Why the model predicts this")
        figure = state.without_title(explain.waterfall_figure(result.explanation))
        st.plotly_chart(figure.update_xaxes(range=services.waterfall_range(result.explanation)),
                        key="predict_waterfall")
        st.caption("Each bar is how much a feature moved this prediction away from the average track "
                   "(SHAP). It explains the model: an association learned from the data, not a causal effect; "
                   "see the Drivers page for those.")
