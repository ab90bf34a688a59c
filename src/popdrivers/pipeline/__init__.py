"""The artifact set the app explores, and building it in the background while the app already answers.

==================  ===========================================================================================
``_artifacts``      the artifact set: :func:`build_artifacts` (source -> table -> model + drivers -> one folder,
                    atomically), :func:`load_artifacts` (checksums verified), :class:`Artifacts`
``_background``     the background build: one per folder (a lock), its status and log, started by
                    :func:`start_background_build`, run by :func:`run_background_build` in a process of its own
                    that stops with the app that started it; stale locks and statuses recognised
==================  ===========================================================================================

Other modules import from ``popdrivers.pipeline`` only.
"""

from popdrivers.pipeline._artifacts import (
    ARTIFACTS_KIND,
    BUILD_FILE,
    DEFAULT_BUDGET_SECONDS,
    DRIVERS_DIR,
    IMPORTANCE_ROWS,
    MODEL_DIR,
    SIMULATED_SOURCE,
    TRACKS_FILE,
    TRUTH_FILE,
    Artifacts,
    build_artifacts,
    is_artifact_dir,
    load_artifacts,
    load_importance,
    load_tracks,
    verify_artifacts,
)
from popdrivers.pipeline._background import (
    BUILD_STATES,
    ENV_BUILD_OPTIONS,
    LOCK_FILE,
    LOCK_GRACE_SECONDS,
    LOG_FILE,
    REQUEST_FILE,
    STATUS_FILE,
    BuildRequest,
    BuildStatus,
    BuildStopped,
    build_dir,
    build_status,
    build_with_status,
    clear_build_status,
    run_background_build,
    start_background_build,
)

__all__ = [
    "ARTIFACTS_KIND", "BUILD_FILE", "DEFAULT_BUDGET_SECONDS", "DRIVERS_DIR", "IMPORTANCE_ROWS", "MODEL_DIR",
    "SIMULATED_SOURCE", "TRACKS_FILE", "TRUTH_FILE", "Artifacts", "build_artifacts", "is_artifact_dir",
    "load_artifacts", "load_importance", "load_tracks", "verify_artifacts",
    "BUILD_STATES", "ENV_BUILD_OPTIONS", "LOCK_FILE", "LOCK_GRACE_SECONDS", "LOG_FILE", "REQUEST_FILE", "STATUS_FILE",
    "BuildRequest", "BuildStatus", "BuildStopped", "build_dir", "build_status", "build_with_status",
    "clear_build_status", "run_background_build", "start_background_build",
]
