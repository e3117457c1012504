"""A plain (non-editable) wheel ships everything the code reads at run time."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _packages(root: Path, namespace: str) -> list[str]:
    base = root / namespace
    return (
        sorted(f"{namespace}.{p.name}" for p in base.iterdir() if (p / "__init__.py").is_file())
        if base.is_dir()
        else []
    )


@pytest.mark.slow
def test_wheel_installs_and_runs_from_a_fresh_venv(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = dist.glob("cellauto-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    # Dependencies come from the project's venv; a .pth line does not run that venv's own .pth
    # files, so the editable source tree stays invisible and only the wheel provides cellauto.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )

    modules = [
        "cellauto",
        *_packages(ROOT / "adapters", "cellauto_adapters"),
        *_packages(ROOT / "simulators", "cellauto_simulators"),
    ]
    probe = (
        "import importlib, sys\n"
        f"site = {str(site)!r}\n"
        f"for name in {modules!r}:\n"
        "    module = importlib.import_module(name)\n"
        "    assert module.__file__.startswith(site), (name, module.__file__)\n"
        "import cellauto\n"
        "profiles = cellauto.available_profiles()\n"
        "assert len(profiles) >= 6, profiles\n"
        "for name in profiles:\n"
        "    cellauto.load_profile(name)\n"
        "from cellauto.state import state_mappings\n"
        "assert len(state_mappings()) == 17\n"
        "print('ok', len(sys.argv))\n"
    )
    result = subprocess.run(
        [str(python), "-c", probe], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok")

    cli = env_dir / "bin" / "cellauto"
    version = subprocess.run([str(cli), "--version"], capture_output=True, text=True, cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith("cellauto ")
    check = subprocess.run(
        [str(cli), "schema", "export", "--check"], capture_output=True, text=True, cwd=tmp_path
    )
    assert check.returncode == 0, check.stderr
