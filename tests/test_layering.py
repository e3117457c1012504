"""The arrows that must never exist (DESIGN.md): checked over every import statement."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# (package root folder, forbidden import prefixes, reason)
RULES: list[tuple[Path, tuple[str, ...], str]] = [
    (
        ROOT / "src" / "cellauto",
        ("cellauto_adapters", "cellauto_simulators", "tests", "benchmarks", "strategies"),
        "the core knows no vendor, and runtime code never imports tests or benchmarks",
    ),
    (
        ROOT / "adapters",
        (
            "cellauto_simulators",
            "serial",
            "asyncua",
            "pymodbus",
            "aiohttp",
            "httpx",
            "websockets",
            "socket",
            "tests",
            "benchmarks",
        ),
        "adapters meet simulators only on the wire, and do I/O only through cellauto.transport",
    ),
    (
        ROOT / "simulators",
        ("cellauto_adapters", "tests", "benchmarks"),
        "simulators never import adapters",
    ),
    (
        ROOT / "src" / "cellauto" / "gateway",
        ("cellauto_adapters", "cellauto_simulators", "cellauto.sim", "cellauto.transport"),
        "a gateway serves any Device through its public interface, knowing no adapter or simulator",
    ),
]


def imported_modules(source: str) -> set[str]:
    """Absolute module names a Python source imports (relative imports stay inside a package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def violations(root: Path, forbidden: tuple[str, ...]) -> list[str]:
    problems = []
    for path in sorted(root.rglob("*.py")):
        for module in imported_modules(path.read_text(encoding="utf-8")):
            if any(module == f or module.startswith(f + ".") for f in forbidden):
                problems.append(f"{path.relative_to(root)} imports {module}")
    return problems


@pytest.mark.parametrize(
    ("root", "forbidden", "reason"), RULES, ids=["core", "adapters", "simulators", "gateway"]
)
def test_no_forbidden_imports(root: Path, forbidden: tuple[str, ...], reason: str) -> None:
    assert violations(root, forbidden) == [], reason


def test_the_checker_sees_every_import_form(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(
        "import serial\nfrom asyncua import Client\nimport cellauto_simulators.cocoon as s\n"
        "from . import sibling\ndef f():\n    import socket\n",
        encoding="utf-8",
    )
    found = violations(tmp_path, ("serial", "asyncua", "socket", "cellauto_simulators"))
    assert len(found) == 4


def test_reference_device_adapter_and_simulator_meet_only_on_the_wire() -> None:
    folder = ROOT / "tests" / "reference_device"
    adapter = imported_modules((folder / "adapter.py").read_text(encoding="utf-8"))
    simulator = imported_modules((folder / "simulator.py").read_text(encoding="utf-8"))
    assert not {m for m in adapter if m.startswith(("reference_device", "serial", "asyncua"))}
    assert not {m for m in adapter if m.startswith(("cellauto.sim", "socket"))}
    assert not {m for m in simulator if m.startswith("reference_device")}
