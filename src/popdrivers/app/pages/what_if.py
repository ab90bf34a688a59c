"""What-if: edit a real track; the model's new prediction beside the change the causal effects imply (read off the
dose-response curves), and this track's own effect where effects vary between tracks."""

import math

import streamlit as st

from popdrivers import drivers_report as figures
from popdrivers import explain, registry
from popdrivers.app import cache, services, widgets

artifacts = cache.current()
tracks, model, report = artifacts.tracks, artifacts.model, artifacts.drivers
st.title("What if this track were different?")
widgets.data_notice(artifacts)

query = st.text_input("Search a track by name or artist", key="whatif_query",
                      placeholder="e.g. a song title or an artist name")
hits = services.search_tracks(tracks, query)
if hits.empty:
    st.info(f"No track or artist matches '{query}'.")
    st.stop()
labels = {tid: services.track_label(row) for tid, row in zip(hits["track_id"], hits.to_dict("records"), strict=True)}
track_id = st.selectbox(f"Track ({len(hits)} shown, most popular first)", list(labels), key="whatif_track",
                        format_func=labels.get)
row = tracks[tracks["track_id"] == track_id].head(1).reset_index(drop=True)
interval = model.predict_interval(row)

a, b, c = st.columns(3)
a.metric("Actual popularity", int(row["popularity"].iloc[0]) if "popularity" in row else "unknown")
b.metric("Predicted popularity", f"{interval['prediction'].iloc[0]:.1f}")
c.metric("80% interval", f"{interval['lower'].iloc[0]:.0f} to {interval['upper'].iloc[0]:.0f}")

estimated = [r.feature for r in report.drivers]
current = explain.driver_values(row, tuple(estimated))  # the report's drivers: Spotify's or what was measured
editable = [d for d in estimated if d in current and not math.isnan(current[d])]
st.subheader("Edit the track")
new_values = {}
columns = st.columns(4)
for i, driver in enumerate(editable):
    feature = registry.spec(driver)
    low, high = services.driver_input_range(driver, tracks)
    step = feature.step or 0.01
    value = min(max(current[driver], low), high)
    key = f"whatif_{track_id}_{driver}"
    with columns[i % 4]:
        if feature.binary:
            start = float(round(value))
            chosen = float(st.toggle(feature.label, bool(start), key=key, help=feature.effect_unit))
        else:
            start = float(round(value / step) * step)
            chosen = st.slider(feature.axis_title, low, high, start, step, key=key,
                               help=f"{feature.help} Causal effect is per {feature.effect_unit}.")
        # An untouched widget keeps the track's exact value (the slider grid would otherwise be an "edit").
        new_values[driver] = chosen if chosen != start else current[driver]
result = explain.what_if(model, report, row, new_values)

left, right = st.columns(2)
with left, st.container(border=True):
    st.markdown("#### Model prediction (association)")
    st.metric("Predicted popularity after the edit", f"{result.after:.1f}", f"{result.model_change:+.1f}")
    st.caption("What the model predicts for a track with these features. It mixes cause with everything that "
               "travels with the features across artists (reach, style, genre).")
with right, st.container(border=True):
    design = figures.design_label(report.design)
    st.markdown(f"#### Causal estimate ({design} effects)")
    st.metric("Implied change in popularity (average over tracks)", f"{result.causal_change:+.1f}",
              help=f"Sum over edited drivers of the {design} double ML estimates: for a continuous feature the "
                   "dose-response curve from this track's value to the new one (a large change is not one slope "
                   "times its size), for a yes/no feature its average effect.")
    st.caption(f"95% CI {result.causal_low:+.1f} to {result.causal_high:+.1f}, from the joint covariance of the "
               "estimates (drivers estimated from the same tracks have correlated errors). What changing these "
               "features would do on average over the tracks, holding their "
               f"{'album' if report.design == 'within_album' else 'artist'} and release fixed.")
    for effect in result.per_track:
        spec = registry.spec(effect.driver)
        st.markdown(f"**For this track** ({effect.family}): {spec.label.lower()} {effect.start:.3g} → "
                    f"{effect.end:.3g} would change popularity by **{effect.effect:+.1f}** "
                    f"(95% CI {effect.low:+.1f} to {effect.high:+.1f}): the effect of {spec.label.lower()} differs "
                    "between tracks (by genre family and along its values), so this track's own effect is shown.")
    for effect in result.learner:
        spec = registry.spec(effect.driver)
        st.markdown(f"**For this track, from a learner told nothing about genre families** (R-learner, calibrated): "
                    f"{effect.effect:+.3g} per {spec.effect_unit} (95% CI of the calibrated predictor "
                    f"{effect.low:+.3g} to {effect.high:+.3g}, which leaves out what the learner gets wrong); "
                    f"for this edit about **{effect.implied:+.1f}** (a local slope: for a large change the "
                    "dose-response curve on the Drivers page applies).")
    if result.average_applies:
        names = ", ".join(registry.spec(d).label.lower() for d in result.average_applies)
        st.caption(f"No evidence that the effect of {names} differs between tracks: the average applies to this "
                   "track.")
if result.changes:
    st.caption("Edits: " + ", ".join(f"{d} {v:+.3g}" for d, v in result.changes.items()))
else:
    st.caption("Move a slider above: both estimates update, and they need not agree.")

st.subheader("Predicted popularity over one feature's range")
driver = st.selectbox("Feature", editable, key="whatif_curve_driver")
edited = explain.with_driver_values(row, new_values)
curve = explain.feature_curve(model, edited, driver, tracks)
st.plotly_chart(services.curve_figure(curve, driver, new_values[driver], result.after), key="whatif_curve")
