"""ASM exports: every document validates against the JSON schemas shipped in allotropy.

Regenerate the golden files on purpose with ``CELLAUTO_REGEN_GOLDEN=1 pytest tests/records_site``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from asm_schemas import core_def, schema_for, unit_def, validate, validator
from site_records import make_record

from cellauto.cli import main
from cellauto.errors import RecordError
from cellauto.records.asm import (
    AUTOMATED_REACTORS_MANIFEST,
    UCUM_TO_ASM,
    asm_documents,
    export_asm,
)

GOLDEN = Path(__file__).parents[1] / "golden" / "records" / "asm"
REGEN = os.environ.get("CELLAUTO_REGEN_GOLDEN") == "1"


@pytest.fixture(scope="module")
def record(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_record(tmp_path_factory.mktemp("asm"))


def _measurements(document: dict[str, Any], technique: str) -> list[dict[str, Any]]:
    aggregate = document[f"{technique} aggregate document"]
    return [
        m
        for doc in aggregate[f"{technique} document"]
        for m in doc["measurement aggregate document"]["measurement document"]
    ]


def test_cell_counting_validates_against_allotropy_schema(record: Path) -> None:
    document = asm_documents(record).documents["cell-counting"]
    validate(document)
    measurements = _measurements(document, "cell counting")
    assert len(measurements) == 5
    last = measurements[-1]["processed data aggregate document"]["processed data document"][0]
    assert last["total cell density (cell counter)"] == {"value": 2.0, "unit": "10^6 cells/mL"}
    assert last["viability (cell counter)"] == {"value": 94.0, "unit": "%"}
    assert last["viable cell density (cell counter)"]["value"] == pytest.approx(1.88)
    assert "derived" in last["custom information document"]["viable cell density source"]


def test_solution_analyzer_validates_against_allotropy_schema(record: Path) -> None:
    document = asm_documents(record).documents["solution-analyzer"]
    validate(document)
    first = _measurements(document, "solution analyzer")[0]
    assert first["pH"] == {"value": 7.2, "unit": "pH"}
    analytes = first["analyte aggregate document"]["analyte document"]
    assert {a["analyte name"]: a["molar concentration"]["value"] for a in analytes} == {
        "glucose": 20.0,
        "lactate": 1.0,
    }
    custom = first["custom information document"]
    assert custom["dissolved oxygen (air saturation)"] == {"value": 80.0, "unit": "%"}


def test_automated_reactors_cubes_validate_against_allotropy_core(record: Path) -> None:
    document = asm_documents(record).documents["automated-reactors"]
    assert document["$asm.manifest"] == AUTOMATED_REACTORS_MANIFEST
    if schema_for(AUTOMATED_REACTORS_MANIFEST) is not None:  # a later allotropy ships it
        validate(document)
    aggregate = document["automated reactor aggregate document"]
    # allotropy ships no automated-reactors schema: validate each part against its core schema
    systems = {k: v for k, v in aggregate.items() if k.endswith("system document")}
    validator(core_def("techniqueAggregateDocument", "hierarchy")).validate(systems)
    measurements = _measurements(document, "automated reactor")
    assert {m["analyte name"] for m in measurements} == {
        "chamber.temperature",
        "chamber.ph",
        "chamber.dissolved_oxygen",
        "in_process_control.glucose",
        "in_process_control.lactate",
        "in_process_control.cell_concentration",
        "in_process_control.viability",
        "in_process_control.total_cells",
    }
    for m in measurements:
        cube = m["data cube"]
        validator(core_def("tDatacube", "cube")).validate(cube)
        validator(core_def("tDateTimeStampValue")).validate(m["measurement time"])
        (dimension,) = cube["cube-structure"]["dimensions"]
        assert dimension == {"@componentDatatype": "double", "concept": "elapsed time", "unit": "s"}
        validator(unit_def("s")).validate(dimension)
        (measure,) = cube["cube-structure"]["measures"]
        validator(unit_def(measure["unit"])).validate(measure)
        assert cube["data"]["dimensions"][0] == [0.0, 3600.0, 7200.0, 10800.0, 14400.0]
        assert len(cube["data"]["measures"][0]) == 5


def test_every_mapped_unit_is_an_asm_unit() -> None:
    for ucum, (asm_unit, factor) in UCUM_TO_ASM.items():
        assert factor > 0, ucum
        unit_def(asm_unit)


def test_what_asm_cannot_hold_is_listed(record: Path) -> None:
    skipped = asm_documents(record).not_exported
    assert any("chamber.rcf" in line and "[g]" in line for line in skipped)
    assert any(line.startswith("controller.step_name: text") for line in skipped)
    assert any(line.startswith("audit trail") for line in skipped)


def test_export_matches_golden_files(record: Path, tmp_path: Path) -> None:
    written = export_asm(record, tmp_path / "asm")
    assert sorted(p.name for p in written) == [
        "automated-reactors.json",
        "cell-counting.json",
        "not-exported.json",
        "solution-analyzer.json",
    ]
    for path in written:
        golden = GOLDEN / path.name
        if REGEN:
            golden.parent.mkdir(parents=True, exist_ok=True)
            golden.write_bytes(path.read_bytes())
        assert golden.is_file(), f"{golden} missing; run with CELLAUTO_REGEN_GOLDEN=1 to create it"
        assert path.read_bytes() == golden.read_bytes(), f"{path.name} differs from {golden}"
        if path.name != "not-exported.json":
            document = json.loads(path.read_text(encoding="utf-8"))
            if schema_for(document["$asm.manifest"]) is not None:
                validate(document)


def test_cli_exports_asm(record: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli"
    assert main(["records", "export", str(record), "--format", "asm", "--out", str(out)]) == 0
    assert "wrote 4 files" in capsys.readouterr().out
    validate(json.loads((out / "cell-counting.json").read_text(encoding="utf-8")))


def test_unwritable_output_is_a_record_error(record: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RecordError, match="B-0001"):
        export_asm(record, blocker / "asm")


def test_export_refuses_to_overwrite_without_force(record: Path, tmp_path: Path) -> None:
    out = tmp_path / "asm"
    export_asm(record, out)
    with pytest.raises(RecordError, match="--force"):
        export_asm(record, out)
    assert len(export_asm(record, out, force=True)) == 4
