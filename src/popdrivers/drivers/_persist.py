"""The drivers folder on disk: ``drivers.json``, the HTML report, SHAP importance, the per-track effects, a
checksummed manifest."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from popdrivers import registry
from popdrivers.artifacts import atomic_directory, read_json, verify_manifest, write_json_atomic, write_manifest
from popdrivers.drivers._results import DriverReport
from popdrivers.errors import ArtifactError

DRIVERS_JSON = "drivers.json"
REPORT_HTML = "report.html"
IMPORTANCE_CSV = "importance.csv"
TRACK_EFFECTS_CSV = "track_effects.csv"


def save_drivers(report: DriverReport, out_dir: str | Path, *, html: str | None = None,
                 importance: pd.DataFrame | None = None, data_source: str | None = None,
                 popularity_source: str | None = None) -> Path:
    """Write ``drivers.json`` (and ``report.html``, ``importance.csv`` when given) with a manifest, atomically.

    ``html`` is the page :func:`popdrivers.drivers_report.drivers_report_html` renders (the report module draws;
    this one only stores).
    """
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        # Each driver's source in plain words beside the report (the report's info keeps the source families).
        write_json_atomic(tmp / DRIVERS_JSON, {**report.to_dict(), "driver_sources": driver_sources(report)})
        if html is not None:
            (tmp / REPORT_HTML).write_text(html, encoding="utf-8")
        if importance is not None:
            importance.to_csv(tmp / IMPORTANCE_CSV, index=False)
        if report.track_effects is not None:
            report.track_effects.to_csv(tmp / TRACK_EFFECTS_CSV, index=False)
        write_manifest(tmp, kind="drivers", design=report.design, rows=report.rows, artists=report.artists,
                       data_source=data_source, popularity_source=popularity_source, drivers=list(report.features),
                       designs=list(report.design_names), features_source=report.info.get("features_source"),
                       driver_sources=driver_sources(report))
    return out_dir


def driver_sources(report: DriverReport) -> dict[str, str]:
    """Where each driver's values came from, in plain words ("Spotify", "popdrivers' audio analysis",
    "metadata"), from the report's ``info``; a report written before sources were recorded says "Spotify" for
    the features and "metadata" for duration and explicit (the only sources it could have had)."""
    recorded = report.info.get("driver_sources") or {}
    out = {}
    for feature in report.features:
        source = recorded.get(feature)
        if source is None:
            source = registry.value_source(feature, "spotify") if registry.is_registered(feature) else "spotify"
        out[feature] = registry.source_label(source)
    return out


def load_drivers(path: str | Path) -> DriverReport:
    """Load a drivers folder written by :func:`save_drivers`, refusing it if any file fails its checksum."""
    path = Path(path)
    verify_manifest(path, kind="drivers")
    data = read_json(path / DRIVERS_JSON)
    try:
        report = DriverReport.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path / DRIVERS_JSON} was written by another version of popdrivers or is damaged "
                            f"({exc}); rebuild it with popdrivers drivers (or popdrivers build)") from exc
    effects_file = path / TRACK_EFFECTS_CSV
    if effects_file.is_file():
        effects = pd.read_csv(effects_file, dtype={"track_id": str, "driver": str})
        missing = {"track_id", "driver", "effect", "ci_low", "ci_high"} - set(effects.columns)
        if missing:
            raise ArtifactError(f"{effects_file} lacks the column(s) {', '.join(sorted(missing))}; rebuild it with "
                                "popdrivers drivers (or popdrivers build)")
        report = dataclasses.replace(report, track_effects=effects)
    return report


def load_importance(path: str | Path) -> pd.DataFrame | None:
    """The SHAP importance table saved beside a drivers report, if any (call after :func:`load_drivers`)."""
    file = Path(path) / IMPORTANCE_CSV
    return pd.read_csv(file) if file.is_file() else None
