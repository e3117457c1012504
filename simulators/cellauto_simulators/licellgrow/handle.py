"""The LiCellGrow simulator's handle: the engine device behind cellauto's SiLA 2 server, with
TLS (a self-signed certificate made on first start and kept; plain only with ``insecure=1``),
mDNS announcement (``discovery=1``) and link faults (``disconnect``) on a relay in front of the
server."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from cellauto.errors import SimOptionError, SimulationError
from cellauto.schema import DeviceProfile
from cellauto.sila import DeviceSilaServer
from cellauto.sim import Clock, SimHandle
from cellauto.sim.servers.stream import TcpServer
from cellauto_simulators.licellgrow.engine import SimulatedLiCellGrow
from cellauto_simulators.licellgrow.link import sila_link

CERT_DIR = Path(tempfile.gettempdir()) / "cellauto-sila-certs"
"""Where the simulator keeps its self-signed certificate between starts."""


class LiCellGrowSimulator(SimHandle):
    """A started LiCellGrow simulator; `url` is ``licellgrow+sila://127.0.0.1:<port>?ca=...``."""

    kind: ClassVar[str] = "licellgrow"
    extra_options: ClassVar[Mapping[str, str]] = {
        "insecure": "1: serve plain gRPC without TLS",
        "discovery": "1: announce the server by mDNS (_sila._tcp)",
    }

    device: SimulatedLiCellGrow
    server: DeviceSilaServer
    link: TcpServer
    """Where clients connect: relays to `server` (the link faults act here)."""

    async def _start(self) -> None:
        extra = self.options.extra
        for name in ("insecure", "discovery"):
            if extra.get(name, "0") not in ("0", "1"):
                raise SimOptionError("licellgrow", name, "must be 0 or 1")
        insecure = extra.get("insecure", "0") == "1"
        discovery = extra.get("discovery", "0") == "1"
        self.device = SimulatedLiCellGrow(self.profile, self.clock, self.truth, self.options.seed)
        await self.device.connect()
        self.server = DeviceSilaServer(
            self.device,
            name="LiCellGrow simulator",
            insecure=insecure,
            cert_dir=CERT_DIR,
            discovery=discovery,
            on_client=self.device.first_client,
            simulated=True,
        )
        if discovery:  # mDNS announces the server's own port: clients connect there
            await self.server.start(port=self.options.port or 0)
            self.url = f"licellgrow+sila://{self.server.address}"
        else:
            await self.server.start()
            self.link = sila_link(self.server.host, self.server.port)
            self.link.port = self.options.port or 0
            await self.link.start()
            self.url = f"licellgrow+sila://{self.link.host}:{self.link.port}"
        if insecure:
            self.url += "?insecure=1"
        else:
            ca = CERT_DIR / f"{self.server.server_uuid}.pem"
            self.url += f"?ca={ca}"

    async def _stop(self) -> None:
        if hasattr(self, "link"):
            await self.link.close()
        if hasattr(self, "server"):
            await self.server.stop()
        if hasattr(self, "device"):
            await self.device.close()

    async def _disconnect(self, duration: float) -> None:
        """Pull the cable for `duration` virtual s, between prompts: every client connection
        drops and new ones are refused, while the server and its runs go on."""
        if not hasattr(self, "link"):
            raise SimulationError("licellgrow simulator: no link faults with discovery=1")
        await self._outage_between_prompts(self.device, duration, self.link.unplug, self.link.plug)


async def start_simulator(
    profile: DeviceProfile, options: Mapping[str, str], *, clock: Clock | None = None
) -> LiCellGrowSimulator:
    """Start the simulator on a loopback port (the common options; default speed max)."""
    return await LiCellGrowSimulator.launch(profile, options, clock=clock, default_speed="max")
