"""Runs shared by the whole test session: each example (the demo among them) runs once, and every
test that needs its output or its records uses that run.

Under pytest-xdist (`make test` runs the suite on every core) the workers share one run of each
example: the first worker to ask runs it in the session's shared folder while holding a lock,
and each worker works on its own copy of the folder, as a serial session works on the one.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from example_runs import ARGUMENTS, EXAMPLES, VIA_CELLAUTO_RUN, ExampleRun

settings.register_profile("cellauto", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("cellauto")
"""Property tests have no wall-clock bounds: with a worker on every core a slow example is the
machine, not the code (speed is measured in benchmarks/)."""

DONE = ".example-run.json"
"""What a finished example run printed, kept in its folder for the other workers."""


def _command(name: str) -> list[str]:
    script = str(EXAMPLES / name)
    if name in VIA_CELLAUTO_RUN:
        return [sys.executable, "-m", "cellauto.cli", "run", script, *VIA_CELLAUTO_RUN[name]]
    return [sys.executable, script, *ARGUMENTS.get(name, [])]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run_once(name: str, shared: Path) -> Path:
    """The folder `name` ran in below `shared`, running it unless a worker already did."""
    folder = shared / name.removesuffix(".py")
    with _locked(shared / f"{folder.name}.lock"):
        if not (folder / DONE).exists():
            shutil.rmtree(folder, ignore_errors=True)  # a run cut off in another worker
            folder.mkdir()
            # no wall-clock bound of our own: pytest's timeout guards a hang
            result = subprocess.run(_command(name), capture_output=True, text=True, cwd=folder)
            printed = {"returncode": result.returncode, "stdout": result.stdout}
            (folder / DONE).write_text(json.dumps(printed | {"stderr": result.stderr}))
    return folder


@pytest.fixture(scope="session")
def example_run(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], ExampleRun]:
    """``example_run("car_t.py")``: the session's one run of that example, in its own folder."""
    runs: dict[str, ExampleRun | BaseException] = {}
    mine = tmp_path_factory.mktemp("examples")
    workers = os.environ.get("PYTEST_XDIST_WORKER") is not None
    shared = tmp_path_factory.getbasetemp().parent if workers else mine

    def run(name: str) -> ExampleRun:
        if name not in runs:
            try:
                folder = _run_once(name, shared)
            except BaseException as exc:  # a timeout, say: not run again by every later test
                runs[name] = exc
                raise
            if workers:
                folder = Path(shutil.copytree(folder, mine / folder.name, symlinks=True))
            printed = json.loads((folder / DONE).read_text())
            (folder / DONE).unlink()
            result = subprocess.CompletedProcess(
                _command(name), printed["returncode"], printed["stdout"], printed["stderr"]
            )
            runs[name] = ExampleRun(folder, result)
        done = runs[name]
        if isinstance(done, BaseException):
            pytest.fail(f"{name} did not finish earlier in this session: {done!r}")
        return done

    return run


@pytest.fixture(scope="session")
def demo(example_run: Callable[[str], ExampleRun]) -> ExampleRun:
    """The session's one run of the demo (`make demo`); its record is records/B-DEMO-001."""
    return example_run("car_t.py")
