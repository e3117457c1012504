"""The Cocoon simulator answers as schemas/protocols/cocoon.md says, to a plain asyncua client
(no cellauto adapter): the independent-client scenarios of issue 13."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from asyncua import Client, ua
from asyncua.common.node import Node

from cellauto.profiles import load_profile
from cellauto.schema import ProgramTemplate
from cellauto_simulators.cocoon import CocoonSimulator, start_simulator

pytestmark = pytest.mark.asyncio(loop_scope="module")
PROFILE = load_profile("cocoon")
NAMESPACE = "urn:cellauto:cocoon:v1"


def endpoint(sim: CocoonSimulator, user: str | None = "operator") -> str:
    """The simulator's endpoint, logged in as `user` (any name logs in; None: anonymous)."""
    host = sim.url.removeprefix("cocoon+opcua://").rpartition("@")[2]
    return f"opc.tcp://{user + '@' if user else ''}{host}"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def sim() -> AsyncIterator[CocoonSimulator]:
    simulator = await start_simulator(PROFILE, {"speed": "max", "seed": "3"})
    yield simulator
    await simulator.stop()


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client(sim: CocoonSimulator) -> AsyncIterator[Client]:
    async with Client(endpoint(sim)) as opcua:
        yield opcua


async def cocoon_node(client: Client, *path: str) -> Node:
    ns = await client.get_namespace_index(NAMESPACE)
    return await client.nodes.objects.get_child([f"{ns}:Cocoon", *(f"{ns}:{p}" for p in path)])


async def call(client: Client, method: str, *args: Any) -> tuple[str, Any]:
    """(status name, outputs) of a method call."""
    ns = await client.get_namespace_index(NAMESPACE)
    root = await cocoon_node(client)
    try:
        return "Good", await root.call_method(f"{ns}:{method}", *args)
    except ua.UaStatusCodeError as exc:
        return type(exc).__name__, None


async def status_of(client: Client, method: str, *args: Any) -> str:
    status, _ = await call(client, method, *args)
    return status


async def write_status(node: Node, value: Any, vtype: ua.VariantType) -> str:
    try:
        await node.write_value(ua.DataValue(ua.Variant(value, vtype)))
    except ua.UaStatusCodeError as exc:
        return type(exc).__name__
    return "Good"


def template(name: str, *, install: bool, feed_hours: float = 1.0) -> ProgramTemplate:
    steps: list[dict[str, Any]] = []
    if install:
        minute = {"value": 1, "unit": "min"}
        steps.append({"name": "Install", "unit_operation": "install_cassette", "duration": minute})
    hours = {"value": feed_hours, "unit": "h"}
    steps.append({"name": "Feed", "unit_operation": "feed", "duration": hours})
    base = PROFILE.program("CAR-T").model_dump(exclude={"content_hash", "steps", "parameters"})
    return ProgramTemplate.model_validate(
        base
        | {
            "name": name,
            "steps": steps,
            "parameters": [
                {
                    "name": "feed_interval",
                    "unit": "h",
                    "default": 12,
                    "minimum": 1,
                    "maximum": 96,
                    "source": "assumed",
                }
            ],
        }
    )


async def load(client: Client, program: ProgramTemplate) -> str:
    return await status_of(client, "LoadProtocol", program.model_dump_json(), program.content_hash)


async def test_method_arguments_are_named(client: Client) -> None:
    start = await cocoon_node(client, "Start")
    inputs = await (await start.get_child("0:InputArguments")).read_value()
    outputs = await (await start.get_child("0:OutputArguments")).read_value()
    assert [a.Name for a in inputs] == ["RunId", "BatchId", "PatientId", "Parameters"]
    assert [a.Name for a in outputs] == ["EstimatedRuntime", "Seq"]


async def test_every_variable_with_a_unit_has_its_engineering_units(client: Client) -> None:
    for name, channel in PROFILE.channels().items():
        unit, variable = name.split(".")
        node = await cocoon_node(client, *_path(unit, variable))
        if channel.unit is None:
            continue
        units = await (await node.get_child("0:EngineeringUnits")).read_value()
        assert units.DisplayName.Text == channel.unit, name
        assert units.NamespaceUri == "http://unitsofmeasure.org"


async def test_channels_with_choices_start_inside_them(client: Client) -> None:
    for name, channel in PROFILE.channels().items():
        if channel.choices:
            node = await cocoon_node(client, *_path(*name.split(".")))
            assert await node.read_value() in channel.choices, name


async def test_setpoint_writes_outside_the_range_or_nan_are_refused(client: Client) -> None:
    node = await cocoon_node(client, "Chamber", "TemperatureSetpoint")
    before = await node.read_value()
    assert await write_status(node, 45.0, ua.VariantType.Double) == "BadOutOfRange"
    assert await write_status(node, math.nan, ua.VariantType.Double) == "BadOutOfRange"
    assert await node.read_value() == before
    assert await write_status(node, 36.5, ua.VariantType.Double) == "Good"
    assert await write_status(node, before, ua.VariantType.Double) == "Good"


