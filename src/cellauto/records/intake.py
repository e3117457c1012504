"""Checking samples on their way in: units, kinds and columns, before anything is written."""

from __future__ import annotations

import functools
import threading
from collections.abc import Mapping
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from cellauto.errors import RecordError, RecordValidationError, UnitError
from cellauto.records.buffers import BAD, KIND, QUALITY, TIME, Channel, Kind, Part, SampleBuffer
from cellauto.units import validate_unit


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to read one input schema of `add_samples` (checked once, reused while it repeats)."""

    schema: pa.Schema
    columns: tuple[int, ...]  # device_id, channel, unit, timestamp
    value: int
    seq: int
    quality: int | None
    cast_time: bool
    cast_value: bool
    cast_seq: bool


class SampleIntake:
    """The channels a record knows (unit and kind) and the checks of each incoming sample or
    columnar batch against them; rejects with RecordValidationError naming batch, device and
    channel."""

    def __init__(
        self,
        batch_id: str,
        samples: SampleBuffer,
        lock: threading.RLock,
        channels: Mapping[tuple[str, str], tuple[str | None, Kind]],
        channel_units: Mapping[tuple[str, str], str | None],
    ) -> None:
        self.batch_id = batch_id
        self._samples = samples
        self._lock = lock
        self.declared: dict[tuple[str, str], str | None] = dict(channel_units)
        self.channels: dict[tuple[str, str], Channel] = {}
        self._valid_keys: dict[tuple[int, int, int | None, int | None], set[int]] = {}
        self._units_checked: tuple[pa.Array, pa.Array, pa.Array] | None = None
        self._last_plan: _Plan | None = None
        for (device_id, channel), (unit, kind) in channels.items():
            key = samples.add_key(device_id, channel, unit)
            self.channels[device_id, channel] = Channel(key, unit, kind)

    def _plan(self, batch: pa.RecordBatch) -> _Plan:
        """Where the columns are and which need casts; checked once per input schema."""
        schema = batch.schema
        plan = self._last_plan
        if plan is not None and plan.schema.equals(schema):
            return plan
        names = schema.names
        missing = {"device_id", "channel", "unit", "timestamp", "value", "seq"} - set(names)
        if missing:
            raise RecordError(f"batch {self.batch_id}: add_samples needs columns {sorted(missing)}")

        def bad(message: str) -> RecordValidationError:
            return self.invalid(_first(batch, "device_id"), _first(batch, "channel"), message)

        time = schema.field("timestamp").type
        if not pa.types.is_timestamp(time) or time.tz is None:
            raise bad(f"timestamp column is {time}, needs a timezone-aware timestamp")
        value = schema.field("value").type
        if not (pa.types.is_floating(value) or pa.types.is_integer(value)):
            raise bad(
                f"value of the wrong type ({value}); add_samples takes numbers, "
                "use add_sample for text and boolean samples",
            )
        seq = schema.field("seq").type
        if not pa.types.is_integer(seq):
            raise bad("seq must be integers without nulls")
        index = schema.get_field_index
        plan = _Plan(
            schema=schema,
            columns=tuple(index(n) for n in ("device_id", "channel", "unit", "timestamp")),
            value=index("value"),
            seq=index("seq"),
            quality=index("quality") if "quality" in names else None,
            cast_time=time != TIME,
            cast_value=value != pa.float64(),
            cast_seq=seq != pa.int64(),
        )
        self._last_plan = plan
        return plan

    def prepare(self, batch: pa.RecordBatch) -> Part:
        """A columnar batch of `add_samples`, checked and re-coded; NaN and infinities marked
        bad."""
        plan = self._plan(batch)
        codes = self._samples.codes
        given = batch.columns
        device_col, channel_col, unit_col, time = (given[i] for i in plan.columns)
        device = codes["device_id"].remap(device_col)
        channel = codes["channel"].remap(channel_col)
        unit = codes["unit"].remap(unit_col)

        def bad(message: str) -> RecordValidationError:
            return self.invalid(_first(batch, "device_id"), _first(batch, "channel"), message)

        value = given[plan.value]
        seq = given[plan.seq]
        if seq.null_count:
            raise bad("seq must be integers without nulls")
        if unit_col.null_count or device.null_count or channel.null_count or time.null_count:
            raise bad("device_id, channel, unit and timestamp need values")
        quality: pa.Array | None = None
        if plan.quality is not None:
            quality_codes = codes["quality"]
            given_quality = quality_codes.remap(given[plan.quality])
            if len(quality_codes.values) > len(QUALITY):
                wrong = quality_codes.values[len(QUALITY)]
                quality_codes.forget(len(QUALITY))
                raise bad(f"quality {wrong!r} is not one of {QUALITY}")
            if given_quality.null_count:
                raise bad("quality needs values")
            quality = given_quality
        self._check_units(batch, device, channel, unit)
        if pa.types.is_floating(value.type):
            finite = pc.is_finite(value)
            if not pc.all(finite).as_py():  # NaN and infinities are never good data
                base = quality if quality is not None else self._samples.zeros(len(value))
                quality = pc.if_else(pc.fill_null(finite, True), base, _int32(BAD))
        return (
            device,
            channel,
            time.cast(TIME, safe=False) if plan.cast_time else time,
            value.cast(pa.float64()) if plan.cast_value else value,
            unit,
            quality,
            seq.cast(pa.int64()) if plan.cast_seq else seq,
        )

    def _check_units(
        self, batch: pa.RecordBatch, device: pa.Array, channel: pa.Array, unit: pa.Array
    ) -> None:
        """Reject the batch if any (device, channel) has a unit other than its channel's."""
        last = self._units_checked
        if (
            last is not None
            and last[1].equals(channel)
            and last[0].equals(device)
            and last[2].equals(unit)
        ):
            return  # the same (device, channel, unit) codes, row for row, as a batch accepted
        codes = self._samples.codes
        one_device = codes["device_id"].single(batch.column("device_id"))
        one_unit = codes["unit"].single(batch.column("unit"))
        n_channel = len(codes["channel"].values)
        n_unit = len(codes["unit"].values)
        key = channel
        if len(codes["device_id"].values) * n_channel * n_unit >= 2**31:
            key = channel.cast(pa.int64())
        if one_device is None:
            key = pc.add(pc.multiply(device, _int32(n_channel)), key)
        if one_unit is None:
            key = pc.add(pc.multiply(key, _int32(n_unit)), unit)
        found = pc.unique(key).to_pylist()
        shape = (n_channel, n_unit, one_device, one_unit)
        valid = self._valid_keys.setdefault(shape, set())
        if valid.issuperset(found):
            self._units_checked = (device, channel, unit)
            return
        new: dict[tuple[str, str], str] = {}
        for combo in found:
            if one_unit is None:
                combo, u = divmod(combo, n_unit)
            else:
                u = one_unit
            if one_device is None:
                d, c = divmod(combo, n_channel)
            else:
                d, c = one_device, combo
            device_id = codes["device_id"].values[d]
            channel_name = codes["channel"].values[c]
            unit_code = codes["unit"].values[u]
            known = self.channels.get((device_id, channel_name))
            if known is None or known.unit != unit_code or known.kind != "number":
                self.admit(device_id, channel_name, unit_code, float, register=False)
                other = new.setdefault((device_id, channel_name), unit_code)
                if other != unit_code:
                    raise self.invalid(
                        device_id, channel_name, f"units {other!r} and {unit_code!r} in one batch"
                    )
        for (device_id, channel_name), unit_code in new.items():
            self.admit(device_id, channel_name, unit_code, float)
        valid.update(found)
        self._units_checked = (device, channel, unit)

    def admit(
        self,
        device_id: str,
        channel: str,
        unit: str | None,
        value_type: type,
        *,
        register: bool = True,
    ) -> Channel | None:
        """Check a (device, channel) that is new or differs from what it recorded so far;
        remember it as the channel's unit and kind if `register`."""
        kind = KIND.get(value_type)
        if kind is None:
            raise self.invalid(
                device_id, channel, f"value of the wrong type ({value_type.__name__})"
            )
        if (kind == "number") != (unit is not None):
            raise self.invalid(
                device_id,
                channel,
                "a numeric sample needs a unit" if unit is None else f"a {kind} sample has no unit",
            )
        known = self.channels.get((device_id, channel))
        if known is not None:
            if known.kind != kind:
                raise self.invalid(
                    device_id,
                    channel,
                    f"value of the wrong type: a {kind} value, but the channel records "
                    f"{known.kind} values",
                )
            if known.unit != unit:
                raise self.invalid(
                    device_id,
                    channel,
                    f"unit {unit!r} differs from {known.unit!r}, the unit this channel was first "
                    "recorded with; convert at the adapter edge",
                )
            return known
        declared = self.declared.get((device_id, channel), unit)
        if declared != unit:
            raise self.invalid(
                device_id, channel, f"unit {unit!r} differs from the declared unit {declared!r}"
            )
        if unit is not None:
            try:
                validate_unit(unit)
            except UnitError as exc:
                raise self.invalid(device_id, channel, str(exc)) from None
        if not register:
            return None
        with self._lock:
            key = self._samples.add_key(device_id, channel, unit)
            admitted = Channel(key, unit, kind)
            self.channels[device_id, channel] = admitted
        return admitted

    def invalid(self, device_id: str, channel: str, message: str) -> RecordValidationError:
        """The error rejecting a sample of `device_id`/`channel`."""
        return RecordValidationError(self.batch_id, device_id, channel, message)


@functools.lru_cache(maxsize=256)
def _int32(value: int) -> pa.Scalar:
    return pa.scalar(value, pa.int32())


def _first(batch: pa.RecordBatch, column: str) -> str:
    if batch.num_rows == 0:
        return "?"
    value = batch.column(column)[0].as_py()
    return "?" if value is None else str(value)
