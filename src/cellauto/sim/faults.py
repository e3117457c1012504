"""Fault injection: a small spec grammar, typed faults, and a scheduler that fires them.

Grammar of the ``faults=`` option (items separated by commas)::

    item      = kind [":" channel] "@" ["~"] time [":" duration] ["=" value]
    time      = duration
    duration  = number [unit] { number unit }      units: s, m or min, h, d; bare number = s

``@~T`` means "at a random time before T", drawn from the run's seed. Per kind:

- ``disconnect@2h[:30s]``: the wire server drops its connections (and refuses for the duration).
- ``stall@3h:10m``: the wire server stops answering for the duration (required).
- ``corrupt@5h[=3]``: the next `value` frames (default 1) go out corrupted.
- ``drop_bytes@5h[=20]``: the next `value` outgoing bytes (default 1) are lost (byte streams;
  sinks without a ``drop_bytes`` method ignore it).
- ``sensor_dropout:<channel>@1d[:2h]``: no readings for the duration (open = until the end).
- ``sensor_drift:<channel>@1d[:2h][=0.05]``: readings drift by `value` channel units per hour
  (default 0.1).
- ``sensor_stuck:<channel>@1d[:2h]``: readings freeze at their last value.
- ``temperature_excursion@36h[:30m][=2]``: the temperature loop is driven `value` Cel off its
  setpoint (default +2) for the duration (default 30 min); raises a process alarm.
- ``pump_occlusion@2d[:10m]``, ``leak@2d``: raise a process alarm (cleared after the duration).

Durations given to a FaultSink are virtual seconds; the sink waits them on the simulator's clock.
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Literal, Protocol

from cellauto.errors import FaultSpecError
from cellauto.sim.clock import Clock
from cellauto.sim.models import Bioreactor

GRAMMAR = "kind[:channel]@[~]time[:duration][=value], e.g. stall@3h:10m"


class FaultKind(StrEnum):
    """What can go wrong."""

    DISCONNECT = "disconnect"
    STALL = "stall"
    CORRUPT = "corrupt"
    DROP_BYTES = "drop_bytes"
    SENSOR_DROPOUT = "sensor_dropout"
    SENSOR_DRIFT = "sensor_drift"
    SENSOR_STUCK = "sensor_stuck"
    TEMPERATURE_EXCURSION = "temperature_excursion"
    PUMP_OCCLUSION = "pump_occlusion"
    LEAK = "leak"


Category = Literal["wire", "sensor", "process"]
WIRE = frozenset({FaultKind.DISCONNECT, FaultKind.STALL, FaultKind.CORRUPT, FaultKind.DROP_BYTES})
SENSOR = frozenset({FaultKind.SENSOR_DROPOUT, FaultKind.SENSOR_DRIFT, FaultKind.SENSOR_STUCK})
PROCESS = frozenset({FaultKind.TEMPERATURE_EXCURSION, FaultKind.PUMP_OCCLUSION, FaultKind.LEAK})

# kind -> (duration: "required" | "optional" | "forbidden", value allowed, default value)
_RULES: dict[FaultKind, tuple[str, bool, float | None]] = {
    FaultKind.DISCONNECT: ("optional", False, None),
    FaultKind.STALL: ("required", False, None),
    FaultKind.CORRUPT: ("forbidden", True, 1.0),
    FaultKind.DROP_BYTES: ("forbidden", True, 1.0),
    FaultKind.SENSOR_DROPOUT: ("optional", False, None),
    FaultKind.SENSOR_DRIFT: ("optional", True, 0.1),
    FaultKind.SENSOR_STUCK: ("optional", False, None),
    FaultKind.TEMPERATURE_EXCURSION: ("optional", True, 2.0),
    FaultKind.PUMP_OCCLUSION: ("optional", False, None),
    FaultKind.LEAK: ("optional", False, None),
}
_DEFAULT_DURATION = {FaultKind.TEMPERATURE_EXCURSION: 1800.0}
_UNITS = {"s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_DURATION_PART = re.compile(rf"({_NUMBER})(min|s|m|h|d)?")
_CHANNEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ITEM = re.compile(
    r"^(?P<kind>[a-z_]+)(?::(?P<target>[^@]*))?@(?P<random>~)?(?P<at>[^:=]*)"
    r"(?::(?P<duration>[^=]*))?(?:=(?P<value>.*))?$"
)


@dataclass(frozen=True, slots=True)
class Fault:
    """One fault: what, on which channel, when (virtual seconds after the run starts), for how
    long, with what magnitude. ``random`` means `at` is the bound of a seeded random time."""

    kind: FaultKind
    at: float
    target: str | None = None
    duration: float | None = None
    value: float | None = None
    random: bool = False

    def __post_init__(self) -> None:
        kind = FaultKind(self.kind)
        object.__setattr__(self, "kind", kind)
        rule, takes_value, _ = _RULES[kind]
        if not self.at >= 0 or self.at == float("inf"):
            raise FaultSpecError(f"{kind}: time must be finite and not negative, not {self.at!r}")
        if kind in SENSOR:
            if not self.target or not _CHANNEL.match(self.target):
                raise FaultSpecError(
                    f"{kind} needs a channel such as {kind}:chamber.ph@1d, got {self.target!r}"
                )
        elif self.target is not None:
            raise FaultSpecError(f"{kind} takes no channel (got {self.target!r})")
        if rule == "required" and self.duration is None:
            raise FaultSpecError(f"{kind} needs a duration, e.g. {kind}@3h:10m")
        if rule == "forbidden" and self.duration is not None:
            raise FaultSpecError(f"{kind} takes no duration; use {kind}@<time>=<frames>")
        if self.duration is not None and not 0 <= self.duration < float("inf"):
            raise FaultSpecError(f"{kind}: duration must be finite and not negative")
        if self.value is not None:
            if not takes_value:
                raise FaultSpecError(f"{kind} takes no =value")
            if self.value != self.value or abs(self.value) == float("inf"):
                raise FaultSpecError(f"{kind}: value must be a finite number")
            if kind is FaultKind.CORRUPT and (self.value < 1 or self.value != int(self.value)):
                raise FaultSpecError("corrupt: the frame count must be a whole number >= 1")
            if kind is FaultKind.DROP_BYTES and (self.value < 1 or self.value != int(self.value)):
                raise FaultSpecError("drop_bytes: the byte count must be a whole number >= 1")

    @property
    def category(self) -> Category:
        """``wire`` (for the wire server), ``sensor`` (readings) or ``process`` (alarms)."""
        return "wire" if self.kind in WIRE else "sensor" if self.kind in SENSOR else "process"

    @property
    def magnitude(self) -> float | None:
        """The value, or the kind's default."""
        return self.value if self.value is not None else _RULES[self.kind][2]

    @property
    def effective_duration(self) -> float | None:
        """The duration, or the kind's default (None: open-ended)."""
        return self.duration if self.duration is not None else _DEFAULT_DURATION.get(self.kind)

    @property
    def end(self) -> float | None:
        """When the fault's window closes (None: never)."""
        d = self.effective_duration
        return None if d is None else self.at + d

    def __str__(self) -> str:
        text = str(self.kind)
        if self.target is not None:
            text += f":{self.target}"
        text += "@" + ("~" if self.random else "") + format_duration(self.at)
        if self.duration is not None:
            text += ":" + format_duration(self.duration)
        if self.value is not None:
            text += "=" + _format_number(self.value)
        return text


