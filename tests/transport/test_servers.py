"""Wire servers' fault hooks, seen from a StreamTransport: corrupted frames, lost bytes,
a pulled cable on a pty, and a restarted session."""

from __future__ import annotations

import asyncio

import pytest

from cellauto.errors import FramingError
from cellauto.sim.servers.stream import ServerConnection, frame_handler, serve_pty, serve_tcp
from cellauto.transport import (
    Backoff,
    Heartbeat,
    SerialConnector,
    StreamTransport,
    StxEtxFramer,
    TcpConnector,
)


async def echo(payload: bytes) -> bytes:
    return payload


async def test_corrupted_frame_is_a_typed_error_and_the_next_one_is_fine() -> None:
    async with await serve_tcp(frame_handler(StxEtxFramer, echo)) as server:
        connector = TcpConnector("127.0.0.1", server.port)
        async with StreamTransport(connector, StxEtxFramer(), device="dev-1") as transport:
            server.corrupt(1)
            with pytest.raises(FramingError, match=r"dev-1: read_temp: sum8-hex checksum") as err:
                await transport.request(b"TEMP?", timeout=1, operation="read_temp")
            assert err.value.raw.startswith(b"\x02")
            assert await transport.request(b"TEMP?", timeout=1) == b"TEMP?"
            assert transport.framing_errors == 1


async def test_lost_bytes_leave_a_half_frame_that_is_reported_not_waited_for() -> None:
    async with await serve_tcp(frame_handler(StxEtxFramer, echo)) as server:
        connector = TcpConnector("127.0.0.1", server.port)
        transport = StreamTransport(connector, StxEtxFramer(), device="dev-1", frame_gap=0.05)
        async with transport:
            server.drop_bytes(1)  # the reply's STX: the rest is garbage until the gap
            with pytest.raises(FramingError, match="garbage between frames"):
                await transport.request(b"X", timeout=1)
            assert await transport.request(b"Y", timeout=1) == b"Y"


async def test_pty_unplug_is_detected_by_silence_and_survived() -> None:
    async with await serve_pty(frame_handler(StxEtxFramer, echo)) as server:
        transport: StreamTransport

        async def ping() -> None:
            await transport.request(b"ping", timeout=0.1, operation="heartbeat")

        transport = StreamTransport(
            SerialConnector(server.url),
            StxEtxFramer(),
            device="dev-1",
            reconnect=Backoff(0.02, 0.05, seed=3),
            heartbeat=Heartbeat(interval=0.05, probe=ping),
        )
        async with transport:
            events = transport.events()
            await server.unplug()
            async with asyncio.timeout(2):
                async for event in events:
                    if event.state == "disconnected":
                        break
            await server.plug()
            async with asyncio.timeout(2):
                async for event in events:
                    if event.state == "connected":
                        break
            assert await transport.request(b"back", timeout=1) == b"back"


async def test_raw_handler_and_session_restart() -> None:
    sessions = 0

    async def greeter(conn: ServerConnection) -> None:
        nonlocal sessions
        sessions += 1
        await conn.write(b"\x02HELLO %d\x03" % sessions + b"00")
        while await conn.read():
            pass

    async with await serve_pty(greeter) as server:
        framer = StxEtxFramer()
        async with StreamTransport(SerialConnector(server.url), framer, device="d") as transport:
            with pytest.raises(FramingError, match="checksum"):
                await transport.receive(1)
            await server.disconnect()
            with pytest.raises(FramingError, match="checksum") as err:
                await transport.receive(1)
            assert b"HELLO 2" in err.value.raw
