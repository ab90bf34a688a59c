"""``python -m popdrivers``: the command line, with the current interpreter."""

from popdrivers.cli import main

main()
