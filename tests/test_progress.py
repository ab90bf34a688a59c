"""Progress in a log: plain lines with stage, done/total and ETA, every few seconds and at each new stage."""

from __future__ import annotations

import io

from rich.console import Console

from popdrivers.progress import PlainProgress, rich_progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_come_at_each_stage_and_every_few_seconds_with_an_eta() -> None:
    stream, clock = io.StringIO(), FakeClock()
    progress = PlainProgress("training", stream, interval=5.0, clock=clock)
    progress(0, 10, "tuning: trial 1")  # a new stage: a line
    for second in range(1, 5):
        clock.now = second
        progress(second, 10, f"tuning: trial {second + 1}")  # within 5 s of the last line: quiet
    clock.now = 6.0
    progress(6, 10, "tuning: trial 7")  # 5 s later: a line, with the ETA from the stage's pace (1 s per step)
    clock.now = 6.5
    progress(0, 6, "evaluation: 0 of 6 held-out fits done")  # a new stage: a line at once
    clock.now = 7.0
    progress(6, 6, "evaluation done")  # finished: a line
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4, lines
    assert lines[0].startswith("[   0 s] training: tuning: trial 1 - 0/10 (0%)")
    assert "6/10 (60%) - ETA 4 s" in lines[1]
    assert "evaluation: 0 of 6" in lines[2] and "6/6 (100%)" in lines[3]


def test_off_a_terminal_the_progress_is_plain_lines() -> None:
    stream = io.StringIO()
    with rich_progress("build", console=Console(file=stream, force_terminal=False)) as progress:
        progress(1, 4, "data: reading")
    assert stream.getvalue().strip().endswith("build: data: reading - 1/4 (25%)")
