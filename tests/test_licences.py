"""Every package the install brings has its licence written down (docs/licences.md), as it declares it."""

from __future__ import annotations

import importlib.metadata as metadata
import re

from conftest import ROOT
from licences import runtime_closure
from packaging.requirements import Requirement

# A new release may reword a permissive licence or pull in a new permissive helper; a copyleft or unknown licence
# arriving unreviewed must fail.
UNREVIEWED = re.compile(r"GPL|General Public|unknown", re.I)


def documented() -> dict[str, str]:
    rows = re.findall(r"^\| ([^|]+?) \| ([^|]+?) \|$", (ROOT / "docs" / "licences.md").read_text(), flags=re.M)
    return {name: licence for name, licence in rows if name != "package" and not name.startswith("---")}


def direct_dependencies() -> set[str]:
    requires = metadata.distribution("popdrivers").requires or []
    return {Requirement(r).name.lower().replace("_", "-") for r in requires
            if Requirement(r).marker is None or Requirement(r).marker.evaluate({"extra": ""})}


def test_every_installed_runtime_dependency_has_its_licence_documented():
    installed, written = runtime_closure(), documented()
    direct_missing = sorted(direct_dependencies() - set(written))
    assert not direct_missing, f"direct dependencies not in docs/licences.md: {direct_missing} (regenerate it: " \
                               "python tests/licences.py > docs/licences.md)"
    unreviewed = sorted(n for n, licence in installed.items()
                        if UNREVIEWED.search(licence) and not UNREVIEWED.search(written.get(n, "")))
    assert not unreviewed, f"copyleft or unknown licences not reviewed in docs/licences.md: {unreviewed}"
    assert "popdrivers" in installed and len(installed) > 30
