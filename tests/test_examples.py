"""Every example runs, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(example: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_foundation_tour_walks_every_profile() -> None:
    import cellauto

    tour = EXAMPLES[[p.name for p in EXAMPLES].index("foundation_tour.py")]
    out = subprocess.run(
        [sys.executable, str(tour)], capture_output=True, text=True, check=True
    ).stdout
    for device in cellauto.available_profiles():
        assert f"\n{device} " in out
    assert "Running/Complete" in out