def parse_duration(text: str) -> float:
    """``"1d12h"``, ``"10m"``, ``"90"`` (seconds) -> seconds; FaultSpecError if malformed."""
    text = text.strip()
    if not text:
        raise FaultSpecError("empty duration; expected e.g. 90s, 10m, 2h, 1d12h")
    total, pos, parts = 0.0, 0, 0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise FaultSpecError(
                f"bad duration {text!r} at {text[pos:]!r}; expected e.g. 90s, 10m, 2h, 1d12h"
            )
        number, unit = match.groups()
        if unit is None and match.end() != len(text):
            raise FaultSpecError(
                f"bad duration {text!r} at {text[match.end() :]!r}; "
                "expected e.g. 90s, 10m, 2h, 1d12h"
            )
        if unit is None and parts:
            raise FaultSpecError(f"bad duration {text!r}: every part needs a unit, e.g. 1h30m")
        total += float(number) * _UNITS[unit or "s"]
        pos, parts = match.end(), parts + 1
    return total


def format_duration(seconds: float) -> str:
    """Seconds in a short exact spec form: ``"36h"``, ``"90m"``, ``"1d1h1m1s"``, ``"0.5s"``."""
    if seconds != int(seconds) or seconds >= 2**53:
        return f"{_format_number(seconds)}s"
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    rest, parts = whole, []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    if rest or not parts:
        parts.append(f"{rest}s")
    return "".join(parts)


