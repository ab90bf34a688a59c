"""``python -m popdrivers.app.launch run MAIN -- ARGS``: ``streamlit run`` that loads the app while the server starts.

The first visitor would otherwise wait, after the server is up, for the page's imports (pandas, LightGBM,
scikit-learn, plotly) and for the artifacts to load and verify: about two seconds of CPU. A thread does that
while Streamlit starts its server, so the first page appears about when the server can answer.
"""

from __future__ import annotations

import os
import sys
import threading


def _preload(argv: list[str]) -> None:
    from popdrivers.app import state

    path = state.artifacts_dir_from(argv, os.environ)
    from popdrivers import pipeline

    if pipeline.is_artifact_dir(path):
        import plotly.graph_objects  # noqa: F401 - the pages' charts

        from popdrivers import explain  # noqa: F401 - the pages' library calls
        from popdrivers.app import services  # noqa: F401

        state.preload(path)


def main() -> None:
    """Start the preload thread, then hand the command line to Streamlit's own CLI."""
    args = sys.argv[1:]
    app_args = args[args.index("--") + 1:] if "--" in args else []
    # Imported before the thread starts: some libraries (plotly) look pandas up in sys.modules and would see it
    # half-initialised while another thread imports it. Streamlit needs both anyway.
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    threading.Thread(target=_preload, args=(app_args,), name="popdrivers-preload", daemon=True).start()
    from streamlit.web.cli import main as streamlit_main

    sys.argv = ["streamlit", *args]
    streamlit_main()


if __name__ == "__main__":
    main()
