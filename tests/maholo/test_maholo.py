"""The Maholo adapter and simulator beyond the conformance suite: tokens, interventions as
prompts, the robot log, images as result files, and failure rates against the published ones."""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

import pytest

from cellauto.driver import Device
from cellauto.errors import AuthenticationRefused
from cellauto.profiles import load_profile
from cellauto.registry import connect
from cellauto.schema import EventKind, ProgramStep, ProgramTemplate
from cellauto.schema.quantity import Q
from cellauto.sim import start_simulator
from cellauto_simulators.maholo import process

TOKEN = "maholo-test-token"


def short_rpe(days_per_step: float = 0.05) -> ProgramTemplate:
    """The RPE program with each timed step `days_per_step` long (a compiled program)."""
    template = load_profile("maholo").program("iPSC-RPE differentiation")
    steps = [
        s
        if s.duration is None
        else ProgramStep.model_validate(s.model_dump() | {"duration": Q(days_per_step, "d")})
        for s in template.steps
    ]
    data = template.model_dump(exclude={"content_hash"}) | {"steps": steps, "name": "RPE short"}
    return ProgramTemplate.model_validate(data)


async def test_the_adapter_needs_the_token_from_the_secret_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = await start_simulator("maholo", seed=1, token=TOKEN)
    try:
        monkeypatch.delenv("CELLAUTO_TOKEN_M_AUTH", raising=False)
        monkeypatch.setenv("CELLAUTO_CREDENTIALS", "/nonexistent/credentials.json")
        with pytest.raises(AuthenticationRefused, match="m-auth: connect: HTTP 401"):
            await connect(sim.url, device_id="m-auth", time=sim.time)
        monkeypatch.setenv("CELLAUTO_TOKEN_M_AUTH", TOKEN)
        device = await connect(sim.url, device_id="m-auth", time=sim.time)
        assert device.info.manufacturer == "Robotic Biology Institute Inc."
        assert TOKEN not in repr(device.info.model_dump())
        await device.close()
    finally:
        await sim.stop()


async def _answering(device: Device, seen: list[dict[str, Any]]) -> None:
    async for event in device.events():
        if event.kind is EventKind.PROMPT:
            seen.append(dict(event.data))
            await device.answer_prompt(str(event.data["prompt_id"]), "done", "op")


async def test_interventions_are_prompts_and_images_are_result_files() -> None:
    sim = await start_simulator("maholo", seed=4, speed="max", failures="0.004")
    device = await connect(sim.url, device_id="m-run", time=sim.time)
    prompts: list[dict[str, Any]] = []
    helper = asyncio.create_task(_answering(device, prompts))
    try:
        run = await device.start_program(short_rpe(), {"trypsin_period": Q(25, "min")})
        result = await run
        log = await device.robot_log()  # type: ignore[attr-defined]
        queue = await device.jobs()  # type: ignore[attr-defined]
    finally:
        helper.cancel()
        await device.close()
        await sim.stop()
    assert result.outcome == "complete"
    assert [j["status"] for j in queue] == ["succeeded"]
    assert len(log) == 6  # one robot job per robot step (each step is shorter than a day)
    errors = [e for entry in log for e in entry["errors"]]
    interventions = [e for e in errors if e["outcome"] == "intervention"]
    assert interventions, "the raised failure rate should have caused interventions"
    kinds = [p["prompt_id"] for p in prompts]
    assert len(kinds) == 1 + len(interventions)  # the labware handover, then one per failure
    score = result.properties["pigmentation_score"]
    assert 0 < score.value < 100  # type: ignore[union-attr]
    assert len(result.files) == 8  # one image per plate
    assert all(f.mime_type == "image/png" and f.path.startswith("http") for f in result.files)


def _poisson_interval(count: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval of a Poisson mean given `count`, by bisection."""

    def cdf(k: int, mean: float) -> float:
        term = total = math.exp(-mean)
        for i in range(1, k + 1):
            term *= mean / i
            total += term
        return total

    def solve(target: float, k: int) -> float:
        lo, hi = 0.0, 10.0 * (count + 10)
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if cdf(k, mid) > target else (lo, mid)
        return lo

    alpha = 1 - level
    low = 0.0 if count == 0 else solve(1 - alpha / 2, count - 1)
    return low, solve(alpha / 2, count)


def test_failure_rates_over_185_days_match_the_published_counts() -> None:
    """365 robot jobs (185 days in the paper) through the simulator's failure model: the
    failed commands and the jobs that needed a person fall within the 95 % intervals of the
    published counts (28 of 75,039 commands; 22 of 365 jobs), for each of 20 seeds on average
    and for the default seed."""
    low_cmd, high_cmd = _poisson_interval(process.PUBLIC_COMMAND_ERRORS)
    low_job, high_job = _poisson_interval(process.PUBLIC_JOBS_WITH_INTERVENTION)
    runs = [process.campaign(random.Random(seed)) for seed in range(20)]
    per_command = [failed / commands for _jobs, commands, failed, _a in runs]
    mean_rate = sum(per_command) / len(per_command)
    scale = process.PUBLIC_COMMANDS
    assert low_cmd <= mean_rate * scale <= high_cmd
    mean_jobs = sum(r[0] for r in runs) / len(runs)
    assert low_job <= mean_jobs <= high_job
    jobs, _commands, failed, _aborted = runs[0]
    assert low_job <= jobs <= high_job
    assert low_cmd <= failed * scale / runs[0][1] <= high_cmd
    assert sum(r[3] for r in runs) / len(runs) == pytest.approx(3.0, abs=2.0)


async def test_https_with_the_simulator_certificate() -> None:
    sim = await start_simulator("maholo", seed=1, tls="1")
    try:
        assert sim.url.startswith("maholo+https://")
        certificate = getattr(sim, "certificate", None)
        device = await connect(f"{sim.url}?ca_file={certificate}", device_id="m-tls")
        assert device.info.vendor_data["tls"] is True
        sample = await device.read("incubator.co2")
        assert sample.unit == "%"
        await device.close()
    finally:
        await sim.stop()
