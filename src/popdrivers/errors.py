"""Exception types shared by every stage.

Every error a user can cause (bad file, bad column, tampered artifact, missing credentials) is a
:class:`PopdriversError`; the CLI turns those into a one-line message and exit code 2, never a traceback.
"""

from __future__ import annotations


class PopdriversError(Exception):
    """Base class of the errors a user can act on; the message says what to do."""


class FormatError(PopdriversError):
    """A file or folder is not in any layout popdrivers can read."""


class ArtifactError(PopdriversError):
    """An artifact folder is missing, incomplete, from an incompatible version, or has been tampered with."""


class CredentialsError(PopdriversError):
    """Spotify credentials are missing or were rejected."""


class InputError(PopdriversError, ValueError):
    """Input a function cannot work with (a table without the column it needs, an unknown option value).

    Also a ``ValueError``, so callers that caught the plain ``ValueError`` keep working.
    """
