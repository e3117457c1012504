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


class ServerCertificateRefused(DeviceError):
    """A secure OPC UA server presented a certificate other than the one trusted for it (pinned
    at first use, or named by ``server_cert=``): perhaps renewed, perhaps a man in the middle.
    Names both SHA-256 fingerprints and the file that holds the trusted certificate."""

    def __init__(
        self, device: str, operation: str, *, presented: str, trusted: str, file: str, pinned: bool
    ) -> None:
        self.presented = presented
        self.trusted = trusted
        self.file = file
        renewed = "if the server's certificate was renewed on purpose"
        if pinned:
            hint = f"{renewed}, remove {file} to trust the new one"
        else:
            hint = f"{renewed}, name the new one in server_cert="
        super().__init__(
            device,
            operation,
            f"the server's certificate (SHA-256 {presented}) is not the trusted one "
            f"(SHA-256 {trusted}, {file}); refusing to connect",
            hint=hint,
        )


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


class InvalidBatchId(RecordError, ValueError):
    """A batch id that breaks the identifier rule (it would name a path, not a batch)."""


class SigningKeyError(RecordError):
    """A signing key that cannot be created, loaded or used."""


class SecretsError(CellautoError):
    """Credentials that cannot be read safely (e.g. a credentials file others can read)."""


class SimulationError(CellautoError):
    """A simulator engine misuse: a clock used from two event loops, a prompt answered when none
    is pending, a model given impossible inputs."""


class FaultSpecError(SimulationError, ValueError):
    """A fault-injection spec (``faults=...``) that does not parse; names the item and says what
    was expected."""


class SimOptionError(SimulationError, ValueError):
    """A simulator option that is unknown, malformed or not possible on that device's wire;
    names the device and the option."""

    def __init__(self, device: str, option: str, message: str) -> None:
        self.device = device
        self.option = option
        super().__init__(f"{device} simulator: option {option!r}: {message}")


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


class RegisterCodecError(CellautoError, ValueError):
    """A value that cannot be encoded into (or registers that cannot be decoded as) one entry of
    a Modbus register map: names the entry and the reason."""

    def __init__(self, register: str, reason: str) -> None:
        self.register = register
        self.reason = reason
        super().__init__(f"register {register}: {reason}")


class RegisterMapError(CellautoError):
    """A Modbus register map that fails validation: names the file, the key path and the
    reason."""

    def __init__(self, source: str, problems: Iterable[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [f"register map {source} is invalid:"]
        lines += [f"  at {path or '<root>'}: {reason}" for path, reason in self.problems]
        super().__init__("\n".join(lines))


class ModbusValueError(DeviceError, ValueError):
    """A value the register map cannot put on (or take off) the wire for one device."""


class ModbusError(DeviceError):
    """A Modbus exception reply: `code` is the exception code, `unit` the unit id, `table` and
    `address` the request's register table and first address."""

    description = "exception reply"
    hint_text = ""

    def __init__(
        self, device: str, operation: str, code: int, *, unit: int, table: str, address: int
    ) -> None:
        self.code = code
        self.unit = unit
        self.table = table
        self.address = address
        super().__init__(
            device,
            operation,
            f"Modbus exception {code:#04x} ({self.description}) from unit {unit} "
            f"at {table} {address}",
            hint=self.hint_text,
        )


class ModbusIllegalFunction(ModbusError):
    """Exception 0x01: the device does not support this function on this table."""

    description = "illegal function"
    hint_text = "the register map uses a function the device does not implement"


class ModbusIllegalAddress(ModbusError):
    """Exception 0x02: an address (or address + count) the device does not have."""

    description = "illegal data address"
    hint_text = "check the register map's addresses against the device's protocol profile"


class ModbusIllegalValue(ModbusError):
    """Exception 0x03: a value (or count) the device refuses."""

    description = "illegal data value"
    hint_text = "the value is outside what the device accepts for this register"


class ModbusDeviceFailure(ModbusError):
    """Exception 0x04: the device failed while performing the request."""

    description = "server device failure"
    hint_text = "check the device's own alarms and display"


class ModbusDeviceBusy(ModbusError):
    """Exception 0x06: the device is busy with a long command; retry later."""

    description = "server device busy"
    hint_text = "retry once the device's current command has finished"


class ModbusGatewayPathUnavailable(ModbusError):
    """Exception 0x0A: a gateway has no path to the addressed unit."""

    description = "gateway path unavailable"
    hint_text = "check the gateway's routing and the unit id"


class ModbusGatewayTargetFailed(ModbusError):
    """Exception 0x0B: the unit behind a gateway did not respond."""

    description = "gateway target device failed to respond"
    hint_text = "check that the unit behind the gateway is powered and wired"


class ModbusWriteNotConfirmed(DeviceError):
    """A write whose read-back differs from what was written (the device clamped, ignored or
    overwrote it)."""

    def __init__(
        self, device: str, operation: str, register: str, written: object, read_back: object
    ) -> None:
        self.register = register
        self.written = written
        self.read_back = read_back
        super().__init__(
            device,
            operation,
            f"wrote {written!r} to {register}, read back {read_back!r}",
            hint="the device did not accept the value; check its state and limits",
        )


class ModbusInconsistentRead(DeviceError):
    """A consistent group whose sequence register kept changing while it was read."""


class RecipeDownloadError(DeviceError):
    """A recipe download the device did not commit (CRC mismatch, too long, refused)."""


class GatewayError(CellautoError):
    """A gateway set-up problem: its certificates, user store, or a device it cannot serve."""


class DeviceOptionError(DeviceError, ValueError):
    """A device URL option that the adapter or simulator does not declare, or whose value
    does not parse; names the device and the option."""

    def __init__(self, device: str, option: str, message: str, *, hint: str = "") -> None:
        self.option = option
        super().__init__(device, f"URL option {option!r}", message, hint=hint)


class DeviceLost(ConnectionLost):
    """A device stayed unreachable beyond its reconnect limits. Every waiter on the device
    (a run, a read, a subscription, a batch) gets this error; it names the last contact and
    what was attempted."""

    def __init__(
        self,
        device: str,
        operation: str,
        *,
        last_contact: str,
        attempts: int,
        elapsed: float,
        limits: str,
    ) -> None:
        self.last_contact = last_contact
        self.attempts = attempts
        self.elapsed = elapsed
        super().__init__(
            device,
            operation,
            f"device lost: last contact {last_contact}; {attempts} reconnect attempts in "
            f"{elapsed:.1f} s gave up ({limits})",
            hint="check the device, its cable or network; raise reconnect_attempts or "
            "reconnect_time in the URL to wait longer",
        )


class BatchError(CellautoError):
    """A batch asked to do something it must refuse (two devices under one id, fault injection
    on real equipment, an answer that is not one of a prompt's choices); names the batch."""


class InvalidAnswer(CommandRejected):
    """An answer to a prompt that is not one of its choices."""


class HttpProblem(CommandRejected):
    """An HTTP device refused a request with an RFC 9457 problem document (or a bare status):
    `status`, `problem_type`, `title` and `detail` as the device sent them."""

    def __init__(
        self,
        device: str,
        operation: str,
        status: int,
        title: str,
        detail: str = "",
        *,
        problem_type: str = "about:blank",
        hint: str = "",
    ) -> None:
        self.status = status
        self.title = title
        self.detail = detail
        self.problem_type = problem_type
        text = f"HTTP {status} {title}" + (f": {detail}" if detail else "")
        super().__init__(device, operation, text, hint=hint)


class AuthenticationRefused(HttpProblem):
    """The device refused the credentials (HTTP 401/403): no token, or a wrong one."""
