"""What opening a file as found costs: encoding check, delimiter sniffing and the broken-row scan, beside the read.

`popdrivers.sources.tabular.open_table` reads a CSV file twice before pandas does: once to check it is UTF-8 (or to
guess its legacy encoding) and once with pyarrow's CSV parser to find rows whose field count differs from the
header's (pandas fills those silently). This script measures that cost against the whole `read_tracks` on
simulated canonical tables of 100k and 1M tracks, written as UTF-8 CSV, as Windows-1252 CSV and as ';'-separated
CSV. Each measurement runs in a fresh process (wall time, and peak RSS of that process), started by a parent that
holds no data.

Usage::

    python benchmarks/bench_read.py [--sizes 100000,1000000] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from popdrivers.sources.files import read_tracks_with_report
from popdrivers.sources.tabular import open_table
path = sys.argv[1]
start = time.perf_counter()
table = open_table(path)
opened = time.perf_counter() - start
tracks, report = read_tracks_with_report(path)  # open_table is cached: this is the rest of the read
total = time.perf_counter() - start
print(json.dumps({"open_s": round(opened, 2), "read_s": round(total, 2), "rows": len(tracks),
                  "encoding": table.encoding, "delimiter": table.delimiter,
                  "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}))
"""


def write_variants(rows: int, folder: Path) -> dict[str, Path]:
    """The same simulated table as UTF-8, Windows-1252 (accented artist names) and ';'-separated CSV."""
    from popdrivers import simulate_catalog, write_tracks

    tracks, _ = simulate_catalog(n_artists=rows // 100, tracks_per_artist=100, seed=0)
    # Some accented names, so the Windows-1252 file is not plain ASCII (which would be valid UTF-8).
    tracks["artist_name"] = tracks["artist_name"].where(tracks.index % 7 != 0, "Beyoncé")
    utf8 = write_tracks(tracks, folder / f"utf8-{rows}.csv")
    cp1252 = folder / f"cp1252-{rows}.csv"
    cp1252.write_bytes(utf8.read_bytes().decode("utf-8").encode("cp1252"))
    semicolon = folder / f"semicolon-{rows}.csv"
    frame = __import__("pandas").read_csv(utf8, dtype=str, keep_default_na=False)
    frame.to_csv(semicolon, sep=";", index=False)
    return {"UTF-8, ','": utf8, "Windows-1252, ','": cp1252, "UTF-8, ';'": semicolon}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--write", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="popdrivers-bench-read-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.write:
        print(json.dumps({label: str(path) for label, path in write_variants(args.write, workdir).items()}))
        return
    print(f"load average before: {os.getloadavg()}")
    print("| rows | file | size MB | open (sniff + encoding + row scan) s | whole read_tracks s | open share | "
          "peak MB |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for rows in (int(s) for s in args.sizes.split(",")):
        # Written by another process: Linux keeps a process's peak RSS across fork + exec, so a parent that
        # simulated a million tracks would lend its peak to every measured child.
        done = subprocess.run([sys.executable, __file__, "--write", str(rows), "--workdir", str(workdir)],
                              capture_output=True, text=True, check=True)
        variants = json.loads(done.stdout.strip().splitlines()[-1])
        for label, path in ((label, Path(p)) for label, p in variants.items()):
            done = subprocess.run([sys.executable, "-c", CHILD, str(path)], capture_output=True, text=True,
                                  check=True)
            result = json.loads(done.stdout.strip().splitlines()[-1])
            share = result["open_s"] / result["read_s"] if result["read_s"] else float("nan")
            print(f"| {rows:,} | {label} | {path.stat().st_size / 1e6:.0f} | {result['open_s']:.2f} | "
                  f"{result['read_s']:.2f} | {share:.0%} | {result['peak_mb']:,} |", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
