"""`popdrivers drivers`: estimate the causal drivers of popularity and write drivers.json + report.html."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from popdrivers.cli._app import app, console, err_console, user_errors


def _truth_for(data: Path) -> dict[str, float] | None:
    """True effects of a simulated catalogue, from the ``<name>.truth.json`` sidecar `popdrivers simulate` writes."""
    from popdrivers.artifacts import read_json

    sidecar = data.with_name(data.stem + ".truth.json") if data.is_file() else None
    if sidecar is None or not sidecar.is_file():
        return None
    return {k: float(v) for k, v in read_json(sidecar).get("effects", {}).items()}


def _num(value: float, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}g}"


@app.command()
@user_errors
def drivers(
    data: Path = typer.Option(..., "--data", help="Dataset: a CSV/Parquet file or a relational crawl folder."),
    out: Path = typer.Option(..., "--out", help="Output folder (drivers.json, report.html, manifest.json)."),
    format: str = typer.Option("auto", "--format", "-f", help="Layout of --data: auto or a known format."),
    driver_list: str | None = typer.Option(None, "--drivers",
                                    help="Comma-separated drivers (default: every driver present in the data)."),
    model: Path | None = typer.Option(None, "--model",
                                      help="A trained model folder: adds its SHAP importance to the report."),
    max_rows: int | None = typer.Option(None, "--max-rows", min=100,
                                 help="Estimate on a random subset of whole artists with at most this many tracks."),
    seed: int = typer.Option(0, "--seed", help="Seed of folds, subsets and permutations."),
    design: str = typer.Option("within_artist", "--design", help="within_artist (default) or naive."),
    no_refute: bool = typer.Option(False, "--no-refute", help="Skip the placebo / random cause / subset checks."),
) -> None:
    """Estimate what causally drives popularity: within-artist double ML beside the naive comparison."""
    from popdrivers.drivers import estimate_drivers, save_drivers
    from popdrivers.progress import rich_progress
    from popdrivers.sources.files import read_tracks

    tracks = read_tracks(data, format=format)
    chosen = [d.strip() for d in driver_list.split(",") if d.strip()] if driver_list else None
    with rich_progress("drivers", console=err_console) as progress:
        report = estimate_drivers(tracks, chosen, design=design, seed=seed, max_rows=max_rows, refute=not no_refute,
                                  progress=progress)
    importance = None
    if model is not None:
        from popdrivers.explain import global_importance
        from popdrivers.model import load_model

        importance = global_importance(load_model(model), tracks, seed=seed)
    truth = _truth_for(data)
    save_drivers(report, out, importance=importance, data_source=str(data.resolve()), truth=truth)

    table = Table(title=f"Causal effects on popularity ({report.design.replace('_', ' ')}; {report.rows:,} tracks, "
                        f"{report.artists:,} artists)", title_justify="left")
    table.add_column("driver", no_wrap=True, min_width=max(len(r.feature) for r in report.drivers))
    table.add_column("unit")
    for column in ("effect", "95% CI", "naive", "placebo (p)", "RV"):
        table.add_column(column, justify="right")
    if truth:
        table.add_column("truth", justify="right")
    for r in report.drivers:
        row = [r.feature, r.unit, _num(r.effect), f"[{_num(r.ci_low)}, {_num(r.ci_high)}]", _num(r.naive_effect),
               f"{_num(r.placebo_effect)} ({_num(r.placebo_p, 2)})", _num(r.robustness_value, 2)]
        if truth:
            row.append(_num(truth.get(r.feature, math.nan)))
        table.add_row(*row)
    console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(f"wrote {out / 'drivers.json'} and {out / 'report.html'} in {report.info.get('seconds', 0):.0f} s",
                  highlight=False)
