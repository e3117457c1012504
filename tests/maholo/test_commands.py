"""The Maholo's profile commands over the wire: `submit_job` queues one robot job on the job
queue, `resume_job` ends an intervention, `abort_job` aborts the running job."""

from __future__ import annotations

from typing import Any

import pytest

from cellauto.driver import Device
from cellauto.errors import HttpProblem
from cellauto.registry import connect
from cellauto.schema import Event, EventKind
from cellauto.schema.quantity import Q
from cellauto.sim import start_simulator


async def robot_job_ending(device: Device, feed: Any) -> dict[str, Any]:
    """The robot log entry of the next robot job that ends."""
    event: Event
    async for event in feed:
        job = (event.data or {}).get("robot_job")
        if event.kind is EventKind.NOTE and isinstance(job, dict) and job.get("end"):
            return job
    raise AssertionError("the event feed ended")


async def test_submit_job_runs_one_robot_job_through_the_job_queue() -> None:
    sim = await start_simulator("maholo", seed=2, speed="max", failures="off")
    device = await connect(sim.url, device_id="m-submit", time=sim.time)
    feed = device.events()
    try:
        submitted = await device.command(
            "submit_job", job_type="seeding", plate_ids="P1,P2", volume=Q(530, "uL")
        )
        job = await robot_job_ending(device, feed)
        queue = await device.jobs()  # type: ignore[attr-defined]
    finally:
        await device.close()
        await sim.stop()
    job_id = submitted.data["job_id"]
    assert [(j["job_id"], j["program"]) for j in queue] == [(job_id, "robot job seeding")]
    assert queue[0]["parameters"]["plate_ids"] == "P1,P2"
    assert (job["job_id"], job["job_type"], job["status"]) == (job_id, "seeding", "succeeded")
    assert job["commands_done"] == job["command_count"] > 0


async def test_a_volume_no_three_pipettes_make_is_refused() -> None:
    sim = await start_simulator("maholo", seed=2, failures="off")
    device = await connect(sim.url, device_id="m-volume", time=sim.time)
    try:
        with pytest.raises(HttpProblem, match=r"m-volume: submit_job: HTTP 422.*not a sum"):
            await device.command(
                "submit_job", job_type="passage", plate_ids="P1", volume=Q(7, "uL")
            )
        assert await device.jobs() == []  # type: ignore[attr-defined]
    finally:
        await device.close()
        await sim.stop()


async def test_resume_job_ends_the_intervention_the_job_waits_for() -> None:
    sim = await start_simulator("maholo", seed=3, speed="max", failures="0.05")
    device = await connect(sim.url, device_id="m-resume", time=sim.time)
    feed = device.events()
    try:
        with pytest.raises(HttpProblem, match=r"m-resume: resume_job: HTTP 409"):
            await device.command("resume_job")
        await device.command("submit_job", job_type="passage", plate_ids="P1")
        resumed: list[Any] = []
        job: dict[str, Any] = {}
        event: Event
        async for event in feed:
            if event.kind is EventKind.PROMPT:
                resumed.append((await device.command("resume_job")).data["prompts"])
            logged = (event.data or {}).get("robot_job")
            if isinstance(logged, dict) and logged.get("end"):
                job = dict(logged)
                break
    finally:
        await device.close()
        await sim.stop()
    assert resumed, "a 5 % failure rate over 260 commands should have needed a person"
    assert all(len(prompts) == 1 for prompts in resumed)
    assert job["status"] in ("resumed", "aborted")
    assert [e["outcome"] for e in job["errors"]].count("intervention") >= len(resumed)


async def test_abort_job_aborts_the_running_job() -> None:
    sim = await start_simulator("maholo", seed=2, speed=1.0, failures="off")
    device = await connect(sim.url, device_id="m-abort", time=sim.time)
    try:
        with pytest.raises(HttpProblem, match=r"m-abort: abort_job: HTTP 409"):
            await device.command("abort_job")
        submitted = await device.command("submit_job", job_type="seeding", plate_ids="P1")
        aborted = await device.command("abort_job")
        queue = await device.jobs()  # type: ignore[attr-defined]
    finally:
        await device.close()
        await sim.stop()
    assert aborted.data["job_id"] == submitted.data["job_id"]
    assert [j["status"] for j in queue] == ["aborted"]
    assert str(device.state) in ("Running/Aborting", "Running/Aborted", "Aborting", "Aborted")
