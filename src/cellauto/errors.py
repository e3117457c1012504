"""The cellauto exception hierarchy.

Every error raised on behalf of a device names the device and the operation, and where the
caller can do something about it, says what. Catch `CellautoError` for anything cellauto raises.
"""

from __future__ import annotations

from collections.abc import Iterable


class CellautoError(Exception):
    """Base class of every error cellauto raises."""


class UnitError(CellautoError, ValueError):
    """A unit code that is not valid UCUM, or a conversion between incompatible units."""


class SchemaVersionError(CellautoError, ValueError):
    """A document written by a schema version this cellauto cannot read."""


class ProfileError(CellautoError):
    """A device profile that fails validation: names the file, the key path and the reason."""

    def __init__(self, source: str, problems: Iterable[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        where = [f"at {path or '<root>'}: {reason}" for path, reason in self.problems]
        if len(where) == 1:  # one problem, one line
            super().__init__(f"device profile {source} is invalid: {where[0]}")
        else:
            lines = [f"device profile {source} is invalid:", *(f"  {w}" for w in where)]
            super().__init__("\n".join(lines))


class DeviceError(CellautoError):
    """An error on behalf of one device during one operation."""

    def __init__(self, device: str, operation: str, message: str, *, hint: str = "") -> None:
        self.device = device
        self.operation = operation
        self.hint = hint
        text = f"{device}: {operation}: {message}"
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class InvalidTransition(DeviceError):
    """A state-machine command that the current state does not allow."""

    def __init__(self, device: str, state: str, command: str, allowed: Iterable[str]) -> None:
        self.state = state
        self.command = command
        self.allowed = sorted(allowed)
        allowed_text = ", ".join(self.allowed) or "none"
        super().__init__(
            device,
            command,
            f"not allowed in state {state}",
            hint=f"commands allowed in {state}: {allowed_text}",
        )


class ConnectionLost(DeviceError):
    """The connection to a device dropped and could not be re-established in time."""


class DeviceTimeout(DeviceError):
    """A device did not answer an operation within its timeout."""

    def __init__(self, device: str, operation: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(
            device,
            operation,
            f"no answer within {timeout:g} s",
            hint="check the connection and the device's state, or raise the timeout",
        )


class ProtocolError(DeviceError):
    """Bytes or messages from a device that do not follow its protocol profile."""

    def __init__(self, device: str, operation: str, message: str, *, raw: bytes = b"") -> None:
        self.raw = raw
        super().__init__(device, operation, message)


class CommandRejected(DeviceError):
    """The device (or its profile) refused a command or its parameters."""


class AlarmRaised(DeviceError):
    """An operation ended because the device raised an alarm."""

    def __init__(self, device: str, operation: str, alarm_id: str, message: str) -> None:
        self.alarm_id = alarm_id
        super().__init__(device, operation, f"alarm {alarm_id}: {message}")


class RecordError(CellautoError):
    """A batch record that cannot be written, read or trusted as asked; names the record."""


class RecordValidationError(RecordError, ValueError):
    """A row the record rejected (wrong unit, naive timestamp, wrong value type); nothing of it
    was written. Names the batch, the device and the channel."""

    def __init__(self, batch_id: str, device_id: str, channel: str, message: str) -> None:
        self.batch_id = batch_id
        self.device_id = device_id
        self.channel = channel
        super().__init__(f"batch {batch_id}: {device_id}: {channel}: {message}")


class RecordWriteError(RecordError, OSError):
    """The record's storage failed (disk full, read-only folder); rows written before it stay
    readable."""


class RecordStateError(RecordError):
    """An operation the record's state does not allow (appending to a sealed record, writing
    after close)."""


class RecordIntegrityError(RecordError):
    """A record whose content no longer matches its audit chain or its files' hashes."""


class SimulationError(CellautoError):
    """A simulator engine misuse: a clock used from two event loops, a prompt answered when none
    is pending, a model given impossible inputs."""


class FaultSpecError(SimulationError, ValueError):
    """A fault-injection spec (``faults=...``) that does not parse; names the item and says what
    was expected."""


class FramingError(ProtocolError):
    """Bytes from a device that do not form a valid frame (garbage, half a frame, a wrong
    checksum, an oversize frame). `raw` holds the offending bytes; `reason` the bare cause."""

    def __init__(self, device: str, operation: str, reason: str, *, raw: bytes = b"") -> None:
        self.reason = reason
        super().__init__(device, operation, reason, raw=raw)

    def bind(self, device: str, operation: str) -> FramingError:
        """The same error, naming the device and the operation it happened in."""
        return type(self)(device, operation, self.reason, raw=self.raw)


class ReplayMismatch(ProtocolError):
    """What an adapter sent differs from the recorded capture it is replayed against."""

    def __init__(
        self, device: str, operation: str, index: int, expected: bytes | None, actual: bytes
    ) -> None:
        self.index = index
        self.expected = expected
        self.actual = actual
        if expected is None:
            message = f"sent frame #{index} {actual!r}, but the capture has no more frames to send"
        else:
            message = f"sent frame #{index} {actual!r}, but the capture expects {expected!r}"
        super().__init__(device, operation, message, raw=actual)


class NodeNotFound(DeviceError):
    """A server address (OPC UA browse path or NodeId) that does not exist on the device."""

    def __init__(self, device: str, operation: str, path: str, reason: str = "") -> None:
        self.path = path
        super().__init__(
            device,
            operation,
            f"no node at {path!r}" + (f" ({reason})" if reason else ""),
            hint="browse the parent path to see what the server offers",
        )


class OpcUaStatusError(DeviceError):
    """An OPC UA server answered a request with a Bad status code; `status` is its name."""

    def __init__(self, device: str, operation: str, status: str, message: str = "") -> None:
        self.status = status
        text = f"server answered {status}" + (f": {message}" if message else "")
        super().__init__(device, operation, text)


class OpcUaReplayMismatch(ProtocolError):
    """A request that differs from the next one in the OPC UA capture being replayed."""

    def __init__(self, device: str, operation: str, index: int, expected: str | None) -> None:
        self.index = index
        self.expected = expected
        if expected is None:
            message = f"request #{index} is not in the capture (it has no more requests)"
        else:
            message = f"request #{index} differs from the capture, which expects {expected}"
        super().__init__(device, operation, message)


class BatchError(CellautoError):
    """A batch asked to do something it must refuse (two devices under one id, fault injection
    on real equipment, an answer that is not one of a prompt's choices); names the batch."""


class InvalidAnswer(CommandRejected):
    """An answer to a prompt that is not one of its choices."""
