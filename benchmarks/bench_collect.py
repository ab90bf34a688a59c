"""Requests and wall time of the collectors against the local API doubles (tests/fake_spotify.py, fake_deezer.py).

One crawl of the same four artists per row: Spotify with an Extended Quota app (batch path), Spotify with a
Development Mode app (one track per request, pages of 10), and Deezer at its real quota (50 requests per 5 s,
real clock: the pacer's waits are real). Server replies are instant, so the time is the client's own plus, for
Deezer, the quota. Prints a table; paste it into BENCHMARKS.md with the date and machine.

Usage::

    .venv/bin/python benchmarks/bench_collect.py
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from fake_deezer import DeezerCatalog  # noqa: E402
from fake_deezer import serve as serve_deezer  # noqa: E402
from fake_spotify import FakeCatalog  # noqa: E402
from fake_spotify import serve as serve_spotify  # noqa: E402

from popdrivers.sources import deezer, spotify  # noqa: E402
from popdrivers.sources.spotify_client import Credentials  # noqa: E402

ARTISTS = ["Nova", "Long Player", "The Quiet Ones", "Sigur Rós"]


def main() -> None:
    rows = []
    for profile in ("full", "development"):
        with serve_spotify(FakeCatalog(seed=3), client_id="c", client_secret="s", profile=profile) as fake, \
                tempfile.TemporaryDirectory() as out:
            started = time.perf_counter()
            summary = spotify.collect(ARTISTS, out, credentials=Credentials("c", "s"), api_base=fake.api_base,
                                      token_url=fake.token_url)
            refused = fake.requests_to(r".", status=400) + fake.requests_to(r".", status=403)
            rows.append((f"Spotify ({summary.access_level})", summary, refused, time.perf_counter() - started))
    with serve_deezer(DeezerCatalog(seed=4)) as fake, tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        summary = deezer.collect(ARTISTS, out, api_base=fake.api_base)
        rows.append(("Deezer (50 requests / 5 s)", summary, fake.requests_to(r".", "error"),
                     time.perf_counter() - started))
    load = os.getloadavg()[0]
    print(f"collectors vs local doubles, {date.today()}, {platform.machine()} {os.cpu_count()} cores, "
          f"load {load:.1f}")
    print("| crawl | tracks | requests | refused | retries | quota/429 waits | tracks with popularity | wall s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, s, refused, seconds in rows:
        print(f"| {name} | {s.tracks} | {s.requests} | {refused} | {s.retries} | {s.rate_limit_waits} | "
              f"{s.tracks_with_popularity} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
