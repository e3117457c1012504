"""The OPC UA event-log family: a device on an OPC UA server whose events are numbered (`Seq`
from 1, no gaps), kept in an `EventLog`, emitted as custom event types from the Server object,
mirrored in status variables (the newest Seq among them), and read back as JSON Lines, with a
first ``{"gap": {"from", "to"}}`` line for what the log no longer holds.

A device subclasses `OpcUaEventLogDevice`, passes its address space and its event types by
kind, logs events with `event(kind, message, **fields)` (synchronous: they are published in
order by one task), may override `status_for(entry)` to mirror an event in status variables and
`after_events()` to publish what the events changed, and serves `read_log(first)` from its
back-fill method. At ``speed=max`` virtual time starts with the first client session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import datetime
from typing import Any, ClassVar, Literal

from cellauto.sim.clock import Clock
from cellauto.sim.device import ClockPin, EventLog
from cellauto.sim.servers.opcua import EventType, Obj, OpcUaServer
from cellauto.sim.truth import GroundTruth

__all__ = ["OpcUaEventLogDevice"]

EVENT_ONLY = ("Time", "Message", "Severity")
"""Entry keys that are BaseEventType fields (namespace 0), not the type's own."""


class OpcUaEventLogDevice:
    """The family base; see the module doc."""

    SOURCE: ClassVar[str] = "device"
    """SourceName of every event."""
    SEQ_STATUS: ClassVar[str] = "EventSeq"
    """The status variable that follows the newest published Seq."""

    def __init__(
        self,
        clock: Clock,
        objects: Sequence[Obj],
        *,
        namespace: str,
        event_types: Mapping[str, EventType],
        status_path: Callable[[int, str], str],
        name: str,
        port: int = 0,
        anonymous: Literal["read", "operate"] = "read",
        truth: GroundTruth | None = None,
        maxlen: int = 100_000,
    ) -> None:
        self.clock = clock
        self.event_types = dict(event_types)
        self.server = OpcUaServer(
            objects,
            namespace=namespace,
            event_types=list(self.event_types.values()),
            name=name,
            port=port,
            anonymous=anonymous,
        )
        self.truth = truth if truth is not None else GroundTruth()
        self.log = EventLog(clock, self.truth, maxlen=maxlen)
        self.status: dict[str, Any] = {}
        self.ns = 2
        """The device namespace's index (known once started)."""
        self._status_path = status_path
        self._outbox: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._start_pin = ClockPin(clock)
        self._tasks: list[asyncio.Task[Any]] = []

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the server and the event publisher (at speed=max, hold the clock until the
        first client session)."""
        await self.server.start()
        self.ns = self.server.namespace_index
        self.wait_for_client()
        self.spawn(self._publisher(), "publisher")

    def wait_for_client(self) -> None:
        """At speed=max hold virtual time until a client is connected with a session: at
        start, so a seeded run does not depend on how long the client took to connect, and
        after a dropped link, so an outage lasts its declared time rather than however many
        virtual hours pass while the client's reconnect back-off waits in real time."""
        if self.clock.speed == "max" and not self._start_pin.held:
            self._start_pin.hold()
            self.spawn(self._release_on_client(), "wait for client")

    async def _release_on_client(self) -> None:
        # asyncua offers no session or connection hook
        while not (self.server.sessions and self.server.connections):  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        self._start_pin.release()

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run a background task the device cancels when it stops."""
        self._tasks.append(asyncio.create_task(coro, name=f"{self.SOURCE} {name}"))

    async def stop(self) -> None:
        """Cancel every task, then stop the server."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._start_pin.release()
        await self.server.stop()

    @property
    def seq(self) -> int:
        """The newest event's Seq."""
        return self.log.seq

    # -- events -------------------------------------------------------------------------------

    def event(self, kind: str, message: str, *, severity: int = 100, **fields: Any) -> int:
        """Log an event now (virtual time) and queue it for publication; returns its Seq."""
        entry = {"Kind": kind, "Seq": self.log.seq + 1, "Time": self.clock.now()}
        entry |= {"Message": message, "Severity": severity, **fields}
        self.log.append(kind, entry)
        self._outbox.append(entry)
        self._wake.set()
        return self.seq

    def status_for(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """Status variables to update with an event, before it is emitted (none by default)."""
        return {}

    async def after_events(self) -> None:
        """Called after each batch of published events (nothing by default)."""

    async def _publisher(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            with self.clock.busy():
                while self._outbox:
                    await self._publish(self._outbox.popleft())
                await self.after_events()

    async def _publish(self, entry: dict[str, Any]) -> None:
        await self.set_status(**self.status_for(entry), **{self.SEQ_STATUS: entry["Seq"]})
        fields = {k: v for k, v in entry.items() if k not in EVENT_ONLY}
        await self.server.emit_event(
            self.event_types[entry["Kind"]].name,
            entry["Message"],
            severity=entry["Severity"],
            source=self.SOURCE,
            time=entry["Time"],
            **fields,
        )

    def read_log(self, first: int) -> tuple[str, int]:
        """Events from Seq `first` as JSON Lines (a gap line first if some are gone), and the
        newest Seq."""
        entries, lost = self.log.since(first)
        lines = [] if lost is None else [json.dumps({"gap": {"from": lost[0], "to": lost[1]}})]
        for entry in entries:
            data = dict(entry.data) | {"Time": entry.time.isoformat()}
            lines.append(json.dumps(data, default=_iso))
        return "\n".join(lines), self.seq

    async def set_status(self, **values: Any) -> None:
        """Write status variables whose value changed (stamped with the device clock)."""
        for name, value in values.items():
            if self.status.get(name) != value:
                self.status[name] = value
                await self.server.set(self._status_path(self.ns, name), value, self.clock.now())


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot log {value!r}")
