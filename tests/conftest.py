"""Runs shared by the whole test session: each example (the demo among them) runs once, and every
test that needs its output or its records uses that run."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest

from example_runs import ARGUMENTS, EXAMPLES, VIA_CELLAUTO_RUN, ExampleRun


@pytest.fixture(scope="session")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], ExampleRun]:
    """``example_run("car_t.py")``: the session's one run of that example, in its own folder."""
    runs: dict[str, ExampleRun | BaseException] = {}

    def run(name: str) -> ExampleRun:
        if name not in runs:
            cwd = tmp_path_factory.mktemp(name.removesuffix(".py"))
            script = str(EXAMPLES / name)
            command = [sys.executable, script, *ARGUMENTS.get(name, [])]
            if name in VIA_CELLAUTO_RUN:
                command = [sys.executable, "-m", "cellauto.cli", "run", script]
                command += VIA_CELLAUTO_RUN[name]
            try:  # no wall-clock bound of our own: pytest's timeout guards a hang
                result = subprocess.run(command, capture_output=True, text=True, cwd=cwd)
            except BaseException as exc:  # a timeout, say: not run again by every later test
                runs[name] = exc
                raise
            runs[name] = ExampleRun(cwd, result)
        done = runs[name]
        if isinstance(done, BaseException):
            pytest.fail(f"{name} did not finish earlier in this session: {done!r}")
        return done

    return run


@pytest.fixture(scope="session")
def demo(example_run: Callable[[str], ExampleRun]) -> ExampleRun:
    """The session's one run of the demo (`make demo`); its record is records/B-DEMO-001."""
    return example_run("car_t.py")
