"""`popdrivers analyze PATH... --out FILE`: audio files -> the canonical track table, one row per file."""

from __future__ import annotations

from pathlib import Path

import typer

from popdrivers.cli._app import app, console, err_console, fail, user_errors
from popdrivers.errors import InputError

# Named here (equal to popdrivers.audio.analysis' values; a test keeps them equal) so --help needs no import.
MAX_SECONDS = 600.0
TIMEOUT_SECONDS = 180.0
MEMORY_LIMIT_GIB = 4.0
_TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def sidecar_paths(out: Path) -> tuple[Path, Path]:
    """(cache, errors) files kept beside ``out``: ``<out>.cache.json`` and ``<out>.errors.csv``."""
    return out.with_name(out.name + ".cache.json"), out.with_name(out.name + ".errors.csv")


@app.command("analyze")
@user_errors
def analyze_command(
    paths: list[Path] = typer.Argument(..., help="Audio files and folders (searched recursively): MP3, WAV, FLAC, "
                                       "OGG, and M4A/AAC through Essentia's FFmpeg."),
    out: Path = typer.Option(..., "--out", help="Table to write, .csv or .parquet: one canonical row per file "
                             "(`popdrivers predict --data` reads it as it is)."),
    jobs: int | None = typer.Option(None, "--jobs", "-j", min=1, help="Worker processes (default: one per core)."),
    max_seconds: float = typer.Option(MAX_SECONDS, "--max-seconds", min=5.0,
                                      help="Analyse at most the first this many seconds of each file; duration_ms "
                                           "is still the whole length."),
    timeout: float = typer.Option(TIMEOUT_SECONDS, "--timeout", min=1.0,
                                  help="Seconds one file may take before its worker is stopped (the batch goes on)."),
    memory_gib: float = typer.Option(MEMORY_LIMIT_GIB, "--memory-gib", min=0.5,
                                     help="Memory (address space) limit of each worker process, GiB."),
    use_cache: bool = typer.Option(True, "--cache/--no-cache",
                                   help="Keep results by content hash in OUT.cache.json, so a rerun analyses only "
                                        "new or changed files (and a killed run resumes)."),
    service: str | None = typer.Option(
        None, "--service", metavar="reccobeats",
        help="Opt-in: SEND each named file to this third-party service (only 'reccobeats': "
             "api.reccobeats.com, files up to 5 MB, first 30 s analysed) instead of analysing it on this machine. "
             "The audio leaves this machine. Without this option nothing is sent."),
) -> None:
    """Analyse audio into tempo, key, mode, loudness, time signature, duration and popdrivers' descriptors.

    Bad files never stop the batch: each is listed with its reason (also in OUT.errors.csv); the exit code is 2
    only when no file could be analysed.
    """
    if out.suffix.lower() not in _TABLE_SUFFIXES:
        raise InputError(f"--out {out}: use a .csv or .parquet file name")
    if service is not None:  # the audio leaves the machine: only when asked, and said plainly first
        from popdrivers.cli._analyze_service import analyze_with_service

        return analyze_with_service(service, paths, out)
    from popdrivers.artifacts import write_text_atomic
    from popdrivers.audio import analyses_to_table, analyze_each
    from popdrivers.progress import rich_progress
    from popdrivers.sources.files import write_tracks

    cache_path, errors_path = sidecar_paths(out)
    options = {"max_seconds": max_seconds, "timeout": timeout, "memory_limit": int(memory_gib * 2**30)}
    with rich_progress("analyze", err_console) as progress:
        analyses, failures = analyze_each(paths, jobs=jobs, cache=cache_path if use_cache else None,
                                          progress=progress, **options)
    if failures:
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["file", "reason"])
        writer.writerows([failure.file, failure.reason] for failure in failures)
        write_text_atomic(errors_path, buffer.getvalue())
        err_console.print(f"{len(failures)} file(s) could not be analysed (listed in {errors_path}):",
                          highlight=False, markup=False)
        for failure in failures:
            err_console.print(f"  - {failure}", highlight=False, markup=False, soft_wrap=True)
    elif errors_path.exists():
        errors_path.unlink()  # an earlier run's list would now be wrong
    if not analyses:
        raise fail("no file could be analysed" + ("" if failures else ": no audio files found in "
                                                  + ", ".join(str(p) for p in paths)))
    table, report = analyses_to_table(analyses)
    write_tracks(table, out)
    merged = sum(d.rows for d in report.dropped)
    extra = f"; {merged} file(s) with the same audio as another merged into one track" if merged else ""
    console.print(f"wrote {len(table):,} analysed track(s) to {out} ({len(failures)} failed{extra}; features_source "
                  f"{analyses[0].features_source})", highlight=False, markup=False)
