"""Echo wire servers on real endpoints (TCP loopback, pty) for the transport tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from cellauto.sim.servers.stream import PtyServer, TcpServer, frame_handler, serve_pty, serve_tcp
from cellauto.transport import LineFramer


async def echo(payload: bytes) -> bytes | None:
    """Answers `x` with `x`; `quiet` gets no answer."""
    return None if payload == b"quiet" else payload


@pytest.fixture
async def tcp_echo() -> AsyncIterator[TcpServer]:
    server = await serve_tcp(frame_handler(lambda: LineFramer(b"\n"), echo))
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def pty_echo() -> AsyncIterator[PtyServer]:
    server = await serve_pty(frame_handler(lambda: LineFramer(b"\n"), echo))
    try:
        yield server
    finally:
        await server.close()
