"""Validation rules of the common schema: what bad input is refused, and how it is reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from cellauto import SchemaVersionError
from cellauto.schema import (
    SCHEMA_VERSION,
    Alarm,
    AlarmSeverity,
    AuditEntry,
    BatchInfo,
    ChannelDescriptor,
    ParameterSpec,
    ProgramStep,
    ProgramTemplate,
    Q,
    Result,
    Sample,
    SourcedRange,
    check_schema_version,
)

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def sample(**overrides: object) -> Sample:
    fields: dict[str, object] = {
        "device_id": "cocoon-1",
        "channel": "chamber.temperature",
        "timestamp": NOW,
        "value": 37.0,
        "unit": "Cel",
        "seq": 0,
    }
    fields.update(overrides)
    return Sample.model_validate(fields)


def test_naive_timestamps_are_rejected_with_a_helpful_message() -> None:
    with pytest.raises(ValidationError, match="no time zone"):
        sample(timestamp=datetime(2026, 11, 28, 9, 0))
    with pytest.raises(ValidationError, match="no time zone"):
        sample(timestamp="2026-11-28T09:00:00")


def test_aware_timestamps_are_normalised_to_utc() -> None:
    tokyo = datetime(2026, 11, 28, 18, 0, tzinfo=timezone(timedelta(hours=9)))
    assert sample(timestamp=tokyo).timestamp == NOW
    assert sample(timestamp=tokyo).timestamp.tzinfo is UTC


def test_unknown_fields_are_rejected() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        sample(temperature_unit="C")


def test_models_are_immutable() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        sample().value = 38.0  # type: ignore[misc]


def test_sample_units_are_ucum_and_match_the_value_type() -> None:
    with pytest.raises(ValidationError, match="did you mean 'Cel'"):
        sample(unit="degC")
    with pytest.raises(ValidationError, match="numeric sample needs a unit"):
        sample(unit=None)
    with pytest.raises(ValidationError, match="str sample has no unit"):
        sample(value="closed", unit="1")
    assert sample(value=True, unit=None).value is True
    assert sample().quantity == Q(37, "Cel")


def test_channel_names_are_unit_dot_variable() -> None:
    with pytest.raises(ValidationError, match="pattern"):
        sample(channel="temperature")
    with pytest.raises(ValidationError, match="pattern"):
        sample(channel="chamber.temperature_C.x")


def test_schema_version_newer_major_is_refused_clearly() -> None:
    with pytest.raises(SchemaVersionError, match="newer than this cellauto reads"):
        check_schema_version("2.0")
    with pytest.raises(ValidationError, match="upgrade cellauto"):
        BatchInfo(batch_id="B-1", product="CAR-T", schema_version="9.1")
    assert check_schema_version(SCHEMA_VERSION.split(".")[0] + ".7") == "1.7"
    assert BatchInfo(batch_id="B-1", product="CAR-T").schema_version == SCHEMA_VERSION
    with pytest.raises(SchemaVersionError, match=r"MAJOR\.MINOR"):
        check_schema_version("v1")


def template(**overrides: object) -> ProgramTemplate:
    fields: dict[str, object] = {
        "name": "CAR-T",
        "version": "1.0",
        "author": "alice",
        "steps": [{"name": "Seed", "unit_operation": "seed", "duration": Q(2, "h")}],
    }
    fields.update(overrides)
    return ProgramTemplate.model_validate(fields)


def test_program_template_hash_is_filled_and_guards_the_content() -> None:
    original = template()
    assert len(original.content_hash) == 64
    assert template().content_hash == original.content_hash
    assert template(version="1.1").content_hash != original.content_hash
    tampered = original.model_dump(mode="json")
    tampered["steps"][0]["duration"]["value"] = 3
    with pytest.raises(ValidationError, match="content_hash does not match"):
        ProgramTemplate.model_validate(tampered)
    tampered["content_hash"] = ""
    assert ProgramTemplate.model_validate(tampered).content_hash != original.content_hash


def test_program_step_duration_must_be_a_positive_time() -> None:
    with pytest.raises(ValidationError, match="is no time"):
        ProgramStep(name="Seed", unit_operation="seed", duration=Q(2, "mL"))
    with pytest.raises(ValidationError, match="positive"):
        ProgramStep(name="Seed", unit_operation="seed", duration=Q(0, "h"))
    assert ProgramStep(name="x", unit_operation="x", duration=Q(2, "h")).duration_seconds == 7200


def test_parameter_specs_are_consistent() -> None:
    with pytest.raises(ValidationError, match="needs a unit"):
        ParameterSpec(name="target_cells", minimum=1)
    with pytest.raises(ValidationError, match="no source"):
        ParameterSpec(name="target_cells", unit="{cells}", maximum=1e10)
    with pytest.raises(ValidationError, match="minimum is above maximum"):
        ParameterSpec(name="v", unit="mL", minimum=5, maximum=1, source="assumed")
    with pytest.raises(ValidationError, match="cannot have a unit"):
        ParameterSpec(name="mode", dtype="str", unit="mL")


def test_channel_limits_lie_within_the_range() -> None:
    rng = SourcedRange(low=0, high=50, source="assumed")
    with pytest.raises(ValidationError, match="outside eu_range"):
        ChannelDescriptor(
            name="temperature",
            kind="sensor",
            unit="Cel",
            eu_range=rng,
            alarm_limits=SourcedRange(low=30, high=60, source="assumed"),
        )
    with pytest.raises(ValidationError, match=r"low .* must be below high"):
        SourcedRange(low=5, high=5, source="assumed")
    with pytest.raises(ValidationError, match="only control channels are writable"):
        ChannelDescriptor(name="ph", kind="sensor", unit="[pH]", writable=True)


def test_provenance_must_be_assumed_or_public_citation() -> None:
    with pytest.raises(ValidationError, match="pattern"):
        SourcedRange(low=0, high=1, source="guess")
    with pytest.raises(ValidationError, match="pattern"):
        SourcedRange(low=0, high=1, source="public:")


def test_alarm_flags_need_their_times() -> None:
    base = {
        "alarm_id": "A-1",
        "code": "leak",
        "device_id": "cocoon-1",
        "severity": AlarmSeverity.CRITICAL,
        "message": "Leak detected",
        "raised_at": NOW,
    }
    assert Alarm.model_validate(base).state == "active"
    with pytest.raises(ValidationError, match="acknowledged needs"):
        Alarm.model_validate({**base, "acknowledged": True})
    with pytest.raises(ValidationError, match="needs cleared_at"):
        Alarm.model_validate({**base, "active": False})
    cleared = Alarm.model_validate({**base, "active": False, "cleared_at": NOW})
    assert cleared.state == "cleared_unacknowledged"


def test_result_and_batch_times_are_ordered() -> None:
    with pytest.raises(ValidationError, match="stop before it started"):
        Result(
            device_id="d",
            device_program_run_id="r",
            program="TCT",
            program_version="1",
            template_hash="0" * 64,
            started=NOW,
            stopped=NOW - timedelta(seconds=1),
            outcome="complete",
            total_runtime=timedelta(0),
        )
    with pytest.raises(ValidationError, match="ends before it starts"):
        BatchInfo(batch_id="B", product="p", actual_start=NOW, actual_end=NOW - timedelta(days=1))


def test_audit_entry_hash_covers_every_field() -> None:
    entry = AuditEntry(
        seq=0,
        time=NOW,
        actor="alice",
        action="set",
        object="cocoon-1/chamber.temperature",
        value=37.0,
        previous_value=36.5,
        reason="protocol",
        prev_hash="0" * 64,
        hash="0" * 64,
    )
    digest = entry.expected_hash()
    assert len(digest) == 64
    for change in ({"actor": "bob"}, {"value": 37.5}, {"reason": ""}, {"seq": 1}):
        assert entry.model_copy(update=change).expected_hash() != digest
    assert entry.model_copy(update={"hash": digest}).expected_hash() == digest
