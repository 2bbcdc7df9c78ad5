"""A circuit breaker for one server of a fleet: stop sending to a server that keeps failing.

Closed: requests flow. After `failures` consecutive failed attempts it opens: the server gets
nothing for `cooldown_s` seconds. Then it is half-open: one probe request may go; its success
closes the breaker, its failure opens it for another cool-down. The clock is injectable so the
states can be tested without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import Enum


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    def __init__(
        self, failures: int, cooldown_s: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1:
            raise ValueError("a breaker needs failures >= 1")
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.consecutive_failures = 0
        self.opened_at: float | None = None
        self.probing = False
        self.times_opened = 0

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self._clock() - self.opened_at >= self.cooldown_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allows_request(self) -> bool:
        """Closed, or half-open with no probe already on its way."""
        state = self.state
        return state is BreakerState.CLOSED or (
            state is BreakerState.HALF_OPEN and not self.probing
        )

    def seconds_until_probe(self) -> float | None:
        """How long until a probe may go (0: now); None when closed."""
        if self.opened_at is None:
            return None
        return max(0.0, self.opened_at + self.cooldown_s - self._clock())

    def on_send(self) -> None:
        """A request is going out: in the half-open state it is the one probe."""
        if self.state is BreakerState.HALF_OPEN:
            self.probing = True

    def on_success(self) -> None:
        self.consecutive_failures = 0
        self.opened_at = None
        self.probing = False

    def on_failure(self) -> None:
        self.consecutive_failures += 1
        if self.probing or (self.opened_at is None and self.consecutive_failures >= self.threshold):
            self._open()
        # A failure of a request sent before the breaker opened leaves the open period as is.

    def on_abandon(self) -> None:
        """The request ended without an answer either way (cancelled): free the probe slot."""
        self.probing = False

    def _open(self) -> None:
        self.opened_at = self._clock()
        self.probing = False
        self.times_opened += 1
