"""`popdrivers run`: the main job of `make run` (open the app; it builds the default artifacts if missing)."""

from __future__ import annotations

from pathlib import Path

import typer

from popdrivers.artifacts import DEFAULT_ARTIFACTS_DIR
from popdrivers.cli._app import app, user_errors


@app.command()
@user_errors
def run(
    artifacts: Path = typer.Option(DEFAULT_ARTIFACTS_DIR, "--artifacts", help="Artifact folder to use or build."),
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to serve the app on."),
) -> None:
    """Start the app at once; if the artifacts are missing, it builds them from the simulated catalogue."""
    from popdrivers.cli.serve import start_app

    raise typer.Exit(code=start_app(artifacts, port))
