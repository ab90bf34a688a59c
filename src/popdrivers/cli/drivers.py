"""`popdrivers drivers`: estimate the causal drivers of popularity and write drivers.json + report.html."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from popdrivers.cli._app import app, console, err_console, read_data, user_errors
from popdrivers.format import number as _num
from popdrivers.format import p_value, percent


def _truth_for(data: Path) -> tuple[dict[str, float] | None, dict[str, tuple[list[float], list[float]]] | None]:
    """True effects and dose-response curves of a simulated catalogue, from the ``<name>.truth.json`` sidecar
    `popdrivers simulate` writes (None, None for real data)."""
    from popdrivers.artifacts import read_json

    sidecar = data.with_name(data.stem + ".truth.json") if data.is_file() else None
    if sidecar is None or not sidecar.is_file():
        return None, None
    content = read_json(sidecar)
    effects = {k: float(v) for k, v in content.get("effects", {}).items()}
    curves = {k: ([float(x) for x in c["values"]], [float(x) for x in c["effects"]])
              for k, c in content.get("curves", {}).items()}
    return effects, curves or None


def _heterogeneity_cell(result: Any) -> str:
    h = result.heterogeneity
    if h is None or not math.isfinite(h.p_value):
        return "–"
    return ("yes " if h.detected else "no ") + f"({p_value(h.p_value)})"


@app.command()
@user_errors
def drivers(
    data: Path = typer.Option(..., "--data", help="Dataset: a CSV/Parquet file or a relational crawl folder."),
    out: Path = typer.Option(..., "--out", help="Output folder (drivers.json, report.html, manifest.json)."),
    format: str = typer.Option("auto", "--format", "-f", help="Layout of --data: auto or a known format."),
    driver_list: str | None = typer.Option(None, "--drivers",
                                           help="Comma-separated drivers (default: every driver in the data)."),
    model: Path | None = typer.Option(None, "--model",
                                      help="A trained model folder: adds its SHAP importance to the report."),
    max_rows: int | None = typer.Option(None, "--max-rows", min=100,
                                        help="Estimate on a random subset of whole artists with at most this many "
                                             "tracks."),
    seed: int = typer.Option(0, "--seed", help="Seed of folds, subsets, shuffles and the bootstrap."),
    design: str = typer.Option("auto", "--design",
                               help="auto (the strictest the data supports: within_album, else within_artist, else "
                                    "naive) or one of them."),
    no_refute: bool = typer.Option(False, "--no-refute", help="Skip the placebo and the sensitivity analysis."),
    n_rep: int | None = typer.Option(None, "--n-rep", min=1,
                                     help="Repetitions of the cross-fitting fold draw (median); default 3, or 2 "
                                          "above 50,000 tracks compared."),
) -> None:
    """Estimate what causally drives popularity: within-album double ML beside within-artist and naive."""
    from popdrivers import registry
    from popdrivers.drivers import estimate_drivers, save_drivers
    from popdrivers.drivers_report import design_label, drivers_report_html, sources_sentence
    from popdrivers.progress import rich_progress
    from popdrivers.schema import popularity_source

    tracks, _ = read_data(data, format)
    chosen = [d.strip() for d in driver_list.split(",") if d.strip()] if driver_list else None
    with rich_progress("drivers", console=err_console) as progress:
        report = estimate_drivers(tracks, chosen, design=design, seed=seed, max_rows=max_rows, refute=not no_refute,
                                  n_rep=n_rep, progress=progress)
    importance = None
    if model is not None:
        from popdrivers.explain import global_importance
        from popdrivers.model import load_model

        importance = global_importance(load_model(model), tracks, seed=seed)
    truth, truth_curves = _truth_for(data)
    source = popularity_source(tracks)
    html = drivers_report_html(report, importance=importance, truth=truth, popularity_source=source,
                               truth_curves=truth_curves)
    save_drivers(report, out, html=html, importance=importance, data_source=str(data.resolve()),
                 popularity_source=source)

    artists = f"{report.artists:,} artists" if report.artists else "artists unknown"
    table = Table(title=f"Causal effects on popularity: {design_label(report.design)} (primary; {report.rows:,} "
                        f"tracks, {artists})", title_justify="left")
    table.add_column("driver", no_wrap=True, min_width=max(len(r.feature) for r in report.drivers))
    table.add_column("per")
    for column in ("effect", "95% CI", "p (Holm)", "var.-weighted", "varies (p)"):
        table.add_column(column, justify="right")
    others = [d for d in report.designs if d.name != report.design]
    for other in others:
        table.add_column(design_label(other.name), justify="right")
    for column in ("placebo", "RV"):
        table.add_column(column, justify="right")
    if truth:
        table.add_column("truth", justify="right")
    for r in report.drivers:
        row = [r.feature, registry.spec(r.feature).unit if registry.is_registered(r.feature) else "", _num(r.effect),
               f"[{_num(r.ci_low)}, {_num(r.ci_high)}]",
               p_value(r.p_adjusted),
               _num(r.estimate.variance_weighted_effect), _heterogeneity_cell(r)]
        row += [_num(o[r.feature].effect) if r.feature in o.features else "–" for o in others]
        row += [percent(r.placebo_rejection_rate),
                _num(r.robustness_value, 2)]
        if truth:
            row.append(_num(truth.get(r.feature, math.nan)))
        table.add_row(*row)
    # Logs and pipes get the whole table rather than columns cut to 80 characters.
    console.print(table, width=None if console.is_terminal else max(console.width, 160))
    console.print(f"Primary design {design_label(report.design)}: {report.design_reason}.", highlight=False)
    if source:
        console.print(f"Popularity source: {source}", highlight=False)
    console.print(sources_sentence(report), highlight=False)
    console.print("effect: average over the tracks of the effect of +1 unit (each track's own slope, by genre family "
                  "and along the feature's values). p (Holm): adjusted for testing every driver. var.-weighted: the "
                  "partially linear number (tracks counted by how much the feature varies within their album). "
                  "varies (p): test that the effect is the same for every track. placebo: share of within-group "
                  "shuffles the 95% CI calls significant (about 5% expected). RV: robustness value.", highlight=False)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    console.print(f"wrote {out / 'drivers.json'} and {out / 'report.html'} in {report.info.get('seconds', 0):.0f} s",
                  highlight=False)
