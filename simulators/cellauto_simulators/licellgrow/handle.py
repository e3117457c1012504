"""The LiCellGrow simulator's handle: the engine device behind cellauto's SiLA 2 server, with
TLS (a self-signed certificate made on first start and kept; plain only with ``insecure=1``) and
mDNS announcement (``discovery=1``)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from cellauto.errors import SimOptionError, SimulationError
from cellauto.schema import DeviceProfile
from cellauto.sila import DeviceSilaServer
from cellauto.sim import Clock, SimHandle
from cellauto_simulators.licellgrow.engine import SimulatedLiCellGrow

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

    async def _start(self) -> None:
        extra = self.options.extra
        for name in ("insecure", "discovery"):
            if extra.get(name, "0") not in ("0", "1"):
                raise SimOptionError("licellgrow", name, "must be 0 or 1")
        insecure = extra.get("insecure", "0") == "1"
        self.device = SimulatedLiCellGrow(self.profile, self.clock, self.truth, self.options.seed)
        await self.device.connect()
        self.server = DeviceSilaServer(
            self.device,
            name="LiCellGrow simulator",
            insecure=insecure,
            cert_dir=CERT_DIR,
            discovery=extra.get("discovery", "0") == "1",
            on_client=self.device.first_client,
        )
        await self.server.start(port=self.options.port or 0)
        self.url = f"licellgrow+sila://{self.server.address}"
        if insecure:
            self.url += "?insecure=1"
        else:
            ca = CERT_DIR / f"{self.server.server_uuid}.pem"
            self.url += f"?ca={ca}"

    async def _stop(self) -> None:
        if hasattr(self, "server"):
            await self.server.stop()
        if hasattr(self, "device"):
            await self.device.close()

    async def _disconnect(self, duration: float) -> None:
        raise SimulationError("the LiCellGrow simulator cannot drop SiLA connections")


async def start_simulator(
    profile: DeviceProfile, options: Mapping[str, str], *, clock: Clock | None = None
) -> LiCellGrowSimulator:
    """Start the simulator on a loopback port (the common options; default speed max)."""
    return await LiCellGrowSimulator.launch(profile, options, clock=clock, default_speed="max")
