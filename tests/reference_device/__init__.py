"""A tiny reference device that exercises the whole driver layer end to end.

`incubator` speaks a poll-only line protocol (one JSON object per line over TCP): the adapter
(`adapter.py`) and the simulator (`simulator.py`) share only that protocol, described in
`PROTOCOL` below, exactly as real device packages meet only on the wire.

    -> {"op": "id"}                          <- {"ok": true, "id": {...DeviceInfo fields...}}
    -> {"op": "get", "channel": "chamber.temperature"}
                                             <- {"ok": true, "value": 37.0, "unit": "Cel",
                                                 "time": "...", "seq": 12}
    -> {"op": "status"}                      <- {"ok": true, "state": "Running/Execute",
                                                 "step": 2, "name": "Grow", "progress": 0.4,
                                                 "remaining": 3600.0, "prompt": null,
                                                 "result": null | {...Result fields...}}
    -> {"op": "start", "program": "expand", "run": "...", "parameters": {"n": [1.0, "h"]}}
    -> {"op": "command", "command": "hold"}  <- {"ok": true, "state": "..."}
    -> {"op": "answer", "text": "done"}      <- {"ok": true}
    failures                                 <- {"ok": false, "error": "..."}
"""

from reference_device.adapter import IncubatorAdapter
from reference_device.profile import PROFILE
from reference_device.simulator import start_simulator

__all__ = ["PROFILE", "IncubatorAdapter", "start_simulator"]