def parse_faults(spec: str) -> list[Fault]:
    """Parse a ``faults=`` spec (see the module docstring) into Faults, in spec order."""
    faults = []
    for n, raw in enumerate(spec.split(","), start=1):
        item = raw.strip()
        if not item:
            if spec.strip():
                raise FaultSpecError(f"fault {n} is empty in {spec!r}; expected {GRAMMAR}")
            continue
        try:
            faults.append(_parse_item(item))
        except FaultSpecError as exc:
            raise FaultSpecError(f"fault {n} {item!r}: {exc}") from None
    return faults


def format_faults(faults: Iterable[Fault]) -> str:
    """The spec text that parses back to `faults`."""
    return ",".join(str(f) for f in faults)


def _parse_item(item: str) -> Fault:
    match = _ITEM.match(item)
    if match is None:
        raise FaultSpecError(f"expected {GRAMMAR}")
    name = match["kind"]
    try:
        kind = FaultKind(name)
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise FaultSpecError(f"unknown kind {name!r}; known: {known}") from None
    value = None
    if match["value"] is not None:
        try:
            value = float(match["value"])
        except ValueError:
            raise FaultSpecError(f"value {match['value']!r} is not a number") from None
    return Fault(
        kind=kind,
        at=parse_duration(match["at"]),
        target=match["target"],
        duration=None if match["duration"] is None else parse_duration(match["duration"]),
        value=value,
        random=match["random"] is not None,
    )


def _format_number(x: float) -> str:
    return repr(float(x)).removesuffix(".0") if x == int(x) and abs(x) < 2**53 else repr(x)


def resolve(faults: Iterable[Fault], seed: int | None) -> list[Fault]:
    """Draw the random times (``@~T``) from `seed`; the result is sorted by time."""
    rng = random.Random(f"cellauto.sim.faults:{seed}")
    fixed = [replace(f, at=rng.uniform(0.0, f.at), random=False) if f.random else f for f in faults]
    return sorted(fixed, key=lambda f: f.at)


class FaultSink(Protocol):
    """What a wire server offers the fault scheduler. Durations are virtual seconds."""

    def disconnect(self, duration: float) -> None:
        """Drop every connection; refuse new ones for `duration`."""

    def stall(self, duration: float) -> None:
        """Stop answering for `duration`."""

    def corrupt(self, frames: int) -> None:
        """Corrupt the next `frames` outgoing frames."""


class SensorFaults:
    """Applies sensor dropout, drift and stuck faults to readings, by time since the run began."""

    def __init__(self, faults: Iterable[Fault]) -> None:
        self.faults = [f for f in faults if f.kind in SENSOR]
        self._last: dict[str, float] = {}
        self._frozen: dict[int, float] = {}

    def apply(self, channel: str, value: float, t: float) -> float | None:
        """`value` of `channel` at time `t` as the faulty sensor reports it; None for no reading."""
        out: float | None = value
        for i, fault in enumerate(self.faults):
            if fault.target != channel or t < fault.at:
                continue
            end = fault.end
            if end is not None and t >= end:
                continue
            if fault.kind is FaultKind.SENSOR_DROPOUT:
                out = None
            elif fault.kind is FaultKind.SENSOR_STUCK:
                out = self._frozen.setdefault(i, self._last.get(channel, value))
            elif out is not None:
                out += (fault.magnitude or 0.0) * (t - fault.at) / 3600.0
        self._last[channel] = value
        return out


