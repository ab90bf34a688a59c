"""The Streamlit app: ``main.py`` is the router, ``pages/`` the pages, ``services.py`` what they compute.

Beside them, one module a role: ``config`` (where the artifacts come from, the session's keys), ``cache`` (the
artifact set and its derived tables, loaded once per folder version), ``widgets`` (what every page draws the same
way), ``build_page`` (the page shown while the artifacts are being built) and ``launch`` (the server's start).

Start it with ``popdrivers app [--artifacts DIR]`` (or ``make run``).
"""

from pathlib import Path

MAIN_SCRIPT = Path(__file__).with_name("main.py")
