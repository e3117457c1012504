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


def _start_and_signal(
    tmp_path: Path, script_text: str, signum: int, started: str = "state_changed: Running/Execute"
) -> tuple[subprocess.Popen[str], str, str]:
    import time

    script = tmp_path / "batch_script.py"
    script.write_text(script_text, encoding="utf-8")
    command = [sys.executable, "-m", "cellauto.cli", "run", str(script), "--sim", "--speed", "1"]
    process = subprocess.Popen(
        [*command, "--records", str(tmp_path / "r")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while started not in process.stdout.readline():
        assert time.monotonic() < deadline, "the run never started"
    process.send_signal(signum)
    out, err = process.communicate(timeout=60)
    return process, out, err


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_signal_holds_the_device_and_seals_the_record(tmp_path: Path, name: str) -> None:
    import signal

    body = 'print("started", flush=True)'
    process, out, err = _start_and_signal(
        tmp_path, SCRIPT.replace("FAIL_HERE", body), getattr(signal, name)
    )
    assert process.returncode == 130, err
    reason = "interrupted" if name == "SIGINT" else f"interrupted by {name}"
    assert f"{reason}; B-RUN: held incubator-1" in err
    assert "safe state" not in err.splitlines()[-1]
    assert "B-RUN: stopped" in out
    assert "sealed and intact" in out

    from cellauto.records import open_batch

    record = open_batch(tmp_path / "r" / "B-RUN")
    assert reason in (record.manifest.seal_reason or "")
    holds = [row for row in record.audit.to_pylist() if row["action"] == "device.hold"]
    assert holds
    assert f"safe state: {reason}" in holds[0]["reason"]


TWO_DEVICES = f"""
import asyncio, sys
sys.path.insert(0, {str(TESTS)!r})
import cellauto
from cellauto.batch import Batch
from cellauto.errors import CommandRejected
from cellauto.registry import register_adapter, register_simulator
from cellauto.state import StateCommand
from reference_device import PROFILE, IncubatorAdapter, start_simulator


class Stubborn(IncubatorAdapter):
    async def _send_state_command(self, command):
        if command is StateCommand.HOLD:
            raise CommandRejected(self.device_id, "hold", "door interlock engaged")
        await super()._send_state_command(command)


register_adapter("incubator", IncubatorAdapter)
register_adapter("stubborn", Stubborn)
register_simulator("incubator", start_simulator)
register_simulator("stubborn", start_simulator)


async def main() -> None:
    async with Batch("B-TWO", product="MSC", operator="bob") as batch:
        good = await batch.connect("incubator+tcp://192.0.2.10:5020", profile=PROFILE)
        bad = await batch.connect("stubborn+tcp://192.0.2.11:5020", profile=PROFILE)
        runs = [
            await d.start_program("expand", {{"grow_time": cellauto.Q(12, "h")}})
            for d in (good, bad)
        ]
        await asyncio.gather(*runs)

asyncio.run(main())
"""


def test_the_closing_line_names_the_device_that_could_not_be_held(tmp_path: Path) -> None:
    import signal

    process, _, err = _start_and_signal(
        tmp_path, TWO_DEVICES, signal.SIGTERM, started="stubborn-1: state_changed: Running/Execute"
    )
    assert process.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "interrupted by SIGTERM; B-TWO: held incubator-1; COULD NOT HOLD stubborn-1"
    )
    assert "door interlock engaged" in last
    assert "safe state" not in last

    from cellauto.records import open_batch

    audit = open_batch(tmp_path / "r" / "B-TWO").audit.to_pylist()
    failed = [row for row in audit if row["action"] == "device.hold.failed"]
    assert [row["object"] for row in failed] == ["stubborn-1"]


def test_the_script_gets_its_own_argv(tmp_path: Path) -> None:
    script = tmp_path / "argv_script.py"
    script.write_text("import sys\nprint('ARGV', sys.argv[1:])\n", encoding="utf-8")
    command = [sys.executable, "-m", "cellauto.cli", "run", str(script), "3", "--sim"]
    result = subprocess.run(
        [*command, "--speed", "max", "--", "--sim"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "ARGV ['3', '--sim']" in result.stdout


def test_faults_need_sim(tmp_path: Path) -> None:
    script = tmp_path / "s.py"
    script.write_text("print('ran')\n", encoding="utf-8")
    command = [sys.executable, "-m", "cellauto.cli", "run", str(script), "--faults", "stall@1h:1m"]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert "--faults needs --sim" in result.stderr
    assert "ran" not in result.stdout
