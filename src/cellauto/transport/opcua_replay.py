"""Replay of an OPC UA capture as a transport: same API as `OpcUaTransport`, answers from the
recording, and `OpcUaReplayMismatch` on the first request that differs from it.

Notifications keep their place in the capture: one recorded after the n-th request is delivered
only once n requests have been replayed, so an adapter sees data and events in the order it
saw them live."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any, Self

from cellauto.errors import ConnectionLost, DeviceError, OpcUaReplayMismatch
from cellauto.transport.opcua import BrowseEntry, DataChange
from cellauto.transport.opcua_capture import decode, encode

__all__ = ["OpcUaReplay"]


class _ReplaySubscription:
    """Yields the notifications recorded for one subscription, then ends."""

    def __init__(self, replay: OpcUaReplay, request: dict[str, Any]) -> None:
        self._replay = replay
        self._request = request
        self._items: list[dict[str, Any]] | None = None

    async def start(self) -> None:
        """Match the subscribe request against the capture."""
        if self._items is None:
            entry = self._replay._expect(self._request, f"{self._request['op']} {self._describe()}")
            self._items = list(self._replay._notifications.get(entry["sub"], []))

    def _describe(self) -> str:
        return str(self._request.get("paths") or self._request.get("path") or "Server")

    async def close(self) -> None:
        """End the iteration."""
        self._items = []

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Any:
        await self.start()
        assert self._items is not None
        if not self._items:
            raise StopAsyncIteration
        await self._replay._reached(self._items[0]["after"])
        if not self._items:  # closed while waiting
            raise StopAsyncIteration
        item = self._items.pop(0)
        if item["op"] == "event":
            return decode(item["fields"])
        return DataChange(
            item["path"], decode(item["value"]), decode(item["source_timestamp"]), item["status"]
        )


class OpcUaReplay:
    """Plays back a capture (a path, an open stream, or JSON Lines text lines)."""

    def __init__(self, source: str | Path | IO[str] | Sequence[str], *, device: str) -> None:
        if isinstance(source, str | Path):
            lines = Path(source).read_text(encoding="utf-8").splitlines()
        elif isinstance(source, Sequence):
            lines = list(source)
        else:
            lines = source.read().splitlines()
        entries = [json.loads(line) for line in lines if line.strip()]
        self.device = device
        self._requests = [e for e in entries if e["dir"] == "out"]
        self._notifications: dict[int, list[dict[str, Any]]] = {}
        requests = 0
        for e in entries:
            if e["dir"] == "out":
                requests += 1
            elif e["op"] in ("data", "event"):
                self._notifications.setdefault(e["sub"], []).append(e | {"after": requests})
        self._index = 0
        self._open = False
        self._waiters: list[asyncio.Future[None]] = []

    async def _reached(self, index: int) -> None:
        """Wait until `index` requests have been replayed (or the replay closed)."""
        while self._open and self._index < index:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def remaining(self) -> int:
        """Recorded requests not yet replayed."""
        return len(self._requests) - self._index

    async def open(self) -> None:
        """Start replaying."""
        self._open = True

    async def close(self) -> None:
        """Stop replaying; subscriptions end."""
        self._open = False
        self._wake()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _expect(self, request: dict[str, Any], operation: str) -> dict[str, Any]:
        if not self._open:
            raise ConnectionLost(self.device, operation, "replay not open", hint="call open()")
        index = self._index
        if index >= len(self._requests):
            raise OpcUaReplayMismatch(self.device, operation, index, None)
        entry: dict[str, Any] = self._requests[index]
        wanted = {k: encode(v) for k, v in request.items()}
        if any(entry.get(k) != v for k, v in wanted.items()):
            shown = {k: entry.get(k) for k in wanted}
            raise OpcUaReplayMismatch(self.device, operation, index, json.dumps(shown))
        self._index += 1
        self._wake()
        if "error" in entry:
            raise DeviceError(self.device, operation, f"(replayed) {entry['error']['message']}")
        return entry

    async def read(self, path: str) -> Any:
        """The recorded value of the next `read`."""
        return decode(self._expect({"op": "read", "path": path}, f"read {path}")["result"])

    async def read_data(self, path: str) -> DataChange:
        """The recorded value, timestamp and status of the next `read_data`."""
        result = decode(self._expect({"op": "read_data", "path": path}, f"read {path}")["result"])
        return DataChange(
            result["path"], result["value"], result["source_timestamp"], result["status"]
        )

    async def read_many(self, paths: Sequence[str]) -> list[Any]:
        """The recorded values of the next `read_many`."""
        entry = self._expect({"op": "read_many", "paths": list(paths)}, f"read {', '.join(paths)}")
        return list(decode(entry["result"]))

    async def write(self, path: str, value: Any, variant_type: str | None = None) -> None:
        """Check the next `write` has this path and value."""
        self._expect({"op": "write", "path": path, "value": value}, f"write {path}")

    async def call(self, object_path: str, method_name: str, *args: Any) -> Any:
        """The recorded result of the next `call` with these arguments."""
        request = {"op": "call", "path": object_path, "method": method_name, "args": list(args)}
        return decode(self._expect(request, f"call {method_name}")["result"])

    async def browse(self, path: str = "") -> list[BrowseEntry]:
        """The recorded children of the next `browse`."""
        entry = self._expect({"op": "browse", "path": path}, f"browse {path or 'Objects'}")
        return [BrowseEntry(*e) for e in entry["result"]]

    def subscribe(self, paths: Sequence[str], period: float = 0.1) -> _ReplaySubscription:
        """The recorded data changes of the matching subscription."""
        return _ReplaySubscription(self, {"op": "subscribe", "paths": list(paths)})

    def subscribe_events(
        self, object_path: str = "", event_types: Sequence[str] = ()
    ) -> _ReplaySubscription:
        """The recorded events of the matching event subscription."""
        request = {"op": "subscribe_events", "path": object_path, "event_types": list(event_types)}
        return _ReplaySubscription(self, request)
