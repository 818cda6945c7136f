"""Redrawing as work goes on: at most about a tenth of the time, and every step of slow work."""

from __future__ import annotations

from isbert.throttle import Throttled


def test_work_runs_unless_its_last_run_ended_less_than_gap_times_its_duration_ago() -> None:
    """A drawing of 0.5 s with the default gap of 10 holds the next one back until 5 s after it ended."""
    now = [100.0]
    ran: list[float] = []

    def draw() -> None:
        ran.append(now[0])
        now[0] += 0.5  # the drawing's own duration

    redraw = Throttled(draw, clock=lambda: now[0])
    answers = []
    for at in (100.0, 101.0, 105.49, 105.5, 105.6, 200.0):
        now[0] = max(now[0], at)
        answers.append(redraw())
    assert ran == [100.0, 105.5, 200.0]  # the first call always runs; 100.5 + 10 x 0.5; slow work: every call
    assert answers == [True, False, False, True, False, True]
    assert Throttled(draw).gap == 10.0


def test_work_expected_to_take_a_while_waits_gap_times_that_before_its_first_run() -> None:
    now = [50.0]
    ran: list[float] = []
    redraw = Throttled(lambda: ran.append(now[0]), expected=1.0, clock=lambda: now[0])
    answers = []
    for at in (50.0, 59.9, 60.0, 60.0):
        now[0] = at
        answers.append(redraw())
    assert ran == [60.0, 60.0] and answers == [False, False, True, True]  # an instant drawing holds nothing back
