"""Print the markdown tables docs/drivers.md and the README publish for a drivers folder (`popdrivers drivers
--out DIR`): per driver the average effect with its CI, Holm p, band, variance-weighted number, heterogeneity
test, the R-learner's check, the designs beside it, placebo and robustness value; then the dose-response table.

    .venv/bin/python benchmarks/drivers_tables.py reports/catalog
"""

from __future__ import annotations

import argparse
import math

from popdrivers import drivers_report as figures
from popdrivers import registry
from popdrivers.drivers import load_drivers
from popdrivers.format import number as format_number
from popdrivers.format import p_value as format_p


def _num(value: float) -> str:
    return format_number(value) if math.isfinite(value) else ""


def _bold(text: str, distinguishable: bool) -> str:
    return f"**{text}**" if distinguishable else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    args = parser.parse_args()
    report = load_drivers(args.folder)
    others = {d.name: {e.feature: e for e in d.estimates} for d in report.designs if d.name != report.design}
    print(f"design {report.design}, {report.rows:,} tracks of {report.artists:,} artists")
    header = ["driver", "average effect", "95% CI", "Holm p", "simultaneous band", "var.-weighted", "varies (p)",
              "R-learner slope (p)", "beyond model (p)", *[n.replace("_", " ") for n in others], "placebo", "RV"]
    print("| " + " | ".join(header) + " |")
    print("|---|---:|---|---:|---|---:|---:|---:|---:|" + "---:|" * len(others) + "---:|---:|")
    for r in report.drivers:
        label = registry.spec(r.feature).label if registry.is_registered(r.feature) else r.feature
        h = r.heterogeneity
        t = r.track_learner
        cells = [label.lower(), _bold(_num(r.effect), r.distinguishable), f"[{_num(r.ci_low)}, {_num(r.ci_high)}]",
                 format_p(r.p_adjusted), f"[{_num(r.simultaneous_ci_low)}, {_num(r.simultaneous_ci_high)}]",
                 _num(r.estimate.variance_weighted_effect), format_p(h.p_value) if h else "",
                 f"{_num(t.slope)} ({format_p(t.p_value)})" if t else "",
                 format_p(t.beyond_model_p_value) if t else ""]
        for estimates in others.values():
            e = estimates.get(r.feature)
            cells.append(_bold(_num(e.effect), e.distinguishable) if e else "")
        cells += [f"{r.placebo_rejection_rate:.0%}" if math.isfinite(r.placebo_rejection_rate) else "",
                  _num(r.robustness_value)]
        print("| " + " | ".join(cells) + " |")
    print()
    curves = figures.curve_table(report)
    print("| " + " | ".join(curves.columns) + " |")
    print("|" + "---|" * len(curves.columns))
    for row in curves.itertuples(index=False):
        print("| " + " | ".join(str(v) for v in row) + " |")
    print()
    for line in figures.plain_reading(report):
        print("-", line)


if __name__ == "__main__":
    main()
