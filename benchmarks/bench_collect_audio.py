"""`collect --source deezer --audio` against the Deezer double: is the pace set by the quota or by the CPU?

One crawl of about 500 tracks (28 artists of 18 tracks) from tests/fake_deezer.py at Deezer's real quota (50
requests per 5 s, real clock), every track's preview fetched and analysed by popdrivers.audio. The double's
previews are generated MP3s (clicks at a known tempo over a chord in a known key and mode), ``--seconds`` long
(real Deezer previews are 30 s); about 1 in 8 tracks has none and 1 in 20 serves bytes that are not audio.

Printed per run:

- wall time against the **quota-bound minimum**: API requests / Deezer's allowed rate (10 per second);
- CPU of the analysis (the worker processes, start-up included) per analysed preview, and the CPU of one
  preview analysed on its own (``analyze_files`` on a sample in one call: no crawl, one start-up) for reference;
- what was lost on the way: previews missing, failed (and why), not done, links refreshed;
- how many of the measured tempi, keys and modes match what the double put in the preview.

Usage::

    nice -n 10 .venv/bin/python benchmarks/bench_collect_audio.py [--seconds 30] [--artists 28] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import tempfile
import time
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import pandas as pd  # noqa: E402
from fake_deezer import DeezerCatalog, serve  # noqa: E402

from popdrivers.sources import deezer  # noqa: E402

ALLOWED_PER_SECOND = deezer.QUOTA_REQUESTS / deezer.QUOTA_SECONDS  # 10 requests per second


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def reference_cpu(fake, catalog: DeezerCatalog, folder: Path, workers: int, sample: int = 16) -> tuple[float, float]:
    """(CPU s per preview analysed in one call of ``sample`` files, CPU s of the workers' start-up)."""
    from popdrivers.audio import analyze_files

    ids = [t for t in catalog.tracks if catalog.preview_kind(t) == "audio"][:sample]
    files = []
    for track_id in ids:
        path = folder / f"{track_id}.mp3"
        path.write_bytes(fake.preview_bytes(track_id))
        files.append(path)
    before = _cpu(resource.RUSAGE_CHILDREN)
    analyze_files(files[:1], jobs=1)
    startup = _cpu(resource.RUSAGE_CHILDREN) - before  # one worker, one tiny batch: almost all start-up
    before = _cpu(resource.RUSAGE_CHILDREN)
    analyze_files(files, jobs=workers)
    spent = _cpu(resource.RUSAGE_CHILDREN) - before
    return (spent - workers * startup) / len(files), startup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each preview the double serves")
    parser.add_argument("--artists", type=int, default=28, help="artists of 18 tracks each")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="analysis worker processes")
    args = parser.parse_args()

    catalog = DeezerCatalog(seed=11, extra_artists=args.artists)
    names = catalog.extra_names
    with serve(catalog, preview_seconds=args.seconds) as fake, tempfile.TemporaryDirectory() as tmp:
        for track_id in catalog.tracks:  # generate (and cache) the double's clips before anything is timed
            if catalog.preview_kind(track_id) == "audio":
                fake.preview_bytes(track_id)
        per_preview, startup = reference_cpu(fake, catalog, Path(tmp), args.workers)
        out = Path(tmp) / "crawl"
        cpu_self, cpu_children = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        summary = deezer.collect(names, out, api_base=fake.api_base, audio=True, analysis_workers=args.workers)
        wall = time.perf_counter() - started
        cpu_children = _cpu(resource.RUSAGE_CHILDREN) - cpu_children
        cpu_self = _cpu(resource.RUSAGE_SELF) - cpu_self
        downloads = fake.requests_to(r"^/preview/")
        audio = pd.read_csv(out / "audio.csv", dtype={"track_id": str})
        measured = audio[audio["features_source"].fillna("").str.startswith("audio:")]
        right = Counter()
        for row in measured.itertuples():
            truth = catalog.preview_truth(int(row.track_id))
            right["tempo"] += abs(row.tempo / truth["tempo"] - 1) < 0.04
            right["key"] += (row.key, row.mode) == (truth["key"], truth["mode"])
    p = summary.previews or {}
    minimum = summary.requests / ALLOWED_PER_SECOND
    load = os.getloadavg()
    print(f"collect --source deezer --audio vs the Deezer double, {date.today()}, {platform.machine()} "
          f"{os.cpu_count()} cores, load {load[0]:.1f} / {load[1]:.1f} (1 / 5 min), {args.seconds:g} s previews, "
          f"{args.workers} analysis workers")
    print("| tracks | API requests | quota-bound minimum s | wall s | wall / minimum | previews analysed / missing / "
          "failed / not done | CDN downloads | links refreshed | crawl waited for analysis s | analysis after the "
          "last request s | analysis CPU s per preview (crawl) | "
          "CPU s per preview (alone) | worker start-up CPU s | crawl process CPU s |")
    print("|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {summary.tracks} | {summary.requests} | {minimum:.1f} | {wall:.1f} | {wall / minimum:.2f} | "
          f"{p.get('analysed')} / {p.get('missing')} / {p.get('failed')} / {p.get('pending')} | {downloads} | "
          f"{p.get('refreshed_links')} | {p.get('waited_for_analysis_seconds')} | "
          f"{p.get('analysis_after_crawl_seconds')} | "
          f"{cpu_children / max(1, p.get('analysed') or 1):.2f} | {per_preview:.2f} | "
          f"{startup:.1f} | {cpu_self:.1f} |")
    print()
    print("lost on the way:", "; ".join(f"{n} {reason}" for reason, n in (p.get("reasons") or {}).items()) or "none")
    n = len(measured)
    print(f"measured = what the preview holds: tempo within 4% {right['tempo']}/{n}, key and mode {right['key']}/{n}")


if __name__ == "__main__":
    main()
