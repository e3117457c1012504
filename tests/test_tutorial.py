"""Every snippet of docs/tutorial.md runs as written."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from example_runs import ExampleRun

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"```(python|sh)\n(.*?)```", re.DOTALL)
CLI = str(Path(sys.executable).with_name("cellauto"))


def blocks() -> list[tuple[str, str, str]]:
    """(language, code, the text before the block) for every code block."""
    found, last = [], 0
    for match in BLOCK.finditer(TUTORIAL):
        found.append((match.group(1), match.group(2), TUTORIAL[last : match.start()]))
        last = match.end()
    return found


def sh(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    command = command.replace(".venv/bin/cellauto", CLI)
    return subprocess.run(command, shell=True, cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def workdir(demo: ExampleRun) -> Path:
    """The folder the session's demo ran in (its record is records/B-DEMO-001)."""
    assert demo.result.returncode == 0, demo.result.stderr
    return demo.cwd


PYTHON = [(code, before) for lang, code, before in blocks() if lang == "python"]


@pytest.mark.parametrize(
    ("code", "before"), PYTHON, ids=[f"python-{i}" for i in range(len(PYTHON))]
)
def test_python_snippet_runs(code: str, before: str, workdir: Path) -> None:
    saved = re.search(r"Save this as `([\w.]+)`", before.strip().split("\n\n")[-1])
    if saved:  # a script the tutorial runs with the command in the next block
        (workdir / saved.group(1)).write_text(code, encoding="utf-8")
        after = TUTORIAL[TUTORIAL.index(code) + len(code) :]
        command = BLOCK.search(after)
        assert command is not None
        assert command.group(1) == "sh"
        result = sh(command.group(2).strip(), workdir)
    else:
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=300
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip()


def test_demo_record_commands_run(workdir: Path) -> None:
    first_sh = [code for lang, code, _ in blocks() if lang == "sh"][1]
    for line in first_sh.strip().splitlines():
        result = sh(line, workdir)
        assert result.returncode == 0, line + "\n" + result.stderr
    assert "sealed and intact" in sh(first_sh.strip().splitlines()[-1], workdir).stdout


def test_the_tutorial_has_no_stale_paths() -> None:
    assert shutil.which(CLI) or Path(CLI).exists(), "the cellauto command is not installed"
    assert "examples/car_t.py" in TUTORIAL
