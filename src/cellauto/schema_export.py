"""JSON Schema files for every persisted model (``schemas/json/``), and their staleness check."""

from __future__ import annotations

import json
from pathlib import Path

from cellauto.resources import schemas_dir
from cellauto.schema import PERSISTED_MODELS, SCHEMA_VERSION


def default_json_dir() -> Path:
    """Where the generated JSON Schemas live."""
    return schemas_dir() / "json"


def render() -> dict[str, str]:
    """File name -> file text of every JSON Schema cellauto publishes."""
    files = {}
    for model in PERSISTED_MODELS:
        schema = model.model_json_schema(mode="validation")
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "x-cellauto-schema-version": SCHEMA_VERSION,
            **schema,
        }
        files[f"{model.__name__}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return files


def export(out: Path) -> list[Path]:
    """Write every JSON Schema into `out` and remove schema files no model produces any more."""
    out.mkdir(parents=True, exist_ok=True)
    files = render()
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


def stale_files(out: Path) -> list[str]:
    """Names of schema files in `out` that are missing, different, or produced by no model."""
    files = render()
    problems = [
        name
        for name, text in files.items()
        if not (out / name).is_file() or (out / name).read_text(encoding="utf-8") != text
    ]
    problems += [p.name for p in out.glob("*.json") if p.name not in files]
    return sorted(problems)
