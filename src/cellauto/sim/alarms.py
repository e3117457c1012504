"""`AlarmBook`: a simulated device's alarms, raised from the profile's `AlarmSpec`s,
acknowledged and cleared, with the profile's declared reaction of a run to each.

The book decides what a device holds: an alarm is in it while active, and (with
``keep_unacknowledged``) until it is also acknowledged; one active alarm per code. Publishing an
alarm's change is the device's own business (an OPC UA event, an ``ALARM`` frame): the book
returns the alarm each call changed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from cellauto.errors import FaultSpecError
from cellauto.schema import AlarmSpec, DeviceProfile
from cellauto.schema.profile import AlarmReaction
from cellauto.sim.device import alarm_reaction

__all__ = ["AlarmBook", "BookAlarm"]


@dataclass
class BookAlarm:
    """One alarm in the book."""

    alarm_id: str
    spec: AlarmSpec
    message: str
    active: bool = True
    acknowledged: bool = False

    @property
    def code(self) -> str:
        return self.spec.code

    @property
    def severity(self) -> str:
        return str(self.spec.severity)


class AlarmBook:
    """See the module doc. `new_id(n)` names the n-th alarm raised since power-on (from 1)."""

    def __init__(
        self,
        profile: DeviceProfile,
        new_id: Callable[[int], str],
        *,
        keep_unacknowledged: bool = True,
        device: str = "simulator",
    ) -> None:
        self.profile = profile
        self.keep_unacknowledged = keep_unacknowledged
        self._specs = {spec.code: spec for spec in profile.alarms}
        self._new_id = new_id
        self._device = device
        self._raised = 0
        self._alarms: dict[str, BookAlarm] = {}

    def __iter__(self) -> Iterator[BookAlarm]:
        return iter(list(self._alarms.values()))

    def get(self, alarm_id: str) -> BookAlarm | None:
        """The alarm with this id, if the book still holds it."""
        return self._alarms.get(alarm_id)

    def spec(self, code: str) -> AlarmSpec:
        """The profile's alarm `code` (FaultSpecError naming the known codes if none)."""
        try:
            return self._specs[code]
        except KeyError:
            known = ", ".join(self._specs)
            raise FaultSpecError(f"{self._device}: no alarm {code!r}; alarms: {known}") from None

    def active(self, code: str) -> BookAlarm | None:
        """The active alarm with this code, if any."""
        return next((a for a in self._alarms.values() if a.code == code and a.active), None)

    def active_codes(self) -> dict[str, BookAlarm]:
        """Every active alarm by code."""
        return {a.code: a for a in self._alarms.values() if a.active}

    def reaction(self, alarm: BookAlarm) -> AlarmReaction:
        """What the profile says a running program does when this alarm is raised."""
        return alarm_reaction(self.profile, alarm.spec.severity)

    def raise_(self, code: str, message: str = "") -> BookAlarm | None:
        """Raise alarm `code`; returns it, or None if one with this code is active already."""
        spec = self.spec(code)
        if self.active(code) is not None:
            return None
        self._raised += 1
        alarm = BookAlarm(self._new_id(self._raised), spec, message or spec.title)
        self._alarms[alarm.alarm_id] = alarm
        return alarm

    def acknowledge(self, alarm: BookAlarm) -> bool:
        """Acknowledge a held alarm; False if it was acknowledged already."""
        if alarm.acknowledged:
            return False
        alarm.acknowledged = True
        self._settle(alarm)
        return True

    def clear(self, code: str) -> list[BookAlarm]:
        """The condition behind `code` is gone: its active alarms clear (returned)."""
        cleared = [a for a in self._alarms.values() if a.code == code and a.active]
        for alarm in cleared:
            alarm.active = False
            self._settle(alarm)
        return cleared

    def _settle(self, alarm: BookAlarm) -> None:
        done = not alarm.active and (alarm.acknowledged or not self.keep_unacknowledged)
        if done:
            self._alarms.pop(alarm.alarm_id, None)
