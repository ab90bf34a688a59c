"""`popdrivers analyze --service reccobeats FILE...`: send files to a third-party analysis service (opt-in).

Kept apart from cli/analyze.py (which analyses on this machine): the only way audio leaves the machine.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from popdrivers.cli._app import console, err_console, fail

SERVICES = ("reccobeats",)


def analyze_with_service(service: str, paths: list[Path], out: Path) -> None:
    """Warn, send each file to ``service``, write the rows it gave to ``out``; exit 2 when none could be analysed."""
    from popdrivers.sources.files import write_tracks
    from popdrivers.sources.reccobeats import analyze_files

    if service.strip().lower() not in SERVICES:
        raise fail(f"--service {service}: unknown analysis service (known: {', '.join(SERVICES)}); without "
                   "--service the files are analysed on this machine")

    def warn(message: str) -> None:
        err_console.print(f"warning: {message}", highlight=False, markup=False, soft_wrap=True)

    analyses, failures = analyze_files(paths, consent=True, notify=warn)
    for file, reason in failures:
        err_console.print(f"  - {file}: {reason}", highlight=False, markup=False, soft_wrap=True)
    if not analyses:
        raise fail(f"no file could be analysed by {service}")
    write_tracks(pd.DataFrame([a.to_row() for a in analyses]), out)
    sent = sum(a.sent_bytes for a in analyses)
    console.print(f"wrote {len(analyses):,} track(s) analysed by ReccoBeats to {out} ({len(failures)} failed; "
                  f"{sent / 1e6:.1f} MB sent to {analyses[0].destination}; features_source reccobeats:upload)",
                  highlight=False, markup=False, soft_wrap=True)
