"""Data: summary, distributions, correlations, VIF, popularity by genre and year; upload and score a dataset."""

import plotly.express as px
import streamlit as st

from popdrivers.app import cache, widgets
from popdrivers.explore import dataset_summary
from popdrivers.model import score_tracks
from popdrivers.sources.files import FORMATS

artifacts = cache.current()
key = cache.cache_key()
st.title("The data")
widgets.data_notice(artifacts)

summary = dataset_summary(artifacts.tracks)
for column, (name, value) in zip(st.columns(len(summary)), summary.items(), strict=True):
    column.metric(name, f"{value:,}" if isinstance(value, int) else value)

eda = cache.eda_frame(*key)
tabs = st.tabs(["Distributions", "Correlations", "Collinearity (VIF)", "Popularity by genre and year",
                "Upload and score"])
with tabs[0]:
    column = st.selectbox("Column", list(eda.columns), key="data_dist_column")
    st.plotly_chart(px.histogram(eda, x=column, nbins=50, title=f"Distribution of {column}"), key="data_hist")
    st.dataframe(eda.describe().T, key="data_describe", height=38 + 35 * eda.shape[1])
with tabs[1]:
    corr = eda.corr()
    st.plotly_chart(px.imshow(corr, zmin=-1, zmax=1, color_continuous_scale="RdBu_r", text_auto=".2f",
                              title="Correlation (Pearson)", aspect="auto", height=620), key="data_corr")
with tabs[2]:
    st.caption("Variance inflation factor: how much a coefficient's variance grows because the feature is "
               "predictable from the others. Above 5-10, effects are hard to separate.")
    st.dataframe(cache.vif_table(*key), hide_index=True, key="data_vif")
with tabs[3]:
    by_family = cache.popularity_by(*key, "genre_family").sort_values("mean", ascending=False)
    st.plotly_chart(px.bar(by_family, x="genre_family", y="mean", hover_data=["tracks", "median"],
                           title="Mean popularity by genre family"), key="data_by_family")
    by_year = cache.popularity_by(*key, "release_year")
    st.plotly_chart(px.line(by_year, x="release_year", y="mean", hover_data=["tracks"], markers=True,
                            title="Mean popularity by release year"), key="data_by_year")
with tabs[4]:
    st.caption("Any format popdrivers reads (canonical CSV/Parquet, TidyTuesday spotify_songs.csv, genre-tracks "
               "tracks.csv, Kaggle dataset.csv or tracks.csv). Popularity is optional: uploads can be scored.")
    fmt = st.selectbox("Format", ["auto", *FORMATS], key="data_upload_format")
    uploaded = st.file_uploader("Upload a dataset", type=["csv", "parquet", "pq", "xlsx"], key="data_upload")
    if uploaded is not None:
        upload = cache.read_upload(uploaded.getvalue(), uploaded.name, fmt)
        if not upload.ok:
            st.error(f"{upload.filename} cannot be used as it is. Fix these and upload again:\n\n"
                     + "\n".join(f"- {problem}" for problem in upload.problems))
        else:
            st.success(upload.notes[0])
            for note in upload.notes[1:]:
                st.caption(note)
            st.dataframe(upload.tracks.head(20), key="data_upload_preview")
            if st.button(f"Score {len(upload.tracks):,} tracks", key="data_score", type="primary"):
                st.session_state["scored_upload"] = (upload.filename,
                                                     *score_tracks(artifacts.model, upload.tracks))
            scored = st.session_state["scored_upload"]
            if scored is not None and scored[0] == upload.filename:
                # What the intervals can promise here: unlike the training data, they do not hold as calibrated.
                report = scored[2]
                if report.shift.assumption_holds:
                    st.success(report.shift.summary())
                else:
                    st.warning("**These tracks differ from the model's training data.** "
                               + report.shift.summary() + ".")
                for line in report.lines():
                    if line != report.shift.summary():
                        st.caption(line)
                st.caption(report.assumption)
                st.dataframe(scored[1], hide_index=True, key="data_scored")
                st.download_button("Download predictions (CSV)", scored[1].to_csv(index=False).encode("utf-8"),
                                   file_name=f"{upload.filename.rsplit('.', 1)[0]}-predictions.csv",
                                   mime="text/csv", key="data_download")
