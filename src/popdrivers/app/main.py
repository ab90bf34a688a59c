"""popdrivers app: the router. Run with `popdrivers app` (or `streamlit run main.py -- --artifacts DIR`)."""

import streamlit as st

from popdrivers.app import build_page, cache, config

st.set_page_config(page_title="popdrivers", page_icon=":material/equalizer:", layout="wide")
config.init_session_state()
if not cache.artifacts_ready():
    # Only the build's progress until the artifacts exist (no page menu: the pages need them).
    st.navigation([st.Page(build_page.build_page, title="Building the artifacts", icon=":material/build:")],
                  position="hidden").run()
    st.stop()
artifacts = cache.ensure_loaded()

PAGES = [
    st.Page("pages/predict.py", title="Predict", icon=":material/target:", default=True),
    st.Page("pages/what_if.py", title="What-if", icon=":material/tune:"),
    st.Page("pages/drivers.py", title="Drivers", icon=":material/explore:"),
    st.Page("pages/data.py", title="Data", icon=":material/table_chart:"),
    st.Page("pages/model_card.py", title="Model card", icon=":material/description:"),
]
page = st.navigation(PAGES)

with st.sidebar:
    st.markdown("**popdrivers**: what predicts a track's popularity, and what drives it.")
    if artifacts.simulated:
        st.warning("SIMULATED data", icon=":material/science:")
    st.caption(f"Artifacts: `{artifacts.path}`  \n{len(artifacts.tracks):,} tracks, "
               f"built {artifacts.build.get('created_at', '?')}")

page.run()
