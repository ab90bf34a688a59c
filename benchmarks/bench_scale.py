"""How popdrivers' cost grows with the number of tracks: simulate, read, train (one process and LocalCluster), drivers.

Every measurement runs in its own subprocess through a small wrapper that records wall time and peak memory:
the exact ``ru_maxrss`` of the largest process, and the peak of the summed RSS of the whole process tree
(sampled every 0.2 s; this is what counts for a LocalCluster, whose workers are separate processes).
Results are appended to a JSON file after every step, so a killed run resumes where it stopped.

Usage::

    python benchmarks/bench_scale.py                      # 100k, 1M, 10M; cluster at 100k and 1M
    python benchmarks/bench_scale.py --sizes 100000,1000000 --cluster-sizes 100000
    python benchmarks/bench_scale.py --report             # table + log-log PNG from the saved JSON only
    python benchmarks/bench_scale.py --redo train:1000000 # measure one step again

Data and models go to ``--workdir`` (default: a folder in the temp directory; 10M tracks need ~3 GB of disk).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
TRACKS_PER_ARTIST = 100
READ_SIZES = (100_000, 1_000_000)
DRIVERS_SIZES = (1_000_000,)
# `popdrivers train --budget-seconds 0` as a user runs it: the evaluation included (above 100,000 tracks on a
# fixed sample of whole artists, said in its output). Target at 1M tracks: < 120 s wall and < 4 GB on 2 cores.
CLI_SIZES = (100_000, 1_000_000)
TARGETS = {"train:1000000": {"wall_s": 120.0, "peak_rss_mb": 4096.0}, "fit:1000000": {"fit_s": 60.0,
                                                                                    "peak_rss_mb": 4096.0}}


# --- the measuring wrapper (runs as its own process: `bench_scale.py --measure -- CMD...`) ---------------------

def _measure(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd``; return its wall time, exit code, peak memory and the last lines of its output."""
    import psutil

    start = time.perf_counter()
    # Wide lines, so the command's one-line summary is not wrapped in the captured output.
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "COLUMNS": "250"})
    peak_tree = 0
    lines: list[str] = []

    def drain() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            lines.append(line.rstrip())
            del lines[:-40]

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    root = psutil.Process(child.pid)
    while child.poll() is None:
        try:
            procs = [root, *root.children(recursive=True)]
            total = 0
            for proc in procs:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            peak_tree = max(peak_tree, total)
        except psutil.Error:
            pass
        time.sleep(0.2)
    reader.join(timeout=5)
    wall = time.perf_counter() - start
    # Largest single descendant, exact (kernel high-water mark), in KiB on Linux.
    peak_single = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"returncode": child.returncode, "wall_s": round(wall, 2), "peak_rss_mb": round(peak_single, 1),
            "peak_tree_rss_mb": round(max(peak_tree / 2**20, peak_single), 1), "tail": lines[-12:]}


