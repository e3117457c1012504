"""`Acc200Adapter`: the ACC-200 through cellauto's Modbus TCP register map
(schemas/protocols/acc200.md) on the Modbus family base `cellauto.adapter.modbus.ModbusDevice`.

What is the ACC-200's own: the image share (images become the run's result files, watched with
watchfiles), the ring's ``image`` and ``medium_change`` events, and the vessel commands.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import ClassVar

from pydantic import JsonValue

from cellauto.adapter import CONNECTION, Conformance, Options, text
from cellauto.adapter.modbus import POLL, ModbusDevice
from cellauto.errors import ProtocolError
from cellauto.schema import CommandResult, EventKind, ProgramTemplate, PropertyValue, Quantity
from cellauto.schema.programs import ResultFile
from cellauto.transport.modbus.codec import Value

from .images import ImageShare

__all__ = ["Acc200Adapter"]

SHARE = text("share", "", "local path of the image share (default: the path the device names)")
VESSEL_COMMANDS = {
    "capture_image": "cmd.capture_image",
    "medium_change": "cmd.medium_change",
    "add_vessel": "cmd.add_vessel",
    "remove_vessel": "cmd.remove_vessel",
}


class Acc200Adapter(ModbusDevice):
    """Hitachi closed automated culture equipment, as cellauto's ACC-200 register map models it
    (see the protocol profile; not the vendor's interface).

    URL options: those of `ModbusDevice` (``timeout``, ``capture``, ``reconnect_attempts``,
    ``reconnect_time``, ``heartbeat=0`` to turn the background poll off, ``poll``: s between
    polls, 120; the PLC publishes its process image once per scan, 300 s) and ``share`` (where
    the image share is mounted locally). ``acc200+replay://<capture>`` replays a capture.
    """

    kind = "acc200"
    conformance: ClassVar[Conformance] = Conformance(
        program="oral mucosal cell sheet",
        test_options={"timeout": "20"},
    )
    options: ClassVar[Options] = CONNECTION | Options(POLL, SHARE)
    scan_echo: ClassVar[str | None] = "vessels.seq"
    identity: ClassVar[tuple[str, ...]] = ("identity.*", "images.share")
    device_class: ClassVar[str] = "automated cell culture equipment"

    share: ImageShare | None = None
    """The image share, once connected (None if the device names none)."""
    files: list[ResultFile]
    """Images of the current run, as result files."""

    async def _identify(self, identity: dict[str, Value]) -> dict[str, JsonValue]:
        share = self.option_values[SHARE] or str(identity["images.share"])
        self.files = []
        if share:
            self.share = ImageShare(Path(share))
            self.share.start()
        return {"vessel_slots": int(identity["identity.vessel_slots"]), "image_share": share}

    async def _before_close(self) -> None:
        if self.share is not None:
            await self.share.stop()

    async def _starting(self, template: ProgramTemplate) -> None:
        self.files = []

    async def _device_event(self, kind: str, record: dict[str, Value], when: datetime) -> None:
        vessel, value, seq = int(record["code"]), float(record["value"]), int(record["seq"])
        if kind == "image":
            if self.share is not None:
                self.files += self.share.collect(self._run_number(), vessel)
            message = f"image of vessel {vessel}: confluency {value:.1f} %"
            data: dict[str, JsonValue] = {"vessel": vessel, "confluency": value}
        elif kind == "medium_change":
            message = f"medium change in vessel {vessel}: {value:.1f} mL"
            data = {"vessel": vessel, "volume": value}
        else:
            await super()._device_event(kind, record, when)
            return
        self.report_event(
            EventKind.NOTE,
            source=f"vessel{vessel}",
            message=message,
            data={"device_seq": seq} | data,
        )

    def _result_files(self) -> list[ResultFile]:
        if self.share is not None:  # every image of the run, announced or not
            self.files += self.share.collect(self._run_number())
        return list(self.files)

    def _run_number(self) -> int:
        return int(self._status.get("program.run_id", 0))

    async def _command(self, name: str, parameters: dict[str, PropertyValue]) -> CommandResult:
        if name == "load_recipe":
            payload = str(parameters["recipe"]).encode("utf-8")
            status = await self.plc.download("recipe", payload, operation=name)
            return self.command_result(name, data={"status": status})
        if name == "acknowledge_prompt":
            prompt = str(parameters["prompt_id"])
            await self.answer_prompt(prompt, "done", "")
            return self.command_result(name, data={"prompt_id": prompt})
        if name == "leak_check":
            await self.plc.pulse("cmd.leak_check", operation=name)
            await self._sync(name)
            return self.command_result(name)
        coil = VESSEL_COMMANDS.get(name)
        if coil is None:
            raise ProtocolError(self.device_id, name, "no register for this command")
        position = int(_number(parameters["position"]))
        values: dict[str, Value] = {"command.vessel": position}
        if "volume" in parameters:
            values["command.volume"] = _number(parameters["volume"])
        await self.plc.write(values, operation=name)
        await self.plc.pulse(coil, operation=name)
        await self._sync(name)
        return self.command_result(name, data={"position": position})


def _number(value: PropertyValue) -> float:
    if isinstance(value, Quantity):
        return float(value.value)
    if isinstance(value, bool | str):
        raise ValueError(f"{value!r} is not a number")
    return float(value)
