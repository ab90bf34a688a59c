"""`popdrivers run`: the main job of `make run` (build the default artifacts if missing, then open the app)."""

from __future__ import annotations

from pathlib import Path

import typer

from popdrivers.cli._app import app, user_errors


@app.command()
@user_errors
def run(
    artifacts: Path = typer.Option(Path("artifacts/default"), "--artifacts", help="Artifact folder to use or build."),
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to serve the app on."),
) -> None:
    """Build the default artifacts from the simulated catalogue if missing, then start the app."""
    from popdrivers.cli.serve import start_app

    raise typer.Exit(code=start_app(artifacts, port))
