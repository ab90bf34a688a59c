"""The app in a real browser: Debian's Chromium, headless, driven by Playwright against a live Streamlit server.

Every page is visited, Predict is pressed and its result read, and a screenshot of each page is saved under
test-artifacts/. In CI (CI=true) a missing Chromium is a failure, not a skip.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# (url path, heading the page shows once rendered, screenshot name)
PAGES = [
    ("", "Predict a track's popularity", "1-predict"),
    ("what_if", "What if this track were different?", "2-what-if"),
    ("drivers", "What drives popularity", "3-drivers"),
    ("data", "The data", "4-data"),
    ("model_card", "Model card", "5-model-card"),
]

pytestmark = pytest.mark.browser


def require_chromium() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the app exited with code {server.returncode}: {server.stdout.read()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"the app did not answer on {url} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def server(small_artifacts: Path) -> Iterator[str]:
    """`popdrivers app`'s own Streamlit command line, on a free loopback port; stopped by its process id."""
    from importlib import import_module

    require_chromium()
    streamlit_command = import_module("popdrivers.cli.serve").streamlit_command
    port = free_port()
    process = subprocess.Popen(streamlit_command(small_artifacts, port, address="127.0.0.1"),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def page(server: str):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(require_chromium()), headless=True,
                                             args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        tab = context.new_page()
        tab.set_default_timeout(60_000)
        yield tab
        browser.close()


def rendered(page, heading: str) -> None:
    """Wait until the page's heading is shown and Streamlit has finished running the script."""
    page.get_by_role("heading", name=heading).first.wait_for()
    settled(page)
    assert page.locator("[data-testid='stException']").count() == 0, page.locator(
        "[data-testid='stException']").first.inner_text()


def settled(page, quiet_checks: int = 4) -> None:
    """Wait until Streamlit's "running" indicator has stayed away for a while (a rerun can start late)."""
    quiet = 0
    deadline = time.monotonic() + 90
    while quiet < quiet_checks and time.monotonic() < deadline:
        running = page.locator("[data-testid='stStatusWidget']").count() > 0
        quiet = 0 if running else quiet + 1
        page.wait_for_timeout(250)


def screenshot(page, name: str) -> None:
    """The whole page: Streamlit scrolls inside its main container, so grow the window to its height first."""
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": 1400, "height": min(max(int(height), 1000), 8000)})
    page.wait_for_timeout(300)  # let plotly re-layout to the new size
    page.screenshot(path=SCREENSHOTS / f"{name}.png")
    page.set_viewport_size({"width": 1400, "height": 1000})


def test_every_page_renders_in_chromium_and_predict_answers(server: str, page) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):  # every screenshot left here is from this run
        old.unlink()
    page.goto(server)
    rendered(page, PAGES[0][1])
    page.get_by_role("button", name="Predict").click()
    value = page.locator("[data-testid='stMetricValue']").first
    value.wait_for()
    predicted = float(value.inner_text())
    interval = re.search(r"80% interval: ([\d.]+) to ([\d.]+)", page.locator("[data-testid='stMain']").inner_text())
    assert interval, "the prediction is shown without its interval"
    assert float(interval[1]) <= predicted <= float(interval[2])  # the shown number inside its shown interval
    page.locator("[data-testid='stPlotlyChart']").first.wait_for()  # the SHAP waterfall
    screenshot(page, PAGES[0][2])

    for path, heading, name in PAGES[1:]:
        page.goto(f"{server}/{path}")
        rendered(page, heading)
        if page.locator("[data-testid='stPlotlyChart']").count():
            page.locator("[data-testid='stPlotlyChart'] .main-svg").first.wait_for()
        screenshot(page, name)
        if path == "data":  # the other tabs render hidden until clicked
            for tab, suffix in (("Correlations", "correlations"), ("Popularity by genre and year", "by-genre-year")):
                page.get_by_role("tab", name=tab).click()
                page.get_by_role("tabpanel").locator(".main-svg").first.wait_for()
                screenshot(page, f"{name}-{suffix}")
    assert {name for _, _, name in PAGES} <= {p.stem for p in SCREENSHOTS.glob("*.png")}


