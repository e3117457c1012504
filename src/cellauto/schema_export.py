"""JSON Schema files for every persisted model (``schemas/json/``), and their staleness check."""

from __future__ import annotations

import json
from pathlib import Path

from cellauto.generated import stale_generated, write_generated
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
    """Write every JSON Schema file into `out`; remove ones nothing produces any more."""
    return write_generated(out, render())


def stale_files(out: Path) -> list[str]:
    """Names of JSON Schema files in `out` that are missing, different, or produced by nothing."""
    return stale_generated(out, render())
