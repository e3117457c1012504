"""The HTTP family on a real loopback server: tokens, problems, idempotency keys, retries that
never repeat a non-idempotent request, TLS, and an event stream that resumes without loss."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cellauto.errors import AuthenticationRefused, ConnectionLost, HttpProblem
from cellauto.secrets import bearer_token
from cellauto.sim.clock import ScaledClock
from cellauto.sim.device import EventLog
from cellauto.sim.servers.http import HttpRequest, HttpSimServer, Problem, Reply
from cellauto.sim.servers.tls import self_signed
from cellauto.transport.base import Backoff
from cellauto.transport.http import EventStream, HttpClient, StreamEvent

TOKEN = "t0ken-for-tests"


class Toy:
    """A device with a counter that POST /jobs increments."""

    def __init__(self, server: HttpSimServer) -> None:
        self.server = server
        self.jobs = 0
        server.route("POST", "/jobs", self.submit)
        server.route("GET", "/jobs", self.list)
        server.route("DELETE", "/jobs/{job_id}", self.cancel)

    def submit(self, request: HttpRequest) -> Reply:
        self.jobs += 1
        seq = self.server.emit("job", {"n": self.jobs, "body": request.body})
        return Reply(201, {"job_id": f"J{self.jobs}", "event_seq": seq})

    def list(self, request: HttpRequest) -> Any:
        return {"jobs": [f"J{n}" for n in range(1, self.jobs + 1)]}

    def cancel(self, request: HttpRequest) -> Any:
        raise Problem(409, "Job not cancellable", f"{request.match['job_id']} is done", "done")


@pytest.fixture
async def toy() -> AsyncIterator[Toy]:
    clock = ScaledClock(1.0)
    server = HttpSimServer(clock, EventLog(clock, maxlen=50), device="toy", token=TOKEN)
    device = Toy(server)
    await server.start()
    try:
        yield device
    finally:
        await server.close()


async def test_requests_without_the_token_are_refused(toy: Toy) -> None:
    async with HttpClient("toy-c", toy.server.base_url) as client:
        with pytest.raises(AuthenticationRefused, match="toy-c: list jobs: HTTP 401"):
            await client.request("GET", "/jobs", operation="list jobs")
        stream = EventStream(client, "/events", on_event=_ignore)
        with pytest.raises(AuthenticationRefused):
            await stream.start(0)
    async with HttpClient("toy-c", toy.server.base_url, token=TOKEN) as client:
        assert await client.request("GET", "/jobs", operation="list jobs") == {"jobs": []}


def test_the_token_comes_from_the_secret_source(tmp_path: Path) -> None:
    assert bearer_token("maholo-1", environ={"CELLAUTO_TOKEN_MAHOLO_1": "abc"}) == "abc"
    file = tmp_path / "credentials.json"
    file.write_text('{"maholo-1": {"token": "xyz"}}', encoding="utf-8")
    file.chmod(0o600)
    assert bearer_token("maholo-1", environ={}, file=file) == "xyz"
    assert bearer_token("other", environ={}, file=file) is None


async def test_a_problem_document_becomes_a_typed_error(toy: Toy) -> None:
    async with HttpClient("toy-c", toy.server.base_url, token=TOKEN) as client:
        with pytest.raises(HttpProblem) as caught:
            await client.request("DELETE", "/jobs/J9", operation="cancel J9")
    assert caught.value.status == 409
    assert caught.value.title == "Job not cancellable"
    assert caught.value.problem_type.endswith("/done")
    assert "toy-c: cancel J9: HTTP 409" in str(caught.value)


async def test_a_job_submitted_twice_with_one_key_runs_once(toy: Toy) -> None:
    async with HttpClient("toy-c", toy.server.base_url, token=TOKEN) as client:
        first = await client.request(
            "POST", "/jobs", operation="submit", json_body={"a": 1}, idempotency_key="k1"
        )
        again = await client.request(
            "POST", "/jobs", operation="submit", json_body={"a": 1}, idempotency_key="k1"
        )
        assert first == again == {"job_id": "J1", "event_seq": 1}
        assert toy.jobs == 1
        assert toy.server.replayed == 1
        with pytest.raises(HttpProblem, match="422"):
            await client.request(
                "POST", "/jobs", operation="submit", json_body={"a": 2}, idempotency_key="k1"
            )
        assert toy.jobs == 1


async def test_only_repeatable_requests_are_retried(toy: Toy) -> None:
    async with HttpClient("toy-c", toy.server.base_url, token=TOKEN, retries=2) as client:
        await toy.server.unplug()
        with pytest.raises(ConnectionLost, match="not idempotent"):
            await client.request("POST", "/jobs", operation="submit", json_body={})
        assert client.requests == 1
        with pytest.raises(ConnectionLost):
            await client.request("GET", "/jobs", operation="list")
        assert client.requests == 1 + 3
        with pytest.raises(ConnectionLost):
            await client.request("POST", "/jobs", operation="submit", idempotency_key="k")
        assert client.requests == 4 + 3
        toy.server.plug()
        await client.request("POST", "/jobs", operation="submit", idempotency_key="k")
    assert toy.jobs == 1


async def test_the_event_stream_resumes_without_loss(toy: Toy) -> None:
    got: list[StreamEvent] = []
    states: list[str] = []
    arrived = asyncio.Event()

    async def on_event(event: StreamEvent) -> None:
        got.append(event)
        arrived.set()

    async with HttpClient("toy-c", toy.server.base_url, token=TOKEN) as client:
        stream = EventStream(
            client,
            "/events",
            on_event=on_event,
            on_connection=lambda e: states.append(str(e.state)),
            reconnect=Backoff(initial=0.01, max_delay=0.05, max_attempts=200),
            heartbeat=0,
        )
        await stream.start(0)
        for n in range(5):
            toy.server.emit("tick", {"n": n})
        await _until(arrived, lambda: len(got) == 5)
        await toy.server.unplug()
        for n in range(5, 10):
            toy.server.emit("tick", {"n": n})
        toy.server.plug()
        for n in range(10, 15):
            toy.server.emit("tick", {"n": n})
        await _until(arrived, lambda: len(got) == 15)
        await stream.close()
    assert [e.seq for e in got] == list(range(1, 16))
    assert [e.data["n"] for e in got] == list(range(15))
    assert stream.resumes >= 1
    assert states.count("disconnected") == 1


async def test_what_the_log_no_longer_holds_is_one_lost_range() -> None:
    clock = ScaledClock(1.0)
    server = HttpSimServer(clock, EventLog(clock, maxlen=3), device="toy")
    await server.start()
    lost: list[tuple[int, int]] = []
    got: list[int] = []
    arrived = asyncio.Event()

    async def on_event(event: StreamEvent) -> None:
        got.append(event.seq)
        arrived.set()

    try:
        for n in range(10):
            server.emit("tick", {"n": n})
        async with HttpClient("toy-c", server.base_url) as client:
            stream = EventStream(
                client, "/events", on_event=on_event, on_lost=lambda a, b: lost.append((a, b))
            )
            await stream.start(0)
            await _until(arrived, lambda: len(got) == 3)
            await stream.close()
    finally:
        await server.close()
    assert lost == [(1, 7)]
    assert got == [8, 9, 10]


async def test_https_with_a_private_trust_anchor(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    clock = ScaledClock(1.0)
    server = HttpSimServer(clock, EventLog(clock), device="toy", ssl_context=context)
    Toy(server)
    await server.start()
    try:
        assert server.base_url.startswith("https://")
        async with HttpClient("toy-c", server.base_url, ca_file=str(cert)) as client:
            assert client.tls
            assert await client.request("GET", "/jobs", operation="list") == {"jobs": []}
        async with HttpClient("toy-c", server.base_url, retries=0) as untrusting:
            with pytest.raises(ConnectionLost, match="TLS"):
                await untrusting.request("GET", "/jobs", operation="list")
    finally:
        await server.close()


async def _ignore(event: StreamEvent) -> None:
    pass


async def _until(signal: asyncio.Event, done: Any) -> None:
    while not done():
        signal.clear()
        await signal.wait()
