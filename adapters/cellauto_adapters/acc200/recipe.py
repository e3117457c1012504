"""A program template and its parameter values as an ACC-200 recipe (protocol section 5): the
UTF-8 canonical JSON the device parses, small enough for the 4096-byte download block."""

from __future__ import annotations

from cellauto.schema import ProgramTemplate, PropertyValue, Quantity
from cellauto.schema._base import canonical_json


def encode_recipe(template: ProgramTemplate, parameters: dict[str, PropertyValue]) -> bytes:
    """The recipe bytes: program, version, content hash, steps (name, unit operation, unit,
    duration in s, prompt) and parameter values in the template's units."""
    units = {p.name: p.unit for p in template.parameters}
    values: dict[str, float | str | bool] = {}
    for name, value in parameters.items():
        if isinstance(value, Quantity):
            unit = units.get(name) or value.unit
            values[name] = value.to(unit).value if unit else value.value
        else:
            values[name] = value
    steps = [
        {
            "name": step.name,
            "op": step.unit_operation,
            "unit": step.functional_unit,
            "s": step.duration_seconds,
            "prompt": step.prompt,
        }
        for step in template.steps
    ]
    return canonical_json(
        {
            "recipe": 1,
            "program": template.name,
            "version": template.version,
            "hash": template.content_hash,
            "steps": steps,
            "parameters": values,
        }
    )
