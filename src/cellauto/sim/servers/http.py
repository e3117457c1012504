"""The HTTP family's server side for simulators: JSON routes, a numbered WebSocket event
stream with resume, bearer-token checks, RFC 9457 problem details, idempotency keys, TLS, and
the wire faults the simulator engine injects (aiohttp).

A device registers synchronous handlers with `route(method, path, handler)`; a handler gets an
`HttpRequest` and returns a JSON value (200), a `Reply` (another status), or raises `Problem`.
Handlers run as one atomic step of virtual time (the clock is held busy while they run). The
device publishes events with `emit(kind, data)`: they go into its `EventLog` (and so into the
ground truth) and to every open stream. Clients resume the stream with ``?after=<seq>``.

A POST carrying an ``Idempotency-Key`` is handled once: a repeat with the same key and body gets
the first answer again; the same key with another body is refused (422). Faults: `unplug()` /
`plug()` drop every connection and refuse new ones, `stall()` / `resume()` stop answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from cellauto.sim.clock import Clock
from cellauto.sim.device import ClockPin, EventLog, LogEntry

__all__ = ["HttpRequest", "HttpSimServer", "Problem", "Reply", "problem_body"]

logger = logging.getLogger("cellauto.sim.servers")

PROBLEM_TYPE = "https://cellauto.dev/problems/"
"""Base of the problem ``type`` URIs this family uses (``<base><slug>``)."""


class Problem(Exception):
    """A refusal as an RFC 9457 problem: `status`, a short `title`, a `detail` and a `slug`
    (the problem type, ``PROBLEM_TYPE + slug``)."""

    def __init__(self, status: int, title: str, detail: str = "", slug: str = "") -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.slug = slug or title.lower().replace(" ", "-")


def problem_body(problem: Problem, instance: str = "") -> dict[str, Any]:
    """The JSON problem document of `problem`."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE + problem.slug,
        "title": problem.title,
        "status": problem.status,
    }
    if problem.detail:
        body["detail"] = problem.detail
    if instance:
        body["instance"] = instance
    return body


@dataclass(frozen=True)
class HttpRequest:
    """One request as a handler sees it."""

    method: str
    path: str
    match: Mapping[str, str]
    query: Mapping[str, str]
    body: Any


