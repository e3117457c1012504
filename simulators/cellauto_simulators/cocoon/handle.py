"""`start_simulator`: a simulated Cocoon on a loopback OPC UA endpoint, behind a `SimHandle`.

Options (``cocoon+sim://?speed=max&seed=7&faults=...``) are the common simulator set
(`cellauto.sim.options`): ``speed``, ``seed``, ``port``, ``faults`` (the fault grammar, and any
profile alarm code as a kind: ``power_loss@3h:10m`` makes that alarm's condition true for the
duration), and ``anonymous`` (``read``, the default: anonymous sessions may only read, browse
and subscribe; ``operate``: they may also write setpoints and call methods). A session with a
user name operates; any user name logs in and its password is not checked (ADR 0021). The
served URL logs in as ``operator`` (``cocoon+opcua://operator@127.0.0.1:PORT``). ``pty`` is
refused: OPC UA is not served on a pseudo-terminal.
``corrupt`` and ``drop_bytes`` have no meaning on OPC UA and are ignored with a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

from cellauto.errors import SimOptionError
from cellauto.sim import Bioreactor
from cellauto.sim.handle import SimHandle

from .server import CocoonDevice

PROCESS_FAULT_ALARMS = ("leak", "pump_occlusion")
"""Engine process faults that force their alarm's condition (a temperature excursion acts on
the model and raises the temperature alarm through its limits)."""


class CocoonSimulator(SimHandle):
    """A running Cocoon simulator; `device` is the model behind the server."""

    kind: ClassVar[str] = "cocoon"
    pty_capable: ClassVar[bool] = False
    extra_options: ClassVar[Mapping[str, str]] = {
        "anonymous": "what anonymous OPC UA sessions may do: read (default: read, browse and "
        "subscribe only) or operate (also write setpoints and call methods); a session with a "
        "user name (any, password not checked) operates"
    }

    device: CocoonDevice

    async def _start(self) -> None:
        seed = self.options.seed
        anonymous = self.options.extra.get("anonymous", "read")
        if anonymous not in ("read", "operate"):
            raise SimOptionError("cocoon", "anonymous", f"{anonymous!r}: use read or operate")
        access: Literal["read", "operate"] = "read" if anonymous == "read" else "operate"
        self.device = CocoonDevice(
            self.profile,
            self.clock,
            seed=seed,
            serial=f"SIM{seed:04d}",
            port=self.options.port,
            truth=self.truth,
            anonymous=access,
        )
        self.device.sensor_filter = self.sensor
        await self.device.start()
        self.url = f"cocoon+opcua://{self.device.server.login_address()}"

    async def _disconnect(self, duration: float) -> None:
        await self.device.server.restart(duration, sleep=self.clock.sleep)
        self.device.wait_for_client()

    def _model(self) -> Bioreactor | None:
        return self.device.process.reactor

    def _fault_alarm(self, code: str) -> None:
        if code in PROCESS_FAULT_ALARMS:
            self.device.inject(code)

    def _fault_clear(self, code: str) -> None:
        self.device.clear_alarm(code)


start_simulator = CocoonSimulator.launch
"""``start_simulator(profile, options, *, clock=None)``: start a simulated Cocoon (see the module
doc for `options`); `clock` shares time with other simulators (a batch passes one)."""
