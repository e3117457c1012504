"""`Batch`: the orchestration context a manufacturing script runs in.

A batch connects devices and records everything they report into one Arrow batch record
(samples, events, alarms, results), keeps the chain of identity of the material it moves,
asks operators (or a declared policy, in simulation) to answer prompts, asks for electronic
signatures on critical actions, applies an alarm policy, and on any error or interruption brings
its devices to a safe state and seals the record with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import urlparse
from urllib.request import url2pathname

from pydantic import JsonValue

from cellauto.driver import Device, DeviceAction, OperatorPrompt
from cellauto.errors import BatchError, CellautoError, DeviceError, DeviceTimeout, InvalidAnswer
from cellauto.records import RecordWriter
from cellauto.records.ids import check_batch_id
from cellauto.records.keys import Signer
from cellauto.records.layout import read_manifest
from cellauto.registry import DeviceUrl, connect, parse_url, user_name
from cellauto.schema import (
    AlarmSeverity,
    BatchInfo,
    BatchStatus,
    DeviceProfile,
    Event,
    EventKind,
    Result,
    Sample,
    SampleInfo,
    SignatureMeaning,
)
from cellauto.secrets import redact_url
from cellauto.state import EXECUTE, HELD, HOLDING, State

_log = logging.getLogger("cellauto.batch")


class BatchObserver(Protocol):
    """Watches batches open and close (the `cellauto run` terminal view is one)."""

    def opened(self, batch: Batch) -> None: ...

    def closed(self, batch: Batch) -> None: ...


_observers: list[BatchObserver] = []
_open_batches: list[Batch] = []
_interrupt_reason = "interrupted"


def set_interrupt_reason(reason: str) -> None:
    """What an interruption (Ctrl-C, a cancelled task) is called in the audit trail and seal
    from now on: `cellauto run` names the signal it received (``interrupted by SIGTERM``)."""
    global _interrupt_reason
    _interrupt_reason = reason


def observe_batches(observer: BatchObserver) -> Callable[[], None]:
    """Tell `observer` about every open batch, now and from now on (a gateway started inside a
    batch audits into it); returns a function that stops it."""
    for batch in list(_open_batches):
        observer.opened(batch)
    _observers.append(observer)
    return lambda: _observers.remove(observer)


class IdentityMismatch(CellautoError):
    """Material whose chain of identity does not match the batch; the transfer was refused."""


@dataclass(frozen=True, slots=True)
class PromptRequest:
    """A question for the operator: from a device's prompt or from the script."""

    source: str
    text: str
    choices: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PromptAnswer:
    """The operator's answer and who gave it."""

    answer: str
    user: str


class PromptPolicy(Protocol):
    """Who answers prompts: a person at the terminal, or a declared policy in simulation."""

    async def answer(self, request: PromptRequest) -> PromptAnswer: ...


@dataclass
class AutoAnswer:
    """Answers prompts without a person (simulation): the first answer whose key occurs in the
    prompt's text (and, for a prompt with choices, is one of them), else the first choice, else
    `default`. Every answer is still audited."""

    user: str = "simulated-operator"
    answers: Mapping[str, str] = field(default_factory=dict)
    default: str = "done"

    async def answer(self, request: PromptRequest) -> PromptAnswer:
        for key, answer in self.answers.items():
            if key.lower() in request.text.lower() and (
                not request.choices or answer in request.choices
            ):
                return PromptAnswer(answer, self.user)
        return PromptAnswer(request.choices[0] if request.choices else self.default, self.user)


@dataclass
class TerminalPrompts:
    """Asks the person at the terminal (without blocking the event loop)."""

    user: str

    async def answer(self, request: PromptRequest) -> PromptAnswer:
        choices = f" [{'/'.join(request.choices)}]" if request.choices else ""
        question = f"\n[{request.source}] {request.text}{choices}\n> "
        while True:
            reply = (await asyncio.to_thread(input, question)).strip()
            if reply and (not request.choices or reply in request.choices):
                return PromptAnswer(reply, self.user)


@dataclass(frozen=True)
class AlarmPolicy:
    """What the batch does when a device raises an alarm of at least `hold_at` severity:
    hold the device if it is executing, then ask the operator whether to continue or abort."""

    hold_at: AlarmSeverity = AlarmSeverity.CRITICAL
    ask_operator: bool = True


