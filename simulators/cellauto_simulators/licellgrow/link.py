"""The simulator's link: a loopback TCP relay in front of its SiLA 2 server, so the kit's link
faults can drop every client connection (and refuse new ones) while the server and its
observable commands run on. Bytes pass through untouched (TLS ends at the server)."""

from __future__ import annotations

import asyncio
import contextlib

from cellauto.sim.servers.stream import ServerConnection, TcpServer


def sila_link(host: str, port: int) -> TcpServer:
    """A TCP server on a free loopback port relaying each connection to `host`:`port`
    (`unplug()` / `plug()` pull and restore the cable)."""

    async def relay(client: ServerConnection) -> None:
        reader, writer = await asyncio.open_connection(host, port)

        async def upstream() -> None:
            while data := await client.read():
                writer.write(data)
                await writer.drain()
            writer.close()

        sending = asyncio.create_task(upstream(), name="sila link upstream")
        try:
            while data := await reader.read(65536):
                await client.write(data)
        finally:
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await sending
            writer.close()

    return TcpServer(relay)
