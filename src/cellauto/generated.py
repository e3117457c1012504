"""Generated files committed to the repository (schemas): write them, or check they are current."""

from __future__ import annotations

from pathlib import Path


def write_generated(out: Path, files: dict[str, str]) -> list[Path]:
    """Write `files` (name -> text) into `out` atomically; remove .json files not among them."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = out / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
        written.append(path)
    for stale in out.glob("*.json"):
        if stale.name not in files:
            stale.unlink()
    return written


def stale_generated(out: Path, files: dict[str, str]) -> list[str]:
    """Names in `out` that are missing, differ from `files`, or are .json files not among them."""
    problems = [
        name
        for name, text in files.items()
        if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text
    ]
    problems += [p.name for p in out.glob("*.json") if p.name not in files]
    return sorted(problems)
