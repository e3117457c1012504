"""The Maholo API as a published contract: the OpenAPI document matches the simulator's routes,
and a plain HTTP client written from the document (urllib, not our adapter or aiohttp) gets
answers that validate against it."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from cellauto.sim import start_simulator
from cellauto_simulators.maholo import MaholoSimulator

DOC_PATH = Path(__file__).resolve().parents[2] / "schemas" / "protocols" / "maholo.openapi.json"
DOC: dict[str, Any] = json.loads(DOC_PATH.read_text(encoding="utf-8"))
DEFS = json.loads(
    json.dumps(DOC["components"]["schemas"]).replace('"#/components/schemas/', '"#/$defs/')
)
TOKEN = "plain-client-token"


def check(instance: Any, schema: dict[str, Any]) -> None:
    """Validate `instance` against a schema of the document (its refs resolved in it)."""
    text = json.dumps(schema).replace('"#/components/schemas/', '"#/$defs/')
    jsonschema.Draft202012Validator(json.loads(text) | {"$defs": DEFS}).validate(instance)


def response_schema(path: str, method: str, status: str) -> dict[str, Any]:
    content = DOC["paths"][path][method]["responses"][status]
    if "$ref" in content:
        content = DOC["components"]["responses"][content["$ref"].rsplit("/", 1)[1]]
    media = content["content"]
    return dict(next(iter(media.values()))["schema"])


def test_the_document_is_openapi_3_1_with_valid_schemas() -> None:
    assert DOC["openapi"] == "3.1.0"
    assert "cellauto's own design" in DOC["info"]["description"]
    for schema in DOC["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_the_document_names_every_endpoint_the_issue_lists() -> None:
    ops = {op["operationId"] for item in DOC["paths"].values() for op in item.values()}
    wanted = {
        "getIdentity", "getStatus", "submitJob", "listJobs", "getJob", "cancelJob",
        "robotLog", "commandLog", "listPrompts", "answerPrompt", "listAlarms",
        "acknowledgeAlarm", "labware", "listImages", "getImage", "events",
    }  # fmt: skip
    assert wanted <= ops


async def test_the_document_and_the_simulator_serve_the_same_routes() -> None:
    sim = await start_simulator("maholo", seed=1)
    try:
        assert isinstance(sim, MaholoSimulator)
        served = {(method.lower(), path) for method, path in sim.server.routes}
    finally:
        await sim.stop()
    documented = {(m, p) for p, item in DOC["paths"].items() for m in item}
    assert served == documented


def _call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, str, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method.upper())
    for key, value in (headers or {}).items():
        request.add_header(key, value)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get_content_type(), error.read()


class PlainClient:
    """An HTTP client written from the OpenAPI document alone (blocking urllib in a thread)."""

    def __init__(self, base: str, token: str | None) -> None:
        self.base = base
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(
        self, method: str, path: str, body: Any = None, **headers: str
    ) -> tuple[int, str, bytes]:
        return await asyncio.to_thread(_call, self.base, method, path, body, self.headers | headers)

    async def json(self, method: str, template: str, path: str, status: int, **kw: Any) -> Any:
        code, kind, raw = await self.call(method, path, **kw)
        assert code == status, raw
        expected = response_schema(template, method.lower(), str(status))
        document = json.loads(raw)
        check(document, expected)
        if status >= 400:
            assert kind == "application/problem+json"
        return document


@pytest.fixture
async def plain() -> AsyncIterator[tuple[MaholoSimulator, PlainClient]]:
    sim = await start_simulator("maholo", seed=2, speed=3600.0, token=TOKEN)
    assert isinstance(sim, MaholoSimulator)
    try:
        yield sim, PlainClient(sim.server.base_url, TOKEN)
    finally:
        await sim.stop()


async def test_a_plain_client_without_the_token_gets_a_401_problem(
    plain: tuple[MaholoSimulator, PlainClient],
) -> None:
    sim, _client = plain
    anonymous = PlainClient(sim.server.base_url, None)
    problem = await anonymous.json("GET", "/jobs", "/jobs", 401)
    assert problem["status"] == 401


async def test_a_plain_client_following_the_document_submits_and_lists_the_job_queue(
    plain: tuple[MaholoSimulator, PlainClient],
) -> None:
    _sim, client = plain
    await client.json("GET", "/identity", "/identity", 200)
    status = await client.json("GET", "/status", "/status", 200)
    assert status["state"] == "STANDBY"
    job = {"program": "iPSC-RPE differentiation", "run_id": "R-plain", "parameters": {}}
    refused = await client.json("POST", "/jobs", "/jobs", 428, body=job)
    assert refused["status"] == 428
    first = await client.json("POST", "/jobs", "/jobs", 201, body=job, **{"Idempotency-Key": "k"})
    again = await client.json("POST", "/jobs", "/jobs", 201, body=job, **{"Idempotency-Key": "k"})
    assert first == again
    queue = await client.json("GET", "/jobs", "/jobs", 200)
    assert [j["job_id"] for j in queue["jobs"]] == [first["job"]["job_id"]]
    one = await client.json("GET", "/jobs/{job_id}", f"/jobs/{first['job']['job_id']}", 200)
    assert one["run_id"] == "R-plain"
    prompts = await client.json("GET", "/prompts", "/prompts", 200)
    assert [p["kind"] for p in prompts["prompts"]] == ["step"]
    for template in ("/alarms", "/labware", "/images", "/log/jobs", "/channels"):
        await client.json("GET", template, template, 200)
    reading = await client.json(
        "GET", "/channels/{channel}", "/channels/incubator.temperature", 200
    )
    assert reading["unit"] == "Cel"
    await client.json("GET", "/channels/{channel}", "/channels/nope", 404)
    await client.json("POST", "/control", "/control", 409, body={"command": "clear"})
    await client.json("DELETE", "/jobs/{job_id}", f"/jobs/{first['job']['job_id']}", 200)
    await client.json("GET", "/jobs/{job_id}", "/jobs/J9999", 404)


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"plates": "eight"}, "plates must be a number"),
        ({"trypsin_period": float("nan")}, "trypsin_period must be a finite number"),
        ({"trypsin_period": 90}, "trypsin_period"),
        ({"trypsin_period": {"value": 20, "unit": "h"}}, "trypsin_period"),
        ({"trypsin_period": {"value": 20}}, "is not a value or {value, unit}"),
        ({"spin_speed": 3}, "unknown parameter spin_speed"),
    ],
)
async def test_a_job_with_a_parameter_its_program_refuses_is_a_422_naming_it(
    plain: tuple[MaholoSimulator, PlainClient], parameters: dict[str, Any], named: str
) -> None:
    _sim, client = plain
    job = {"program": "iPSC-RPE differentiation", "run_id": "R-bad", "parameters": parameters}
    key = {"Idempotency-Key": f"bad-{named}"}
    problem = await client.json("POST", "/jobs", "/jobs", 422, body=job, **key)
    assert named in problem["detail"]
    assert (await client.json("GET", "/jobs", "/jobs", 200))["jobs"] == []