_SEVERITY_ORDER = list(AlarmSeverity)
_BY_BATCH: contextvars.ContextVar[bool] = contextvars.ContextVar("by_batch", default=False)
"""Set while the batch itself commands a device: it audits those with their reason."""


@contextlib.contextmanager
def _batch_acts() -> Iterator[None]:
    token = _BY_BATCH.set(True)
    try:
        yield
    finally:
        _BY_BATCH.reset(token)


@dataclass
class SafeState:
    """What a batch ending on an error or interruption did to its devices."""

    reason: str
    held: list[str] = field(default_factory=list)
    """Devices that were executing and are now held."""
    not_held: dict[str, str] = field(default_factory=dict)
    """Devices that were executing and could not be held: device_id -> why."""
    left: dict[str, str] = field(default_factory=dict)
    """Devices that were not executing, left as they were: device_id -> state."""

    def summary(self) -> str:
        """One line: which devices were held, which could not be, which were left alone."""
        parts = []
        if self.held:
            parts.append(f"held {', '.join(self.held)}")
        if self.not_held:
            parts.append(
                "COULD NOT HOLD "
                + "; ".join(f"{device} ({why})" for device, why in self.not_held.items())
            )
        if self.left:
            parts.append(
                "left as they were "
                + ", ".join(f"{device} ({state})" for device, state in self.left.items())
            )
        return "; ".join(parts) or "no devices connected"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


