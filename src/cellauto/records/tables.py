"""The Arrow schemas of a record's tables, and their published copies in ``schemas/arrow/``."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from cellauto.generated import stale_generated, write_generated
from cellauto.resources import schemas_dir
from cellauto.schema import SCHEMA_VERSION

RECORD_FORMAT = "1.1"
"""Version of the on-disk record layout (folder, manifest, tables). Same rules as SCHEMA_VERSION:
a new minor version only adds (1.1: the seal entry holds every manifest field, checkpoints
before signatures, key signatures in a signature entry's value), so a cellauto that reads 1.0
reads a 1.1 record and ignores what it does not know; a new major version is refused by older
readers ("upgrade cellauto to read it")."""

_STR = pa.dictionary(pa.int32(), pa.string())
_TIME = pa.timestamp("us", tz="UTC")


def _field(name: str, type_: pa.DataType, nullable: bool, doc: str) -> pa.Field:
    return pa.field(name, type_, nullable=nullable, metadata={"description": doc})


SAMPLES = pa.schema(
    [
        _field("batch_id", _STR, False, "Batch the sample belongs to."),
        _field("device_id", _STR, False, "Device that produced the sample."),
        _field("channel", _STR, False, "Channel, `unit.variable`."),
        _field("timestamp", _TIME, False, "When the value was measured (UTC)."),
        _field("value", pa.float64(), True, "Numeric value (ints are stored as float64)."),
        _field("value_text", pa.string(), True, "Value of a text channel; null otherwise."),
        _field("value_bool", pa.bool_(), True, "Value of a boolean channel; null otherwise."),
        _field("unit", _STR, True, "UCUM unit of `value`; null for text and boolean channels."),
        _field("quality", _STR, False, "good, uncertain or bad (OPC UA status class)."),
        _field("seq", pa.int64(), False, "Per-device sequence number; gaps mean lost samples."),
    ]
)

EVENTS = pa.schema(
    [
        _field("batch_id", _STR, False, "Batch the event belongs to."),
        _field("device_id", _STR, False, "Device the event happened on."),
        _field("time", _TIME, False, "When it happened (UTC)."),
        _field("seq", pa.int64(), True, "Device event sequence number; null for alarm rows."),
        _field("kind", _STR, False, "EventKind: state_changed, alarm_raised, step_started..."),
        _field("source", _STR, False, "Functional unit or component, or 'device'."),
        _field("message", pa.string(), False, "Human-readable text."),
        _field("from_state", _STR, True, "State before a transition."),
        _field("to_state", _STR, True, "State after a transition."),
        _field("cause", _STR, True, "Command name, 'state_complete' or 'reported'."),
        _field("alarm_id", pa.string(), True, "Alarm occurrence, for alarm_* rows."),
        _field("alarm_code", _STR, True, "Alarm as declared in the profile, for alarm_* rows."),
        _field("severity", _STR, True, "Alarm severity, for alarm_* rows."),
        _field("data", pa.string(), False, "Canonical JSON object of event data (or the Alarm)."),
        _field("vendor_data", pa.string(), False, "Canonical JSON object of vendor data."),
    ]
)

AUDIT = pa.schema(
    [
        _field("seq", pa.int64(), False, "Position in the chain, from 0."),
        _field("time", _TIME, False, "When the action happened (UTC)."),
        _field("actor", _STR, False, "Who acted: a person's user id or a system component."),
        _field("action", _STR, False, "What was done."),
        _field("object", pa.string(), False, "What was acted on."),
        _field("value", pa.string(), False, "Canonical JSON of the new value."),
        _field("previous_value", pa.string(), False, "Canonical JSON of the previous value."),
        _field("reason", pa.string(), False, "Why."),
        _field("signature_printed_name", pa.string(), True, "Signer's printed name."),
        _field("signature_user_id", pa.string(), True, "Signer's user id."),
        _field("signature_meaning", _STR, True, "authorship, review, approval, responsibility."),
        _field("signature_signed_at", _TIME, True, "When the signature was made (UTC)."),
        _field("signature_signed_hash", pa.string(), True, "SHA-256 of what was signed."),
        _field(
            "prev_hash", pa.string(), False, "`hash` of the previous entry (zeros for the first)."
        ),
        _field("hash", pa.string(), False, "SHA-256 of the canonical JSON of all other fields."),
    ]
)

RESULTS = pa.schema(
    [
        _field("batch_id", _STR, False, "Batch the result belongs to."),
        _field("device_id", _STR, False, "Device that ran the program."),
        _field("device_program_run_id", pa.string(), False, "The program run."),
        _field("program", _STR, False, "Program name."),
        _field("program_version", _STR, False, "Program version."),
        _field("outcome", _STR, False, "complete, stopped or aborted."),
        _field("started", _TIME, False, "Run start (UTC)."),
        _field("stopped", _TIME, False, "Run end (UTC)."),
        _field("total_runtime", pa.duration("us"), False, "Run time."),
        _field("result", pa.string(), False, "The full Result as canonical JSON."),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "samples": SAMPLES,
    "events": EVENTS,
    "audit": AUDIT,
    "results": RESULTS,
}
"""Table name -> Arrow schema (without the version metadata the files carry)."""

DICTIONARY_COLUMNS: dict[str, tuple[str, ...]] = {
    name: tuple(f.name for f in schema if pa.types.is_dictionary(f.type))
    for name, schema in TABLES.items()
}


def file_schema(table: str) -> pa.Schema:
    """The schema as written to disk: with the schema and record-format versions as metadata."""
    return TABLES[table].with_metadata(
        {"cellauto.schema_version": SCHEMA_VERSION, "cellauto.record_format": RECORD_FORMAT}
    )


def describe(table: str) -> dict[str, object]:
    """A JSON-able description of one table's Arrow schema."""
    schema = TABLES[table]
    return {
        "table": table,
        "x-cellauto-schema-version": SCHEMA_VERSION,
        "x-cellauto-record-format": RECORD_FORMAT,
        "fields": [
            {
                "name": f.name,
                "type": str(f.type),
                "nullable": f.nullable,
                "description": (f.metadata or {}).get(b"description", b"").decode(),
            }
            for f in schema
        ],
    }


def default_arrow_dir() -> Path:
    """Where the published Arrow schemas live."""
    return schemas_dir() / "arrow"


def render() -> dict[str, str]:
    """File name -> file text of every published Arrow schema."""
    return {
        f"{table}.json": json.dumps(describe(table), indent=2, sort_keys=True) + "\n"
        for table in TABLES
    }


def export(out: Path) -> list[Path]:
    """Write every Arrow schema file into `out`; remove ones nothing produces any more."""
    return write_generated(out, render())


def stale_files(out: Path) -> list[str]:
    """Names of Arrow schema files in `out` that are missing, different, or produced by nothing."""
    return stale_generated(out, render())
