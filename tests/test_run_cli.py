"""`cellauto run`: a real script in a real subprocess, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SCRIPT = f"""
import asyncio, sys
sys.path.insert(0, {str(TESTS)!r})
import cellauto
from cellauto.batch import Batch
from cellauto.registry import register_adapter, register_simulator
from reference_device import PROFILE, IncubatorAdapter, start_simulator

register_adapter("incubator", IncubatorAdapter)
register_simulator("incubator", start_simulator)

async def main() -> None:
    async with Batch("B-RUN", product="MSC", operator="bob") as batch:
        incubator = await batch.connect("incubator+tcp://192.0.2.10:5020", profile=PROFILE)
        FAIL_HERE
        run = await incubator.start_program("expand", {{"grow_time": cellauto.Q(12, "h")}})
        await run

asyncio.run(main())
"""


def run(tmp_path: Path, body: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "batch_script.py"
    script.write_text(SCRIPT.replace("FAIL_HERE", body), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "cellauto.cli", "run", str(script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )


def test_run_with_sim_logs_progress_and_ends_with_a_summary(tmp_path: Path) -> None:
    result = run(tmp_path, "pass", "--sim", "--speed", "max", "--records", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "B-RUN: opened" in out
    assert "incubator-1: state_changed: Running/Execute" in out
    assert "incubator-1: prompt: Connect the medium bag" in out
    assert "B-RUN: complete" in out
    assert f"record {tmp_path / 'r' / 'B-RUN'} (sealed and intact;" in out
    assert "2025-01-01" in out  # simulated time


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("await incubator.hold()", "incubator-1: hold: not allowed in state Stopped"),
        ('await incubator.read("chamber.colour")', "incubator-1: read chamber.colour: no channel"),
        (
            'await incubator.start_program("expand", {"grow_time": cellauto.Q(30, "d")})',
            "incubator-1: start_program expand: parameter 'grow_time' is 720 h, outside",
        ),
        (
            'await incubator.start_program("expand", {"grow_time": cellauto.Q(5, "mL")})',
            "incubator-1: start_program expand: parameter 'grow_time': cannot convert 'mL' to 'h'",
        ),
    ],
    ids=["state", "channel", "range", "unit"],
)
def test_bad_calls_name_device_operation_and_script_line(
    tmp_path: Path, body: str, message: str
) -> None:
    result = run(tmp_path, body, "--sim", "--records", str(tmp_path / "r"))
    assert result.returncode == 1
    line = SCRIPT.splitlines().index("        FAIL_HERE") + 1
    assert f"batch_script.py:{line}: {message}" in result.stderr
    assert "B-RUN: stopped" in result.stdout
    assert "sealed and intact" in result.stdout


def test_ctrl_c_holds_the_device_and_seals_the_record(tmp_path: Path) -> None:
    import signal
    import time

    script = tmp_path / "batch_script.py"
    body = 'print("started", flush=True)'
    script.write_text(SCRIPT.replace("FAIL_HERE", body), encoding="utf-8")
    records = tmp_path / "r"
    command = [sys.executable, "-m", "cellauto.cli", "run", str(script), "--sim", "--speed", "1"]
    process = subprocess.Popen(
        [*command, "--records", str(records)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while "state_changed: Running/Execute" not in process.stdout.readline():
        assert time.monotonic() < deadline, "the run never started"
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "interrupted" in err
    assert "B-RUN: stopped" in out
    assert "sealed and intact" in out

    from cellauto.records import open_batch

    record = open_batch(records / "B-RUN")
    assert "interrupted" in (record.manifest.seal_reason or "")
    holds = [row for row in record.audit.to_pylist() if row["action"] == "device.hold"]
    assert holds
    assert "safe state: interrupted" in holds[0]["reason"]
