"""A thin stand-in for `cellauto.sim.start_simulator` and its `SimHandle` (the contract in
docs/adding-a-device.md), over today's simulators, until the simulator side ships the real one.

It records ground truth by wrapping the simulated device's own publication points: what it
logged as events, what it published per channel, and when its link was down. Delete this module
once `cellauto.sim.start_simulator` exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cellauto.profiles import load_profile
from cellauto.registry import load_simulator
from cellauto.schema import DeviceProfile
from cellauto.sim import Clock


@dataclass(frozen=True)
class TruthEvent:
    seq: int
    time: datetime
    kind: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class TruthSample:
    time: datetime
    value: float | str | bool
    seq: int


@dataclass
class GroundTruth:
    """What the simulated device really did."""

    events: list[TruthEvent] = field(default_factory=list)
    samples: dict[str, list[TruthSample]] = field(default_factory=dict)
    outages: list[tuple[datetime, datetime | None]] = field(default_factory=list)

    def published(
        self, channel: str, start: datetime | None = None, end: datetime | None = None
    ) -> list[TruthSample]:
        return [
            s
            for s in self.samples.get(channel, [])
            if (start is None or s.time >= start) and (end is None or s.time <= end)
        ]

    def add_sample(self, channel: str, time: datetime, value: float | str | bool) -> None:
        got = self.samples.setdefault(channel, [])
        got.append(TruthSample(time, value, len(got)))


class ShimHandle:
    """url, time, stop(), raise_alarm(), clear_alarm() and truth, as the contract has them."""

    def __init__(self, kind: str, running: Any, truth: GroundTruth) -> None:
        self.kind = kind
        self.running = running
        self.url: str = running.url
        self.time: Clock = running.time
        self.clock: Clock = running.time
        self.truth = truth

    async def stop(self) -> None:
        await self.running.stop()

    def raise_alarm(self, code: str, duration: float | None = None) -> str:
        if self.kind == "cocoon":
            self.running.device.inject(code, duration)
            return ""
        return str(self.running.raise_alarm(code, duration))

    def clear_alarm(self, code: str) -> None:
        if self.kind == "cocoon":
            self.running.device.release(code)
        else:
            self.running.clear_alarm(code)


async def start_simulator(
    kind: str,
    *,
    profile: DeviceProfile | None = None,
    speed: str = "max",
    seed: int = 0,
    faults: str | None = None,
) -> ShimHandle:
    """Start `kind`'s simulator through the registry and record its ground truth."""
    profile = profile or load_profile(kind)
    options = {"speed": speed, "seed": str(seed)} | ({"faults": faults} if faults else {})
    truth = GroundTruth()
    if kind == "cocoon":
        running = await _cocoon(profile, options, truth)
    elif kind == "prodigy":
        running = await _prodigy(profile, options, truth)
    else:  # a device that ships its own SimHandle needs no shim
        raise NotImplementedError(f"no ground-truth shim for {kind}")
    return ShimHandle(kind, running, truth)


async def _cocoon(profile: DeviceProfile, options: dict[str, str], truth: GroundTruth) -> Any:
    from cellauto_adapters.cocoon.nodes import STATES
    from cellauto_simulators.cocoon import device as cocoon_device

    started: list[Any] = []
    original_start = cocoon_device.CocoonDevice.start

    async def start(self: Any) -> None:
        started.append(self)
        _instrument_cocoon(self, truth, STATES)
        await original_start(self)

    cocoon_device.CocoonDevice.start = start  # type: ignore[method-assign]
    try:
        running = await load_simulator("cocoon")(profile, options)
    finally:
        cocoon_device.CocoonDevice.start = original_start  # type: ignore[method-assign]
    return running


def _instrument_cocoon(device: Any, truth: GroundTruth, states: Mapping[str, Any]) -> None:
    from cellauto_simulators.cocoon.address_space import channel_path

    event = device._event
    server = device.server

    def logged(kind: str, message: str, **fields: Any) -> int:
        seq = int(event(kind, message, **fields))
        data: dict[str, Any] = {}
        if kind == "state":
            data = {"state": str(states[fields["State"]])}
        elif kind == "alarm":
            data = {"code": fields["Code"], "status": fields["Status"]}
        truth.events.append(TruthEvent(seq, device.clock.now(), kind, data))
        return seq

    device._event = logged
    set_value = server.set
    paths: dict[str, str] = {}

    async def published(path: str, value: Any, time: datetime, **kw: Any) -> None:
        if not paths:
            paths.update({channel_path(device._ns, c): c for c in device.channels})
        await set_value(path, value, time, **kw)
        channel = paths.get(path)
        if channel is not None:
            truth.add_sample(channel, time, value)

    server.set = published
    restart = server.restart

    async def outage(duration: float, **kw: Any) -> None:
        start = device.clock.now()
        truth.outages.append((start, start + timedelta(seconds=duration)))
        await restart(duration, **kw)

    server.restart = outage


async def _prodigy(profile: DeviceProfile, options: dict[str, str], truth: GroundTruth) -> Any:
    from cellauto_adapters.prodigy.states import VENDOR_STATES

    running = await load_simulator("prodigy")(profile, options)
    device = running.device
    emit = device.emit

    def logged(verb: str, fields: dict[str, str], channel: str | None = None) -> int:
        seq = int(emit(verb, fields, channel))
        now = device.clock.now()
        if verb == "SAMPLE":
            spec = device.channels[fields["ch"]]
            value: float | str | bool = (
                float(fields["v"])
                if "v" in fields
                else (fields["x"] == "true" if spec.dtype == "bool" else fields["x"])
            )
            truth.add_sample(fields["ch"], now, value)
        data: dict[str, Any] = {}
        if verb == "STATE":
            data = {"state": str(VENDOR_STATES[fields["state"]])}
        elif verb == "ALARM":
            status = {"acked": "acknowledged"}.get(fields["st"], fields["st"])
            data = {"code": fields["code"], "status": status}
        truth.events.append(TruthEvent(seq, now, verb.lower(), data))
        return seq

    device.emit = logged
    disconnect = running.disconnect

    def outage(duration: float) -> None:
        start = device.clock.now()
        truth.outages.append((start, start + timedelta(seconds=duration)))
        disconnect(duration)

    running.disconnect = outage
    return running
