"""``python -m popdrivers``: the command line (what the app's background build runs with its own interpreter)."""

from popdrivers.cli import main

main()
