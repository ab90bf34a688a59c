"""Model card: metrics per split with baselines, interval coverage, provenance and manifest, limitations."""

import streamlit as st

from popdrivers.app import cache, services, widgets
from popdrivers.model import coverage_frame, interval_assumptions, metrics_frame, split_label

artifacts = cache.current()
st.title("Model card")
widgets.data_notice(artifacts)

st.markdown("#### Accuracy per split, against baselines")
st.caption("random tracks: tracks held out at random; unseen artists: whole artists held out (the honest test "
           "for a new artist); newest releases: trained on older releases, tested on the newest.")
table = metrics_frame(artifacts.metrics)
if table.empty:
    st.info("No evaluation metrics were saved with this model.")
else:
    st.dataframe(table, hide_index=True, key="card_metrics", height=38 + 35 * len(table),
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("rmse", "mae", "r2")})
interval = artifacts.metrics.get("interval") or {}
if interval:
    level, coverage = interval.get("level"), interval.get("coverage")
    st.metric(f"Coverage of the {100 * level:.0f}% prediction interval on held-out tracks "
              f"({split_label(interval.get('measured_on'))})",
              f"{100 * coverage:.1f}%" if coverage is not None else "not measured")
    coverage_table = coverage_frame(interval)
    if not coverage_table.empty:
        st.dataframe(coverage_table, hide_index=True, key="card_coverage")

st.markdown("#### What the prediction interval assumes")
st.markdown("\n".join(f"- {item}" for item in interval_assumptions(interval)))

st.markdown("#### Data provenance")
build = artifacts.build
provenance = [{"field": k, "value": str(v)} for k, v in build.items()]
st.dataframe(provenance, hide_index=True, key="card_build", height=38 + 35 * len(provenance))
with st.expander("Manifest (checksums and library versions)"):
    st.json(artifacts.manifest, expanded=1)

st.markdown("#### Known limitations")
st.markdown("\n".join(f"- {item}" for item in services.limitations(artifacts.simulated, artifacts.drivers.design)))