class Batch:
    """One manufacturing run across devices, recorded as it happens.

    ``async with Batch("B-0001", product="CAR-T", operator="alice") as batch:`` creates the
    record ``records/B-0001``; leaving the block seals it. With ``sim=True`` (or
    ``cellauto run --sim``) every device URL connects to that device's simulator instead, all
    on one shared virtual clock.
    """

    def __init__(
        self,
        batch_id: str,
        *,
        product: str,
        operator: str,
        records: str | Path | None = None,
        recipe: str | None = None,
        patient_id: str | None = None,
        donor_id: str | None = None,
        lot_id: str | None = None,
        prompts: PromptPolicy | None = None,
        signatures_for: Iterable[str] = ("start", "abort", "release"),
        alarm_policy: AlarmPolicy | None = AlarmPolicy(),
        sim: bool | None = None,
        speed: str | None = None,
        seed: int = 0,
        signer: Signer | None = None,
        resume: bool = False,
    ) -> None:
        self.batch_id = check_batch_id(batch_id)
        self.product = product
        self.operator = os.environ.get("CELLAUTO_OPERATOR", operator)
        self.records = Path(records or os.environ.get("CELLAUTO_RECORDS", "records"))
        self.recipe = recipe
        self.patient_id = patient_id
        self.donor_id = donor_id
        self.lot_id = lot_id
        self.sim = _env_flag("CELLAUTO_SIM") if sim is None else sim
        self.speed = speed or os.environ.get("CELLAUTO_SPEED", "max")
        self.seed = seed
        self.faults = os.environ.get("CELLAUTO_FAULTS") or None
        self.prompts: PromptPolicy = prompts or (
            AutoAnswer() if self.sim else TerminalPrompts(self.operator)
        )
        self.signatures_for = frozenset(signatures_for)
        self.signer = signer
        self.resuming = resume
        self.alarm_policy = alarm_policy
        self.devices: dict[str, Device] = {}
        self.safe_state: SafeState | None = None
        self.materials: dict[str, tuple[SampleInfo, str]] = {}
        self.status = BatchStatus.PLANNED
        self._abort_reason: str | None = None
        self._clock: Any = None
        self._writer: RecordWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []  # prompt and alarm handlers
        self._pumps: list[asyncio.Task[None]] = []  # recorders of each device's feeds
        self._seq = 0
        self._alarms_handled: set[tuple[str, str]] = set()
        self._sealed = False
        self._ending = False
        self._commanded_hold: set[str] = set()
        self.on_sample: list[Callable[[Sample], None]] = []
        self.on_event: list[Callable[[Event], None]] = []

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        """The batch record's folder."""
        return self.records / self.batch_id

    @property
    def writer(self) -> RecordWriter:
        """The record being written (while the batch is open)."""
        if self._writer is None:
            raise CellautoError(f"batch {self.batch_id} is not open; use `async with Batch(...)`")
        return self._writer

    def now(self) -> datetime:
        """The batch's time: the shared simulator clock in simulation, else the wall clock."""
        return self._clock.now() if self._clock is not None else datetime.now(UTC)

    @classmethod
    def resume(cls, path: str | Path, *, operator: str, **options: Any) -> Batch:
        """A batch that continues the open record at `path` (a batch whose process crashed or
        was killed): ``async with Batch.resume("records/B-0001", operator="alice") as batch``.

        Product, recipe and lot come from the record; the interruption is recorded in the
        audit trail and the batch goes on with the same chain."""
        folder = Path(path)
        info = read_manifest(folder).batch
        options.setdefault("product", info.product)
        options.setdefault("recipe", info.recipe)
        options.setdefault("lot_id", info.lot_id)
        return cls(info.batch_id, operator=operator, records=folder.parent, resume=True, **options)

    async def __aenter__(self) -> Self:
        if self.sim:
            from cellauto.sim import make_clock

            self._clock = make_clock(self.speed)
        if self.resuming:
            self._writer = RecordWriter.resume(self.path, clock=self.now, actor=self.operator)
            self.status = BatchStatus.RUNNING
            self.writer.audit(
                self.operator,
                "batch.resume",
                f"batch:{self.batch_id}",
                value={"sim": self.sim},
                reason="the batch was interrupted (its process ended without sealing the record)",
            )
        else:
            info = BatchInfo(
                batch_id=self.batch_id,
                product=self.product,
                recipe=self.recipe,
                lot_id=self.lot_id,
                status=BatchStatus.RUNNING,
                operators=[self.operator],
                actual_start=self.now(),
            )
            self._writer = RecordWriter.create(self.path, info, clock=self.now, actor=self.operator)
            self.status = BatchStatus.RUNNING
            self.writer.audit(
                self.operator,
                "batch.start",
                f"batch:{self.batch_id}",
                value={"product": self.product, "sim": self.sim, "patient_id": self.patient_id},
            )
            if "start" in self.signatures_for:
                self.sign(SignatureMeaning.RESPONSIBILITY, "start of batch")
        _open_batches.append(self)
        for observer in list(_observers):
            observer.opened(self)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._ending = True
        if exc is not None:
            reason = (
                _interrupt_reason
                if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError)
                else (f"error: {type(exc).__name__}: {exc}")
            )
            await self._make_safe(reason)
            await self._close(BatchStatus.STOPPED, reason)
        elif self.status == BatchStatus.ABORTED:
            await self._close(BatchStatus.ABORTED, self._abort_reason or "aborted")
        else:
            await self._close(BatchStatus.COMPLETE, "completed")

    async def _make_safe(self, reason: str) -> None:
        """Hold every device that is executing, so cells stay under control until a person
        decides; devices doing anything else are left as they are. `safe_state` says which."""
        outcome = SafeState(reason)
        for device in self.devices.values():
            if device.state != EXECUTE:
                outcome.left[device.device_id] = str(device.state)
                continue
            try:
                with _batch_acts():
                    await device.hold()
            except (DeviceError, OSError) as exc:
                _log.error("%s: could not hold: %s", device.device_id, exc)
                outcome.not_held[device.device_id] = str(exc)
                self._audit(
                    "device.hold.failed",
                    device.device_id,
                    value=str(exc),
                    reason=f"safe state: {reason}",
                )
            else:
                outcome.held.append(device.device_id)
                self._audit("device.hold", device.device_id, reason=f"safe state: {reason}")
        self.safe_state = outcome

    async def _close(self, status: BatchStatus, reason: str) -> None:
        await asyncio.sleep(0)  # let the recorders take what the devices reported last
        for device in list(self.devices.values()):
            with contextlib.suppress(Exception):
                await device.close()
        for task in self._tasks:  # a prompt or alarm nobody answered: nothing left to record
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pumps:  # the recorders end with their devices' feeds, at once
            _, pending = await asyncio.wait(self._pumps, timeout=5)
            for task in pending:  # a feed that did not end: a bug, but the record still seals
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self.status = status
        self._audit("batch.end", f"batch:{self.batch_id}", value=str(status), reason=reason)
        self._sealed = True
        if self in _open_batches:
            _open_batches.remove(self)
        ended = self.writer.manifest.batch.model_copy(
            update={"status": status, "actual_end": self.now()}
        )
        self.writer.close(reason=f"{status}: {reason}", actor=self.operator, batch=ended)
        for observer in list(_observers):
            observer.closed(self)

    # -- devices -----------------------------------------------------------------------------

    async def connect(
        self, url: str, *, device_id: str | None = None, profile: DeviceProfile | None = None
    ) -> Device:
        """Connect a device and record everything it reports from now on (`profile` for a
        device whose profile does not ship with cellauto)."""
        parsed = parse_url(url)
        if device_id is not None and device_id in self.devices:
            raise BatchError(
                f"batch {self.batch_id}: connect {url}: device_id {device_id!r} is already "
                f"connected ({self.devices[device_id].profile.device}); give each device its own id"
            )
        url = str(self._device_url(parsed))
        device_id = device_id or self._next_id(parsed.device)
        # Connecting is set-up: virtual time must not run on meanwhile (an OPC UA server takes a
        # real second to start, which at max speed would be days for the other simulators).
        with self._time_stands_still():
            device = await connect(
                url,
                device_id=device_id,
                profile=profile,
                clock=self._clock,
                before_connect=self._record,
            )
        self.devices[device_id] = device
        device.on_action.append(self._script_action)
        units = {name: ch.unit for name, ch in device.profile.channels().items()}
        self.writer.add_device(
            device_id,
            kind=device.profile.device,
            profile_version=device.profile.profile_version,
            channel_units=units,
            info=device.info.model_dump(mode="json"),
        )
        self._audit("device.connect", device_id, value=redact_url(url))
        return device

    def _device_url(self, parsed: DeviceUrl) -> DeviceUrl:
        """The URL to connect: under ``sim=True`` a real URL becomes its simulator (keeping the
        URL's options and user name); a simulated device gets the batch's seed (and ``cellauto
        run --faults``) unless its URL sets its own."""
        options = dict(parsed.options)
        simulated = parsed.transport == "sim"
        if self.sim and not simulated:
            if "faults" in options:
                raise BatchError(
                    f"batch {self.batch_id}: {parsed}: faults= is a simulator option and this URL "
                    f"names real equipment; use {parsed.device}+sim://?faults=... (or "
                    "`cellauto run --sim --faults ...`)"
                )
            options.setdefault("speed", self.speed)
            simulated = True
        if not simulated:
            return parsed
        options.setdefault("seed", str(self.seed + len(self.devices)))
        if self.faults:
            options.setdefault("faults", self.faults)
        user = user_name(parsed)  # the simulator logs in as the same user (never the password)
        return DeviceUrl(parsed.device, "sim", f"{user}@" if user else "", options)

    def _next_id(self, kind: str) -> str:
        n = 1
        while f"{kind}-{n}" in self.devices:
            n += 1
        return f"{kind}-{n}"

    def _record(self, device: Device) -> None:
        samples, events, results = (
            device.subscribe(maxsize=100_000),
            device.events(),
            device.results(),
        )

        async def pump_samples() -> None:
            async for sample in samples:
                self.writer.add_sample(sample)
                for callback in self.on_sample:
                    callback(sample)

        async def pump_events() -> None:
            async for event in events:
                await self._on_device_event(device, event)

        async def pump_results() -> None:
            async for result in results:
                if any(f.path.startswith("file://") for f in result.files):
                    # copying files (and their fsyncs) must not stall the devices' event loop
                    result = await asyncio.to_thread(self._store_files, device, result)
                self.writer.add_result(result)
                self._audit("program.result", device.device_id, value=result.outcome)

        self._pumps += [asyncio.create_task(t()) for t in (pump_samples, pump_events, pump_results)]

    def _store_files(self, device: Device, result: Result) -> Result:
        """Result files a device left outside the record (``file://`` URLs, e.g. images on a
        share) are copied into it: each one's SHA-256 enters the audit trail, and the recorded
        result names the stored copy. A file that cannot be stored keeps its URL (logged)."""
        stored = []
        for file in result.files:
            if not file.path.startswith("file://"):
                stored.append(file)
                continue
            source = Path(url2pathname(urlparse(file.path).path))
            try:
                copy = self.writer.add_file(
                    source,
                    f"{device.device_id}-{file.name}",
                    mime_type=file.mime_type,
                    reason=f"result file of run {result.device_program_run_id}",
                )
            except (OSError, CellautoError) as exc:
                _log.warning("%s: result file %s not stored: %s", device.device_id, file.path, exc)
                stored.append(file)
                continue
            if copy.sha256 != file.sha256:
                _log.warning(
                    "%s: %s changed after the device reported it (SHA-256 differs)",
                    device.device_id,
                    file.path,
                )
            stored.append(copy)
        return result.model_copy(update={"files": stored})

    def _script_action(self, action: DeviceAction) -> None:
        """A command the script (not the batch itself, nor a gateway: it audits its own) sent a
        device: an audit entry."""
        if _BY_BATCH.get() or action.via is not None or self._writer is None or self._sealed:
            return
        target = f"{action.device_id}/{action.target}" if action.target else action.device_id
        name = {"answer_prompt": "prompt.answer", "acknowledge": "alarm.acknowledge"}.get(
            action.action, f"device.{action.action}"
        )
        self._audit(name, target, value=action.value, actor=action.user, reason="by the script")

    async def _on_device_event(self, device: Device, event: Event) -> None:
        for callback in self.on_event:
            callback(event)
        if event.kind is EventKind.COMMAND:
            if event.message == "hold":
                self._commanded_hold.add(device.device_id)
            else:
                self._commanded_hold.discard(device.device_id)
        if event.kind is EventKind.STATE_CHANGED and event.to_state in (str(HELD), str(HOLDING)):
            self._held_by_alarm(device)
        if event.kind in (
            EventKind.ALARM_RAISED,
            EventKind.ALARM_ACKNOWLEDGED,
            EventKind.ALARM_CLEARED,
        ):
            alarm = device.alarm(str(event.data["alarm_id"]))
            self.writer.add_alarm(alarm)
            policy = self.alarm_policy
            if (
                event.kind is EventKind.ALARM_RAISED
                and policy is not None
                and _SEVERITY_ORDER.index(alarm.severity) >= _SEVERITY_ORDER.index(policy.hold_at)
            ):
                self._alarms_handled.add((device.device_id, alarm.alarm_id))
                self._spawn(self._handle_alarm(device, alarm.alarm_id, alarm.message))
            elif event.kind is EventKind.ALARM_RAISED and device.state in (HELD, HOLDING):
                self._held_by_alarm(device)
            return
        self.writer.add_event(event)
        if event.kind is EventKind.PROMPT:
            prompt = next(
                (p for p in device.prompts if p.prompt_id == event.data.get("prompt_id")), None
            )
            if prompt is not None:
                self._spawn(self._answer_device_prompt(device, prompt))

    def _held_by_alarm(self, device: Device) -> None:
        """A device that holds itself on one of its alarms waits for a person: apply the alarm
        policy to it (once per alarm) instead of leaving the script waiting forever."""
        if (
            self.alarm_policy is None
            or self._ending
            or device.device_id in self._commanded_hold  # held on purpose, not by the alarm
        ):
            return
        for alarm in device.alarms:
            key = (device.device_id, alarm.alarm_id)
            if alarm.active and key not in self._alarms_handled:
                self._alarms_handled.add(key)
                self._spawn(self._handle_alarm(device, alarm.alarm_id, alarm.message))
                return

    def _spawn(self, coroutine: Any) -> None:
        self._tasks.append(asyncio.create_task(coroutine))

    async def _answer_device_prompt(self, device: Device, prompt: OperatorPrompt) -> None:
        with self._time_stands_still():
            await self._answer_prompt_now(device, prompt)

    async def _answer_prompt_now(self, device: Device, prompt: OperatorPrompt) -> None:
        reply = await self.prompts.answer(
            PromptRequest(device.device_id, prompt.text, prompt.choices)
        )
        self._audit(
            "prompt.answer",
            f"{device.device_id}/{prompt.prompt_id}",
            value=reply.answer,
            actor=reply.user,
            reason=prompt.text,
        )
        with _batch_acts():
            await device.answer_prompt(prompt, reply.answer, reply.user)

    async def _handle_alarm(self, device: Device, alarm_id: str, message: str) -> None:
        with self._time_stands_still(), _batch_acts():
            await self._decide_on_alarm(device, alarm_id, message)

    async def _decide_on_alarm(self, device: Device, alarm_id: str, message: str) -> None:
        if device.state == EXECUTE:
            await device.hold()
            self._audit("device.hold", device.device_id, reason=f"alarm {alarm_id}: {message}")
        if self.alarm_policy is None or not self.alarm_policy.ask_operator:
            return
        reply = await self.prompts.answer(
            PromptRequest(
                device.device_id,
                f"Alarm {alarm_id}: {message}. Continue or abort?",
                ("continue", "abort"),
            )
        )
        self._audit(
            "alarm.decision", f"{device.device_id}/{alarm_id}", value=reply.answer, actor=reply.user
        )
        with contextlib.suppress(DeviceError):
            await device.acknowledge(alarm_id, reply.user)
        if reply.answer == "abort":
            await self.abort(f"operator decision on alarm {alarm_id}", devices=[device])
        elif device.state in (HELD, HOLDING):
            try:
                await device.wait_for_state(HELD, timeout=device.timeout)
                await device.unhold()
            except DeviceError as exc:
                _log.error(
                    "%s: could not resume after alarm %s: %s", device.device_id, alarm_id, exc
                )
                self._audit(
                    "device.unhold.failed",
                    device.device_id,
                    value=str(exc),
                    reason=f"alarm {alarm_id}",
                )
            else:
                self._audit("device.unhold", device.device_id, reason=f"alarm {alarm_id}: continue")

    # -- material and chain of identity ------------------------------------------------------

    def register_material(self, material: SampleInfo, *, location: str = "received") -> None:
        """Receive material into the batch (after its identity is checked)."""
        self._check_identity(material, "register_material", location)
        self.materials[material.container_id] = (material, location)
        self._audit(
            "material.receive", material.container_id, value=material.model_dump(mode="json")
        )

    async def transfer(
        self, container_id: str, to: Device | str, *, reason: str = ""
    ) -> SampleInfo:
        """Move a container to a device (or a named place), after checking its identity."""
        if container_id not in self.materials:
            self._audit("material.transfer.refused", container_id, reason="unknown container")
            raise IdentityMismatch(
                f"batch {self.batch_id}: container {container_id!r} was never received into it"
            )
        material, source = self.materials[container_id]
        target = to.device_id if isinstance(to, Device) else to
        self._check_identity(material, "transfer", target)
        self.materials[container_id] = (material, target)
        self.writer.add_event(
            Event(
                device_id=target,
                time=self.now(),
                seq=self._next_seq(),
                kind=EventKind.MATERIAL_TRANSFER,
                source=source,
                message=f"{container_id}: {source} -> {target}",
                data={"material": material.model_dump(mode="json"), "from": source, "to": target},
            )
        )
        self._audit(
            "material.transfer", container_id, value=target, previous_value=source, reason=reason
        )
        return material

    def _check_identity(self, material: SampleInfo, operation: str, target: str) -> None:
        expected = {"patient_id": self.patient_id, "donor_id": self.donor_id}
        for key, want in expected.items():
            have = getattr(material, key)
            if want is not None and have is not None and have != want:
                self._audit(
                    f"material.{operation}.refused",
                    material.container_id,
                    value={key: have},
                    previous_value={key: want},
                    reason=f"{key} does not match the batch",
                )
                raise IdentityMismatch(
                    f"batch {self.batch_id}: {operation} of {material.container_id} to {target} "
                    f"refused: {key} is {have!r}, the batch is for {want!r}"
                )
        if material.batch_id is not None and material.batch_id != self.batch_id:
            self._audit(
                f"material.{operation}.refused",
                material.container_id,
                reason=f"labelled for batch {material.batch_id}",
            )
            raise IdentityMismatch(
                f"batch {self.batch_id}: {material.container_id} is labelled for batch "
                f"{material.batch_id!r}"
            )

    # -- people ------------------------------------------------------------------------------

    async def prompt(self, text: str, *, choices: Iterable[str] = ()) -> str:
        """Ask the operator; the answer is an audit entry."""
        options = tuple(choices)
        with self._time_stands_still():
            reply = await self.prompts.answer(PromptRequest("batch", text, options))
        if options and reply.answer not in options:
            raise InvalidAnswer(
                f"batch:{self.batch_id}",
                f"prompt {text!r}",
                f"the answer {reply.answer!r} (from {reply.user}) is not one of its choices",
                hint=f"one of: {', '.join(options)}",
            )
        self._audit(
            "prompt.answer",
            f"batch:{self.batch_id}",
            value=reply.answer,
            actor=reply.user,
            reason=text,
        )
        return reply.answer

    def sign(self, meaning: SignatureMeaning | str, reason: str) -> None:
        """Sign the record as it stands (its data up to now, through a checkpoint): with the
        batch's `signer` (a person's key) if it has one, else as the operator without a key."""
        signer = self.signer
        if signer is None:
            self.writer.sign(self.operator, self.operator, meaning, reason=reason)
        else:
            self.writer.sign(
                signer.printed_name, signer.user_id, meaning, reason=reason, signer=signer
            )

    async def abort(self, reason: str, *, devices: Iterable[Device] | None = None) -> None:
        """Abort devices (all by default), signed if the batch requires it for aborts; the batch
        ends as aborted."""
        if "abort" in self.signatures_for:
            self.sign(SignatureMeaning.RESPONSIBILITY, f"abort: {reason}")
        with self._time_stands_still(), _batch_acts():
            for device in devices or list(self.devices.values()):
                await device.abort()
                self._audit("device.abort", device.device_id, reason=reason)
        self.status = BatchStatus.ABORTED
        self._abort_reason = reason

    def release(self, reason: str = "batch record reviewed") -> None:
        """Release the batch: an approval signature (if required) and an audit entry."""
        if "release" in self.signatures_for:
            self.sign(SignatureMeaning.APPROVAL, f"release: {reason}")
        self._audit("batch.release", f"batch:{self.batch_id}", reason=reason)

    # -- waiting -----------------------------------------------------------------------------

    async def sleep(self, seconds: float | timedelta) -> None:
        """Wait `seconds` (or a timedelta) of batch time: virtual time in simulation, real time
        otherwise."""
        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        if not math.isfinite(seconds) or seconds < 0:
            raise BatchError(
                f"batch {self.batch_id}: sleep({seconds!r}): needs a finite, non-negative duration"
            )
        if self._clock is not None:
            await self._clock.sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    async def wait_for_state(
        self,
        device: Device,
        state: State | str,
        *,
        timeout: float,  # noqa: ASYNC109 - real-time limit, the API of a waiting primitive
    ) -> None:
        """Until `device` is in `state`; DeviceTimeout after `timeout` s (of real time)."""
        await device.wait_for_state(state, timeout=timeout)

    async def wait_for(
        self,
        device: Device,
        channel: str,
        condition: Callable[[Any], bool],
        *,
        timeout: float,  # noqa: ASYNC109 - real-time limit, the API of a waiting primitive
    ) -> Sample:
        """Until a sample of `channel` satisfies `condition(value)`; returns that sample."""
        samples = device.subscribe([channel])
        try:
            async with asyncio.timeout(timeout):
                async for sample in samples:
                    if condition(sample.value):
                        return sample
        except TimeoutError:
            pass
        finally:
            samples.close()
        raise DeviceTimeout(device.device_id, f"wait for {channel}", timeout)

    # -- internals ---------------------------------------------------------------------------

    def _time_stands_still(self) -> contextlib.AbstractContextManager[object]:
        """In simulation, time stands still while the batch sets up a device or a person (or the
        policy standing in for one) acts: at max speed a real second is hours for the devices."""
        return self._clock.busy() if self._clock is not None else contextlib.nullcontext()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _audit(
        self,
        action: str,
        obj: str,
        *,
        value: JsonValue = None,
        previous_value: JsonValue = None,
        reason: str = "",
        actor: str | None = None,
    ) -> None:
        self.writer.audit(
            actor or self.operator,
            action,
            obj,
            value=value,
            previous_value=previous_value,
            reason=reason,
        )
