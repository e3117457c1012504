"""The SiLA 2 face of the gateway: every connected device as its own SiLA 2 server (ADR 0018:
one server per device, so SiLAService describes one instrument and LockController locks one
device), on consecutive ports from `port`."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from cellauto.driver import Device
from cellauto.sila.server import DeviceSilaServer

_log = logging.getLogger("cellauto.gateway")


class SilaGateway:
    """Started SiLA servers, one per device; ``async with`` starts and stops them."""

    def __init__(self, servers: list[DeviceSilaServer], host: str, port: int) -> None:
        self.servers = servers
        self.host = host
        self.port = port

    async def start(self) -> None:
        for n, server in enumerate(self.servers):
            await server.start(self.host, self.port + n if self.port else 0)

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop()

    async def __aenter__(self) -> SilaGateway:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


def serve_sila(
    devices: Sequence[Device],
    *,
    state: Path = Path("gateway"),
    host: str = "127.0.0.1",
    port: int = 50052,
    insecure: bool = False,
    discovery: bool = False,
) -> SilaGateway:
    """A SiLA 2 server for each connected device (TLS with a self-signed certificate made on
    first start and kept in `state`/sila, unless `insecure`; mDNS announcement if `discovery`);
    start it with ``async with``. Port 0 picks free ports."""
    if insecure:
        _log.warning("SiLA gateway without TLS: anyone on the network can read and command")
    servers = [
        DeviceSilaServer(
            device,
            name=f"cellauto {device.device_id}",
            insecure=insecure,
            cert_dir=state / "sila",
            discovery=discovery,
        )
        for device in devices
    ]
    return SilaGateway(servers, host, port)
