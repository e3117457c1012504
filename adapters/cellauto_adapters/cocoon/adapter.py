"""`CocoonAdapter`: the Lonza Cocoon through cellauto's Cocoon OPC UA protocol profile.

Every channel is one monitored variable; every device event (state, step, prompt, alarm,
result) is one OPC UA event carrying a gapless `Seq`, applied through an `EventSequencer` whose
read-back is ``ReadEventLog``; channel values missed while disconnected are recorded as a gap
event. Commands return once the sequencer has applied the events the device published for them,
so ``await cocoon.hold()`` leaves ``cocoon.state`` at Held. The machinery is the OPC UA
event-log family's (`cellauto.adapter.opcua_log`); this is what only the Cocoon has.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar

from pydantic import JsonValue

from cellauto.adapter import Conformance
from cellauto.adapter.opcua_log import OpcUaEventLogAdapter, jsonable
from cellauto.schema import CommandResult, ProgramRun, ProgramTemplate, PropertyValue, Quantity

from .nodes import ACRONYMS, EVENT_TYPES, NAMESPACE, PROTOCOL, ROOT, SETPOINTS


class CocoonAdapter(OpcUaEventLogAdapter):
    """A Lonza Cocoon (or its simulator) at ``cocoon+opcua://host:port``.

    URL options: those of `cellauto.adapter.CONNECTION` (``timeout``, ``heartbeat``,
    ``capture``, ``reconnect_attempts``, ``reconnect_time``) and ``period`` (s, publishing
    interval of the value subscription, default 0.02). A user name in the URL
    (``cocoon+opcua://olga@host:port``) logs in with the password from
    `cellauto.secrets.credentials` (environment, credentials file, URL); without one the
    session is anonymous, which a Cocoon may allow only to read. ``cocoon+replay://<capture>``
    replays a capture.
    """

    kind: ClassVar[str] = "cocoon"
    namespace = NAMESPACE
    root = ROOT
    acronyms = ACRONYMS
    event_types = EVENT_TYPES
    protocol = PROTOCOL
    conformance: ClassVar[Conformance] = Conformance(
        program="CAR-T",
        test_options={"timeout": "3", "heartbeat": "1"},
        not_applicable={
            "alarm:cassette_not_detected": "the simulator raises it only in a run past the "
            "cassette installation step, so it cannot be raised on an idle device",
            "alarm:reagent_missing": "the simulator raises it only in a run past the reagent "
            "loading step, so it cannot be raised on an idle device",
        },
    )

    async def _device_event(self, kind: str, fields: Mapping[str, Any], time: datetime) -> None:
        if kind == "step":
            await self.report_step(
                progress=float(fields["Progress"]),
                remaining=float(fields["RemainingTime"]),
                step=(fields["StepName"], int(fields["StepNumber"])),
            )
        else:
            await super()._device_event(kind, fields, time)

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        operation = f"start_program {template.name}"
        await self.call(
            operation, "LoadProtocol", template.model_dump_json(), template.content_hash
        )
        _estimate, seq = await self.call(
            operation,
            "Start",
            run.device_program_run_id,
            run.supervisory_job_id or "",
            "",
            json.dumps({k: jsonable(v) for k, v in parameters.items()}),
        )
        await self.sequencer.applied(int(seq))

    async def _command(self, name: str, parameters: dict[str, PropertyValue]) -> CommandResult:
        data: dict[str, JsonValue] = {}
        message = ""
        accepted = True
        match name:
            case "load_protocol":
                template = self._template(str(parameters["protocol"]))
                await self.call(
                    name, "LoadProtocol", template.model_dump_json(), template.content_hash
                )
                data = {"protocol": template.name, "content_hash": template.content_hash}
            case "validate_protocol":
                problems = json.loads(await self.call(name, "ValidateProtocol"))
                accepted, message, data = not problems, "; ".join(problems), {"problems": problems}
            case "check_cassette":
                integrity = await self.call(name, "CheckCassette")
                accepted, data = integrity == "pass", {"integrity": integrity}
            case "acknowledge_prompt":
                await self.acknowledge_prompt(
                    name,
                    str(parameters["prompt_id"]),
                    str(parameters.get("answer", "")),
                    str(parameters.get("user", "")),
                )
            case "take_sample":
                volume = parameters["volume"]
                assert isinstance(volume, Quantity)
                data = {"sample_id": await self.call(name, "TakeSample", volume.value)}
            case "release_cassette":
                await self.call(name, "ReleaseCassette")
            case "set_setpoints":
                for parameter, value in parameters.items():
                    assert isinstance(value, Quantity)
                    await self.transport.write(
                        self.paths.channel(SETPOINTS[parameter]), value.value
                    )
                data = {SETPOINTS[k]: jsonable(v) for k, v in parameters.items()}
            case _:
                return await super()._command(name, parameters)
        return self.command_result(name, data=data, accepted=accepted, message=message)
