"""A recorded session (a capture of every frame, taken from the adapter against the simulator)
replayed through the adapter with no device: it must send exactly the recorded requests and
report the recorded results. Regenerate the capture on purpose with CELLAUTO_REGEN_GOLDEN=1."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cellauto.profiles import load_profile
from cellauto.registry import parse_url
from cellauto.schema import Q
from cellauto.transport import ReplayTransport, read_capture
from cellauto_adapters.prodigy import ProdigyAdapter
from cellauto_simulators.prodigy import start_simulator

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "prodigy"
CAPTURE = GOLDEN / "session.capture.jsonl"
EXPECTED = GOLDEN / "session.expected.json"


async def script(device: ProdigyAdapter) -> dict[str, object]:
    """What the recorded session does; returns what the adapter reported."""
    await device.connect()
    out: dict[str, object] = {"info": device.info.model, "state": str(device.state)}
    temperature = await device.read("chamber.temperature")
    out["temperature"] = [temperature.value, temperature.unit, temperature.seq]
    out["mode"] = (await device.read("chamber.mode")).value
    out["select"] = (await device.command("select_process", process="TCT")).data
    out["integrity"] = (await device.command("run_integrity_test")).data
    out["ipc"] = (await device.command("enter_ipc_result", glucose=Q(4.2, "mmol/L"))).data
    await device.reset()
    out["after_reset"] = str(device.state)
    out["tubing_set"] = (await device.read("fluidics.tubing_set")).value
    out["last_event_seq"] = device.sequencer.last
    await device.close()
    return out


async def test_recorded_session_replays_through_the_adapter(tmp_path: Path) -> None:
    profile = load_profile("prodigy")
    if os.environ.get("CELLAUTO_REGEN_GOLDEN"):
        sim = await start_simulator(profile, {"speed": "max", "seed": "5"})
        try:
            url = parse_url(sim.url)
            url.options.update({"heartbeat": "0", "capture": str(CAPTURE)})
            live = await script(ProdigyAdapter("prodigy-1", profile, url, time=sim.time))
        finally:
            await sim.stop()
        EXPECTED.write_text(json.dumps(live, indent=1) + "\n", encoding="utf-8")
    replay = ReplayTransport(CAPTURE, device="prodigy-1")
    got = await script(ProdigyAdapter("prodigy-1", profile, transport=replay))
    assert got == json.loads(EXPECTED.read_text(encoding="utf-8"))
    assert any(r.dir == "in" and r.data.startswith(b"E") for r in read_capture(CAPTURE))
