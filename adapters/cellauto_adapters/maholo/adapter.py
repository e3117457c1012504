"""`MaholoAdapter`: the LabDroid Maholo through cellauto's own HTTP/JSON API with a WebSocket
event stream (schemas/protocols/maholo.md, maholo.openapi.json), on the HTTP family base.

Jobs are program runs: `start_program` submits one to the job queue (with an idempotency key,
so a lost answer is retried without a second job); the robot log's jobs and command errors are
events; interventions are operator prompts; plate images are result files (their URL and
SHA-256 as the device gives them).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, ClassVar

from pydantic import JsonValue

from cellauto.adapter import Conformance
from cellauto.adapter.http import HttpDevice
from cellauto.driver import OperatorPrompt
from cellauto.errors import ProtocolError
from cellauto.protocols import load_protocol
from cellauto.schema import (
    Alarm,
    AlarmSeverity,
    CommandResult,
    DeviceInfo,
    EventKind,
    ProgramRun,
    ProgramTemplate,
    PropertyValue,
    Quality,
    Quantity,
    Result,
    ResultFile,
    Sample,
)
from cellauto.state import StateCommand
from cellauto.transport.http import StreamEvent

__all__ = ["MaholoAdapter"]

logger = logging.getLogger("cellauto_adapters.maholo")

TABLES = load_protocol("maholo")


class MaholoAdapter(HttpDevice):
    """RBI LabDroid Maholo (cellauto's own HTTP API; see the protocol profile).

    URL: ``maholo+http://host:port`` or ``maholo+https://host:port`` (``capture=<path>``
    records the session), ``maholo+replay://<capture>`` replays one; options those of
    `cellauto.adapter.http.HTTP_OPTIONS`. The bearer token comes from
    ``CELLAUTO_TOKEN_<DEVICE ID>`` or the credentials file (`cellauto.secrets`).
    """

    kind = "maholo"
    conformance: ClassVar[Conformance] = Conformance(
        program="iPSC-RPE differentiation",
        test_options={"request_timeout": "2", "heartbeat": "0.5"},
        values_recoverable=True,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.run_results: list[Result] = []
        """Every result the device reported on this connection."""
        self._float_channels = frozenset(
            name for name, spec in self.profile.channels().items() if spec.dtype == "float"
        )
        self.robot_jobs: dict[str, dict[str, Any]] = {}
        """The robot log as the event stream reported it, by robot job id."""

    # --- connection ----------------------------------------------------------------------------

    async def identify(self) -> tuple[DeviceInfo, int]:
        ident = await self.request("GET", "/identity", operation="connect")
        status = await self.client.request("GET", "/status", operation="connect")
        info = DeviceInfo(
            manufacturer=str(ident["manufacturer"]),
            model=str(ident["model"]),
            serial_number=str(ident["serial_number"]),
            software_revision=str(ident.get("software_revision", "")),
            device_class="cell culture robot",
            vendor_data={
                "protocol": f"cellauto maholo http v{ident.get('api_version', '?')}",
                "tls": self.client.tls,
            },
        )
        await self._adopt_state(str(status["state"]))
        return info, int(status["event_seq"])

    async def _adopt_state(self, vendor: str) -> None:
        state = TABLES.state(vendor)
        if state is None:
            raise ProtocolError(self.device_id, "status", f"unknown state {vendor!r}")
        await self.report_state(state)

    # --- events --------------------------------------------------------------------------------

    async def apply_event(self, event: StreamEvent) -> None:
        d = event.data
        kind = event.kind
        if kind == "sample":
            self.report_sample(self._sample(d))
        elif kind == "state":
            await self._adopt_state(str(d["state"]))
        elif kind == "step":
            await self.report_progress(
                progress=float(d["progress"]),
                remaining=timedelta(seconds=float(d["remaining"])),
                step_name=str(d["name"]),
                step_number=int(d["n"]),
            )
        elif kind == "prompt":
            self.report_prompt(
                OperatorPrompt(
                    prompt_id=str(d["prompt_id"]),
                    device_id=self.device_id,
                    text=str(d["text"]),
                    raised_at=_time(d["raised"]),
                    choices=tuple(str(c) for c in d.get("choices") or ()),
                )
            )
        elif kind == "prompt_answered":
            self.report_prompt_answered(str(d["prompt_id"]), str(d["answer"]), str(d["user"]))
        elif kind == "alarm":
            await self.report_alarm_status(
                str(d["alarm_id"]),
                str(d["code"]),
                str(d["status"]),
                _time(event.time),
                user=d.get("user"),
                severity=AlarmSeverity(str(d["severity"])),
                message=str(d["message"]),
                vendor_data={"device_seq": event.seq},
            )
        elif kind == "result":
            result = await self._report_result(d)
            if result is not None:
                self.run_results.append(result)
        elif kind == "robot_job":
            self.robot_jobs[str(d["robot_job_id"])] = dict(d)
            self.report_event(
                EventKind.NOTE,
                message=f"robot job {d['robot_job_id']} {d['status']}: {d['name']}",
                data=_json({"robot_job": d, "device_seq": event.seq}),
            )
        elif kind == "command_error":
            self.report_event(
                EventKind.NOTE,
                message=f"robot command {d['command']} failed ({d['cause']}): {d['outcome']}",
                data=_json({"command_error": d, "device_seq": event.seq}),
            )
        elif kind != "job":
            self.report_event(EventKind.NOTE, message=f"unknown event {kind}")

    def _sample(self, d: dict[str, Any], *, publish: bool = True) -> Sample:
        channel = str(d["channel"])
        value = d["value"]
        if type(value) is int and channel in self._float_channels:
            value = float(value)
        n = d.get("n")
        return self.sample(
            channel,
            value,
            _time(d["time"]),
            unit=d.get("unit"),
            quality=Quality(str(d.get("quality", "good"))),
            seq=int(n) if isinstance(n, int) else None,
            publish=publish,
        )

    async def _report_result(self, d: dict[str, Any]) -> Result | None:
        properties: dict[str, PropertyValue] = {}
        for name, item in (d.get("properties") or {}).items():
            properties[name] = Quantity(value=float(item["value"]), unit=str(item["unit"]))
        files = [
            ResultFile(
                name=f"{image['plate']}.png",
                mime_type="image/png",
                path=f"{self.client.base_url}/images/{image['image_id']}",
                sha256=str(image["sha256"]),
            )
            for image in d.get("images") or []
        ]
        return await self.report_run_result(
            str(d["run_id"]),
            str(d["outcome"]),
            started=_time(d["started"]),
            stopped=_time(d["stopped"]),
            pause=timedelta(seconds=float(d.get("pause", 0.0))),
            properties=properties,
            files=files,
            vendor_data={"job_id": str(d["job_id"])},
        )

    # --- Device hooks --------------------------------------------------------------------------

    async def _read(self, channel: str) -> Sample:
        reply = await self.request("GET", f"/channels/{channel}", operation=f"read {channel}")
        return self._sample(reply, publish=False)

    async def _start_program(
        self, template: ProgramTemplate, parameters: dict[str, PropertyValue], run: ProgramRun
    ) -> None:
        body: dict[str, Any] = {
            "program": template.name,
            "run_id": run.device_program_run_id,
            "parameters": {k: _value(v) for k, v in parameters.items()},
            "template": template.model_dump(mode="json", exclude_none=True),
        }
        if run.supervisory_job_id:
            body["supervisory_job_id"] = run.supervisory_job_id
        await self.request(
            "POST",
            "/jobs",
            operation=f"start_program {template.name}",
            body=body,
            idempotent_post=True,
        )

    async def _send_state_command(self, command: StateCommand) -> None:
        await self.request(
            "POST",
            "/control",
            operation=str(command),
            body={"command": TABLES.commands[command]},
            idempotent_post=True,
        )

    async def _acknowledge(self, alarm: Alarm, user: str) -> None:
        await self.request(
            "POST",
            f"/alarms/{alarm.alarm_id}/acknowledge",
            operation=f"acknowledge {alarm.alarm_id}",
            body={"user": user},
            idempotent_post=True,
        )

    async def _answer_prompt(self, prompt: OperatorPrompt, answer: str, user: str) -> None:
        await self.request(
            "POST",
            f"/prompts/{prompt.prompt_id}/answer",
            operation=f"answer_prompt {prompt.prompt_id}",
            body={"answer": answer, "user": user},
            idempotent_post=True,
        )

    async def _command(self, name: str, parameters: dict[str, PropertyValue]) -> CommandResult:
        reply = await self.request(
            "POST",
            f"/commands/{name}",
            operation=name,
            body={"parameters": {k: _value(v) for k, v in parameters.items()}},
            idempotent_post=True,
        )
        return self.command_result(name, data=_json(reply.get("data") or {}))

    async def jobs(self) -> list[dict[str, Any]]:
        """The device's job queue (`GET /jobs`)."""
        reply = await self.request("GET", "/jobs", operation="list jobs")
        return list(reply["jobs"])

    async def robot_log(self) -> list[dict[str, Any]]:
        """The robot log (`GET /log/jobs`): name, start, end, duration, command count, errors."""
        reply = await self.request("GET", "/log/jobs", operation="robot log")
        return list(reply["entries"])


def _value(value: PropertyValue) -> Any:
    if isinstance(value, Quantity):
        return {"value": value.value, "unit": value.unit}
    return value


def _time(text: Any) -> datetime:
    return datetime.fromisoformat(str(text).replace("Z", "+00:00"))


def _json(data: Any) -> dict[str, JsonValue]:
    return dict(data)
