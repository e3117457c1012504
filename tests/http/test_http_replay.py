"""The HTTP family's capture format (ADR 0022) and its replay: a golden capture plays back in
the recorded interleaving of requests and events, and every error a capture keeps is raised
again as the same typed error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cellauto.errors import (
    AuthenticationRefused,
    ConnectionLost,
    DeviceError,
    DeviceTimeout,
    HttpProblem,
    ReplayMismatch,
)
from cellauto.transport.http import HttpReplay, ReplayStream, StreamEvent
from cellauto.transport.http.client import error_record
from cellauto.transport.http.replay import replayed_error

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "http" / "session.jsonl"
texts = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


async def test_the_golden_capture_replays_in_its_recorded_order() -> None:
    replay = HttpReplay(GOLDEN, device="m")
    client = replay.client()
    seen: list[object] = []

    async def on_event(event: StreamEvent) -> None:
        seen.append(("event", event.seq, event.kind))

    stream = ReplayStream(
        replay, client, on_event=on_event, on_lost=lambda a, b: seen.append(("lost", a, b))
    )
    await stream.start(4)
    assert client.base_url == "http://127.0.0.1:8081"
    status = await client.request("GET", "/status", operation="status")
    seen.append(("answer", status["state"]))
    volume = {"value": 7, "unit": "uL"}
    body = {"parameters": {"job_type": "passage", "plate_ids": "P1", "volume": volume}}
    with pytest.raises(HttpProblem, match=r"m: submit_job: HTTP 422 Not pipettable: 7 uL"):
        await client.request("POST", "/commands/submit_job", operation="submit_job", json_body=body)
    seen.append("refused")
    job = await client.request(
        "POST", "/jobs", operation="start", json_body={"program": "p"}, idempotency_key="k"
    )
    seen.append(("answer", job["job"]["job_id"]))
    with pytest.raises(DeviceTimeout, match="m: list jobs"):
        await client.request("GET", "/jobs", operation="list jobs", params={"status": "running"})
    await stream.ended.wait()
    await stream.close()
    assert seen == [
        ("answer", "STANDBY"),
        ("event", 5, "sample"),
        "refused",
        ("answer", "J0001"),
        ("lost", 6, 6),
        ("event", 7, "job"),
    ]
    assert stream.last_seq == 7


async def test_a_request_the_capture_does_not_hold_names_what_it_expected() -> None:
    replay = HttpReplay(GOLDEN, device="m")
    client = replay.client()
    with pytest.raises(ReplayMismatch, match=r"m: identity: .*/identity.*/status"):
        await client.request("GET", "/identity", operation="identity")


@given(
    kind=st.sampled_from([HttpProblem, AuthenticationRefused]),
    status=st.integers(400, 599),
    title=texts,
    detail=texts,
    problem_type=texts,
)
def test_problems_survive_the_capture(
    kind: type[HttpProblem], status: int, title: str, detail: str, problem_type: str
) -> None:
    error = kind("d", "op", status, title, detail, problem_type=problem_type)
    again = replayed_error("d", "op", error_record(error))
    assert type(again) is kind
    assert (again.status, again.title, again.detail, again.problem_type) == (
        status,
        title,
        detail,
        problem_type,
    )
    assert str(again).startswith(str(error).split(" (")[0])


@given(timeout=st.floats(0.001, 1e6), message=texts)
def test_timeouts_and_drops_survive_the_capture(timeout: float, message: str) -> None:
    errors: list[DeviceError] = [
        DeviceTimeout("d", "op", timeout),
        ConnectionLost("d", "op", message),
    ]
    for error in errors:
        again = replayed_error("d", "op", error_record(error))
        assert type(again) is type(error)
        assert (again.device, again.operation) == ("d", "op")
    assert replayed_error("d", "op", error_record(errors[0])).timeout == timeout  # type: ignore[attr-defined]
