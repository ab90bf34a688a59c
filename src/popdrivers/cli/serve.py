"""`popdrivers app`: start the Streamlit app on an artifact set (built first if missing).

The module is named serve so that importing it cannot shadow the Typer object `app` in popdrivers.cli.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from popdrivers.cli._app import app, console, user_errors


def streamlit_command(artifacts: Path, port: int, address: str = "localhost") -> list[str]:
    """The `streamlit run` line for the packaged app, with the current interpreter."""
    from popdrivers.app import MAIN_SCRIPT

    return [sys.executable, "-m", "streamlit", "run", str(MAIN_SCRIPT), "--server.port", str(port),
            "--server.address", address, "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "viewer",
            "--", "--artifacts", str(artifacts.resolve())]


def start_app(artifacts: Path, port: int, data: Path | None = None, address: str = "localhost") -> int:
    """Build the artifacts if missing (visible progress), then run Streamlit until it exits; its exit code."""
    from popdrivers.cli.build import build_with_progress
    from popdrivers.pipeline import is_artifact_dir, verify_artifacts

    if not is_artifact_dir(artifacts):
        build_with_progress(artifacts, data=data)
    elif data is not None:
        console.print(f"[yellow]{artifacts} already exists: using it, not rebuilding from {data} "
                      f"(run popdrivers build --data {data} --out {artifacts} to rebuild).[/]")
    verify_artifacts(artifacts)
    console.print(f"Starting the app on http://{address}:{port} (Ctrl-C stops it).")
    env = os.environ | {"POPDRIVERS_ARTIFACTS": str(artifacts.resolve())}
    try:
        return subprocess.call(streamlit_command(artifacts, port, address), env=env)
    except KeyboardInterrupt:
        return 0


@app.command("app")
@user_errors
def app_command(
    artifacts: Path = typer.Option(Path("artifacts/default"), "--artifacts", help="Artifact folder to explore."),
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to serve on."),
    data: Path | None = typer.Option(None, "--data", help="Dataset to build from when the artifacts are missing."),
    address: str = typer.Option("localhost", "--address",
                                help="Interface to listen on (0.0.0.0 to serve other machines)."),
) -> None:
    """Start the Streamlit app (builds the artifacts from the simulated catalogue first if they are missing)."""
    raise typer.Exit(code=start_app(artifacts, port, data, address))
