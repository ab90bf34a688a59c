"""Column planning: which source column becomes which table column (case, spacing, aliases, repeated headers)."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from popdrivers.errors import FormatError
from popdrivers.schema import CANONICAL_COLUMNS, KNOWN_ALIASES, column_key, suggest_column
from popdrivers.sources.files._layouts import FORMATS
from popdrivers.sources.files._report import UnusedColumn
from popdrivers.sources.tabular import TableFile


def header_key(name: str) -> str:
    """A header compared up to case, spaces and punctuation ("Track ID" = "track_id" = "Track.ID")."""
    return column_key(name)


@dataclass
class ColumnPlan:
    """The plan for one file's columns: positions read, under which name; copies to compare; the rest, why."""

    table: TableFile
    use: dict[int, str]
    copies: dict[int, list[int]]
    unused: list[UnusedColumn]
    notes: list[str]
    file_label: str = ""

    @property
    def positions(self) -> list[int]:
        return [*self.use, *(c for copies in self.copies.values() for c in copies)]

    def names(self) -> set[str]:
        return set(self.use.values())

    def position_of(self, name: str) -> int | None:
        return next((p for p, n in self.use.items() if n == name), None)

    def sources(self) -> list[tuple[str, str]]:
        prefix = f"{self.file_label}: " if self.file_label else ""
        return [(prefix + (self.table.header[p] or f"column {p + 1}"), n) for p, n in self.use.items()]


def plan_columns(table: TableFile, wanted: Mapping[str, str], *, layout: str,
                 aliases: Mapping[str, str] | None = None, keep_others: bool = False,
                 file_label: str = "") -> ColumnPlan:
    """Match the file's header to the columns a reader wants (``wanted``: source name -> name in the frame).

    A header that differs only in case or spacing is used and the mapping noted; with ``aliases`` (canonical
    files) a known other name is used when the canonical one is absent. Two columns for one meaning are both
    read and compared later (:func:`_settle_copies`). Every other column is kept as an extra
    (``keep_others``) or listed as unused, with the reason.
    """
    header = table.header
    keys = [header_key(h) for h in header]
    wanted_by_key = {header_key(source): (source, target) for source, target in wanted.items()}
    groups: dict[str, list[int]] = {}
    how: dict[int, str] = {}  # position -> the name it was read as, when written otherwise
    for position, key in enumerate(keys):
        if header[position] and key in wanted_by_key:
            source, target = wanted_by_key[key]
            groups.setdefault(target, []).append(position)
            if header[position] != source:
                how[position] = f"read as '{source}' (the same name up to case or spacing)"
    claimed = set(groups)
    alias_by_key = {header_key(alias): target for alias, target in (aliases or {}).items()}
    shadowed: dict[int, str] = {}
    for position, key in enumerate(keys):
        if any(position in g for g in groups.values()) or not header[position] or key not in alias_by_key:
            continue
        target = alias_by_key[key]
        if target in claimed:
            shadowed[position] = target
        else:
            groups.setdefault(target, []).append(position)
            how[position] = f"read as '{target}' (a common name for it)"

    use: dict[int, str] = {}
    copies: dict[int, list[int]] = {}
    notes: list[str] = []
    where = f"{file_label}: " if file_label else ""
    for target, positions in groups.items():
        exact = [p for p in positions if header[p] in wanted or header[p] == target]
        primary = exact[0] if exact else positions[0]
        use[primary] = target
        if len(positions) > 1:
            copies[primary] = [p for p in positions if p != primary]
        if primary in how:
            notes.append(f"{where}column '{header[primary]}' {how[primary]}")

    unused: list[UnusedColumn] = []
    grouped = {p for positions in groups.values() for p in positions}
    extras: dict[str, list[int]] = {}
    for position, name in enumerate(header):
        if position in grouped:
            continue
        if not name:
            unused.append(UnusedColumn(f"column {position + 1}", "has no header (a saved row index?): not read",
                                       file_label))
        elif keep_others:
            extras.setdefault(name, []).append(position)
            if position in shadowed:
                unused.append(UnusedColumn(name, f"kept as an extra column: it usually means '{shadowed[position]}',"
                                                 f" but the file also has '{shadowed[position]}'", file_label))
        elif position in shadowed:
            unused.append(UnusedColumn(name, f"not read: it would mean '{shadowed[position]}', which the file "
                                             "already has", file_label))
        else:
            reason = f"not part of the {layout} layout: not read"
            missing = [source for source, target in wanted.items() if target not in groups]
            close = difflib.get_close_matches(name, missing, n=1, cutoff=0.8)
            if close:
                reason += f" (did you mean '{close[0]}'? the layout's column '{close[0]}' is missing)"
            unused.append(UnusedColumn(name, reason, file_label))
    for name, positions in extras.items():
        use[positions[0]] = name
        if len(positions) > 1:
            copies[positions[0]] = positions[1:]
    return ColumnPlan(table, use, copies, unused, notes, file_label)


