"""A long-lived analysis worker: ``python -m popdrivers.audio._worker MEMORY_BYTES [PARENT_PID main-thread|thread]``.

Protocol: one JSON object per line. The worker writes ``{"ready": true}`` once its libraries are loaded and
warmed up, then answers each request ``{"id": ..., "path": ..., "max_seconds": ...}`` with
``{"id": ..., "ok": true, "result": {...}}`` or ``{"id": ..., "ok": false, "reason": "..."}``.

Its address space is capped with ``RLIMIT_AS`` before any file is opened, so a file that would make the decoder
allocate without bound ends in a MemoryError (or the worker's death), never in the machine swapping; the parent
enforces the wall-time limit and replaces a worker that hangs or dies. Native libraries may print on file
descriptor 1, so the protocol uses a duplicate of it and fd 1 is pointed at stderr.
"""

from __future__ import annotations

import json
import os
import sys

# One thread per worker: the pool runs one worker per core (main() sets these before numpy loads; importing this
# module sets nothing).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def _limit_memory(limit_bytes: int) -> None:
    import resource

    if limit_bytes <= 0:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit_bytes = min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, hard))


def _warm_up() -> None:
    """Run the analysis once on a short synthetic clip: JIT compilation and first-call costs are paid here."""
    import tempfile

    import numpy as np
    import soundfile

    from popdrivers.audio import _extract

    seconds, rate = 6.0, 22050
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + np.sign(np.sin(2 * np.pi * 2 * t))) / 2
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "warm-up.wav")
        soundfile.write(path, signal.astype("float32"), rate)
        _extract.analyse(path, max_seconds=60.0)


def _exit_with_parent(parent: int, tied_to_thread: bool) -> None:
    """End this worker when the process that started it ends, even by SIGKILL (no orphan keeps analysing).

    Linux: the kernel sends SIGKILL when the parent dies (PR_SET_PDEATHSIG), asked only when the pool was created
    on the parent's main thread (the signal follows the creating *thread*). Everywhere: a daemon thread that exits
    once the parent is gone (it runs whenever the analysis lets go of the GIL, and between files).
    """
    import threading
    import time

    if tied_to_thread and sys.platform.startswith("linux"):
        import contextlib
        import ctypes
        import signal

        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(0)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def main() -> None:
    for variable in THREAD_VARIABLES:  # a user's own setting wins
        os.environ.setdefault(variable, "1")
    limit = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    if len(sys.argv) > 3:
        _exit_with_parent(int(sys.argv[2]), sys.argv[3] == "main-thread")
    protocol = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    import essentia

    essentia.log.infoActive = False
    essentia.log.warningActive = False
    from popdrivers.audio import _extract

    _warm_up()
    _limit_memory(limit)
    protocol.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        try:
            result = _extract.analyse(request["path"], float(request["max_seconds"]))
            reply = {"id": request["id"], "ok": True, "result": result}
        except _extract.AnalysisError as exc:
            reply = {"id": request["id"], "ok": False, "reason": str(exc)}
        except MemoryError:
            reply = {"id": request["id"], "ok": False,
                     "reason": f"the analysis needed more than the worker's memory limit "
                               f"({limit / 2**30:.1f} GiB): the file is too large or damaged"}
        except Exception as exc:  # noqa: BLE001 - a decoder or library failure on one file must not end the batch
            reason = " ".join(str(exc).split())[:300] or type(exc).__name__
            reply = {"id": request["id"], "ok": False, "reason": f"analysis failed ({type(exc).__name__}: {reason})"}
        protocol.write(json.dumps(reply) + "\n")


if __name__ == "__main__":
    main()
