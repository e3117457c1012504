"""`cellauto run`: a real script in a real subprocess, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_an_illegal_command_names_device_operation_and_script_line(tmp_path: Path) -> None:
    result = run(tmp_path, "await incubator.hold()", "--sim", "--records", str(tmp_path / "r"))
    assert result.returncode == 1
    line = SCRIPT.splitlines().index("        FAIL_HERE") + 1
    assert (
        f"batch_script.py:{line}: incubator-1: hold: not allowed in state Stopped" in result.stderr
    )
    assert "B-RUN: stopped" in result.stdout
    assert "sealed and intact" in result.stdout
