"""Every example runs, as a user runs it (once per session: see conftest.py)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from example_runs import EXAMPLES, ExampleRun

NAMES = sorted(p.name for p in EXAMPLES.glob("*.py"))


@pytest.mark.parametrize("name", NAMES)
def test_example_runs(name: str, example_run: Callable[[str], ExampleRun]) -> None:
    result = example_run(name).result
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()


def test_foundation_tour_walks_every_profile(example_run: Callable[[str], ExampleRun]) -> None:
    import cellauto

    out = example_run("foundation_tour.py").result.stdout
    for device in cellauto.available_profiles():
        assert f"\n{device} " in out
    assert "Running/Complete" in out


def test_parallel_batches_runs_under_cellauto_run(
    example_run: Callable[[str], ExampleRun],
) -> None:
    out = example_run("parallel_batches.py").result.stdout
    assert "B-PAR-001: complete" in out
    assert "B-PAR-002: complete" in out
    assert "B-PAR-003" not in out  # the script saw its own arguments: 2 patients
    assert "CAR-T expansion 12 h" in out  # ... and a 12 h expansion (the test's short run)


def test_the_demo_says_what_happened_truthfully(demo: ExampleRun) -> None:
    out = demo.result.stdout
    assert out.startswith("batch B-DEMO-001: a new record records/B-DEMO-001\n")
    assert "operator: done" in out  # a choice prompt gets one of its choices
    for line in out.splitlines():
        assert not line.rstrip().endswith(" 1"), line  # a dimensionless value has no unit "1"
    from cellauto.records import open_batch

    results = open_batch(demo.cwd / "records" / "B-DEMO-001").results.to_pylist()
    for row in results:  # each run's end as recorded, not the time the script looked
        assert (
            f"{row['device_id']}: {row['program']} complete at {row['stopped']:%d %b %H:%M}" in out
        )


def test_the_demo_runs_again_in_the_same_folder(demo: ExampleRun) -> None:
    """What a second `make demo` decides, on the folder the first run left (a whole second run
    adds two minutes and no more evidence: the rest of the run is the first run's)."""
    assert demo.result.stdout.startswith("batch B-DEMO-001: a new record records/B-DEMO-001\n")
    car_t = _load_example("car_t")
    records = Path(demo.cwd, "records")
    assert car_t.next_demo_batch(records) == "B-DEMO-002"
    assert car_t._earlier("B-DEMO-002") == "; earlier demo records are kept: B-DEMO-001"
    signer, trust = car_t.demo_signer(records)  # the demo key is reused, not made again
    assert signer is not None
    assert [p.name for p in trust.iterdir()] == ["alice.pub.json"]
    assert Path(demo.cwd, "records", "B-DEMO-001", "manifest.json").is_file()


def _load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_msc_cell_bank_is_stored_with_its_images(
    example_run: Callable[[str], ExampleRun],
) -> None:
    out = example_run("msc_cell_bank.py").result.stdout
    assert "step_started: Decontaminate" in out
    assert "step_started: Passage 1" in out
    assert "step_started: Passage 2" not in out  # run short: one passage
    assert "MSC expansion complete" in out
    assert "cell bank: " in out
    assert "after 1 passage(s)" in out
    assert "record B-MSC-001: sealed and intact; 3 result files stored:" in out
    for name in ("cell-bank-summary.json", "phase-contrast-passage-1.png", "phase-contrast-final"):
        assert f"cq-1-{name}" in out
