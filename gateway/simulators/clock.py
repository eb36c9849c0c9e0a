"""The simulators' sense of time: real UTC time that tests and `/_sim/clock` can freeze and move forward."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    return datetime.now(UTC)


class SimClock:
    """Wall-clock time plus an offset, or a frozen instant.

    Every vendor state that changes with time (Streamloop's start-up phases, Loop's recordings) is computed
    from this clock when it is read, so freezing it makes a state stand still and advancing it makes the
    next state appear at once, without sleeping.
    """

    def __init__(self, real_now: Callable[[], datetime] = utc_now) -> None:
        self._real_now = real_now
        self._offset = timedelta(0)
        self._frozen_at: datetime | None = None

    def now(self) -> datetime:
        if self._frozen_at is not None:
            return self._frozen_at
        return self._real_now() + self._offset

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def freeze(self) -> None:
        if self._frozen_at is None:
            self._frozen_at = self.now()

    def unfreeze(self) -> None:
        if self._frozen_at is not None:
            # Carry on from the frozen instant rather than jumping to real time.
            self._offset = self._frozen_at - self._real_now()
            self._frozen_at = None

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        step = timedelta(seconds=seconds)
        if self._frozen_at is not None:
            self._frozen_at += step
        else:
            self._offset += step

    def restore(self) -> None:
        """Back to real time, unfrozen."""
        self._offset = timedelta(0)
        self._frozen_at = None
