"""The SiLA 2 face of the gateway: every connected device as its own SiLA 2 server (ADR 0018:
one server per device, so SiLAService describes one instrument and LockController locks one
device), on consecutive ports from `port`. Every command a client sends becomes an `AuditCall`
(ADR 0025), by default an audit entry in each open batch holding the device."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from cellauto.driver import Device
from cellauto.gateway.audit import AuditCall, AuditSink, BatchAudit
from cellauto.sila.server import PLACEHOLDER_VENDOR_URL, CommandCall, DeviceSilaServer

_log = logging.getLogger("cellauto.gateway")


class SilaGateway:
    """Started SiLA servers, one per device; ``async with`` starts and stops them."""

    def __init__(
        self,
        servers: list[DeviceSilaServer],
        host: str,
        port: int,
        state: Path,
        batch_audit: BatchAudit | None = None,
    ) -> None:
        self.servers = servers
        self.host = host
        self.port = port
        self.state = state
        """The gateway's folder: ``<state>/sila/<server uuid>.pem`` is what clients trust."""
        self._batch_audit = batch_audit

    async def start(self) -> None:
        for n, server in enumerate(self.servers):
            await server.start(self.host, self.port + n if self.port else 0)

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop()
        if self._batch_audit is not None:
            self._batch_audit.close()

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
    audit: AuditSink | None = None,
    vendor_url: str | None = None,
) -> SilaGateway:
    """A SiLA 2 server for each connected device (TLS with a self-signed certificate made on
    first start and kept in `state`/sila, unless `insecure`; mDNS announcement if `discovery`);
    start it with ``async with``. Port 0 picks free ports. Every client command goes to `audit`
    (default: the record of each open batch holding the device); `vendor_url` is SiLAService's
    ServerVendorURL (default: a placeholder, the project names no home page)."""
    if insecure:
        _log.warning("SiLA gateway without TLS: anyone on the network can read and command")
    batch_audit = BatchAudit() if audit is None else None
    sink: AuditSink = audit or batch_audit  # type: ignore[assignment]
    servers = [
        DeviceSilaServer(
            device,
            name=f"cellauto {device.device_id}",
            insecure=insecure,
            cert_dir=state / "sila",
            discovery=discovery,
            on_command=_auditor(sink, device),
            vendor_url=vendor_url or PLACEHOLDER_VENDOR_URL,
        )
        for device in devices
    ]
    return SilaGateway(servers, host, port, state, batch_audit)


def _auditor(sink: AuditSink, device: Device) -> Callable[[CommandCall], None]:
    def audit(call: CommandCall) -> None:
        sink(
            AuditCall(
                "client",
                f"gateway.{call.command}",
                device,
                dict(call.arguments),
                call.outcome,
                protocol="sila",
            )
        )

    return audit
