"""Artifacts on disk: atomic writes, manifests with checksums, and verified loading.

Every artifact folder is written to a temporary sibling and renamed into place, so an interrupted job
leaves the previous folder intact. ``manifest.json`` records the sha256 of every file; loading refuses a
folder whose files do not match it (tampered, truncated or half-copied).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from popdrivers.errors import ArtifactError

MANIFEST = "manifest.json"
# Where `make run`, `popdrivers run` and the app look for the artifact set when told nowhere else.
DEFAULT_ARTIFACTS_DIR = Path("artifacts/default")
FORMAT_VERSION = 1
_VERSIONED_LIBRARIES = ("popdrivers", "numpy", "pandas", "scikit-learn", "lightgbm", "shap", "statsmodels")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (data files can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_path(path: str | os.PathLike[str]) -> str:
    """sha256 of a file, or of a folder's files (names and contents, in sorted order)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
    """Installed versions of the libraries that shape an artifact."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED_LIBRARIES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _new_temporary_file(folder: Path, name: str) -> tuple[int, Path]:
    """Create and open a fresh temporary file beside the target, with the permissions the umask gives.

    ``tempfile.mkstemp`` creates 0600 files, so results renamed into place (metrics.json, predictions) could
    not be read by the rest of a team sharing the folder; mode 0666 filtered by the umask is what any new
    file gets (0644 under the usual umask 022).
    """
    for _ in range(100):
        tmp = folder / f".{name}.{uuid.uuid4().hex[:12]}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temporary file in {folder}")


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and an atomic rename.

    The file gets the permissions of any new file under the current umask (0644 under umask 022).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temporary_file(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read_json(path: str | os.PathLike[str]) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactError(f"{path} is missing; rebuild the artifacts (popdrivers train/drivers/build)") from exc
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno}); "
                            "the file is damaged: rebuild the artifacts") from exc


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary folder; on success it replaces ``target`` in one rename.

    On any exception (including Ctrl-C) the temporary folder is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Named with the writer's process id: one killed before it could clean up is recognised later.
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary folders :func:`atomic_directory` left beside ``target`` in processes now gone.

    A writer killed with SIGKILL (or by the machine going down) cannot remove its temporary folder; one whose
    process is still alive is left alone. Returns the folders removed.
    """
    from popdrivers.processes import pid_alive

    target = Path(target)
    removed = []
    pattern = re.compile(rf"^\.{re.escape(target.name)}\.(?:tmp|old)-(\d+)-[0-9a-f]+$")
    if not target.parent.is_dir():
        return removed
    for path in target.parent.iterdir():
        match = pattern.match(path.name)
        if match and path.is_dir() and not pid_alive(int(match.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def write_manifest(folder: str | os.PathLike[str], kind: str, **fields: Any) -> dict[str, Any]:
    """Record checksums of every file in ``folder`` plus ``fields`` in ``folder/manifest.json``."""
    folder = Path(folder)
    files = {
        str(p.relative_to(folder)): sha256_file(p)
        for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST
    }
    manifest = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "created_at": utc_now(),
        "libraries": library_versions(),
        **fields,
        "files": files,
    }
    write_json_atomic(folder / MANIFEST, manifest)
    return manifest


def verify_manifest(folder: str | os.PathLike[str], kind: str | None = None) -> dict[str, Any]:
    """Load ``manifest.json`` and check every recorded checksum; raise :class:`ArtifactError` on mismatch."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"artifact folder {folder} does not exist; build it first "
                            "(popdrivers train --out ..., popdrivers drivers --out ... or popdrivers build)")
    manifest = read_json(folder / MANIFEST)
    if kind is not None and manifest.get("kind") != kind:
        raise ArtifactError(f"{folder} holds a '{manifest.get('kind')}' artifact, expected '{kind}'")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{folder} has artifact format {manifest.get('format_version')}, this popdrivers "
                            f"reads format {FORMAT_VERSION}: rebuild it with this version")
    for name, expected in manifest.get("files", {}).items():
        path = folder / name
        if not path.is_file():
            raise ArtifactError(f"{path} is listed in the manifest but missing; the artifact is incomplete: rebuild it")
        if sha256_file(path) != expected:
            raise ArtifactError(f"{path} does not match the checksum in {folder / MANIFEST}: the file was modified "
                                "or damaged after it was written; refusing to load it. Rebuild the artifact.")
    return manifest