def test_a_song_uploaded_in_chromium_is_analysed_on_this_machine_and_predicted(server: str, page,
                                                                               tmp_path: Path) -> None:
    """Predict page, "From a song file", as a person does it: a synthesised 120 BPM click track chosen in the
    browser's file input, sent to the local server, analysed there; the measured tempo is shown with popdrivers'
    source, and "Predict from the song" answers with a number inside its interval."""
    from popdrivers.audio.synth import click_track, write_audio

    song = write_audio(tmp_path / "demo.wav", click_track(120, 20, seed=1))
    page.goto(server)
    rendered(page, PAGES[0][1])
    page.get_by_role("tab", name="From a song file").click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(song))
    page.get_by_role("heading", name="Measured from demo.wav").wait_for(timeout=120_000)
    settled(page)
    panel = page.get_by_role("tabpanel", name="From a song file")
    text = panel.inner_text()
    assert "popdrivers' analysis, not Spotify's" in text and "audio:" in text
    assert page.locator("[data-testid='stException']").count() == 0
    # A slider (aria-valuenow) or a number box, as the spec's range makes it.
    widget = panel.locator("input[aria-label='Tempo (BPM)']").first
    shown = widget.get_attribute("aria-valuetext")  # the slider's exact value (its "value" is on the step grid)
    tempo = float(shown if shown is not None else widget.input_value())
    assert abs(tempo - 120) < 120 * 0.04, tempo
    panel.get_by_role("button", name="Predict from the song").click()
    value = panel.locator("[data-testid='stMetricValue']").first
    value.wait_for(timeout=120_000)
    settled(page)
    predicted = float(value.inner_text())
    interval = re.search(r"80% interval: (-?[\d.]+) to (-?[\d.]+)", panel.inner_text())
    assert interval and float(interval[1]) <= predicted <= float(interval[2]), panel.inner_text()[:2000]
    SCREENSHOTS.mkdir(exist_ok=True)
    screenshot(page, "1-predict-song")


def test_a_fresh_machine_gets_a_page_at_once_that_shows_the_build_then_the_app(tmp_path: Path, page) -> None:
    """`popdrivers app` with no artifacts: the server answers before anything is built, the page shows the
    background build's progress and becomes the app when it is done (the time it takes is measured in
    benchmarks/bench_model.py, not asserted here)."""
    from popdrivers import pipeline

    SCREENSHOTS.mkdir(exist_ok=True)
    target = tmp_path / "fresh"
    port = free_port()
    script = Path(sys.executable).with_name("popdrivers")
    env = {**os.environ, pipeline.ENV_BUILD_OPTIONS: "--n-artists 40 --tracks-per-artist 15 --budget-seconds 0"}
    process = subprocess.Popen([str(script), "app", "--artifacts", str(target), "--port", str(port),
                                "--address", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)
    url = f"http://127.0.0.1:{port}"
    servers: list[int] = []
    try:
        wait_healthy(url, process)
        servers = server_children(process.pid)
        assert len(servers) == 1, servers
        assert not pipeline.is_artifact_dir(target), "the server must not wait for the build"
        context = page.context.browser.new_context(viewport={"width": 1400, "height": 1000})
        tab = context.new_page()
        tab.set_default_timeout(120_000)
        tab.goto(url)
        tab.get_by_role("heading", name="Building the artifacts").wait_for()
        tab.locator("[data-testid='stProgress']").first.wait_for()
        assert "simulated catalogue" in tab.locator("[data-testid='stMain']").inner_text()
        tab.screenshot(path=SCREENSHOTS / "0-building.png")
        second = context.new_page()
        second.goto(url)  # a second tab watches the same build
        second.get_by_role("heading", name="Building the artifacts").wait_for()
        tab.get_by_role("heading", name=PAGES[0][1]).wait_for(timeout=240_000)  # the app, without a reload
        assert pipeline.is_artifact_dir(target)
        context.close()
        log = (pipeline.build_dir(target) / "build.log").read_text()
        assert log.count("== build started") == 1 and log.count("Artifacts ready") == 1  # one build, two tabs
    finally:
        process.terminate()  # SIGTERM, as a process manager stops it
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    deadline = time.monotonic() + 10
    while not all(exited(pid) for pid in servers):
        assert time.monotonic() < deadline, "the Streamlit server outlived `popdrivers app` (SIGTERM)"
        time.sleep(0.1)


def server_children(pid: int) -> list[int]:
    """The processes ``pid`` started (from /proc): `popdrivers app`'s Streamlit server."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def exited(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
