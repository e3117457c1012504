"""Replay of an HTTP-family capture (JSON Lines written with ``capture=<path>``, ADR 0022):
`ReplayClient` answers the same requests with the recorded answers and `ReplayStream` delivers
the recorded events, interleaved as they were recorded. The first request that differs from the
capture raises `ReplayMismatch`.

A capture holds an ``open`` line (the base URL and whether it was TLS), then, in the order they
happened, ``request`` lines (method, path, params, body; the answer or the error) and ``event``
and ``lost`` lines (what the event stream applied).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cellauto.errors import (
    AuthenticationRefused,
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    HttpProblem,
    ProtocolError,
    ReplayMismatch,
)
from cellauto.transport.base import ConnectionEvent, ConnectionState

from .client import HttpClient, request_record
from .events import EventStream, StreamEvent

__all__ = ["HttpReplay", "ReplayClient", "ReplayStream", "replayed_error"]


class HttpReplay:
    """A capture being replayed: its lines and how far the replay has got."""

    def __init__(self, capture: str | Path | Sequence[str], *, device: str = "replay") -> None:
        if isinstance(capture, str | Path):
            lines = Path(capture).read_text(encoding="utf-8").splitlines()
        else:
            lines = list(capture)
        self.device = device
        entries = [json.loads(line) for line in lines if line.strip()]
        opened: dict[str, Any] = next((e for e in entries if e.get("op") == "open"), {})
        self.base_url = str(opened.get("base_url", "http://replay"))
        self.entries = [e for e in entries if e.get("op") in ("request", "event", "lost")]
        self.position = 0
        self.requests = 0
        self.moved = asyncio.Event()

    def advance(self) -> None:
        self.position += 1
        self.moved.set()

    async def wait_moved(self) -> None:
        self.moved.clear()
        await self.moved.wait()

    def client(self) -> ReplayClient:
        """A client answering from this capture."""
        return ReplayClient(self)


class ReplayClient(HttpClient):
    """An `HttpClient` whose answers come from a capture (see the module doc)."""

    def __init__(self, replay: HttpReplay) -> None:
        super().__init__(replay.device, replay.base_url)
        self.replay = replay

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def request(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Any:
        """The recorded answer of the next request, which must be this one (the recorded
        events before it are applied first)."""
        replay = self.replay
        sent = request_record(method.upper(), path, json_body, params)
        actual = json.dumps(sent, sort_keys=True).encode()
        while True:
            if replay.position >= len(replay.entries):
                raise ReplayMismatch(self.device, operation, replay.requests, None, actual)
            if replay.entries[replay.position]["op"] == "request":
                break
            await replay.wait_moved()  # the stream applies the events recorded before it
        entry = replay.entries[replay.position]
        recorded = {k: entry.get(k) for k in sent}
        if recorded != sent:
            expected = json.dumps(recorded, sort_keys=True).encode()
            raise ReplayMismatch(self.device, operation, replay.requests, expected, actual)
        replay.requests += 1
        self.requests += 1
        replay.advance()
        if "error" in entry:
            raise replayed_error(self.device, operation, entry["error"])
        return entry.get("answer")


class ReplayStream(EventStream):
    """An `EventStream` that applies a capture's recorded events, each once a request recorded
    before it has been answered; `ended` is set when the capture is exhausted."""

    def __init__(
        self,
        replay: HttpReplay,
        client: HttpClient,
        *,
        on_event: Callable[[StreamEvent], Awaitable[None]],
        on_lost: Callable[[int, int], object] | None = None,
        on_connection: Callable[[ConnectionEvent], None] | None = None,
    ) -> None:
        super().__init__(
            client, "", on_event=on_event, on_lost=on_lost, on_connection=on_connection
        )
        self.replay = replay
        self._player: asyncio.Task[None] | None = None

    async def start(self, after: int) -> None:
        """Start applying the recorded events."""
        self.last_seq = after
        self.hub.publish(self.device, ConnectionEvent(ConnectionState.CONNECTED, "replay"))
        self._player = asyncio.create_task(self._play(), name=f"{self.device} replay stream")

    async def close(self) -> None:
        if self._player is not None:
            self._player.cancel()
            await asyncio.gather(self._player, return_exceptions=True)
        self.hub.end()
        self.ended.set()

    async def _play(self) -> None:
        try:
            await self._apply_recorded()
        finally:
            self.ended.set()  # a wait for an event the capture does not hold ends

    async def _apply_recorded(self) -> None:
        replay = self.replay
        while replay.position < len(replay.entries):
            entry = replay.entries[replay.position]
            if entry["op"] == "request":
                await replay.wait_moved()
                continue
            if entry["op"] == "lost":
                first, last = int(entry["first"]), int(entry["last"])
                self.last_seq = max(self.last_seq, last)
                if self.on_lost is not None:
                    self.on_lost(first, last)
            else:
                event = StreamEvent(
                    int(entry["seq"]), str(entry["kind"]), str(entry["time"]), dict(entry["data"])
                )
                await self.on_event(event)
                self.last_seq = event.seq
                self.received += 1
            replay.advance()


def replayed_error(device: str, operation: str, error: dict[str, Any]) -> DeviceError:
    """The error a capture recorded (`error_record`), raised again on replay."""
    kind = error.get("type")
    if kind in ("HttpProblem", "AuthenticationRefused"):
        problem = AuthenticationRefused if kind == "AuthenticationRefused" else HttpProblem
        return problem(
            device,
            operation,
            int(error["status"]),
            str(error["title"]),
            str(error.get("detail", "")),
            problem_type=str(error.get("problem_type", "about:blank")),
        )
    if kind == "DeviceTimeout":
        return DeviceTimeout(device, operation, float(error.get("timeout", 0.0)))
    if kind == "ConnectionLost":
        return ConnectionLost(device, operation, f"(replayed) {error.get('message', '')}")
    return ProtocolError(device, operation, f"(replayed) {error.get('message', '')}")
