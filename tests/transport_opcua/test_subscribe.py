"""Subscriptions, events, reconnect and timeouts against a real loopback server."""

from __future__ import annotations

import asyncio
import logging

import pytest
from opcua_space import SEQ, TEMP

from cellauto.errors import ConnectionLost, DeviceTimeout
from cellauto.sim.servers.opcua import OpcUaServer
from cellauto.transport.opcua import Backoff, ConnectionState, DataChange, OpcUaTransport

N = 500


async def test_subscription_delivers_every_change_in_order(
    server: OpcUaServer, transport: OpcUaTransport
) -> None:
    async with transport.subscribe([SEQ], period=0.01) as sub:
        first = await anext(sub)
        assert first.path == SEQ
        assert first.value == 0
        assert first.status == "Good"

        async def produce() -> None:
            for i in range(1, N + 1):
                await server.set(SEQ, i)
                if i % 50 == 0:
                    await asyncio.sleep(0)

        task = asyncio.create_task(produce())
        seen = [(await anext(sub)).value for _ in range(N)]
        await task
    assert seen == list(range(1, N + 1))


async def test_several_subscriptions(server: OpcUaServer, transport: OpcUaTransport) -> None:
    async with (
        transport.subscribe([SEQ, TEMP], 0.01) as both,
        transport.subscribe([TEMP], 0.01) as one,
    ):
        initial = {(await anext(both)).path for _ in range(2)}
        assert initial == {SEQ, TEMP}
        assert (await anext(one)).value == 37.0
        await server.set(TEMP, 38.0)
        change = await anext(one)
        assert isinstance(change, DataChange)
        assert change.value == 38.0
        assert change.source_timestamp is not None
        assert (await anext(both)).value == 38.0


async def test_events_arrive_with_custom_fields(
    server: OpcUaServer, transport: OpcUaTransport
) -> None:
    async with transport.subscribe_events(event_types=["2:AlarmEvent"]) as events:
        await asyncio.sleep(0.1)
        await server.emit_event(
            "AlarmEvent", "temperature high", severity=800, AlarmId="T-HI", Value=39.5
        )
        event = await anext(events)
    assert event["Message"] == "temperature high"
    assert event["Severity"] == 800
    assert event["AlarmId"] == "T-HI"
    assert event["Value"] == 39.5


async def test_restart_reconnects_and_resubscribes(server: OpcUaServer) -> None:
    states: list[ConnectionState] = []
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    async with (
        OpcUaTransport(
            server.url,
            device="cocoon-1",
            timeout=1.0,
            heartbeat=0.3,
            backoff=Backoff(0.05, seed=3),
            on_state=states.append,
            on_reconnect=on_reconnect,
        ) as t,
        t.subscribe([SEQ], 0.01) as sub,
    ):
        assert (await anext(sub)).value == 0
        await server.restart(downtime=0.3)
        await reconnected.wait()
        assert states[-3:] == ["disconnected", "reconnecting", "connected"]
        assert t.reconnects == 1
        # resubscribed: the initial value again, then new changes
        assert (await anext(sub)).value == 0
        await server.set(SEQ, 42)
        assert (await anext(sub)).value == 42
        assert await t.read(SEQ) == 42


async def test_a_dropped_link_logs_no_asyncua_traceback(
    server: OpcUaServer, caplog: pytest.LogCaptureFixture
) -> None:
    # asyncua's publish loop logged "Publish iteration crashed" with a traceback on every drop
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    caplog.set_level(logging.INFO, logger="asyncua")
    async with (
        OpcUaTransport(
            server.url,
            device="cocoon-1",
            timeout=1.0,
            heartbeat=0.3,
            backoff=Backoff(0.05, seed=3),
            on_reconnect=on_reconnect,
        ) as t,
        t.subscribe([SEQ], 0.01) as sub,
    ):
        assert (await anext(sub)).value == 0
        await server.restart(downtime=0.3)
        await reconnected.wait()
        await server.set(SEQ, 7)
        while (await anext(sub)).value != 7:
            pass
    tracebacks = [r.getMessage() for r in caplog.records if r.exc_info is not None]
    assert tracebacks == []


async def test_stalled_server_times_out_and_heartbeat_declares_loss(server: OpcUaServer) -> None:
    states: list[ConnectionState] = []
    async with OpcUaTransport(
        server.url,
        device="cocoon-1",
        timeout=0.3,
        heartbeat=0.2,
        backoff=Backoff(0.05, seed=1),
        on_state=states.append,
    ) as t:
        assert await t.read(TEMP) == 37.0
        server.stall()
        with pytest.raises((DeviceTimeout, ConnectionLost)) as info:
            await t.read(TEMP)
        assert info.value.device == "cocoon-1"
        assert info.value.operation == f"read {TEMP}"
        assert isinstance(info.value, DeviceTimeout)
        for _ in range(40):
            if ConnectionState.RECONNECTING in states:
                break
            await asyncio.sleep(0.05)
        assert states[-2:] == ["disconnected", "reconnecting"]
        server.resume()
        for _ in range(60):
            if t.state is ConnectionState.CONNECTED:
                break
            await asyncio.sleep(0.05)
        assert await t.read(TEMP) == 37.0


async def test_closed_transport_raises_connection_lost(server: OpcUaServer) -> None:
    t = OpcUaTransport(server.url, device="cocoon-1")
    with pytest.raises(ConnectionLost, match="cocoon-1: read"):
        await t.read(TEMP)
