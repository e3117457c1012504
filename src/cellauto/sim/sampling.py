"""Sampling policies for simulated devices: when a channel's value is published.

- `Periodic`: every channel with a profile ``sample_period`` at ``origin + k * period``
  (k = 0, 1, 2...), whatever the value; `on_change` lists the channels without a period.
- `Deadband`: report by exception: a number that moved more than its deadband since the
  channel's last publication, a text or boolean that changed, or a keepalive once `keepalive`
  seconds passed; each publication numbered per channel from 0 (the ``n`` of a sample).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping

from cellauto.schema import DeviceProfile

__all__ = ["Deadband", "Periodic"]

Value = float | str | bool


class Periodic:
    """The profile's sample periods as a schedule of virtual instants (seconds from origin)."""

    def __init__(self, profile: DeviceProfile) -> None:
        channels = profile.channels()
        self.periods = {
            name: ch.sample_period.to("s").value
            for name, ch in channels.items()
            if ch.sample_period is not None
        }
        self.on_change = [name for name in channels if name not in self.periods]
        self._due = [(0.0, name) for name in sorted(self.periods)]
        heapq.heapify(self._due)

    @property
    def next_at(self) -> float:
        """The next instant a channel is due (inf: no periodic channel)."""
        return self._due[0][0] if self._due else float("inf")

    def pop_due(self) -> tuple[float, list[str]]:
        """The earliest due instant and every channel due then (each rescheduled a period on)."""
        at = self.next_at
        names: list[str] = []
        while self._due and self._due[0][0] <= at:
            _, name = heapq.heappop(self._due)
            names.append(name)
            heapq.heappush(self._due, (at + self.periods[name], name))
        return at, names


class Deadband:
    """See the module doc. `deadbands`: channel -> the change that publishes it early
    (`default` for the others)."""

    def __init__(self, deadbands: Mapping[str, float], *, default: float, keepalive: float) -> None:
        self.deadbands = dict(deadbands)
        self.default = default
        self.keepalive = keepalive
        self._last: dict[str, tuple[float, Value]] = {}
        self._count: dict[str, int] = {}

    def last(self, channel: str) -> tuple[float, Value] | None:
        """When the channel was last published, and its value then (None: not since `forget`)."""
        return self._last.get(channel)

    def count(self, channel: str) -> int | None:
        """The channel's latest publication number (None before its first)."""
        return self._count.get(channel)

    def wants(self, channel: str, value: Value, now: float) -> bool:
        """Whether `value` read at `now` is to be published."""
        last = self._last.get(channel)
        if last is None or now - last[0] >= self.keepalive:
            return True
        if isinstance(value, float) and isinstance(last[1], float):
            return abs(value - last[1]) > self.deadbands.get(channel, self.default)
        return value != last[1]

    def sent(self, channel: str, value: Value, now: float) -> int:
        """Record a publication; returns its number (from 0 per channel, never reset)."""
        self._last[channel] = (now, value)
        n = self._count.get(channel, -1) + 1
        self._count[channel] = n
        return n

    def forget(self) -> None:
        """Forget the last published values (the next reading of each channel publishes);
        publication numbers go on."""
        self._last.clear()
