"""Validate ASM documents against the JSON schemas shipped inside Benchling's allotropy package."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema

SCHEMAS = Path(str(files("allotropy"))) / "allotrope" / "schemas"


@cache
def _store() -> dict[str, Any]:
    store: dict[str, Any] = {}
    for file in SCHEMAS.rglob("*.schema.json"):
        schema = json.loads(file.read_text(encoding="utf-8"))
        if "$id" in schema:
            store[schema["$id"]] = schema
    return store


def schema_for(manifest: str) -> dict[str, Any] | None:
    """The schema a manifest URL names, if allotropy ships it."""
    prefix = "http://purl.allotrope.org/manifests/"
    assert manifest.startswith(prefix), manifest
    assert manifest.endswith(".manifest"), manifest
    path = SCHEMAS / "adm" / (manifest[len(prefix) : -len(".manifest")] + ".schema.json")
    if not path.is_file():
        return None
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    resolver = jsonschema.RefResolver(schema.get("$id", ""), schema, store=_store())
    format_checker = jsonschema.FormatChecker()
    format_checker.checkers.pop("uri-reference", None)
    return jsonschema.Draft202012Validator(schema, resolver=resolver, format_checker=format_checker)


def validate(document: dict[str, Any]) -> None:
    """Validate a whole ASM document against allotropy's schema for its manifest."""
    schema = schema_for(document["$asm.manifest"])
    assert schema is not None, f"allotropy ships no schema for {document['$asm.manifest']}"
    validator(schema).validate(document)


def core_def(name: str, kind: str = "core") -> dict[str, Any]:
    """A `$defs` entry of allotropy's core REC/2024/09 schemas, as a schema of its own."""
    url = f"http://purl.allotrope.org/json-schemas/adm/core/REC/2024/09/{kind}.schema"
    return {"$ref": f"{url}#/$defs/{name}", "$id": "urn:cellauto:test"}


def unit_def(unit: str) -> dict[str, Any]:
    """The QUDT unit definition of `unit` in allotropy's REC/2024/09 units schema."""
    units = _store()["http://purl.allotrope.org/json-schemas/qudt/REC/2024/09/units.schema"]
    assert unit in units["$defs"], f"{unit!r} is not an ASM unit"
    definition: dict[str, Any] = units["$defs"][unit]
    return definition
