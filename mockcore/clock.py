"""The fleet's clock: wall time plus an offset, or frozen. Every expiry and `days_left` reads it, never `now()`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta


def _system_now() -> datetime:
    return datetime.now(UTC)


class FleetClock:
    def __init__(self, source: Callable[[], datetime] = _system_now) -> None:
        self._source = source
        self._offset = timedelta(0)
        self._frozen_at: datetime | None = None

    def now(self) -> datetime:
        return self._frozen_at if self._frozen_at is not None else self._source() + self._offset

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    def set(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if self._frozen_at is not None:
            self._frozen_at = moment
        else:
            self._offset = moment - self._source()

    def advance(self, delta: timedelta) -> None:
        self.set(self.now() + delta)

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
