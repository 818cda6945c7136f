"""Redrawing a figure as work goes on, without letting the drawing take over a short job's time."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Throttled:
    """Calls ``work`` unless its last call ended less than ``gap`` times that call's own duration ago, so it takes
    at most about ``1 / (1 + gap)`` of the time: a long run's figures are redrawn at every step they may change, while
    a short run's frequent steps do not spend most of their time in matplotlib (a figure takes 0.2 to 0.9 s).
    Whatever must be drawn at the end is drawn by calling ``work`` itself, not through this."""

    work: Callable[[], object]
    gap: float = 10.0
    expected: float = 0.0
    """How long ``work`` takes before it has run once: the first call waits ``gap`` times that from the creation."""
    clock: Callable[[], float] = time.monotonic
    next_at: float = field(default=-math.inf, init=False)

    def __post_init__(self) -> None:
        if self.expected:
            self.next_at = self.clock() + self.gap * self.expected

    def __call__(self) -> bool:
        """Whether ``work`` ran."""
        started = self.clock()
        if started < self.next_at:
            return False
        self.work()
        ended = self.clock()
        self.next_at = ended + self.gap * (ended - started)
        return True
