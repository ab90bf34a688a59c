"""The licences of everything `pip install popdrivers` brings, read from the installed packages' metadata.

``python tests/licences.py > docs/licences.md`` rewrites the table; ``tests/test_licences.py`` fails when an installed
runtime dependency is missing from it or its licence changed, so a new dependency cannot arrive unreviewed.
"""

from __future__ import annotations

import importlib.metadata as metadata

from packaging.requirements import Requirement

HEADER = """# Licences of the installed whole

`pip install popdrivers` (no extras) installs these packages. Generated from their metadata by
`python tests/licences.py > docs/licences.md`; `tests/test_licences.py` fails when this table and the installed
packages disagree. What the whole allows is said in the README (section "Licence").

| package | licence (as the package declares it) |
|---|---|
"""


def declared_licence(dist: metadata.Distribution) -> str:
    """The SPDX expression when declared, else the licence classifiers, else the first line of License."""
    meta = dist.metadata
    expression = meta.get("License-Expression")
    if expression:
        return expression.strip()
    classifiers = [c.split("::")[-1].strip() for c in (meta.get_all("Classifier") or []) if c.startswith("License ::")]
    if classifiers:
        return "; ".join(classifiers)
    text = (meta.get("License") or "").strip().splitlines()
    return text[0].strip() if text else "unknown"


def runtime_closure(root: str = "popdrivers") -> dict[str, str]:
    """Package name (normalised) -> declared licence, for ``root`` and everything it needs without extras."""
    found: dict[str, str] = {}

    def visit(name: str) -> None:
        key = name.lower().replace("_", "-").replace(".", "-")
        if key in found:
            return
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return
        found[key] = declared_licence(dist)
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            visit(requirement.name)

    visit(root)
    return dict(sorted(found.items()))


def table() -> str:
    return HEADER + "".join(f"| {name} | {licence} |\n" for name, licence in runtime_closure().items())


if __name__ == "__main__":
    print(table(), end="")