async def test_wrong_argument_counts_and_types_get_typed_status_codes(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        assert await status_of(client, "Start", "r", "b", "p") == "BadArgumentsMissing"
        assert await status_of(client, "TakeSample", 1.0, 2.0) == "BadTooManyArguments"
        assert await status_of(client, "TakeSample", "one") == "BadInvalidArgument"
        assert await status_of(client, "ReadEventLog", 1) == "Good"  # an Int64 fits a UInt64
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("volume", [50.0, math.nan, -1.0])
async def test_take_sample_checks_its_volume_against_the_profile(
    client: Client, volume: float
) -> None:
    assert await status_of(client, "TakeSample", volume) == "BadInvalidArgument"


async def test_read_event_log_from_zero_reports_no_gap(client: Client) -> None:
    _, (events, _last) = await call(client, "ReadEventLog", ua.Variant(0, ua.VariantType.UInt64))
    assert all("gap" not in json.loads(line) for line in events.splitlines())


@pytest.mark.parametrize(
    "parameters",
    [
        '{"starting_cells": -1}',
        '{"starting_cells": {"value": 2e8, "unit": "kg"}}',
        '{"bogus": 1}',
        '{"moi": NaN}',
        '{"moi": "five"}',
        '{"moi": true}',
        "[1]",
        "not json",
    ],
)
async def test_start_refuses_parameters_the_protocol_does_not_allow(
    client: Client, parameters: str
) -> None:
    assert await load(client, PROFILE.program("CAR-T")) == "Good"
    assert await status_of(client, "Start", "r", "b", "p", parameters) == "BadInvalidArgument"
    state = await cocoon_node(client, "Status", "State")
    assert await state.read_value() == "Ready"


async def test_validate_protocol_and_start_agree_on_the_cassette(client: Client) -> None:
    assert await load(client, template("no cassette", install=False)) == "Good"
    _, problems = await call(client, "ValidateProtocol")
    assert json.loads(problems) == ["no cassette seated"]
    assert await status_of(client, "Start", "r", "b", "p", "{}") == "BadResourceUnavailable"
    assert await load(client, PROFILE.program("CAR-T")) == "Good"
    _, problems = await call(client, "ValidateProtocol")
    assert json.loads(problems) == []


async def test_a_parameter_left_out_gets_its_default(client: Client) -> None:
    """feed_interval defaults to 12 h: a 1 h feed step then feeds never (it fed on every
    update when the default was not applied)."""
    assert await load(client, template("defaults", install=True)) == "Good"
    status, _ = await call(client, "Start", "run-defaults", "b", "p", "{}")
    assert status == "Good"
    result = await _result_of(client, "run-defaults")
    assert json.loads(result["Properties"])["feeds"]["value"] == 0
    await call(client, "Reset")


async def test_stop_and_abort_answer_with_the_final_state_and_its_seq(client: Client) -> None:
    for command, final in (("Stop", "Standby"), ("Abort", "Aborted")):
        assert await load(client, template(command, install=True, feed_hours=100)) == "Good"
        status, _ = await call(client, "Start", f"run-{command}", "b", "p", "{}")
        assert status == "Good"
        assert await status_of(client, "Reset") == "BadInvalidState"  # not to a running program
        assert await status_of(client, "Clear") == "BadInvalidState"
        status, (state, seq) = await call(client, command)
        assert (status, state) == ("Good", final)
        from_seq = ua.Variant(seq, ua.VariantType.UInt64)
        _, (events, _last) = await call(client, "ReadEventLog", from_seq)
        entry = json.loads(events.splitlines()[0])
        assert (entry["Kind"], entry["State"]) == ("state", final)
        for recover in ("Clear", "Reset"):
            await call(client, recover)


async def test_anonymous_sessions_only_read_by_default(sim: CocoonSimulator) -> None:
    async with Client(endpoint(sim, None)) as anonymous:
        setpoint = await cocoon_node(anonymous, "Chamber", "TemperatureSetpoint")
        assert await setpoint.read_value() == 37.0
        assert await write_status(setpoint, 36.0, ua.VariantType.Double) == "BadUserAccessDenied"
        assert await status_of(anonymous, "Abort") == "BadUserAccessDenied"
        assert await status_of(anonymous, "ValidateProtocol") == "BadUserAccessDenied"
    async with Client(endpoint(sim, "olga")) as olga:
        assert await status_of(olga, "ValidateProtocol") == "Good"


async def test_anonymous_sessions_operate_when_the_option_says_so() -> None:
    sim = await start_simulator(PROFILE, {"speed": "max", "anonymous": "operate"})
    try:
        async with Client(endpoint(sim, None)) as anonymous:
            setpoint = await cocoon_node(anonymous, "Chamber", "TemperatureSetpoint")
            assert await write_status(setpoint, 36.0, ua.VariantType.Double) == "Good"
            assert await status_of(anonymous, "ValidateProtocol") == "Good"
    finally:
        await sim.stop()


async def _result_of(client: Client, run_id: str) -> dict[str, Any]:
    """The run's result event, once the run has ended (virtual time runs at max speed)."""
    ended = asyncio.Event()

    class Watch:
        def datachange_notification(self, _node: Node, value: Any, _data: Any) -> None:
            if value in ("Finished", "Aborted", "Standby"):
                ended.set()

    subscription = await client.create_subscription(10, Watch())
    await subscription.subscribe_data_change(await cocoon_node(client, "Status", "State"))
    await ended.wait()
    await subscription.delete()
    _, (events, _last) = await call(client, "ReadEventLog", ua.Variant(1, ua.VariantType.UInt64))
    results = [json.loads(line) for line in events.splitlines()]
    return next(r for r in results if r.get("Kind") == "result" and r["RunId"] == run_id)


def _path(unit: str, variable: str) -> tuple[str, str]:
    acronyms = {"co2": "CO2", "ph": "pH"}

    def name(snake: str) -> str:
        return "".join(acronyms.get(w, w.capitalize()) for w in snake.split("_"))

    return name(unit), name(variable)