def aliases_for(targets: Collection[str]) -> dict[str, str]:
    """Other names a layout's canonical columns go by: the canonical name itself and its known aliases.

    A public file whose column was renamed to the canonical name (``track_popularity`` -> ``popularity``) or
    to a common name for it is still read, with the mapping noted.
    """
    canonical = {t for t in targets if t in CANONICAL_COLUMNS}
    return {**{t: t for t in canonical}, **{a: t for a, t in KNOWN_ALIASES.items() if t in canonical}}


def _same_values(a: pd.Series, b: pd.Series) -> tuple[bool, int | None]:
    """Whether two columns hold the same values (missing = missing); else the first row where they differ."""
    if a.dtype != b.dtype:
        a, b = a.astype(object), b.astype(object)
    equal = (a.isna() & b.isna()) | (a == b).fillna(False).astype(bool)
    if bool(equal.all()):
        return True, None
    return False, int(np.flatnonzero(~equal.to_numpy(dtype=bool))[0])


def _settle_copies(frame: pd.DataFrame, plan: ColumnPlan) -> pd.DataFrame:
    """Drop identical copies of a column (listed as unused); stop on copies that disagree (ambiguous)."""
    table = plan.table
    for primary, others in plan.copies.items():
        for other in others:
            same, row = _same_values(frame[primary], frame[other])
            if not same:
                assert row is not None
                line = table.row_label(int(frame.index[row]))
                raise FormatError(
                    f"{table.path}: columns {table.column_label(primary)} (column {primary + 1}) and "
                    f"{table.column_label(other)} (column {other + 1}) both give '{plan.use[primary]}' but hold "
                    f"different values ({line}: '{frame[primary].iloc[row]}' vs '{frame[other].iloc[row]}'). "
                    "Fix: delete or rename one of them")
            plan.unused.append(UnusedColumn(
                table.header[other], f"repeats column {table.column_label(primary)} (column {primary + 1}) with the "
                f"same values: one copy is used", plan.file_label))
    drop = [c for others in plan.copies.values() for c in others]
    return frame.drop(columns=drop).rename(columns=plan.use)


def read_planned(plan: ColumnPlan, *, text: Collection[str] = (), exact_text: Collection[str] = ()) -> pd.DataFrame:
    """Read the planned columns: named as planned, index = the row's line (or sheet row) in the file."""
    by_target: dict[str, list[int]] = {}
    for primary, name in plan.use.items():
        by_target[name] = [primary, *plan.copies.get(primary, [])]
    text_positions = {p for name in text for p in by_target.get(name, [])}
    exact_positions = {p for name in exact_text for p in by_target.get(name, [])}
    frame = plan.table.read(plan.positions, text=text_positions, exact_text=exact_positions)
    return _settle_copies(frame, plan)


def missing_columns_error(table: TableFile, layout: str, missing: list[str], *, fix: str = "") -> FormatError:
    present = [h for h in table.header if h]
    hints = []
    for name in missing:
        hint = suggest_column(name, present)
        hints.append(f"'{name}' ({hint})" if not hint.startswith("add a") else f"'{name}'")
    return FormatError(f"{table.path}: the {layout} layout needs column(s) {', '.join(hints)}; the file has "
                       f"{', '.join(present[:25])}{' ...' if len(present) > 25 else ''}. Fix: "
                       + (fix or "add or rename those columns, or name the layout the file is in (--format on the "
                          f"command line, format= in Python; known: {', '.join(FORMATS)})"))

