"""The drivers folder on disk: ``drivers.json``, the HTML report, SHAP importance, a checksummed manifest."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from popdrivers.artifacts import atomic_directory, read_json, verify_manifest, write_json_atomic, write_manifest
from popdrivers.drivers._results import DriverReport
from popdrivers.errors import ArtifactError

DRIVERS_JSON = "drivers.json"
REPORT_HTML = "report.html"
IMPORTANCE_CSV = "importance.csv"


def save_drivers(report: DriverReport, out_dir: str | Path, *, html: str | None = None,
                 importance: pd.DataFrame | None = None, data_source: str | None = None,
                 popularity_source: str | None = None) -> Path:
    """Write ``drivers.json`` (and ``report.html``, ``importance.csv`` when given) with a manifest, atomically.

    ``html`` is the page :func:`popdrivers.report.drivers_report_html` renders (the report module draws; this one
    only stores).
    """
    out_dir = Path(out_dir)
    with atomic_directory(out_dir) as tmp:
        write_json_atomic(tmp / DRIVERS_JSON, report.to_dict())
        if html is not None:
            (tmp / REPORT_HTML).write_text(html, encoding="utf-8")
        if importance is not None:
            importance.to_csv(tmp / IMPORTANCE_CSV, index=False)
        write_manifest(tmp, kind="drivers", design=report.design, rows=report.rows, artists=report.artists,
                       data_source=data_source, popularity_source=popularity_source, drivers=list(report.features),
                       designs=list(report.design_names))
    return out_dir


def load_drivers(path: str | Path) -> DriverReport:
    """Load a drivers folder written by :func:`save_drivers`, refusing it if any file fails its checksum."""
    path = Path(path)
    verify_manifest(path, kind="drivers")
    data = read_json(path / DRIVERS_JSON)
    try:
        return DriverReport.from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{path / DRIVERS_JSON} was written by another version of popdrivers or is damaged "
                            f"({exc}); rebuild it with popdrivers drivers (or popdrivers build)") from exc


def load_importance(path: str | Path) -> pd.DataFrame | None:
    """The SHAP importance table saved beside a drivers report, if any (call after :func:`load_drivers`)."""
    file = Path(path) / IMPORTANCE_CSV
    return pd.read_csv(file) if file.is_file() else None
