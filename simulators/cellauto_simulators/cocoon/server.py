"""`start_simulator`: a simulated Cocoon on a loopback OPC UA endpoint, with its faults.

Options (from ``cocoon+sim://?speed=max&seed=7&faults=...``):

- ``speed``: ``max`` (discrete-event), or a factor of real time (default 1).
- ``seed``: the random seed of sensor noise and random fault times (default 0).
- ``faults``: the engine's fault grammar (`cellauto.sim.faults`), and any profile alarm code as
  a kind, ``<code>@<time>[:<duration>]``, which makes that alarm's condition true for the
  duration (``power_loss@3h:10m``). ``corrupt`` has no meaning on OPC UA and is ignored.
- ``port``: the TCP port (default: a free one).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from cellauto.errors import FaultSpecError
from cellauto.schema import DeviceProfile
from cellauto.sim import (
    Clock,
    Fault,
    FaultKind,
    FaultScheduler,
    make_clock,
    parse_duration,
    parse_faults,
)

from .device import CocoonDevice

_log = logging.getLogger("cellauto_simulators.cocoon")


@dataclass(frozen=True)
class AlarmInjection:
    """A profile alarm whose condition is made true at `at` for `duration` virtual s."""

    code: str
    at: float
    duration: float | None = None


@dataclass
class CocoonSimulator:
    """A running simulator: where to connect, its clock, and the device behind it."""

    url: str
    time: Clock
    device: CocoonDevice

    async def stop(self) -> None:
        """Stop the device and its server."""
        await self.device.stop()


class _Wire:
    """The fault scheduler's wire faults, on the device's OPC UA server."""

    def __init__(self, device: CocoonDevice) -> None:
        self.device = device

    def disconnect(self, duration: float) -> None:
        server, clock = self.device.server, self.device.clock
        self.device.spawn(server.restart(duration, sleep=clock.sleep), "disconnect")

    def stall(self, duration: float) -> None:
        self.device.server.stall()
        self.device.spawn(self._resume_after(duration), "stall")

    def corrupt(self, frames: int) -> None:
        _log.warning("corrupt: OPC UA frames are not corrupted by this simulator; ignored")

    async def _resume_after(self, duration: float) -> None:
        await self.device.clock.sleep(duration)
        self.device.server.resume()


def split_faults(spec: str, alarm_codes: set[str]) -> tuple[list[Fault], list[AlarmInjection]]:
    """The engine's faults and the alarm injections of a ``faults=`` spec."""
    engine, alarms = [], []
    for raw in spec.split(","):
        item = raw.strip()
        kind = item.split("@")[0].split(":")[0]
        if item and kind in alarm_codes and kind not in set(FaultKind):
            _, _, when = item.partition("@")
            at, _, duration = when.partition(":")
            if not at:
                raise FaultSpecError(f"{item!r}: expected {kind}@<time>[:<duration>]")
            alarms.append(
                AlarmInjection(
                    kind, parse_duration(at), parse_duration(duration) if duration else None
                )
            )
        elif item:
            engine.append(item)
    return parse_faults(",".join(engine)), alarms


async def start_simulator(
    profile: DeviceProfile, options: Mapping[str, str], *, clock: Clock | None = None
) -> CocoonSimulator:
    """Start a simulated Cocoon (see the module doc for `options`); `clock` shares time with
    other simulators (a batch passes one), by default it has its own."""
    clock = clock or make_clock(options.get("speed", "1"))
    seed = int(options.get("seed", "0"))
    faults, injections = split_faults(options.get("faults", ""), {a.code for a in profile.alarms})
    port = int(options.get("port", "0"))
    device = CocoonDevice(profile, clock, seed=seed, serial=f"SIM{seed:04d}", port=port)
    await device.start()
    scheduler = FaultScheduler(
        faults,
        clock,
        seed=seed,
        sink=_Wire(device),
        model=device.reactor,
        on_alarm=lambda code, _fault: _inject(device, code),
        on_clear=lambda code, _fault: device.release(code),
    )
    device.sensor_filter = scheduler.apply
    device.spawn(scheduler.run(), "faults")
    for injection in injections:
        device.spawn(_inject_at(device, injection), f"inject {injection.code}")
    return CocoonSimulator(f"cocoon+opcua://127.0.0.1:{device.server.port}", clock, device)


def _inject(device: CocoonDevice, code: str) -> None:
    if code in ("leak", "pump_occlusion"):  # a temperature excursion acts on the model itself
        device.inject(code)


async def _inject_at(device: CocoonDevice, injection: AlarmInjection) -> None:
    await device.clock.sleep(injection.at)
    device.inject(injection.code, injection.duration)
