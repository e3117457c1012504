"""What the session-wide example runs (see conftest.py) hand to tests."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

VIA_CELLAUTO_RUN = {
    "parallel_batches.py": ["2", "12", "--sim", "--speed", "max", "--no-report"],
}
"""Examples run through `cellauto run` (with these arguments) rather than plain python."""
ARGUMENTS = {
    "maholo_optimise.py": ["2"],
    "msc_cell_bank.py": ["--passages", "1", "--confluency", "50", "--seeding", "10000"],
}
"""Arguments of examples run with plain python (fewer trials than a user runs)."""


@dataclass(frozen=True)
class ExampleRun:
    """One example run as a user runs it: the folder it ran in and what it printed."""

    cwd: Path
    result: subprocess.CompletedProcess[str]
