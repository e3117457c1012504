"""A register map and a loopback pymodbus server laid out by it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cellauto.transport.modbus import (
    LinkSettings,
    ModbusTransport,
    PymodbusLink,
    RegisterMap,
    load_register_map,
)
from cellauto.transport.stream import Backoff

from .server import MapServer

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def regmap() -> RegisterMap:
    return load_register_map(HERE / "testmap.toml")


@pytest.fixture
async def server(regmap: RegisterMap) -> AsyncIterator[MapServer]:
    srv = await MapServer(regmap).start()
    try:
        yield srv
    finally:
        await srv.stop()


def link_to(server: MapServer, settings: LinkSettings | None = None, **kw: object) -> PymodbusLink:
    return PymodbusLink(
        "127.0.0.1",
        server.port,
        device="testplc",
        settings=settings or server.map.link,
        backoff=Backoff(initial=0.01, max_delay=0.05, max_attempts=20, seed=1),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def plc(server: MapServer) -> AsyncIterator[ModbusTransport]:
    async with ModbusTransport(server.map, link_to(server)) as transport:
        yield transport
