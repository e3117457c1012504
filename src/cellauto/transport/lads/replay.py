"""`LadsReplay`: `LadsClient`'s answers played back from an OPC UA capture.

`LadsClient` speaks LADS through the asyncua client itself (by NodeId and type), which the
transport's capture does not see; so it writes each answer into the capture as a ``lads.*``
entry of its own. Method calls are recorded among the transport's requests and replayed in that
order by `OpcUaReplay` (so what a call changed is delivered after it). Reads (the browse,
EnumStrings, Results and their files) are recorded beside them (direction ``lads``) and answered
per request and arguments in recorded order, but not ordered against the rest: an adapter asks
some of them from a task of its own, at times that differ between runs."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

from cellauto.errors import DeviceError, OpcUaStatusError
from cellauto.transport.lads.browse import VIEWS, LadsDeviceView
from cellauto.transport.lads.client import LadsClient
from cellauto.transport.opcua_capture import decode
from cellauto.transport.opcua_replay import OpcUaReplay

__all__ = ["LadsReplay"]


class LadsReplay(LadsClient):
    """`LadsClient`'s API answered from the capture at `path` (read by `replay` too); the
    program, prompt and acknowledge calls are `LadsClient`'s, through `call`."""

    def __init__(self, replay: OpcUaReplay, path: str | Path) -> None:
        self.replay = replay
        self._answers: dict[str, deque[Any]] = {}
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            entry = json.loads(line) if line.strip() else {}
            if entry.get("dir") == "lads":
                key = _key(entry["op"], entry["args"])
                self._answers.setdefault(key, deque()).append(decode(entry["result"]))

    @property
    def device(self) -> str:
        return self.replay.device

    def _answer(self, op: str, args: list[Any]) -> Any:
        answers = self._answers.get(_key(op, args))
        if not answers:
            raise DeviceError(
                self.device,
                f"{op} {' '.join(map(str, args))}".strip(),
                "(replayed) the capture holds no further answer to this request",
            )
        return answers.popleft()

    async def browse(self) -> list[LadsDeviceView]:
        """The devices the recorded browse found."""
        return VIEWS.validate_python(self._answer("lads.browse", []))

    async def call(self, operation: str, obj: str, method: str, *args: Any) -> Any:
        """The recorded result of calling `method` on `obj` (its arguments are not compared),
        in order with the transport's requests (what the call changed is delivered after it)."""
        request = {"op": "lads.call", "args": [obj, method]}
        answer = decode(self.replay._expect(request, operation)["result"])
        if "status" in answer:
            raise OpcUaStatusError(self.device, operation, answer["status"])
        return answer["value"]

    async def enum_strings(self, value_node: str) -> list[str] | None:
        """The recorded EnumStrings."""
        found = self._answer("lads.enum_strings", [value_node])
        return None if found is None else [str(s) for s in found]

    async def result(self, results: str, run_id: str) -> dict[str, Any] | None:
        """The recorded Result variables."""
        fields = self._answer("lads.result", [results, run_id])
        return None if fields is None else dict(fields)

    async def result_files(self, fileset: str) -> list[tuple[str, str, bytes | None]]:
        """The recorded files, with their content."""
        return [(str(n), str(m), c) for n, m, c in self._answer("lads.result_files", [fileset])]


def _key(op: str, args: list[Any]) -> str:
    return json.dumps([op, args])
