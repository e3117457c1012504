"""Building blocks every simulated device shares, whatever its wire.

- `EventLog`: the device's numbered event log (seq from 1, optional wrap, the newest `maxlen`
  kept), read-back from a seq with the range the device no longer holds named, and every entry
  recorded in the ground truth.
- `ClockPin`: holds a max-speed clock still while something outside virtual time is awaited
  (the first client session, an operator prompt); a no-op on real-time clocks.
- `alarm_reaction`: the one declared reaction of a profile to an alarm severity
  (``DeviceProfile.alarm_reactions``), and `react` to apply it to a program run.
- `LimitAlarm`: an alarm on a channel's profile alarm limits, with hysteresis; `ConditionAlarm`:
  an alarm while a channel holds a value; `alarm_conditions` evaluates both over the readings.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from cellauto.schema import AlarmSeverity, ChannelDescriptor, DeviceProfile
from cellauto.schema.profile import AlarmReaction
from cellauto.sim.clock import Clock
from cellauto.sim.truth import GroundTruth
from cellauto.state import EXECUTE, State


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One logged event."""

    seq: int
    time: datetime
    kind: str
    data: Mapping[str, Any]


class EventLog:
    """A device's event log; see the module doc. `wrap`: the seq after `wrap` is 1 again."""

    def __init__(
        self,
        clock: Clock,
        truth: GroundTruth | None = None,
        *,
        maxlen: int = 100_000,
        wrap: int | None = None,
    ) -> None:
        self.clock = clock
        self.truth = truth if truth is not None else GroundTruth()
        self.wrap = wrap
        self.seq = 0
        """The newest event's seq (0: none yet)."""
        self.count = 0
        """Events logged since power-on (never wraps)."""
        self._entries: deque[LogEntry] = deque(maxlen=maxlen)

    def append(self, kind: str, data: Mapping[str, Any]) -> LogEntry:
        """Log an event now (virtual time); returns it with its seq."""
        self.seq = self.seq % self.wrap + 1 if self.wrap else self.seq + 1
        self.count += 1
        entry = LogEntry(self.seq, self.clock.now(), kind, data)
        self._entries.append(entry)
        self.truth.event(entry.seq, entry.time, kind, data)
        return entry

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def oldest(self) -> int:
        """The oldest seq still held (``seq + 1`` when the log is empty)."""
        return self._entries[0].seq if self._entries else self.seq + 1

    def since(self, first: int) -> tuple[list[LogEntry], tuple[int, int] | None]:
        """Entries from seq `first` on, and the range ``(from, to)`` of those the log no longer
        holds (None when nothing asked for was dropped; seq 0 never existed)."""
        entries = [e for e in self._entries if e.seq >= first]
        start = max(first, 1)
        dropped = self.count - len(self._entries)
        lost = (start, self.oldest - 1) if dropped and start < self.oldest <= self.seq else None
        return entries, lost


class ClockPin:
    """Holds a max-speed clock still until released (re-entrant per pin; see the module doc)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._stack: contextlib.ExitStack | None = None

    @property
    def held(self) -> bool:
        return self._stack is not None

    def hold(self) -> None:
        """Pin the clock (no-op if this pin holds it already or the clock is not max-speed)."""
        if self._stack is None and self.clock.speed == "max":
            self._stack = contextlib.ExitStack()
            self._stack.enter_context(self.clock.busy())

    def release(self) -> None:
        """Let the clock run again (no-op if not held)."""
        if self._stack is not None:
            self._stack.close()
            self._stack = None

    def set(self, held: bool) -> None:
        """Hold or release."""
        if held:
            self.hold()
        else:
            self.release()


def alarm_reaction(profile: DeviceProfile, severity: AlarmSeverity | str) -> AlarmReaction:
    """What the device does to a running program when an alarm of `severity` is raised."""
    return profile.alarm_reactions.get(AlarmSeverity(severity), "none")


class Controllable(Protocol):
    """What `react` drives: a program runner."""

    @property
    def state(self) -> State: ...

    def hold(self) -> None: ...

    def stop(self) -> None: ...

    def abort(self) -> None: ...


def react(reaction: AlarmReaction, run: Controllable) -> None:
    """Apply a declared alarm reaction to a running program (hold acts only in Execute)."""
    if reaction == "abort":
        run.abort()
    elif reaction == "stop":
        run.stop()
    elif reaction == "hold" and run.state == EXECUTE:
        run.hold()


@dataclass
class LimitAlarm:
    """An alarm on a channel's profile alarm limits: raised outside them, cleared only once the
    value is back inside by `hysteresis` (a fraction of the band), so noise does not flap it."""

    channel: str
    code: str
    low: float | None
    high: float | None
    hysteresis: float = 0.05

    @classmethod
    def from_profile(
        cls, profile: DeviceProfile, channel: str, code: str, hysteresis: float = 0.05
    ) -> LimitAlarm:
        """The limit alarm `code` on `channel`'s profile ``alarm_limits``."""
        descriptor: ChannelDescriptor = profile.channels()[channel]
        limits = descriptor.alarm_limits
        low = limits.low if limits is not None else None
        high = limits.high if limits is not None else None
        return cls(channel, code, low, high, hysteresis)

    def violated(self, value: float, active: bool) -> bool:
        """Whether the alarm condition holds for `value` (given whether it is active now)."""
        if self.low is not None and self.high is not None:
            band = self.high - self.low
        else:
            band = abs(self.high if self.high is not None else self.low or 0.0)
        margin = self.hysteresis * band if active else 0.0
        below = self.low is not None and value < self.low + margin
        above = self.high is not None and value > self.high - margin
        return below or above


@dataclass(frozen=True, slots=True)
class ConditionAlarm:
    """An alarm raised while a channel holds `value` (a door open, a leak detected)."""

    channel: str
    code: str
    value: float | str | bool

    def violated(self, value: Any, active: bool) -> bool:
        """Whether the alarm condition holds for `value`."""
        return bool(value == self.value)


def alarm_conditions(
    alarms: Iterable[LimitAlarm | ConditionAlarm],
    values: Mapping[str, Any],
    active: Container[str],
) -> dict[str, bool]:
    """Whether each alarm code's condition holds for the channels' `values` now: a code with
    several conditions holds if any does, a limit holds only on a number, and `active` (the
    codes active now) gives limits their hysteresis."""
    holds: dict[str, bool] = {}
    for alarm in alarms:
        value = values.get(alarm.channel)
        if isinstance(alarm, LimitAlarm):
            on = (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and alarm.violated(float(value), alarm.code in active)
            )
        else:
            on = value is not None and alarm.violated(value, alarm.code in active)
        holds[alarm.code] = holds.get(alarm.code, False) or on
    return holds
