"""Nothing in the project cites a file outside it: sources are cited by URL or title."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(
    r"\.\./shared\b|(?<![\w.])/work/|(?<![\w.~])/(?:home|root|tmp)/[\w.-]+/[\w./-]*\.md"
)


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    suffixes = {".py", ".md", ".toml", ".json", ".txt", ".yaml", ".yml", ".cfg", ""}
    return [ROOT / name for name in listed if Path(name).suffix in suffixes]


def test_no_file_cites_a_path_outside_the_project() -> None:
    offenders = []
    for path in tracked_text_files():
        if path == Path(__file__).resolve() or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "cite sources by URL or title:\n" + "\n".join(offenders)
