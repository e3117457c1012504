"""Simulated Miltenyi CliniMACS Prodigy serving cellauto's Prodigy serial protocol
(schemas/protocols/prodigy.md) on a TCP loopback port or a pseudo-terminal, behind a `SimHandle`.

Options (``prodigy+sim://?...`` or ``cellauto sim prodigy``) are the common simulator set
(`cellauto.sim.options`): ``speed``, ``seed``, ``port``, ``pty=1`` (serve a pty instead of TCP),
``faults`` (the fault grammar: ``disconnect@2h:10m`` pulls the cable, ``stall``, ``corrupt``,
``drop_bytes``, ``temperature_excursion``, ``pump_occlusion``, ``leak``, sensor faults; and any
profile alarm code as a kind: ``door_open@2h:10m``).
"""

from __future__ import annotations

import logging
from typing import ClassVar

from cellauto.sim import Bioreactor
from cellauto.sim.handle import SimHandle
from cellauto.sim.servers.stream import PtyServer, TcpServer

from .server import SimulatedProdigy

__all__ = ["ProdigySimulator", "SimulatedProdigy", "start_simulator"]

logger = logging.getLogger("cellauto_simulators.prodigy")


class ProdigySimulator(SimHandle):
    """A running Prodigy simulator: `device` is the model, `server` the wire server; tests may
    also `nak_next`."""

    kind: ClassVar[str] = "prodigy"
    pty_capable: ClassVar[bool] = True
    process_alarms: ClassVar[dict[str, str]] = {
        "temperature_excursion": "temperature_deviation",
        "pump_occlusion": "pressure_high",
        "leak": "air_detected",
    }

    device: SimulatedProdigy
    server: TcpServer | PtyServer

    async def _start(self) -> None:
        self.device = SimulatedProdigy(
            self.profile, self.clock, seed=self.options.seed, truth=self.truth
        )
        self.device.faults_apply = self.sensor
        self.server = (
            PtyServer(self.device.serve)
            if self.options.pty
            else TcpServer(self.device.serve, port=self.options.port)
        )
        await self.server.start()
        if isinstance(self.server, TcpServer):
            self.url = f"prodigy+tcp://{self.server.host}:{self.server.port}"
        else:
            self.url = f"prodigy+serial://{self.server.url}"
        self.device.start()
        self.spawn(self.device.sample_loop())

    def nak_next(self, code: str, count: int = 1) -> None:
        """Answer the next `count` requests with NAK `code` (E01: as if unreadable)."""
        self.device.naks.extend([code] * count)

    async def _disconnect(self, duration: float) -> None:
        await self.server.unplug()
        try:
            await self.clock.sleep(duration)
        finally:
            await self.server.plug()

    def _corrupt(self, frames: int) -> None:
        self.server.corrupt(frames)

    def _drop_bytes(self, count: int) -> None:
        self.server.drop_bytes(count)

    def _model(self) -> Bioreactor:
        return self.device.process.reactor


start_simulator = ProdigySimulator.launch
"""``start_simulator(profile, options, *, clock=None)``: start a Prodigy simulator (see the module
doc for `options`); `clock` shares time with other simulators (a batch passes one)."""
