"""`popdrivers app`: start the Streamlit app on an artifact set (built in the background if missing).

The module is named serve so that importing it cannot shadow the Typer object `app` in popdrivers.cli.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import typer

from popdrivers.artifacts import DEFAULT_ARTIFACTS_DIR
from popdrivers.cli._app import app, console, user_errors
from popdrivers.processes import run_process_group


def streamlit_command(artifacts: Path, port: int, address: str = "localhost", data: Path | None = None) -> list[str]:
    """The `streamlit run` line for the packaged app, with the current interpreter."""
    from popdrivers.app import MAIN_SCRIPT

    # popdrivers.app.launch is `streamlit run` plus loading the app while the server starts.
    command = [sys.executable, "-m", "popdrivers.app.launch", "run", str(MAIN_SCRIPT), "--server.port", str(port),
               "--server.address", address, "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--client.toolbarMode", "viewer",
               "--", "--artifacts", str(artifacts.resolve())]
    if data is not None:
        command += ["--data", str(data.resolve())]
    return command


def start_app(artifacts: Path, port: int, data: Path | None = None, address: str = "localhost") -> int:
    """Run Streamlit on the artifacts until it exits or this process is asked to stop; its exit code.

    The server starts at once: when the artifacts are missing, the page builds them (from ``data`` if given,
    else the simulated catalogue) in a background process and shows its progress. SIGTERM, SIGINT (Ctrl-C) or
    SIGHUP to this process stop the server and that build (their process group), and this process waits for
    them (0 is returned: a stop asked for is a clean stop).
    """
    from popdrivers.pipeline import build_status, is_artifact_dir, verify_artifacts

    if is_artifact_dir(artifacts):
        if data is not None:
            console.print(f"[yellow]{artifacts} already exists: using it, not rebuilding from {data} "
                          f"(run popdrivers build --data {data} --out {artifacts} to rebuild).[/]")
        verify_artifacts(artifacts)
    else:
        state = build_status(artifacts).state
        what = "already being built" if state == "running" else \
            f"missing: the page builds them from {data or 'the SIMULATED catalogue'} and shows the progress"
        console.print(f"Artifacts in {artifacts} {what}.")
    console.print(f"Starting the app on http://{address}:{port} (Ctrl-C stops it).")
    from popdrivers.app.launch import ENV_APP_PID

    # The server runs in a process group of its own, with the build it may start: a stop signal to this
    # process (Ctrl-C, kill, a process manager) stops them all, and the server stops if this process is killed.
    env = os.environ | {"POPDRIVERS_ARTIFACTS": str(artifacts.resolve()), ENV_APP_PID: str(os.getpid())}

    def stopping(signum: int) -> None:
        console.print(f"{signal.Signals(signum).name}: stopping the app server (and a build it started) ...")

    return run_process_group(streamlit_command(artifacts, port, address, data), env=env, on_stop=stopping)


@app.command("app")
@user_errors
def app_command(
    artifacts: Path = typer.Option(DEFAULT_ARTIFACTS_DIR, "--artifacts", help="Artifact folder to explore."),
    port: int = typer.Option(8501, "--port", min=1, max=65535, help="Port to serve on."),
    data: Path | None = typer.Option(None, "--data", help="Dataset to build from when the artifacts are missing."),
    address: str = typer.Option("localhost", "--address",
                                help="Interface to listen on (0.0.0.0 to serve other machines)."),
) -> None:
    """Start the Streamlit app at once (missing artifacts are built in the background, with progress on the page)."""
    raise typer.Exit(code=start_app(artifacts, port, data, address))
