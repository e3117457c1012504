"""Simulated ACC-200 (closed automated cell culture equipment) serving cellauto's Modbus TCP
register map (schemas/protocols/acc200.md) on loopback, with images written to a share folder.

Not the vendor's interface, which is not public. Start it with ``acc200+sim://?speed=max``;
device options: ``scan`` (virtual s between published process images, 300) and ``share`` (the
image folder; a new temporary folder if not given).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import ClassVar

from cellauto.errors import SimOptionError
from cellauto.sim.handle import SimHandle
from cellauto.transport.modbus import load_register_map

from .device import Acc200Device, parse_recipe

__all__ = ["Acc200Device", "Acc200Simulator", "parse_recipe", "start_simulator"]

SHARE_CHARACTERS = 128  # images.share holds this many characters


class Acc200Simulator(SimHandle):
    """A running ACC-200 simulator; `device` is the PLC behind the server, `share` the image
    folder."""

    kind: ClassVar[str] = "acc200"
    pty_capable: ClassVar[bool] = False
    extra_options: ClassVar[dict[str, str]] = {
        "scan": "virtual seconds between two published process images (300)",
        "share": "folder the microscope writes images to (default: a new temporary folder)",
    }
    process_alarms: ClassVar[dict[str, str]] = {
        "leak": "vessel_leak",
        "pump_occlusion": "circuit_pressure_high",
    }

    device: Acc200Device
    share: Path

    async def _start(self) -> None:
        extra = self.options.extra
        try:
            scan = float(extra.get("scan", "300"))
        except ValueError:
            raise SimOptionError(self.kind, "scan", f"{extra['scan']!r} is not a number") from None
        if not scan > 0:
            raise SimOptionError(self.kind, "scan", "must be a positive number of seconds")
        self.share = (
            Path(extra["share"])
            if extra.get("share")
            else Path(tempfile.mkdtemp(prefix="acc200-share-"))
        )
        if len(str(self.share.resolve())) > SHARE_CHARACTERS:
            raise SimOptionError(
                self.kind, "share", f"the path must fit {SHARE_CHARACTERS} characters"
            )
        self.share = self.share.resolve()
        self.share.mkdir(parents=True, exist_ok=True)
        self.device = Acc200Device(
            self.profile,
            load_register_map("acc200"),
            self.clock,
            seed=self.options.seed,
            share=self.share,
            scan=scan,
            port=self.options.port,
            truth=self.truth,
        )
        await self.device.start()
        self.url = f"acc200+modbus://127.0.0.1:{self.device.server.port}"

    def _raise(self, code: str) -> str:
        """Make the alarm's condition true (until `clear_alarm`); the device raises it."""
        return self.device.force(code)

    def _clear(self, code: str) -> None:
        self.device.release(code)

    async def _disconnect(self, duration: float) -> None:
        await self.device.disconnect(duration)


start_simulator = Acc200Simulator.launch
"""``start_simulator(profile, options, *, clock=None)``: start a simulated ACC-200 (see the
module doc for `options`)."""
