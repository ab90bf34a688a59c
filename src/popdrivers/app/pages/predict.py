"""Predict: a track's popularity from typed features or from a song file, with an 80% interval and a SHAP waterfall."""

from typing import Any

import streamlit as st

from popdrivers import explain, registry
from popdrivers.app import cache, services, widgets
from popdrivers.model import detect_shift

artifacts = cache.current()
st.title("Predict a track's popularity")
widgets.data_notice(artifacts)
reference = services.model_reference_date(artifacts.model, artifacts.tracks)


def show_shift(model: Any, track: Any) -> None:
    """Say when the track is unlike the model's training data: its interval then does not hold as calibrated."""
    shift = detect_shift(model, track)
    if not shift.assumption_holds:
        st.warning("**This track differs from the model's training data.** " + shift.summary() + ".")


def show_prediction(result: explain.ExplainedPrediction, model_words: str, key: str) -> None:
    left, right = st.columns([1, 2])
    with left:
        st.metric("Predicted popularity", f"{result.prediction:.1f}", border=True,
                  help=f"Spotify popularity, 0 to 100, predicted by {model_words}.")
        st.markdown(f"80% interval: **{result.lower:.1f} to {result.upper:.1f}**")
        st.caption(f"Average track: {result.explanation.base_value:.1f}. Computed with its explanation in "
                   f"{1000 * result.seconds:.0f} ms. A new artist (no track record) gets the wider interval.")
    with right:
        st.markdown("#### Why the model predicts this")
        figure = widgets.without_title(explain.waterfall_figure(result.explanation))
        st.plotly_chart(figure.update_xaxes(range=services.waterfall_range(result.explanation)), key=key)
        st.caption("Each bar is how much a feature moved this prediction away from the average track "
                   "(SHAP). It explains the model: an association learned from the data, not a causal effect; "
                   "see the Drivers page for those.")


typed_tab, song_tab = st.tabs(["Type the features", "From a song file"])

with typed_tab:
    st.caption("Set the track's features (defaults are the training data's medians) and press **Predict**. "
               "The model predicts what tracks like this one score: an association, not a recipe.")
    specs, unused = services.used_inputs(cache.predict_specs(*cache.cache_key()), artifacts.model)
    with st.form("predict_form"):
        columns = st.columns(3)
        values = {spec.name: spec.default for spec in unused}
        for i, spec in enumerate(specs):
            with columns[i % 3]:
                values[spec.name] = widgets.input_widget(spec, key=f"predict_{spec.name}")
        if unused:
            st.caption("Not asked: the training data had no " + ", ".join(s.label.lower() for s in unused) + ".")
        if st.form_submit_button("Predict", type="primary"):
            st.session_state["predict_values"] = values
    if st.session_state["predict_values"] is not None:
        row = services.track_from_inputs(st.session_state["predict_values"], reference)
        show_prediction(explain.explained_prediction(artifacts.model, row), "the LightGBM model",
                        "predict_waterfall")
        show_shift(artifacts.model, row)

with song_tab:
    audio_model = artifacts.audio_model
    if audio_model is None:
        st.info("These artifacts have no audio model: their training data has none of the features popdrivers "
                "measures from a recording. Rebuild them with this version of popdrivers.")
        st.stop()
    st.caption(f"{', '.join(t.upper() for t in services.SONG_TYPES)} up to {services.MAX_SONG_MB} MB. The file is "
               "analysed **on this machine**, never sent anywhere, and deleted as soon as it is analysed. The "
               "audio model predicts from what popdrivers measures in the sound (tempo, key, mode, loudness, "
               "meter, length and its own descriptors) plus what you type below; Spotify's danceability, "
               "energy or valence are not guessed.")
    upload = st.file_uploader("A song", type=list(services.SONG_TYPES), key="song_upload")
    if upload is None:
        st.session_state["song"] = None
    elif st.session_state["song"] is None or st.session_state["song"].filename != upload.name:
        with st.status(f"Analysing {upload.name} on this machine ...", expanded=True) as status:
            st.write("Decoding and measuring (a few seconds for a song; the file is deleted afterwards).")
            analysis = services.analyse_song(upload.getvalue(), upload.name)
            status.update(label=f"{upload.name}: analysed" if analysis.ok else f"{upload.name}: not analysed",
                          state="complete" if analysis.ok else "error", expanded=not analysis.ok)
        st.session_state["song"] = analysis
        st.session_state["song_values"] = None
    song = st.session_state["song"]
    if song is not None and not song.ok:
        st.error(f"{song.filename} could not be analysed: {song.problem}")
    elif song is not None:
        audio_specs, _ = services.used_inputs(services.predict_inputs(artifacts.tracks, audio_model), audio_model)
        measured, typed = services.song_inputs(song.row, audio_specs)
        st.markdown(f"#### Measured from `{song.filename}`")
        st.caption(f"Source: `{song.row.get('features_source')}` (popdrivers' analysis, not Spotify's). Edit any "
                   "value if you know better.")
        with st.form("song_form"):
            columns = st.columns(3)
            values = {}
            for i, spec in enumerate(measured):
                with columns[i % 3]:
                    values[spec.name] = widgets.input_widget(spec, key=f"song_{spec.name}")
            st.markdown("**Still typed** (not in the sound)")
            columns = st.columns(3)
            for i, spec in enumerate(typed):
                with columns[i % 3]:
                    values[spec.name] = widgets.input_widget(spec, key=f"song_{spec.name}")
            others = [registry.spec(k).label for k, v in song.row.items() if registry.is_registered(k)
                      and k not in values and "audio" in registry.spec(k).sources and v is not None]
            if others:
                st.caption("Measured but not used by this audio model (its training data lacked them): "
                           + ", ".join(others) + ".")
            if st.form_submit_button("Predict from the song", type="primary"):
                st.session_state["song_values"] = values
        if st.session_state["song_values"] is not None:
            track = services.song_track(st.session_state["song_values"], song.row, reference)
            show_prediction(explain.explained_prediction(audio_model, track), "the audio model (features measured "
                            "from the sound plus what you typed)", "song_waterfall")
            show_shift(audio_model, track)
