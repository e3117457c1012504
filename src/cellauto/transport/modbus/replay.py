"""Replay of a Modbus capture (JSON Lines written by `PymodbusLink(capture=...)`) as a
register link: the same requests get the recorded answers, in order; the first request that
differs raises `ReplayMismatch`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from cellauto.errors import ConnectionLost, DeviceError, DeviceTimeout, ReplayMismatch
from cellauto.transport.base import ConnectionEvent, ConnectionState, EventHub

from .errors import exception_error
from .regmap import Table

__all__ = ["ReplayLink"]


class ReplayLink:
    """Answers register requests from a capture file (or its lines)."""

    def __init__(self, capture: str | Path | Sequence[str], *, device: str = "replay") -> None:
        if isinstance(capture, str | Path):
            lines = Path(capture).read_text(encoding="utf-8").splitlines()
        else:
            lines = list(capture)
        self.device = device
        self._entries = [json.loads(line) for line in lines if line.strip()]
        self._entries = [e for e in self._entries if e.get("op") in ("read", "write")]
        self.unit_id = int(self._entries[0]["unit"]) if self._entries else 1
        self._index = 0
        self._open = False
        self._hub = EventHub()

    @property
    def remaining(self) -> int:
        """Captured requests not replayed yet."""
        return len(self._entries) - self._index

    async def open(self) -> None:
        """Start replaying."""
        self._open = True
        self._hub.publish(self.device, ConnectionEvent(ConnectionState.CONNECTED, "replay"))

    async def close(self) -> None:
        """Stop replaying."""
        if self._open:
            self._open = False
            self._hub.publish(self.device, ConnectionEvent(ConnectionState.DISCONNECTED, "closed"))
        self._hub.end()

    def events(self) -> AsyncIterator[ConnectionEvent]:
        """Connection-state changes (connected on open, disconnected on close)."""
        return self._hub.subscribe()

    async def read(self, table: Table, address: int, count: int, *, operation: str) -> list[int]:
        """The recorded answer of the next read, which must be this one."""
        request = {"op": "read", "table": table, "address": address, "count": count}
        return list(self._expect(request, operation)["result"])

    async def write(self, table: Table, address: int, values: list[int], *, operation: str) -> None:
        """Check the next recorded write is this one (and raise its recorded error, if any)."""
        self._expect(
            {"op": "write", "table": table, "address": address, "values": values}, operation
        )

    def _expect(self, request: dict[str, Any], operation: str) -> dict[str, Any]:
        if not self._open:
            raise ConnectionLost(self.device, operation, "replay is not open", hint="open it")
        actual = json.dumps(request, sort_keys=True).encode()
        if self._index >= len(self._entries):
            raise ReplayMismatch(self.device, operation, self._index, None, actual)
        entry: dict[str, Any] = self._entries[self._index]
        recorded = {k: entry.get(k) for k in request}
        if recorded != request:
            expected = json.dumps(recorded, sort_keys=True).encode()
            raise ReplayMismatch(self.device, operation, self._index, expected, actual)
        self._index += 1
        if "error" in entry:
            raise self._error(entry, operation)
        return entry

    def _error(self, entry: dict[str, Any], operation: str) -> DeviceError:
        error = entry["error"]
        if "code" in error:
            return exception_error(
                self.device,
                operation,
                int(error["code"]),
                unit=int(entry["unit"]),
                table=entry["table"],
                address=int(entry["address"]),
            )
        if error["type"] == "DeviceTimeout":
            return DeviceTimeout(self.device, operation, 0.0)
        return ConnectionLost(self.device, operation, f"(replayed) {error['message']}")
