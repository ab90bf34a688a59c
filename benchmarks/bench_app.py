"""Benchmark: how fast the app answers, starts, and explains one prediction, against the targets.

* **health, no artifacts**: ``popdrivers app`` on a folder without artifacts, from process start until
  ``/_stcore/health`` answers (target: 5 s). Nothing is built before the server starts.
* **fresh start, page shown**: ``popdrivers run`` (what ``make run`` runs after installing) on a folder without
  artifacts, from process start until Chromium shows the build page (target: 10 s after the install).
* **cold start with artifacts**: ``popdrivers app`` on a built artifact folder, from process start until the
  health check answers and until Chromium shows the Predict page (target: 3 s).
* **predict + explain**: one track's prediction, interval and SHAP explanation
  (:func:`popdrivers.explain.explained_prediction`), median wall and CPU time over 200 calls (target: 20 ms).

Each start runs in a fresh process, ``--repeat`` times (median reported). The machine's load is printed beside
the figures: on a shared machine wall times are pessimistic.

Usage::

    .venv/bin/python benchmarks/bench_app.py [--artifacts DIR] [--repeat 3]

Without ``--artifacts`` it builds the default artifacts (simulated catalogue) into a temporary folder first.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
TARGETS = {"health_missing_s": 5.0, "fresh_page_s": 10.0, "cold_page_s": 3.0, "predict_explain_ms": 20.0}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as response:
            return response.read().strip() == b"ok"
    except OSError:
        return False


def stop(process: subprocess.Popen, folder: Path | None = None) -> None:
    """Stop the server we started (by its id), and a background build it started for ``folder``."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if folder is not None:
        from popdrivers import pipeline

        lock = pipeline.build_dir(folder) / "lock"
        if lock.exists() and lock.read_text().strip().isdigit():
            pid = int(lock.read_text().strip())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)  # the builder this benchmark's server started


def start(command: str, artifacts: Path) -> tuple[subprocess.Popen, str, float]:
    port = free_port()
    began = time.perf_counter()
    log_path = Path(tempfile.mkdtemp(prefix="bench-app-")) / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([str(BIN / "popdrivers"), command, "--artifacts", str(artifacts), "--port",
                                    str(port)], stdout=log, stderr=subprocess.STDOUT)
    process.log_path = log_path  # type: ignore[attr-defined]
    return process, f"http://localhost:{port}", began


def until_healthy(url: str, process: subprocess.Popen, began: float, timeout: float = 120) -> float:
    while time.perf_counter() - began < timeout:
        if process.poll() is not None:
            output = Path(process.log_path).read_text()  # type: ignore[attr-defined]
            raise RuntimeError(f"the server exited with code {process.returncode}:\n{output[-2000:]}")
        if healthy(url):
            return time.perf_counter() - began
        time.sleep(0.02)
    raise RuntimeError(f"no health answer within {timeout} s")


def until_heading(browser, url: str, heading: str, began: float) -> float:
    from playwright.sync_api import Error

    tab = browser.new_page()
    tab.set_default_timeout(120_000)
    while True:  # as a user reloading until the server is up
        try:
            tab.goto(url)
            break
        except Error:
            time.sleep(0.05)
    tab.get_by_role("heading", name=heading).wait_for()
    seconds = time.perf_counter() - began
    tab.close()
    return seconds


def measure_starts(artifacts: Path, repeat: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"health_missing_s": [], "fresh_page_s": [], "cold_health_s": [],
                                       "cold_page_s": []}
    browser = None
    playwright = None
    if CHROMIUM.exists():
        from playwright.sync_api import sync_playwright

        playwright = sync_playwright().start()
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
    try:
        for _ in range(repeat):
            empty = Path(tempfile.mkdtemp(prefix="bench-app-")) / "artifacts"
            process, url, began = start("app", empty)
            results["health_missing_s"].append(until_healthy(url, process, began))
            stop(process, empty)
            if browser is not None:
                empty = Path(tempfile.mkdtemp(prefix="bench-app-")) / "artifacts"
                process, url, began = start("run", empty)
                results["fresh_page_s"].append(until_heading(browser, url, "Building the artifacts", began))
                stop(process, empty)
                shutil.rmtree(empty.parent, ignore_errors=True)
            process, url, began = start("app", artifacts)
            results["cold_health_s"].append(until_healthy(url, process, began))
            if browser is not None:
                results["cold_page_s"].append(until_heading(browser, url, "Predict a track's popularity", began))
            stop(process)
    finally:
        if browser is not None:
            browser.close()
            playwright.stop()
    return results


def measure_predict(artifacts: Path, calls: int = 200) -> dict[str, float]:
    from popdrivers import explain, pipeline
    from popdrivers.app import services

    art = pipeline.load_artifacts(artifacts)
    specs = services.predict_inputs(art.tracks, art.model)
    row = services.track_from_inputs({s.name: s.default for s in specs},
                                     services.model_reference_date(art.model, art.tracks))
    explain.explained_prediction(art.model, row)  # first call pays lazy set-up, as the app's warm-up does
    wall, cpu = [], []
    for _ in range(calls):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        explain.explained_prediction(art.model, row)
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return {"predict_explain_ms": 1000 * statistics.median(wall),
            "predict_explain_cpu_ms": 1000 * statistics.median(cpu)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifacts", type=Path, default=None, help="a built artifact folder (default: build one)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    load_before = os.getloadavg()
    artifacts = args.artifacts
    if artifacts is None:
        artifacts = Path(tempfile.mkdtemp(prefix="bench-app-")) / "default"
        print(f"building default artifacts into {artifacts} ...", file=sys.stderr, flush=True)
        subprocess.run([str(BIN / "popdrivers"), "build", "--out", str(artifacts)], check=True,
                       stdout=subprocess.DEVNULL)
    starts = measure_starts(artifacts, args.repeat)
    figures = {k: statistics.median(v) for k, v in starts.items() if v}
    figures.update(measure_predict(artifacts))
    load_after = os.getloadavg()
    print(f"\npopdrivers app benchmark, {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, load average "
          f"{load_before[0]:.1f} before / {load_after[0]:.1f} after (1 min)\n")
    rows = [("health, no artifacts (s)", "health_missing_s", TARGETS["health_missing_s"]),
            ("fresh start: build page shown (s)", "fresh_page_s", TARGETS["fresh_page_s"]),
            ("cold start with artifacts: health (s)", "cold_health_s", None),
            ("cold start with artifacts: Predict page shown (s)", "cold_page_s", TARGETS["cold_page_s"]),
            ("one-track predict + explain, wall (ms)", "predict_explain_ms", TARGETS["predict_explain_ms"]),
            ("one-track predict + explain, CPU (ms)", "predict_explain_cpu_ms", None)]
    print(f"| measure | median of {args.repeat} | all | target | met |\n|---|---:|---|---:|---|")
    for label, key, target in rows:
        if key not in figures:
            print(f"| {label} | not measured (needs {CHROMIUM}) | | {target or ''} | |")
            continue
        values = ", ".join(f"{v:.2f}" for v in starts.get(key, [])) or "-"
        met = "" if target is None else ("yes" if figures[key] <= target else "NO")
        print(f"| {label} | {figures[key]:.2f} | {values} | {target or ''} | {met} |")


if __name__ == "__main__":
    main()
