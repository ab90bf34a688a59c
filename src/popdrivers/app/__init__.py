"""The Streamlit app: ``main.py`` is the router, ``pages/`` the pages, ``services.py`` what they compute.

Start it with ``popdrivers app [--artifacts DIR]`` (or ``make run``).
"""

from pathlib import Path

MAIN_SCRIPT = Path(__file__).with_name("main.py")
