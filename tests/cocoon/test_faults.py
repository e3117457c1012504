"""Faults from the engine's grammar: process and sensor faults, a dropped connection (reconnect,
event back-fill, an explicit gap for channel values) and a silent server."""

from __future__ import annotations

from cocoon_support import cocoon, next_event

from cellauto.schema import EventKind, Quality

PROCESS = ",".join(
    [
        "temperature_excursion@2h:1h=3",
        "sensor_dropout:chamber.ph@2h:1h",
        "leak@4h:10m",
        "pump_occlusion@5h:10m",
    ]
)


async def test_process_and_sensor_faults_become_alarms_and_bad_samples() -> None:
    async with cocoon(faults=PROCESS) as (_sim, device):
        events = device.events()
        ph = device.subscribe(["chamber.ph"])
        qualities: list[Quality] = []

        async def watch_ph() -> None:
            async for sample in ph:
                qualities.append(sample.quality)
                if qualities[-2:] == [Quality.BAD, Quality.GOOD]:
                    return

        await watch_ph()
        codes = []
        while len(codes) < 3:
            event = await next_event(events, lambda e: e.kind is EventKind.ALARM_RAISED)
            codes.append(event.data["code"])
        assert codes == ["chamber_temperature_deviation", "leak", "pump_occlusion"]


async def test_a_dropped_connection_reconnects_backfills_events_and_records_the_gap() -> None:
    async with cocoon(faults="disconnect@2h:1h,leak@2h20m:10m") as (sim, device):
        events = device.events()
        lost = await next_event(events, lambda e: e.message == "disconnected")
        gap = await next_event(events, lambda e: "gap" in e.data)
        assert gap.kind is EventKind.CONNECTION_CHANGED
        assert gap.data["gap"]["from"] <= lost.time.isoformat()  # type: ignore[index,operator]
        # the leak came and went while the adapter was away: back-filled from the event log
        raised = await next_event(events, lambda e: e.kind is EventKind.ALARM_RAISED)
        cleared = await next_event(events, lambda e: e.kind is EventKind.ALARM_CLEARED)
        assert raised.data["code"] == cleared.data["code"] == "leak"
        (alarm,) = device.alarms
        assert alarm.code == "leak"
        assert alarm.vendor_data["seq"] == 1
        assert lost.time < alarm.raised_at < gap.time
        assert (await device.read("fluidics.leak_detected")).value is False
        assert sim.device.seq == 2


async def test_a_silent_server_is_declared_lost_and_the_adapter_comes_back() -> None:
    # The stall starts 1 real s in (1 h of device time at this speed) and would outlast the
    # test: the test ends it once the adapter has declared the server lost, so how long the
    # adapter takes to notice under load cannot decide the outcome.
    async with cocoon(speed="3600", faults="stall@1h:1000h") as (sim, device):
        events = device.events()
        await next_event(events, lambda e: e.message == "disconnected")
        sim.device.server.resume()
        gap = await next_event(events, lambda e: "gap" in e.data)
        assert gap.kind is EventKind.CONNECTION_CHANGED
        assert (await device.read("chamber.temperature")).quality is Quality.GOOD
