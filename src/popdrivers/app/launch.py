"""``python -m popdrivers.app.launch run MAIN -- ARGS``: ``streamlit run`` that loads the app while the server starts.

The first visitor would otherwise wait, after the server is up, for the page's imports (pandas, LightGBM,
scikit-learn, plotly) and for the artifacts to load and verify: about two seconds of CPU. A thread does that
once the server listens (before, it would slow the server's own start), while the browser loads Streamlit's
frontend, so the first page appears soon after.

Started by ``popdrivers app`` (``POPDRIVERS_APP_PID`` names it), the server stops when that process is gone,
even killed with SIGKILL, instead of holding its port as an orphan.
"""

from __future__ import annotations

import os
import sys
import threading

ENV_APP_PID = "POPDRIVERS_APP_PID"


def _server_up(port: int | None, timeout: float = 10.0) -> None:
    """Wait until the server listens (or ``timeout``): importing meanwhile would slow its start (one GIL)."""
    import socket
    import time

    if port is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)


def _port(args: list[str]) -> int | None:
    for i, arg in enumerate(args):
        if arg == "--server.port" and i + 1 < len(args) and args[i + 1].isdigit():
            return int(args[i + 1])
        if arg.startswith("--server.port=") and arg.split("=", 1)[1].isdigit():
            return int(arg.split("=", 1)[1])
    return None


def _preload(argv: list[str], port: int | None = None) -> None:
    _server_up(port)
    from popdrivers.app import cache, config

    path = config.artifacts_dir_from(argv, os.environ)
    from popdrivers import pipeline

    if pipeline.is_artifact_dir(path):
        import plotly.graph_objects  # noqa: F401 - the pages' charts

        from popdrivers import explain  # noqa: F401 - the pages' library calls
        from popdrivers.app import services  # noqa: F401

        cache.preload(path)


def main() -> None:
    """Start the preload thread, then hand the command line to Streamlit's own CLI."""
    args = sys.argv[1:]
    owner = os.environ.get(ENV_APP_PID, "")
    if owner.isdigit() and int(owner) == os.getppid():
        from popdrivers.processes import stop_when_parent_exits

        # SIGTERM: Streamlit's own handler stops the server cleanly (and this process group's build with it).
        stop_when_parent_exits(int(owner))
    app_args = args[args.index("--") + 1:] if "--" in args else []
    # Imported before the thread starts: some libraries (plotly) look pandas up in sys.modules and would see it
    # half-initialised while another thread imports it. Streamlit needs both anyway.
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    threading.Thread(target=_preload, args=(app_args, _port(args)), name="popdrivers-preload", daemon=True).start()
    from streamlit.web.cli import main as streamlit_main

    sys.argv = ["streamlit", *args]
    streamlit_main()


if __name__ == "__main__":
    main()
