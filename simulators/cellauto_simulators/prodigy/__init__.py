"""Simulated Miltenyi CliniMACS Prodigy serving cellauto's Prodigy serial protocol
(schemas/protocols/prodigy.md) on a pseudo-terminal or a TCP loopback port.

Options (from ``prodigy+sim://?...`` or ``cellauto sim prodigy``): ``speed`` (``max`` or a
factor, default 1), ``seed`` (0), ``faults`` (the engine's fault grammar: ``disconnect@2h:10m``
pulls the cable, ``stall``, ``corrupt``, ``drop_bytes``, ``temperature_excursion``,
``pump_occlusion``, ``leak``, sensor faults), ``alarms`` (``door_open@2h:10m,bag_empty@1d``:
any profile alarm at a time, cleared after the duration), ``pty=1`` (serve a pty instead of
TCP), ``port`` (TCP port, default free).
"""

from __future__ import annotations

import asyncio
import logging

from cellauto.errors import FaultSpecError
from cellauto.schema import DeviceProfile
from cellauto.sim import Clock, FaultScheduler, make_clock, parse_duration, parse_faults
from cellauto.sim.servers.stream import PtyServer, StreamServer, TcpServer

from .device import SimulatedProdigy

__all__ = ["ProdigySimulator", "SimulatedProdigy", "start_simulator"]

logger = logging.getLogger("cellauto_simulators.prodigy")

ALARM_CODES = {
    "temperature_excursion": "temperature_deviation",
    "pump_occlusion": "pressure_high",
    "leak": "air_detected",
}
"""Process faults of the engine's grammar -> the profile alarm they raise."""


class ProdigySimulator:
    """A running simulator: `url` to connect to, `time` its clock, `device` the model, and
    fault hooks for tests (`raise_alarm`, `clear_alarm`, `nak_next`, `server`)."""

    def __init__(
        self, profile: DeviceProfile, options: dict[str, str], clock: Clock | None = None
    ) -> None:
        self.options = dict(options)
        self.seed = int(options.get("seed", "0"))
        self.time: Clock = clock or make_clock(options.get("speed", "1"))
        self.device = SimulatedProdigy(profile, self.time, seed=self.seed)
        self.pty = options.get("pty", "0") not in ("0", "", "false", "no")
        self.server: StreamServer = (
            PtyServer(self.device.serve)
            if self.pty
            else TcpServer(self.device.serve, port=int(options.get("port", "0")))
        )
        self.faults = parse_faults(options.get("faults", ""))
        self.alarm_plan = parse_alarms(options.get("alarms", ""), profile)
        self.url = ""
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.server.start()
        if isinstance(self.server, TcpServer):
            self.url = f"prodigy+tcp://{self.server.host}:{self.server.port}"
        else:
            self.url = f"prodigy+serial://{self.server.url}"
        scheduler = FaultScheduler(
            self.faults,
            self.time,
            seed=self.seed,
            sink=self,
            model=self.device.process.reactor,
            alarm_codes=ALARM_CODES,
            on_alarm=lambda code, fault: self._fault_alarm(code),
            on_clear=lambda code, fault: self.clear_alarm(code),
        )
        self.device.faults_apply = scheduler.apply
        self._spawn(self.device.sample_loop())
        if self.faults:
            self._spawn(scheduler.run())
        for code, at, duration in self.alarm_plan:
            self._spawn(self._planned_alarm(code, at, duration))

    async def stop(self) -> None:
        """Stop serving; cancels the run and every timer."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self.device.close()
        await self.server.close()

    # --- test and fault hooks -----------------------------------------------------------------

    def raise_alarm(self, code: str, duration: float | None = None) -> str:
        """Raise a profile alarm now; it clears after `duration` virtual s (None: stays)."""
        alarm_id = self.device.raise_alarm(code)
        if duration is not None:
            self._spawn(self._later(duration, lambda: self.clear_alarm(code)))
        return alarm_id

    def _fault_alarm(self, code: str) -> None:
        self.device.raise_alarm(code)

    def clear_alarm(self, code: str) -> None:
        """Clear an active alarm (its condition is gone)."""
        self.device.clear_alarm(code)

    def nak_next(self, code: str, count: int = 1) -> None:
        """Answer the next `count` requests with NAK `code` (E01: as if unreadable)."""
        self.device.naks.extend([code] * count)

    # --- FaultSink ----------------------------------------------------------------------------

    def disconnect(self, duration: float) -> None:
        """Pull the cable for `duration` virtual seconds."""
        self._spawn(self._unplug(duration))

    def stall(self, duration: float) -> None:
        """Stop answering for `duration` virtual seconds."""
        self.server.stall()
        self._spawn(self._later(duration, self.server.resume))

    def corrupt(self, frames: int) -> None:
        self.server.corrupt(frames)

    def drop_bytes(self, count: int) -> None:
        self.server.drop_bytes(count)

    async def _unplug(self, duration: float) -> None:
        server = self.server
        assert isinstance(server, TcpServer | PtyServer)
        await server.unplug()
        await self.time.sleep(duration)
        await server.plug()

    async def _later(self, seconds: float, action: object) -> None:
        await self.time.sleep(seconds)
        if callable(action):
            action()

    async def _planned_alarm(self, code: str, at: float, duration: float | None) -> None:
        await self.time.sleep(at)
        self.raise_alarm(code, duration)

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._tasks.append(task)
        task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("simulator task failed", exc_info=task.exception())


def parse_alarms(spec: str, profile: DeviceProfile) -> list[tuple[str, float, float | None]]:
    """``door_open@2h:10m,bag_empty@1d`` -> (code, at, duration) per item."""
    codes = {a.code for a in profile.alarms}
    plan: list[tuple[str, float, float | None]] = []
    for item in filter(None, (i.strip() for i in spec.split(","))):
        code, at_sign, when = item.partition("@")
        if not at_sign or code not in codes:
            raise FaultSpecError(
                f"alarm {item!r}: expected <code>@<time>[:<duration>] with a code of "
                f"{', '.join(sorted(codes))}"
            )
        at, _, duration = when.partition(":")
        plan.append((code, parse_duration(at), parse_duration(duration) if duration else None))
    return plan


async def start_simulator(
    profile: DeviceProfile, options: dict[str, str], *, clock: Clock | None = None
) -> ProdigySimulator:
    """Start a Prodigy simulator; see the module docstring for `options`. `clock` shares time
    with other simulators (a batch passes one); by default it has its own."""
    simulator = ProdigySimulator(profile, options, clock)
    await simulator.start()
    return simulator