def measured(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` under the wrapper in a fresh process (so RUSAGE_CHILDREN covers this command only)."""
    out = subprocess.run([sys.executable, __file__, "--measure", "--", *cmd], capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"measuring wrapper failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- steps -----------------------------------------------------------------------------------------------------

def popdrivers(*args: str) -> list[str]:
    return [str(BIN / "popdrivers"), *args]


def python_code(code: str) -> list[str]:
    return [sys.executable, "-c", code]


READ_CODE = """
import json, sys, time
from popdrivers.sources.files import read_tracks
start = time.perf_counter()
df = read_tracks(sys.argv[1])
seconds = time.perf_counter() - start
print(json.dumps({"rows": len(df), "read_s": round(seconds, 2),
                  "frame_mb": round(df.memory_usage(deep=True).sum() / 2**20, 1)}))
"""

CSV_CODE = """
import sys
import pandas as pd
from popdrivers.sources.files import write_tracks
write_tracks(pd.read_parquet(sys.argv[1]), sys.argv[2])
"""

FIT_CODE = """
import json, sys, time
from popdrivers.model import save_model, train
from popdrivers.sources.files import read_tracks
start = time.perf_counter()
tracks = read_tracks(sys.argv[1])
read = time.perf_counter() - start
result = train(tracks, budget_seconds=0, evaluate_model=False, params={"n_jobs": 2})
trained = time.perf_counter() - start - read
save_model(result.model, sys.argv[2], metrics=result.metrics, data_source=sys.argv[1])
print(json.dumps({"read_s": round(read, 2), "train_s": round(trained, 2), "fit_s": result.info["fit_seconds"],
                  "save_s": round(time.perf_counter() - start - read - trained, 2)}))
"""

CLUSTER_CODE = """
import json, sys, time
from popdrivers.model import train_on_cluster
from popdrivers.model import save_model
start = time.perf_counter()
model = train_on_cluster(sys.argv[1], sys.argv[3])
fit = time.perf_counter() - start
save_model(model, sys.argv[2], data_source=sys.argv[1])
print(json.dumps({"train_on_cluster_s": round(fit, 2)}))
"""


def data_path(workdir: Path, rows: int, suffix: str = "parquet") -> Path:
    return workdir / f"sim_{rows}.{suffix}"


def step_commands(step: str, rows: int, workdir: Path, workers: int) -> list[str]:
    parquet = data_path(workdir, rows)
    if step == "simulate":
        return popdrivers("simulate", "--n-artists", str(rows // TRACKS_PER_ARTIST), "--tracks-per-artist",
                          str(TRACKS_PER_ARTIST), "--seed", "0", "--out", str(parquet))
    if step == "write_csv":
        return python_code(CSV_CODE) + [str(parquet), str(data_path(workdir, rows, "csv"))]
    if step == "read_parquet":
        return python_code(READ_CODE) + [str(parquet)]
    if step == "read_csv":
        return python_code(READ_CODE) + [str(data_path(workdir, rows, "csv"))]
    if step == "fit":
        return python_code(FIT_CODE) + [str(parquet), str(workdir / f"model_fit_{rows}")]
    if step == "train":
        return popdrivers("train", "--data", str(parquet), "--out", str(workdir / f"model_{rows}"),
                          "--budget-seconds", "0")
    if step == "cluster":
        return python_code(CLUSTER_CODE) + [str(parquet), str(workdir / f"model_cluster_{rows}"),
                                            f"local:{workers}"]
    if step == "drivers":
        return popdrivers("drivers", "--data", str(parquet), "--out", str(workdir / f"drivers_{rows}"))
    raise ValueError(step)


def plan(sizes: list[int], cluster_sizes: list[int]) -> list[tuple[str, int]]:
    steps: list[tuple[str, int]] = []
    for rows in sizes:
        steps.append(("simulate", rows))
        if rows in READ_SIZES:
            steps += [("write_csv", rows), ("read_parquet", rows), ("read_csv", rows)]
        steps.append(("fit", rows))
        if rows in cluster_sizes:
            steps.append(("cluster", rows))
        if rows in CLI_SIZES:
            steps.append(("train", rows))
        if rows in DRIVERS_SIZES:
            steps.append(("drivers", rows))
    return steps


def json_tail(result: dict[str, Any]) -> dict[str, Any]:
    """The JSON object a Python step printed last, if any."""
    for line in reversed(result.get("tail", [])):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                return {}
    return {}


def machine() -> str:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GB RAM, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def load_results(path: Path) -> dict[str, Any]:
    if path.exists():
        return json.loads(path.read_text())
    return {"steps": {}}


def save_results(path: Path, results: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, path)


def run(args: argparse.Namespace) -> dict[str, Any]:
    import psutil

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    results_path = Path(args.results)
    results = load_results(results_path)
    results["machine"] = machine()
    redo = set(args.redo or [])
    failed_sizes: set[int] = set()
    for step, rows in plan(args.sizes, args.cluster_sizes):
        key = f"{step}:{rows}"
        if (args.only and step not in args.only) or rows in failed_sizes:
            continue
        if key in results["steps"] and key not in redo and results["steps"][key].get("returncode") == 0:
            continue
        if step == "simulate" and data_path(workdir, rows).exists() and key not in redo:
            continue
        if step == "write_csv" and data_path(workdir, rows, "csv").exists() and key not in redo:
            continue
        load_before = os.getloadavg()[0]
        print(f"[{datetime.now():%H:%M:%S}] {key} (load {load_before:.1f}) ...", flush=True)
        result = measured(step_commands(step, rows, workdir, args.workers))
        result.update(json_tail(result))
        result["load_before"] = round(load_before, 2)
        result["load_after_1min"] = round(os.getloadavg()[0], 2)
        result["other_processes_busy"] = _busy_others()
        result["date"] = datetime.now(UTC).isoformat(timespec="seconds")
        result["available_gb_after"] = round(psutil.virtual_memory().available / 2**30, 1)
        results["steps"][key] = result
        save_results(results_path, results)
        status = "ok" if result["returncode"] == 0 else f"FAILED ({result['returncode']}): {result['tail'][-3:]}"
        if result["returncode"] != 0 and step in {"simulate", "write_csv"}:
            failed_sizes.add(rows)  # nothing else at this size can run without its data
        print(f"    {result['wall_s']:.1f} s, peak {result['peak_rss_mb']:.0f} MB "
              f"(tree {result['peak_tree_rss_mb']:.0f} MB) {status}", flush=True)
    return results


def _busy_others() -> int:
    """How many other processes were using CPU at the end of a step (other work sharing the cores)."""
    import psutil

    me = os.getpid()
    busy = 0
    for proc in psutil.process_iter(["pid", "cpu_percent"]):
        if proc.info["pid"] != me and (proc.info["cpu_percent"] or 0) > 20:
            busy += 1
    return busy


# --- report ----------------------------------------------------------------------------------------------------

def loglog_slope(rows: list[int], values: list[float]) -> float:
    import numpy as np

    return float(np.polyfit(np.log10(rows), np.log10(values), 1)[0])


def series(results: dict[str, Any], step: str, field: str) -> tuple[list[int], list[float]]:
    points = sorted((int(key.split(":")[1]), value[field]) for key, value in results["steps"].items()
                    if key.split(":")[0] == step and value.get("returncode") == 0 and value.get(field))
    return [p[0] for p in points], [float(p[1]) for p in points]


def plot(results: dict[str, Any], out: Path) -> dict[str, float]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slopes: dict[str, float] = {}
    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(11, 4.2))
    for step, label in (("fit", "train (budget 0, no evaluation), one process"),
                        ("cluster", "train, LocalCluster"), ("train", "popdrivers train CLI (with evaluation)"),
                        ("simulate", "simulate"), ("read_parquet", "read Parquet"), ("read_csv", "read CSV")):
        for ax, field, unit in ((ax_time, "wall_s", "s"), (ax_mem, "peak_tree_rss_mb", "MB")):
            rows, values = series(results, step, field)
            if not rows:
                continue
            name = label
            if len(rows) >= 2:
                slope = loglog_slope(rows, values)
                slopes[f"{step}.{field}"] = slope
                name = f"{label} (slope {slope:.2f})"
            ax.loglog(rows, values, marker="o", label=name)
            ax.set_ylabel(f"{'wall time' if unit == 's' else 'peak memory'} ({unit})")
    for ax in (ax_time, ax_mem):
        ax.set_xlabel("tracks")
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_lines():
            ax.legend(fontsize=8)
    ax_time.set_title("Time vs rows (log-log)")
    ax_mem.set_title("Peak memory vs rows (log-log)")
    fig.suptitle(f"popdrivers scale benchmark: {results.get('machine', '')}", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return slopes


def markdown(results: dict[str, Any], slopes: dict[str, float]) -> str:
    steps = results["steps"]
    lines = ["| step | tracks | wall s | fit s | peak RSS MB (largest process) | peak RSS MB (process tree) | "
             "load before | notes |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    order = ["simulate", "write_csv", "read_parquet", "read_csv", "fit", "cluster", "train", "drivers"]
    for key, value in sorted(steps.items(), key=lambda kv: (order.index(kv[0].split(":")[0]),
                                                            int(kv[0].split(":")[1]))):
        step, rows = key.split(":")
        if step == "write_csv":
            continue
        notes = []
        if value.get("returncode") != 0:
            notes.append(f"FAILED (exit {value.get('returncode')})")
        if "frame_mb" in value:
            notes.append(f"table {value['frame_mb']:.0f} MB in memory, read {value['read_s']} s")
        if "train_s" in value:
            notes.append(f"read {value['read_s']} s, validate+features+fit {value['train_s']} s, "
                         f"save {value['save_s']} s")
        if step == "train":
            notes.extend(line for line in value.get("tail", []) if "evaluated on" in line or "total" in line)
        if "train_on_cluster_s" in value:
            notes.append(f"train_on_cluster {value['train_on_cluster_s']} s incl. cluster start")
        fit = value.get("fit_s")
        lines.append(f"| {step} | {int(rows):,} | {value['wall_s']:.1f} | {'' if fit is None else f'{fit:.1f}'} | "
                     f"{value['peak_rss_mb']:.0f} | {value['peak_tree_rss_mb']:.0f} | {value.get('load_before', '')} | "
                     f"{'; '.join(notes)} |")
    for key, targets in TARGETS.items():
        if key in steps and steps[key].get("returncode") == 0:
            verdicts = [f"{name} {steps[key].get(name)} (target < {limit:g}: "
                        f"{'met' if (steps[key].get(name) or math.inf) < limit else 'MISSED'})"
                        for name, limit in targets.items()]
            lines.append(f"\n{key}: " + "; ".join(verdicts))
    if slopes:
        lines.append("")
        lines.append("Log-log slopes (cost ~ rows^slope): " + ", ".join(
            f"{name} {slope:.2f}" for name, slope in sorted(slopes.items())))
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--measure":
        print(json.dumps(_measure(sys.argv[3:] if sys.argv[2] == "--" else sys.argv[2:])))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000,10000000", type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--cluster-sizes", default="100000,1000000",
                        type=lambda s: [int(x) for x in s.split(",") if x])
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers (1 thread each)")
    parser.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "popdrivers-scale"))
    parser.add_argument("--results", default=None, help="results JSON (default: WORKDIR/results.json)")
    parser.add_argument("--redo", action="append", help="re-measure a step, e.g. train:1000000 (repeatable)")
    parser.add_argument("--only", type=lambda s: s.split(","), help="run only these steps, e.g. simulate,train")
    parser.add_argument("--report", action="store_true", help="only print the table and write the PNG")
    parser.add_argument("--png", default=str(HERE / "scale_loglog.png"))
    args = parser.parse_args()
    args.results = args.results or str(Path(args.workdir) / "results.json")
    results = load_results(Path(args.results)) if args.report else run(args)
    slopes = plot(results, Path(args.png))
    print(f"\n{results.get('machine', '')}\n")
    print(markdown(results, slopes))


if __name__ == "__main__":
    main()