@dataclass(frozen=True)
class Reply:
    """A handler's answer with a status other than 200 (`body` None: no content)."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    """Bytes bodies are sent as they are with this type; anything else as JSON."""


Handler = Callable[[HttpRequest], Any]


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_message(entry: LogEntry) -> str:
    """The stream message of one logged event."""
    return json.dumps(
        {"seq": entry.seq, "kind": entry.kind, "time": _stamp(entry.time), "data": entry.data},
        separators=(",", ":"),
    )


class _Stream:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()


class HttpSimServer:
    """One simulated device's HTTP endpoint on 127.0.0.1 (see the module doc).

    `token`: the bearer token every request must carry (None: no authentication).
    `ssl_context`: serve https. `events_path`: where the event stream is.
    """

    def __init__(
        self,
        clock: Clock,
        log: EventLog,
        *,
        device: str,
        token: str | None = None,
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        events_path: str = "/events",
        idempotency_cache: int = 1024,
    ) -> None:
        self.clock = clock
        self.log = log
        self.device = device
        self.token = token
        self.port = port
        self.host = "127.0.0.1"
        self.ssl_context = ssl_context
        self.events_path = events_path
        self.start_pin = ClockPin(clock)
        """Held from `hold_until_first_client()` until the first request arrives."""
        self._routes: list[tuple[str, str, Handler, bool]] = []
        self._streams: list[_Stream] = []
        self._idempotent: OrderedDict[str, tuple[str, web.Response]] = OrderedDict()
        self._idempotency_cache = idempotency_cache
        self._unplugged = False
        self._running = asyncio.Event()
        self._running.set()
        self._runner: web.AppRunner | None = None
        self.requests = 0
        """Requests handled (not counting those refused by a fault)."""
        self.replayed = 0
        """Requests answered from the idempotency cache."""

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def route(
        self, method: str, path: str, handler: Handler, *, key_required: bool = False
    ) -> None:
        """Serve `handler` at `method` `path` (aiohttp path syntax: ``/jobs/{job_id}``);
        `key_required`: refuse a request without an ``Idempotency-Key`` (428)."""
        self._routes.append((method.upper(), path, handler, key_required))

    @property
    def routes(self) -> list[tuple[str, str]]:
        """(method, path) of every route, the event stream included."""
        return [("GET", self.events_path)] + [(m, p) for m, p, _h, _k in self._routes]

    def hold_until_first_client(self) -> None:
        """At speed=max, keep virtual time still until the first request."""
        self.start_pin.hold()

    # --- events --------------------------------------------------------------------------------

    def emit(self, kind: str, data: Mapping[str, Any]) -> int:
        """Log one event and send it to every open stream; returns its seq."""
        entry = self.log.append(kind, data)
        message = event_message(entry)
        for stream in self._streams:
            stream.queue.put_nowait(message)
        return entry.seq

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get(self.events_path, self._events)
        for method, path, handler, key_required in self._routes:
            app.router.add_route(method, path, self._wrap(handler, key_required))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, ssl_context=self.ssl_context)
        await site.start()
        server = site._server  # the bound port when 0 was asked for
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self.start_pin.release()
        self._running.set()
        await self._drop_streams()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # --- faults --------------------------------------------------------------------------------

    async def unplug(self) -> None:
        """Drop every connection and refuse new ones until `plug()`."""
        self._unplugged = True
        await self._drop_streams()

    def plug(self) -> None:
        self._unplugged = False

    def stall(self) -> None:
        """Stop answering (requests and stream) until `resume()`."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    async def _drop_streams(self) -> None:
        for stream in list(self._streams):
            transport = stream.ws._req.transport if stream.ws._req is not None else None
            if transport is not None:
                transport.abort()
            stream.queue.put_nowait(None)

    # --- the HTTP side -------------------------------------------------------------------------

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        if self._unplugged:
            if request.transport is not None:
                request.transport.abort()
            raise web.HTTPServiceUnavailable()  # never reaches the client: the link is down
        await self._running.wait()
        self.start_pin.release()
        if self.token is not None:
            given = request.headers.get("Authorization", "")
            if given != f"Bearer {self.token}":
                problem = Problem(
                    401,
                    "Unauthorized",
                    "a valid bearer token is required" if given else "no bearer token given",
                    "unauthorized",
                )
                return self._problem(problem, request.path, {"WWW-Authenticate": "Bearer"})
        try:
            response: web.StreamResponse = await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            slug = exc.reason.lower().replace(" ", "-")
            return self._problem(Problem(exc.status, exc.reason, "", slug), request.path)
        return response

    def _problem(
        self, problem: Problem, instance: str, headers: Mapping[str, str] | None = None
    ) -> web.Response:
        return web.Response(
            status=problem.status,
            text=json.dumps(problem_body(problem, instance)),
            content_type="application/problem+json",
            headers=headers,
        )

    def _wrap(self, handler: Handler, key_required: bool) -> Callable[[web.Request], Any]:
        async def serve(request: web.Request) -> web.Response:
            raw = await request.read()
            key = request.headers.get("Idempotency-Key")
            if key_required and not key:
                return self._problem(
                    Problem(
                        428,
                        "Idempotency-Key required",
                        f"{request.method} {request.path} needs an Idempotency-Key header",
                        "idempotency-key-required",
                    ),
                    request.path,
                )
            if key is not None and request.method == "POST":
                fingerprint = f"{request.method} {request.path} {raw!r}"
                cached = self._idempotent.get(key)
                if cached is not None:
                    if cached[0] != fingerprint:
                        return self._problem(
                            Problem(
                                422,
                                "Idempotency key reused",
                                f"key {key} was used for a different request",
                                "idempotency-key-reused",
                            ),
                            request.path,
                        )
                    self.replayed += 1
                    return _copy(cached[1])
            response = self._call(handler, request, raw)
            if key is not None and request.method == "POST" and response.status < 500:
                self._idempotent[key] = (f"{request.method} {request.path} {raw!r}", response)
                while len(self._idempotent) > self._idempotency_cache:
                    self._idempotent.popitem(last=False)
                return _copy(response)
            return response

        return serve

    def _call(self, handler: Handler, request: web.Request, raw: bytes) -> web.Response:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._problem(
                Problem(400, "Bad Request", "the body is not JSON", "bad-request"), request.path
            )
        query = dict(request.query.items())
        call = HttpRequest(request.method, request.path, dict(request.match_info), query, body)
        self.requests += 1
        with self.clock.busy():
            try:
                answer = handler(call)
            except Problem as problem:
                return self._problem(problem, request.path)
            except Exception as exc:  # a simulator bug: answer as a server would, and log it
                logger.exception("%s: %s %s failed", self.device, request.method, request.path)
                failure = Problem(500, "Internal Server Error", type(exc).__name__, "internal")
                return self._problem(failure, request.path)
        if isinstance(answer, Reply):
            if answer.body is None:
                return web.Response(status=answer.status, headers=answer.headers)
            if isinstance(answer.body, bytes):
                return web.Response(
                    status=answer.status,
                    body=answer.body,
                    content_type=answer.content_type,
                    headers=answer.headers,
                )
            return web.json_response(answer.body, status=answer.status, headers=answer.headers)
        return web.json_response(answer)

    # --- the event stream ----------------------------------------------------------------------

    async def _events(self, request: web.Request) -> web.StreamResponse:
        text = request.query.get("after", "0")
        if not text.isdigit():
            raise_problem = Problem(400, "Bad Request", "after must be an event seq", "bad-after")
            return self._problem(raise_problem, request.path)
        after = int(text)
        ws = web.WebSocketResponse(heartbeat=None, autoping=True)
        await ws.prepare(request)
        stream = _Stream(ws)
        entries, lost = self.log.since(after + 1)
        if lost is not None:
            notice = {"kind": "lost", "from": lost[0], "to": lost[1]}
            stream.queue.put_nowait(json.dumps(notice))
        for entry in entries:
            stream.queue.put_nowait(event_message(entry))
        self._streams.append(stream)
        writer = asyncio.ensure_future(self._write(stream))
        try:
            async for message in ws:  # the client sends nothing but control frames
                if message.type is WSMsgType.ERROR:
                    break
        finally:
            if stream in self._streams:
                self._streams.remove(stream)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        return ws

    async def _write(self, stream: _Stream) -> None:
        while (message := await stream.queue.get()) is not None:
            await self._running.wait()
            if self._unplugged:
                return
            try:
                await stream.ws.send_str(message)
            except (ConnectionError, RuntimeError):
                return
        with contextlib.suppress(ConnectionError, RuntimeError):
            await stream.ws.close()


def _copy(response: web.Response) -> web.Response:
    """A response can be sent once: the idempotency cache answers with copies."""
    body = response.body
    return web.Response(
        status=response.status,
        body=body if isinstance(body, bytes) else None,
        content_type=response.content_type,
    )
