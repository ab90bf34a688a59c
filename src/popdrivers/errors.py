"""Exception types shared by every stage.

Every error a user can cause (bad file, bad column, tampered artifact, missing credentials) is a
:class:`PopdriversError`; the CLI turns those into a one-line message and exit code 2, never a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class PopdriversError(Exception):
    """Base class of the errors a user can act on; the message says what to do."""


class FormatError(PopdriversError):
    """A file or folder is not in any layout popdrivers can read."""


class ArtifactError(PopdriversError):
    """An artifact folder is missing, incomplete, from an incompatible version, or has been tampered with."""


class CredentialsError(PopdriversError):
    """Spotify credentials are missing or were rejected."""


class InputError(PopdriversError, ValueError):
    """An argument or option the user gave is not usable (a file name of the wrong kind, an unknown track id).

    Also a :class:`ValueError`, so library callers that catch ``ValueError`` keep working; the CLI turns
    only :class:`PopdriversError` into exit code 2, so a ``ValueError`` from a real bug still shows its traceback.
    """


class SplitUnavailable(PopdriversError):
    """An evaluation split cannot be made from this data (no artist ids, no release dates, too few groups)."""


class ApiUnavailable(PopdriversError):
    """Retries are exhausted (rate limited, server errors, no connection): stop; a rerun resumes."""


class ConsentRequired(InputError):
    """A file would be sent to a third-party service without the user having asked for it."""


class AudioError(PopdriversError):
    """One file could not be analysed (the message names the file and the reason)."""


class SchemaError(PopdriversError):
    """Every problem found in a track table, listed together so they can be fixed in one pass.

    ``problems`` are :class:`popdrivers.schema.Problem` (column, issue, rows, examples, fix), one per line.

    The message's first line is the first problem with its fix (what a command prints as its one-line reason);
    the other problems follow, one per line.
    """

    def __init__(self, problems: Sequence[Any], source: str | None = None):
        self.problems = tuple(problems)
        self.source = source
        where = f"{source}: " if source else ""
        first = f"{where}{self.problems[0]}" if self.problems else f"{where}the track table has a problem"
        more = len(self.problems) - 1
        lines = [first + (f" (and {more} more problem{'s' if more != 1 else ''}, below)" if more > 0 else "")]
        lines += [f"  - {p}" for p in self.problems[1:]]
        super().__init__("\n".join(lines))
