"""The fleet's clock: wall time plus an offset, or frozen. Every expiry and `days_left` reads it, never `now()`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)  # far enough from datetime's limit that a running clock never meets it


class ClockOutOfRange(ValueError):
    """A moment before EARLIEST or after LATEST."""


def _system_now() -> datetime:
    return datetime.now(UTC)


class FleetClock:
    def __init__(self, source: Callable[[], datetime] = _system_now) -> None:
        self._source = source
        self._offset = timedelta(0)
        self._frozen_at: datetime | None = None

    def now(self) -> datetime:
        frozen_at = self._frozen_at  # read once: another thread may unfreeze between two reads
        return frozen_at if frozen_at is not None else self._source() + self._offset

    def setting(self) -> tuple[datetime | None, timedelta]:
        """What the clock is set to (the frozen moment, or the offset from wall time): equal before and after a
        change that changes nothing."""
        return self._frozen_at, self._offset if self._frozen_at is None else timedelta(0)

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    @staticmethod
    def check(moment: datetime | None) -> datetime | None:
        """`moment` in UTC (naive means UTC), or ClockOutOfRange past the calendar's ends."""
        if moment is None:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if not EARLIEST <= moment <= LATEST:  # compared before converting: a moment near year 9999 cannot be
            raise ClockOutOfRange(f"the clock stays between {EARLIEST.isoformat()} and {LATEST.isoformat()}")
        return moment.astimezone(UTC)

    def set(self, moment: datetime) -> None:
        """Move the clock to `moment` (naive means UTC); the fleet's dates are UTC dates."""
        moment = self.check(moment) or moment
        if self._frozen_at is not None:
            self._frozen_at = moment
        else:
            self._offset = moment - self._source()

    def advance(self, delta: timedelta) -> None:
        try:
            moment = self.now() + delta
        except OverflowError as exc:
            raise ClockOutOfRange("that moves the clock out of range") from exc
        self.set(moment)

    def freeze(self) -> None:
        self._frozen_at = self.now()

    def unfreeze(self) -> None:
        if self._frozen_at is not None:
            moment, self._frozen_at = self._frozen_at, None
            self.set(moment)

    def reset(self) -> None:
        """Wall time again, not frozen."""
        self._offset = timedelta(0)
        self._frozen_at = None

    def restore(self, moment: datetime, frozen: bool) -> None:
        self.reset()
        if frozen:
            self._frozen_at = moment
        else:
            self.set(moment)