Phase = Literal["start", "end"]
FaultListener = Callable[[Fault, Phase], Awaitable[None] | None]


class FaultScheduler:
    """Fires faults at their virtual times on `clock`, counted from the scheduler's creation.

    Wire faults go to `sink`; process faults raise `on_alarm(code, fault)` at their start and
    `on_clear(code, fault)` at their end (codes from `alarm_codes`, default the kind's name); a
    temperature excursion also drives `model`'s temperature loop off setpoint. Every start and
    end is also given to `on_fault`. Sensor faults apply through `apply()`.
    """

    def __init__(
        self,
        faults: Sequence[Fault],
        clock: Clock,
        *,
        seed: int | None = 0,
        sink: FaultSink | None = None,
        model: Bioreactor | None = None,
        alarm_codes: Mapping[str, str] | None = None,
        on_alarm: Callable[[str, Fault], None] | None = None,
        on_clear: Callable[[str, Fault], None] | None = None,
        on_fault: FaultListener | None = None,
    ) -> None:
        self.faults = resolve(faults, seed)
        self.clock = clock
        self.sink = sink
        self.model = model
        self.alarm_codes = dict(alarm_codes or {})
        self.on_alarm = on_alarm
        self.on_clear = on_clear
        self.on_fault = on_fault
        self.origin = clock.monotonic()
        self.sensors = SensorFaults(self.faults)
        self.fired: list[tuple[float, Fault, Phase]] = []

    def elapsed(self) -> float:
        """Virtual seconds since the scheduler's origin."""
        return self.clock.monotonic() - self.origin

    def apply(self, channel: str, value: float) -> float | None:
        """A reading of `channel` as the faulty sensors report it now (None: dropped out)."""
        return self.sensors.apply(channel, value, self.elapsed())

    async def run(self) -> None:
        """Fire every fault's start and end at its time; returns after the last one."""
        events: list[tuple[float, int, Fault, Phase]] = []
        for n, fault in enumerate(self.faults):
            events.append((fault.at, 2 * n, fault, "start"))
            end = fault.end
            if end is not None and fault.kind not in WIRE:
                events.append((end, 2 * n + 1, fault, "end"))
        for at, _, fault, phase in sorted(events, key=lambda e: (e[0], e[1])):
            await self.clock.sleep_until(self.origin + at)
            await self._fire(fault, phase)

    async def _fire(self, fault: Fault, phase: Phase) -> None:
        self.fired.append((self.elapsed(), fault, phase))
        if phase == "start":
            self._start(fault)
        elif fault.category == "process" and self.on_clear is not None:
            self.on_clear(self.alarm_codes.get(fault.kind, fault.kind.value), fault)
        if self.on_fault is not None:
            result = self.on_fault(fault, phase)
            if result is not None:
                await result

    def _start(self, fault: Fault) -> None:
        kind = fault.kind
        if kind in WIRE:
            if self.sink is None:
                return
            if kind is FaultKind.DISCONNECT:
                self.sink.disconnect(fault.duration or 0.0)
            elif kind is FaultKind.STALL:
                self.sink.stall(fault.duration or 0.0)
            elif kind is FaultKind.DROP_BYTES:
                drop = getattr(self.sink, "drop_bytes", None)
                if drop is not None:
                    drop(int(fault.magnitude or 1))
            else:
                self.sink.corrupt(int(fault.magnitude or 1))
            return
        if kind not in PROCESS:
            return
        if kind is FaultKind.TEMPERATURE_EXCURSION and self.model is not None:
            loop = self.model.loops.get("temperature")
            if loop is not None:
                loop.force(loop.setpoint + (fault.magnitude or 0.0), fault.effective_duration or 0)
        if self.on_alarm is not None:
            self.on_alarm(self.alarm_codes.get(kind, kind.value), fault)
