"""StreamTransport against real endpoints: TCP loopback, a pty opened through pyserial, and
pyserial URLs; timeouts, framing errors, reconnect, heartbeat, capture and replay."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import pytest

from cellauto.errors import ConnectionLost, DeviceTimeout, ReplayMismatch
from cellauto.sim.servers.stream import PtyServer, TcpServer
from cellauto.transport import (
    Backoff,
    ConnectionEvent,
    Heartbeat,
    LineFramer,
    ReplayTransport,
    SerialConnector,
    StreamTransport,
    StxEtxFramer,
    TcpConnector,
    read_capture,
)

FAST = Backoff(initial=0.01, max_delay=0.05, seed=1)


def tcp(server: TcpServer, **options: object) -> StreamTransport:
    return StreamTransport(
        TcpConnector("127.0.0.1", server.port),
        LineFramer(b"\n"),
        device="dev-1",
        **options,  # type: ignore[arg-type]
    )


async def next_state(events: object, state: str) -> ConnectionEvent:
    async with asyncio.timeout(2):
        async for event in events:  # type: ignore[attr-defined]
            if event.state == state:
                return event  # type: ignore[no-any-return]
    raise AssertionError(f"events ended before {state}")


async def test_tcp_request_response(tcp_echo: TcpServer) -> None:
    assert tcp_echo.url == f"tcp://127.0.0.1:{tcp_echo.port}"
    async with tcp(tcp_echo) as transport:
        assert await transport.request(b"STATUS?", timeout=1) == b"STATUS?"
        await transport.send(b"a")
        await transport.send(b"b")
        assert [await transport.receive(1), await transport.receive(1)] == [b"a", b"b"]


async def test_pty_through_pyserial(pty_echo: PtyServer) -> None:
    connector = SerialConnector(pty_echo.url, {"baudrate": 115200})
    async with StreamTransport(connector, LineFramer(b"\n"), device="dev-1") as transport:
        for i in range(20):
            assert await transport.request(b"T%d" % i, timeout=1) == b"T%d" % i


async def test_pyserial_urls_run_without_blocking_the_loop(tcp_echo: TcpServer) -> None:
    connector = SerialConnector(f"socket://127.0.0.1:{tcp_echo.port}")
    async with StreamTransport(connector, LineFramer(b"\n"), device="dev-1") as transport:
        assert await transport.request(b"over socket://", timeout=1) == b"over socket://"
    async with StreamTransport(
        SerialConnector("loop://"), StxEtxFramer(), device="dev-1"
    ) as transport:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        task = asyncio.create_task(ticker())
        assert await transport.request(b"\x02looped\x03", timeout=1) == b"\x02looped\x03"
        with pytest.raises(DeviceTimeout):
            await transport.receive(0.05)
        task.cancel()
        assert ticks > 5  # the loop kept running while the reader thread waited


async def test_timeout_names_device_and_operation(tcp_echo: TcpServer) -> None:
    async with tcp(tcp_echo) as transport:
        with pytest.raises(DeviceTimeout, match=r"dev-1: read_status: no answer within 0.05 s"):
            await transport.request(b"quiet", timeout=0.05, operation="read_status")
        assert await transport.request(b"after", timeout=1) == b"after"


async def test_open_fails_with_connection_lost() -> None:
    transport = StreamTransport(TcpConnector("127.0.0.1", 1), LineFramer(), device="dev-1")
    with pytest.raises(ConnectionLost, match="dev-1: open: cannot connect"):
        await transport.open()


async def test_reconnect_after_the_server_drops_the_link(tcp_echo: TcpServer) -> None:
    reconnects = 0

    async def on_reconnect() -> None:
        nonlocal reconnects
        reconnects += 1
        assert await holder[0].request(b"resubscribe", timeout=1) == b"resubscribe"

    seen: list[str] = []
    holder: list[StreamTransport] = []
    async with tcp(
        tcp_echo,
        reconnect=FAST,
        on_reconnect=on_reconnect,
        on_event=lambda e: seen.append(e.state),
    ) as transport:
        holder.append(transport)
        events = transport.events()
        assert await transport.request(b"one", timeout=1) == b"one"
        await tcp_echo.unplug(duration=0.1)
        await next_state(events, "disconnected")
        await next_state(events, "connected")
        assert await transport.request(b"two", timeout=1) == b"two"
        assert reconnects == 1
    assert seen[:3] == ["connected", "disconnected", "reconnecting"]
    assert seen[-1] == "connected"


async def test_gives_up_after_max_attempts(tcp_echo: TcpServer) -> None:
    async with tcp(tcp_echo, reconnect=Backoff(0.01, 0.02, max_attempts=2, seed=0)) as transport:
        await tcp_echo.unplug()
        with pytest.raises(ConnectionLost, match="gave up reconnecting"):
            await transport.receive(2)
        with pytest.raises(ConnectionLost):
            await transport.request(b"x", timeout=1)


async def test_requests_wait_for_the_reconnect(tcp_echo: TcpServer) -> None:
    async with tcp(tcp_echo, reconnect=Backoff(0.1, seed=0)) as transport:
        events = transport.events()
        await tcp_echo.disconnect()
        await next_state(events, "reconnecting")
        assert not transport.connected
        assert await transport.request(b"again", timeout=2) == b"again"


async def test_a_request_in_flight_when_the_link_drops_fails_fast(tcp_echo: TcpServer) -> None:
    async with tcp(tcp_echo, reconnect=FAST) as transport:
        pending = asyncio.create_task(transport.request(b"quiet", timeout=5))
        await asyncio.sleep(0.01)
        await tcp_echo.disconnect()
        with pytest.raises(ConnectionLost, match="dropped before the answer"):
            async with asyncio.timeout(1):
                await pending


async def test_heartbeat_detects_a_stalled_peer(tcp_echo: TcpServer) -> None:
    transport: StreamTransport

    async def ping() -> None:
        await transport.request(b"ping", timeout=0.1, operation="heartbeat")

    transport = tcp(tcp_echo, reconnect=FAST, heartbeat=Heartbeat(interval=0.05, probe=ping))
    async with transport:
        events = transport.events()
        tcp_echo.stall()
        lost = await next_state(events, "disconnected")
        assert "heartbeat failed" in lost.detail
        tcp_echo.resume()
        await next_state(events, "connected")
        assert await transport.request(b"alive", timeout=1) == b"alive"


async def test_silence_limit_detects_a_silent_peer(pty_echo: PtyServer) -> None:
    transport = StreamTransport(
        SerialConnector(pty_echo.url),
        LineFramer(b"\n"),
        device="dev-1",
        reconnect=FAST,
        heartbeat=Heartbeat(interval=10, silence=0.1),
    )
    async with transport:
        events = transport.events()
        lost = await next_state(events, "disconnected")
        assert "silent" in lost.detail


async def test_capture_then_replay_gives_the_same_answers(
    tcp_echo: TcpServer, tmp_path: Path
) -> None:
    path = tmp_path / "capture.jsonl"
    asked = [b"STATUS?", b"quiet", b"TEMP?"]

    async def adapter(transport: StreamTransport | ReplayTransport) -> list[bytes | str]:
        answers: list[bytes | str] = []
        for question in asked:
            try:
                answers.append(await transport.request(question, timeout=0.1))
            except DeviceTimeout:
                answers.append("timeout")
        return answers

    async with tcp(tcp_echo, capture=path) as transport:
        live = await adapter(transport)
    assert [r.dir for r in read_capture(path)] == ["out", "in", "out", "out", "in"]
    async with ReplayTransport(path, device="dev-1") as replay:
        assert await adapter(replay) == live == [b"STATUS?", "timeout", b"TEMP?"]
        assert replay.finished


async def test_replay_names_the_first_mismatch(tcp_echo: TcpServer, tmp_path: Path) -> None:
    path = tmp_path / "capture.jsonl"
    async with tcp(tcp_echo, capture=path) as transport:
        await transport.request(b"A", timeout=1)
        await transport.request(b"B", timeout=1)
    async with ReplayTransport(path, device="dev-1") as replay:
        assert await replay.request(b"A", timeout=1) == b"A"
        with pytest.raises(
            ReplayMismatch, match=r"sent frame #1 b'C', but the capture expects b'B'"
        ):
            await replay.request(b"C", timeout=1)


async def test_io_is_logged_as_hex_and_ascii(
    tcp_echo: TcpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cellauto.transport")
    async with tcp(tcp_echo) as transport:
        await transport.request(b"hi", timeout=1)
    assert "dev-1 -> 3 B 68 69 0a |hi.|" in caplog.text
    assert "dev-1 <- 3 B 68 69 0a |hi.|" in caplog.text


async def test_closed_transport_raises_connection_lost(tcp_echo: TcpServer) -> None:
    transport = tcp(tcp_echo)
    async with transport:
        pass
    with pytest.raises(ConnectionLost, match="transport closed"):
        await transport.receive(1)
    with pytest.raises(ConnectionLost):
        await transport.send(b"x")


async def test_a_busy_event_loop_is_not_taken_for_a_dead_peer(tcp_echo: TcpServer) -> None:
    transport: StreamTransport
    answered = asyncio.Event()

    async def ping() -> None:
        await transport.request(b"ping", timeout=0.2, operation="heartbeat")
        answered.set()

    seen: list[str] = []
    transport = tcp(
        tcp_echo,
        reconnect=FAST,
        heartbeat=Heartbeat(interval=0.05, probe=ping, timeout=0.2),
        on_event=lambda e: seen.append(e.state),
    )
    async with transport:
        for _ in range(3):
            time.sleep(0.5)  # noqa: ASYNC251 - the point: the loop is blocked, the peer is fine
            for _ in range(3):  # the heartbeat goes on probing after the stall
                answered.clear()
                await answered.wait()
    assert seen == ["connected"]
