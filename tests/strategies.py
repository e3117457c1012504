"""Hypothesis strategies that build valid instances of every persisted schema model."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from cellauto.schema import (
    Alarm,
    AlarmSeverity,
    AlarmSpec,
    AuditEntry,
    BatchInfo,
    BatchStatus,
    ChannelDescriptor,
    Citation,
    Command,
    CommandResult,
    CommandSpec,
    DeviceInfo,
    DeviceProfile,
    ElectronicSignature,
    Event,
    EventKind,
    FunctionalUnit,
    ParameterSpec,
    ProgramRun,
    ProgramStep,
    ProgramTemplate,
    Quality,
    Quantity,
    Result,
    ResultFile,
    Sample,
    SampleInfo,
    SignatureMeaning,
    SourcedQuantity,
    SourcedRange,
    SourcedValue,
)

UNITS = ["Cel", "K", "%", "mmol/L", "mg/dL", "mL", "L", "uL", "{cells}/mL", "{rev}/min", "[g]", "1"]
TIME_UNITS = ["s", "min", "h", "d"]

names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
ids = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=24)
text = st.text(max_size=40)
finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)
hashes = st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | finite | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
json_maps = st.dictionaries(text, json_values, max_size=3)
times = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5))]),
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=60))
quantities = st.builds(Quantity, value=finite, unit=st.sampled_from(UNITS))
scalars = st.booleans() | st.integers(-(10**6), 10**6) | finite | text
property_values = scalars | quantities
provenance = st.sampled_from(["assumed", "public:src1", "public:src2"])


def sample_infos() -> st.SearchStrategy[SampleInfo]:
    optional_id = st.none() | ids
    return st.builds(
        SampleInfo,
        container_id=ids,
        sample_id=optional_id,
        position=st.none() | text,
        material=st.none() | text,
        donor_id=optional_id,
        patient_id=optional_id,
        lot=optional_id,
        batch_id=optional_id,
        volume=st.none() | st.builds(Quantity, value=positive, unit=st.just("mL")),
        custom_data=json_maps,
    )


def samples() -> st.SearchStrategy[Sample]:
    numeric = st.tuples(st.integers(-(10**6), 10**6) | finite, st.sampled_from(UNITS))
    other = st.tuples(st.booleans() | text, st.none())
    return st.builds(
        lambda pair, **kw: Sample(value=pair[0], unit=pair[1], **kw),
        numeric | other,
        device_id=ids,
        channel=st.builds(lambda a, b: f"{a}.{b}", names, names),
        timestamp=times,
        quality=st.sampled_from(Quality),
        seq=st.integers(0, 2**63 - 1),
    )


def events() -> st.SearchStrategy[Event]:
    return st.builds(
        Event,
        device_id=ids,
        time=times,
        seq=st.integers(0, 2**40),
        kind=st.sampled_from(EventKind),
        source=text,
        message=text,
        from_state=st.none() | text,
        to_state=st.none() | text,
        cause=st.none() | text,
        data=json_maps,
        vendor_data=json_maps,
    )


@st.composite
def alarms(draw: st.DrawFn) -> Alarm:
    raised = draw(times)
    acknowledged = draw(st.booleans())
    active = draw(st.booleans())
    return Alarm(
        alarm_id=draw(ids),
        code=draw(names),
        device_id=draw(ids),
        source=draw(text),
        severity=draw(st.sampled_from(AlarmSeverity)),
        message=draw(text),
        active=active,
        acknowledged=acknowledged,
        raised_at=raised,
        acknowledged_at=raised + timedelta(seconds=5) if acknowledged else None,
        acknowledged_by=draw(ids) if acknowledged else None,
        cleared_at=None if active else raised + timedelta(minutes=1),
        vendor_data=draw(json_maps),
    )


def commands() -> st.SearchStrategy[Command]:
    return st.builds(
        Command,
        command_id=ids,
        device_id=ids,
        name=names,
        parameters=st.dictionaries(names, property_values, max_size=3),
        issued_at=times,
        issued_by=st.none() | text,
    )


def command_results() -> st.SearchStrategy[CommandResult]:
    return st.builds(
        CommandResult,
        command_id=ids,
        device_id=ids,
        name=names,
        accepted=st.booleans(),
        message=text,
        finished_at=times,
        data=json_maps,
    )


def signatures() -> st.SearchStrategy[ElectronicSignature]:
    return st.builds(
        ElectronicSignature,
        printed_name=ids,
        user_id=ids,
        meaning=st.sampled_from(SignatureMeaning),
        signed_at=times,
        signed_hash=hashes,
    )


def audit_entries() -> st.SearchStrategy[AuditEntry]:
    return st.builds(
        AuditEntry,
        seq=st.integers(0, 2**40),
        time=times,
        actor=ids,
        action=ids,
        object=text,
        value=json_values,
        previous_value=json_values,
        reason=text,
        signature=st.none() | signatures(),
        prev_hash=hashes,
        hash=hashes,
    )


def batch_infos() -> st.SearchStrategy[BatchInfo]:
    return st.builds(
        lambda start, length, ended, **kw: BatchInfo(
            actual_start=start, actual_end=start + length if (start and ended) else None, **kw
        ),
        st.none() | times,
        durations,
        st.booleans(),
        batch_id=ids,
        product=text,
        recipe=st.none() | text,
        recipe_version=st.none() | text,
        lot_id=st.none() | ids,
        status=st.sampled_from(BatchStatus),
        operators=st.lists(ids, max_size=3),
        equipment=st.lists(ids, max_size=3),
    )


def device_infos() -> st.SearchStrategy[DeviceInfo]:
    return st.builds(
        DeviceInfo,
        manufacturer=text,
        model=text,
        serial_number=text,
        software_revision=text,
        device_revision=text,
        asset_id=text,
        component_name=text,
        vendor_data=json_maps,
    )


@st.composite
def parameter_specs(draw: st.DrawFn) -> ParameterSpec:
    dtype = draw(st.sampled_from(["float", "int", "bool", "str"]))
    if dtype in ("float", "int"):
        low = draw(st.integers(-1000, 1000))
        return ParameterSpec(
            name=draw(names),
            dtype=dtype,
            unit=draw(st.sampled_from(UNITS)),
            default=low + 1,
            minimum=low,
            maximum=low + draw(st.integers(1, 100)),
            required=draw(st.booleans()),
            source=draw(provenance),
        )
    return ParameterSpec(
        name=draw(names),
        dtype=dtype,
        choices=draw(st.none() | st.lists(text, min_size=1, max_size=3))
        if dtype == "str"
        else None,
        description=draw(text),
    )


def steps(units: list[str] | None = None) -> st.SearchStrategy[ProgramStep]:
    return st.builds(
        ProgramStep,
        name=st.text(min_size=1, max_size=30),
        unit_operation=names,
        functional_unit=st.none() | (st.sampled_from(units) if units else st.none()),
        duration=st.builds(Quantity, value=positive, unit=st.sampled_from(TIME_UNITS)),
        parameters=st.dictionaries(names, property_values, max_size=2),
        prompt=st.none() | text,
        source=provenance,
    )


def program_templates(units: list[str] | None = None) -> st.SearchStrategy[ProgramTemplate]:
    return st.builds(
        ProgramTemplate,
        name=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\- ]{0,20}", fullmatch=True),
        version=st.from_regex(r"[0-9]\.[0-9]", fullmatch=True),
        author=text,
        description=text,
        device=st.none() | names,
        created=st.none() | times,
        parameters=st.lists(parameter_specs(), max_size=3, unique_by=lambda p: p.name),
        steps=st.lists(steps(units), min_size=1, max_size=4),
    )


def program_runs() -> st.SearchStrategy[ProgramRun]:
    return st.builds(
        ProgramRun,
        device_id=ids,
        device_program_run_id=ids,
        program=st.just("TCT"),
        program_version=text,
        template_hash=hashes,
        parameters=st.dictionaries(names, property_values, max_size=3),
        supervisory_job_id=st.none() | ids,
        samples=st.lists(sample_infos(), max_size=2),
        user=st.none() | text,
        started=times,
        estimated_runtime=st.none() | durations,
    )


def results() -> st.SearchStrategy[Result]:
    return st.builds(
        lambda started, runtime, **kw: Result(
            started=started, stopped=started + runtime, total_runtime=runtime, **kw
        ),
        times,
        durations,
        device_id=ids,
        device_program_run_id=ids,
        program=st.just("CAR-T 1"),
        program_version=text,
        template_hash=hashes,
        outcome=st.sampled_from(["complete", "stopped", "aborted"]),
        properties=st.dictionaries(names, property_values, max_size=3),
        samples=st.lists(sample_infos(), max_size=2),
        files=st.lists(
            st.builds(
                ResultFile,
                name=st.text(min_size=1, max_size=20),
                mime_type=st.just("image/png"),
                path=text,
                sha256=hashes,
            ),
            max_size=2,
        ),
        vendor_data=json_maps,
    )


@st.composite
def channels(draw: st.DrawFn) -> ChannelDescriptor:
    if draw(st.booleans()):
        return ChannelDescriptor(
            name=draw(names), kind="sensor", dtype="str", choices=draw(st.none() | st.just(["a"]))
        )
    low = draw(st.integers(-100, 100))
    high = low + draw(st.integers(10, 1000))
    control = draw(st.booleans())
    return ChannelDescriptor(
        name=draw(names),
        kind="control" if control else "sensor",
        unit=draw(st.sampled_from(UNITS)),
        eu_range=SourcedRange(low=low, high=high, source=draw(provenance)),
        alarm_limits=SourcedRange(low=low + 1, high=high - 1, source=draw(provenance)),
        setpoint=SourcedValue(value=low + 5, source=draw(provenance)) if control else None,
        sample_period=SourcedQuantity(
            value=draw(positive), unit=draw(st.sampled_from(TIME_UNITS)), source=draw(provenance)
        ),
        writable=control and draw(st.booleans()),
    )


@st.composite
def device_profiles(draw: st.DrawFn) -> DeviceProfile:
    unit_names = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    units = [
        FunctionalUnit(
            name=name,
            kind=draw(names),
            channels=draw(st.lists(channels(), max_size=3, unique_by=lambda c: c.name)),
        )
        for name in unit_names
    ]
    citation = Citation(url="https://example.org/paper", title="A paper")
    return DeviceProfile(
        device=draw(names),
        profile_version="0.1.0",
        manufacturer=draw(text),
        model=draw(text),
        description=draw(text),
        protocol="schemas/protocols/x.md",
        transports=draw(st.lists(st.sampled_from(["opcua", "serial", "tcp"]), min_size=1)),
        sources={"src1": citation, "src2": citation},
        functional_units=units,
        programs=draw(
            st.lists(program_templates(unit_names), max_size=2, unique_by=lambda p: p.name)
        ),
        commands=draw(
            st.lists(
                st.builds(
                    CommandSpec,
                    name=names,
                    description=text,
                    parameters=st.lists(parameter_specs(), max_size=2, unique_by=lambda p: p.name),
                    source=provenance,
                ),
                max_size=2,
                unique_by=lambda c: c.name,
            )
        ),
        alarms=draw(
            st.lists(
                st.builds(
                    AlarmSpec,
                    code=names,
                    title=text,
                    severity=st.sampled_from(AlarmSeverity),
                    functional_unit=st.sampled_from(unit_names),
                    source=provenance,
                ),
                max_size=3,
                unique_by=lambda a: a.code,
            )
        ),
    )


STRATEGIES: dict[type[Any], st.SearchStrategy[Any]] = {
    DeviceProfile: device_profiles(),
    ProgramTemplate: program_templates(),
    ProgramRun: program_runs(),
    Result: results(),
    BatchInfo: batch_infos(),
    Sample: samples(),
    Event: events(),
    Alarm: alarms(),
    Command: commands(),
    CommandResult: command_results(),
    AuditEntry: audit_entries(),
    ElectronicSignature: signatures(),
    SampleInfo: sample_infos(),
    DeviceInfo: device_infos(),
}
