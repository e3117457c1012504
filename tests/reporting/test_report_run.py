"""`cellauto run` writes each batch's report beside its record, unless ``--no-report``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cellauto.cli import _parser

TESTS = Path(__file__).resolve().parent.parent

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
    async with Batch("B-REP", product="MSC", operator="bob", patient_id="P-0099") as batch:
        incubator = await batch.connect("incubator+tcp://192.0.2.10:5020", profile=PROFILE)
        run = await incubator.start_program("expand", {{"grow_time": cellauto.Q(2, "h")}})
        await run

asyncio.run(main())
"""


def test_no_report_is_an_option_of_run() -> None:
    parser = _parser()
    assert parser.parse_args(["run", "script.py"]).report is True
    assert parser.parse_args(["run", "script.py", "--no-report"]).report is False


def test_run_writes_the_report_beside_the_record(tmp_path: Path) -> None:
    script = tmp_path / "batch_script.py"
    script.write_text(SCRIPT, encoding="utf-8")
    records = tmp_path / "r"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cellauto.cli",
            "run",
            str(script),
            "--sim",
            "--speed",
            "max",
            "--records",
            str(records),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    page = records / "B-REP.report.html"
    assert f"  report {page}" in result.stdout
    html = page.read_text(encoding="utf-8")
    assert "Batch B-REP: complete: completed; record sealed and intact." in html
    assert "P-0099" not in html
