"""Independent fits side by side on a few threads (LightGBM releases the GIL while it trains).

On a small machine two single-threaded fits at once finish sooner than two fits one after the other with two
OpenMP threads each: a LightGBM fit on tens of thousands of rows synchronises its threads for every histogram,
and with passive waiting (see ``popdrivers.model``) each synchronisation costs a wake-up.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")


def run_parallel(jobs: Sequence[Callable[[], T]], workers: int,
                 on_done: Callable[[int], None] | None = None) -> list[T]:
    """Run ``jobs`` on up to ``workers`` threads; results in job order. ``on_done(i)`` runs in this thread.

    The first exception is raised once the jobs already running have finished; jobs not started are cancelled.
    """
    if workers <= 1 or len(jobs) <= 1:
        results = []
        for i, job in enumerate(jobs):
            results.append(job())
            if on_done is not None:
                on_done(i)
        return results
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = {pool.submit(job): i for i, job in enumerate(jobs)}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # raises the job's exception here
                    if on_done is not None:
                        on_done(futures[future])
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        ordered = sorted(futures.items(), key=lambda item: item[1])
        return [future.result() for future, _ in ordered]
