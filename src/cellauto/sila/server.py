"""Serve a cellauto `Device` as a SiLA 2 server.

One server per device: SiLAService and LockController (the `sila2` library's), cellauto's
features (`cellauto.sila.features`) and the device's DeviceChannels feature. The device may be a
simulated one (the LiCellGrow simulator) or one driven by an adapter (the SiLA gateway): the
server only calls the public `Device` surface. gRPC calls arrive on the library's worker threads;
each is carried into the device's event loop and waits there for its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from queue import Queue
from types import SimpleNamespace
from typing import Any, TypeVar

from pydantic import JsonValue, ValidationError
from sila2.features.lockcontroller import LockControllerFeature
from sila2.framework import Feature as SilaFeature
from sila2.framework.errors.defined_execution_error import DefinedExecutionError
from sila2.server import FeatureImplementationBase, SilaServer

from cellauto.driver import Device, acting_via
from cellauto.errors import DeviceError
from cellauto.operation import Operation
from cellauto.schema import Event, EventKind, ProgramTemplate, Result
from cellauto.schema.quantity import Q
from cellauto.sila.fdl import channel_feature, channels_identifier, load_feature
from cellauto.sila.features import FEATURES, SIMULATION_CONTROLLER
from cellauto.sila.lock import LockRefusals, ServerLock
from cellauto.sila.tls import Credentials, server_credentials
from cellauto.state import StateCommand

T = TypeVar("T")
_log = logging.getLogger("cellauto.sila")
EVENT_LOG_SIZE = 10_000
"""Events the server keeps for `EventLog.EventsSince` read-back."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on `host` right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def parse_parameters(text: str) -> dict[str, object]:
    """RunProgram / SendCommand parameters: JSON object; ``{"value", "unit"}`` -> Quantity."""
    raw = json.loads(text or "{}")
    if not isinstance(raw, dict):
        raise ValueError("Parameters must be a JSON object")
    return {
        name: Q(value["value"], value["unit"])
        if isinstance(value, dict) and set(value) == {"value", "unit"}
        else value
        for name, value in raw.items()
    }


PLACEHOLDER_VENDOR_URL = "https://example.org/cellauto"
"""SiLAService's ServerVendorURL unless given: a placeholder (the project names no home page)."""
CLIENT = "sila:client"
"""Who commands through SiLA: the standard's core features do not identify the client."""
LOCKED = "refused: locked by another client"
"""The outcome of a command the LockController's lock refused."""


@dataclass(frozen=True)
class CommandCall:
    """A command a SiLA client sent, and how it ended (``ok``, ``refused: <why>``)."""

    command: str
    """``<Feature>.<Command>``, e.g. ``ProgramController.RunProgram``."""
    arguments: dict[str, JsonValue]
    outcome: str


@dataclass
class _Run:
    execution: uuid.UUID
    operation: Operation[Result]


class _Broadcaster:
    """mDNS announcement on the server's own interface only, made when the server asks for it
    (the library's default binds every interface at construction, discovery or not)."""

    def __init__(self) -> None:
        self.zc: Any = None
        self.registered_server_infos: dict[Any, Any] = {}

    def register_server(
        self, server: Any, address: str, port: int, ca: bytes | None = None
    ) -> None:
        from sila2.discovery.service_info import SilaServiceInfo
        from zeroconf import Zeroconf

        self.zc = Zeroconf(interfaces=[address])
        info = SilaServiceInfo(server, address, port, ca)
        self.zc.register_service(info)
        self.registered_server_infos[server] = info

    def unregister_server(self, server: Any) -> None:
        info = self.registered_server_infos.pop(server)
        if self.zc is not None:
            self.zc.unregister_service(info)
            self.zc.close()
            self.zc = None


@contextlib.contextmanager
def _own_construction(interceptors: Sequence[Any]) -> Iterator[None]:
    """While a `SilaServer` is made: our broadcaster, and a gRPC server with `interceptors`
    (the library makes its own without any)."""
    from sila2.server import sila_server

    library = sila_server.SilaServiceBroadcaster  # type: ignore[attr-defined]
    grpc = sila_server.grpc  # type: ignore[attr-defined]
    sila_server.SilaServiceBroadcaster = _Broadcaster  # type: ignore[attr-defined,assignment]
    sila_server.grpc = SimpleNamespace(  # type: ignore[attr-defined]
        server=lambda executor: grpc.server(executor, interceptors=list(interceptors))
    )
    try:
        yield
    finally:
        sila_server.SilaServiceBroadcaster = library  # type: ignore[attr-defined]
        sila_server.grpc = grpc  # type: ignore[attr-defined]


def new_sila_server(*, interceptors: Sequence[Any] = (), **settings: Any) -> SilaServer:
    """A library `SilaServer` (its keyword settings) that opens mDNS sockets only when started
    with discovery, and then on its own address only; its gRPC server runs `interceptors`."""
    with _own_construction(interceptors):
        return SilaServer(**settings)


class _Impl(FeatureImplementationBase):
    """A feature implementation assembled from callables (no generated base classes)."""

    def __init__(self, parent: SilaServer, calls: Mapping[str, Callable[..., Any]]) -> None:
        super().__init__(parent)
        for name, call in calls.items():
            setattr(self, name, call)


class DeviceSilaServer:
    """A SiLA 2 server in front of one connected cellauto `Device`.

    `insecure=False` (the default) serves TLS with the certificate in `credentials` or, if
    None, one made and kept in `cert_dir` on first start; `discovery` announces the server by
    mDNS (``_sila._tcp``).
    """

    def __init__(
        self,
        device: Device,
        *,
        name: str | None = None,
        server_uuid: uuid.UUID | None = None,
        insecure: bool = False,
        credentials: Credentials | None = None,
        cert_dir: Path | None = None,
        discovery: bool = False,
        on_client: Callable[[], None] | None = None,
        on_command: Callable[[CommandCall], None] | None = None,
        vendor_url: str = PLACEHOLDER_VENDOR_URL,
        simulated: bool = False,
    ) -> None:
        self.device = device
        self.simulated = simulated
        """Serve SimulationController, always in simulation mode (a simulator's server)."""
        self.on_client = on_client
        """Called (in the device's loop) when a client first reads DeviceIdentity."""
        self.on_command = on_command
        """Called (in the device's loop) with every command a client sent, once it ended."""
        self.insecure = insecure
        self.discovery = discovery
        self.server_uuid = server_uuid or uuid.uuid5(
            uuid.NAMESPACE_URL, f"cellauto:{device.device_id}"
        )
        self._credentials = credentials
        self._cert_dir = cert_dir
        self.host = "127.0.0.1"
        self.port = 0
        self._refusals = LockRefusals()
        self.server = new_sila_server(
            interceptors=[self._refusals],
            server_name=(name or device.device_id)[:255],
            server_type="CellautoDevice",
            server_version="1.0",
            server_description=f"cellauto device {device.device_id} ({device.profile.device})",
            server_vendor_url=vendor_url,
            server_uuid=self.server_uuid,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._queues: dict[str, Queue[Any]] = {}
        self._published: set[str] = set()
        self._events: list[str] = []
        self._first_seq = 0
        self._runs: dict[uuid.UUID, _Run] = {}
        self._starting: set[uuid.UUID] = set()
        self._runs_changed = threading.Condition()
        self._paused: set[uuid.UUID] = set()
        self._pending: set[Future[Any]] = set()
        self._calls = threading.Lock()
        self._stopping = False
        self.features: dict[str, SilaFeature] = {}
        self.channel_names: dict[str, str] = {}

    # -- life cycle --------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on `host`:`port` (0: a free port) until `stop()`."""
        self._loop = asyncio.get_running_loop()
        self.host, self.port = host, port or free_port(host)
        self._add_features()
        self._tasks += [
            asyncio.create_task(self._pump_samples(), name="sila samples"),
            asyncio.create_task(self._pump_events(), name="sila events"),
        ]
        if self.insecure:
            await asyncio.to_thread(
                self.server.start_insecure, host, self.port, enable_discovery=self.discovery
            )
        else:
            creds = self._credentials or server_credentials(self.server_uuid, host, self._cert_dir)
            self._credentials = creds
            await asyncio.to_thread(
                self.server.start,
                host,
                self.port,
                private_key=creds.private_key,
                cert_chain=creds.certificate,
                ca_for_discovery=creds.certificate,
                enable_discovery=self.discovery,
            )

    @property
    def certificate(self) -> bytes | None:
        """The PEM certificate clients trust (None when insecure)."""
        return None if self.insecure or self._credentials is None else self._credentials.certificate

    @property
    def address(self) -> str:
        """``host:port`` the server listens on."""
        return f"{self.host}:{self.port}"

    async def stop(self) -> None:
        """Stop serving (the device stays connected); calls still waiting on the device end,
        and calls made from now on end at once."""
        with self._calls:
            self._stopping = True
            pending = list(self._pending)
        for future in pending:
            future.cancel()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self.server.running:
            await asyncio.to_thread(self.server.stop, 0.5)
        server: Any = self.server
        for servicer in server.feature_servicers.values():  # end the library's feed threads
            for managers in servicer.observable_property_subscription_managers.values():
                for manager in managers.values():
                    with contextlib.suppress(RuntimeError):  # already ended by the library
                        manager.cancel_producer()

    # -- bridging ----------------------------------------------------------------------------

    def _call(self, coro: Awaitable[T]) -> T:
        """Run `coro` in the device's loop from a gRPC thread and wait for it."""
        assert self._loop is not None

        async def wrapped() -> T:
            with acting_via("sila"):
                return await coro

        with self._calls:
            if self._stopping:  # a gRPC thread late to a stopping server: its call ends now
                if asyncio.iscoroutine(coro):
                    coro.close()
                raise CancelledError
            future: Future[T] = asyncio.run_coroutine_threadsafe(wrapped(), self._loop)
            self._pending.add(future)
        try:
            return future.result()
        finally:
            self._pending.discard(future)

    def _error(self, feature: str, name: str, message: str) -> DefinedExecutionError:
        node = self.features[feature].defined_execution_errors[name]
        return DefinedExecutionError(node, message)

    def _guard(
        self,
        command: str,
        arguments: dict[str, JsonValue],
        error: str,
        coro: Awaitable[T],
    ) -> T:
        """Run a client's `command` (``Feature.Command``) on the device; a device refusal
        becomes the feature's defined `error`; either way `on_command` hears of it."""
        feature = command.split(".")[0]
        outcome = "ok"
        try:
            return self._call(coro)
        except (DeviceError, ValueError, KeyError, ValidationError) as exc:
            outcome = f"refused: {exc}"
            raise self._error(feature, error, str(exc)) from exc
        except BaseException as exc:
            outcome = f"failed: {exc!r}"
            raise
        finally:
            self._report(CommandCall(command, arguments, outcome))

    def _report(self, call: CommandCall) -> None:
        if self.on_command is not None and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed: nobody to tell
                self._loop.call_soon_threadsafe(self.on_command, call)

    def _publish(self, key: str, value: Any) -> None:
        queue = self._queues.get(key)
        if queue is not None:
            self._published.add(key)
            queue.put(value)

    def _first_value(self, key: str, channel: str | None) -> Callable[..., None]:
        """A subscription hook: a channel nothing was published for yet (its samples come once
        per period, the device's first ones before this server listened) is read from the
        device, so a subscriber, and a Get, has its current value at once."""

        def on_subscription(*, metadata: Any) -> None:
            if channel is None or key in self._published:
                return
            with contextlib.suppress(DeviceError):  # then the next sample is the first value
                value = self._call(self.device.read(channel)).value
                if key not in self._published:
                    self._publish(key, value)

        return on_subscription

    # -- features ----------------------------------------------------------------------------

    def _add_features(self) -> None:
        lock = ServerLock(self.server)
        self._refusals.lock = lock
        self._refusals.on_refused = lambda command: self._report(CommandCall(command, {}, LOCKED))
        self.server.set_feature_implementation(LockControllerFeature, lock)
        for spec in (*FEATURES, *([SIMULATION_CONTROLLER] if self.simulated else [])):
            self.features[spec.identifier] = SilaFeature(load_feature(spec.identifier))
        channels, self.channel_names = channel_feature(self.device.profile)
        self.features[channels.identifier] = SilaFeature(channels.xml())
        builders: dict[str, Callable[[], dict[str, Callable[..., Any]]]] = {
            "ProgramController": self._program_controller,
            "DeviceStateController": self._state_controller,
            "AlarmController": self._alarm_controller,
            "OperatorPrompts": self._operator_prompts,
            "EventLog": self._event_log,
            "DeviceCommands": self._device_commands,
            "DeviceIdentity": self._device_identity,
            "CancelController": self._cancel_controller,
            "PauseController": self._pause_controller,
            "SimulationController": self._simulation_controller,
        }
        for name, feature in self.features.items():
            calls = builders[name]() if name in builders else {}
            impl = _Impl(self.server, calls)
            for prop in feature._observable_properties:
                key = f"{name}.{prop}"
                queue: Queue[Any] = Queue()
                self._queues[key] = queue
                setattr(impl, f"_{prop}_producer_queue", queue)
                channel = self.channel_names.get(prop) if name == channels.identifier else None
                setattr(impl, f"{prop}_on_subscription", self._first_value(key, channel))
            self.server.set_feature_implementation(feature, impl)
        device = self.device
        self._publish("DeviceStateController.State", str(device.state))
        self._publish("AlarmController.Alarms", self._alarm_list())
        self._publish("OperatorPrompts.OpenPrompts", self._prompt_list())
        self._publish("EventLog.LatestSequence", -1)
        self._publish("ProgramController.RunProgress", 0.0)
        self._publish("PauseController.PausedCommands", [])

    def _program_controller(self) -> dict[str, Callable[..., Any]]:
        device = self.device

        def programs(*, metadata: Any) -> list[str]:
            return [p.name for p in device.profile.programs]

        def run_program(program: str, parameters: str, *, metadata: Any, instance: Any) -> Any:
            async def start() -> Operation[Result]:
                template = (
                    ProgramTemplate.model_validate_json(program)
                    if program.lstrip().startswith("{")
                    else program
                )
                return await device.start_program(
                    template, parse_parameters(parameters), user=CLIENT
                )

            arguments: dict[str, JsonValue] = {"Program": program, "Parameters": parameters}
            execution = instance.execution_uuid
            with self._runs_changed:  # a client may see the run (a prompt) before it is started
                self._starting.add(execution)
            try:
                operation = self._guard(
                    "ProgramController.RunProgram", arguments, "ProgramRejected", start()
                )
                run = _Run(execution, operation)
                self._runs[execution] = run
            finally:
                with self._runs_changed:
                    self._starting.discard(execution)
                    self._runs_changed.notify_all()
            instance.begin_execution()
            try:
                return self._call(self._follow(run, instance))
            finally:
                self._runs.pop(run.execution, None)
                self._paused.discard(run.execution)

        return {"get_Programs": programs, "RunProgram": run_program}

    async def _follow(self, run: _Run, instance: Any) -> dict[str, str]:
        step = None
        async for status in run.operation.watch():
            instance.progress = max(0.0, min(1.0, status.progress))
            if status.remaining is not None:
                instance.estimated_remaining_time = max(status.remaining, timedelta(0))
            self._publish("ProgramController.RunProgress", status.progress)
            if status.step_number is not None and status.step_number != step:
                step = status.step_number
                instance.send_intermediate_response(
                    {"StepNumber": step, "StepName": status.step_name or ""}
                )
        try:
            result = await run.operation
        except DeviceError as exc:
            ended: Result | None = getattr(exc, "result", None)
            if ended is None:
                raise
            result = ended
        return {"Outcome": result.outcome, "Result": result.model_dump_json()}

    def _state_controller(self) -> dict[str, Callable[..., Any]]:
        calls: dict[str, Callable[..., Any]] = {}
        for command in (
            "Hold",
            "Unhold",
            "Suspend",
            "Unsuspend",
            "Stop",
            "Abort",
            "Clear",
            "Reset",
        ):
            calls[command] = self._state_call(command, StateCommand(command.lower()))
        return calls

    def _state_call(self, name: str, command: StateCommand) -> Callable[..., None]:
        def call(*, metadata: Any) -> None:
            method = getattr(self.device, str(command))
            self._guard(f"DeviceStateController.{name}", {}, "CommandNotAllowed", method())

        return call

    def _alarm_list(self) -> list[str]:
        return [a.model_dump_json() for a in self.device.alarms]

    def _prompt_list(self) -> list[str]:
        run = self.device.operation
        status = None if run is None else run.status
        return [
            json.dumps(
                {
                    "prompt_id": p.prompt_id,
                    "message": p.text,
                    "choices": list(p.choices),
                    "raised_at": p.raised_at.isoformat(),
                    "step_number": None if status is None else status.step_number,
                    "step_name": None if status is None else status.step_name,
                }
            )
            for p in self.device.prompts
        ]

    def _alarm_controller(self) -> dict[str, Callable[..., Any]]:
        def acknowledge(alarm_id: str, user: str, *, metadata: Any) -> None:
            self._guard(
                "AlarmController.AcknowledgeAlarm",
                {"AlarmId": alarm_id, "User": user},
                "UnknownAlarm",
                self.device.acknowledge(alarm_id, user),
            )

        return {"AcknowledgeAlarm": acknowledge}

    def _operator_prompts(self) -> dict[str, Callable[..., Any]]:
        def answer(prompt_id: str, answer: str, user: str, *, metadata: Any) -> None:
            coro = self.device.answer_prompt(prompt_id, answer, user)
            arguments: dict[str, JsonValue] = {
                "PromptId": prompt_id,
                "Answer": answer,
                "User": user,
            }
            self._guard("OperatorPrompts.AnswerPrompt", arguments, "PromptRejected", coro)

        return {"AnswerPrompt": answer}

    def _event_log(self) -> dict[str, Callable[..., Any]]:
        def since(sequence: int, *, metadata: Any) -> dict[str, Any]:
            start = max(sequence + 1 - self._first_seq, 0)
            return {"Events": self._events[start:], "Oldest": self._first_seq}

        return {"EventsSince": since}

    def _device_commands(self) -> dict[str, Callable[..., Any]]:
        def send(name: str, parameters: str, *, metadata: Any) -> str:
            async def run() -> str:
                result = await self.device.command(name, **parse_parameters(parameters))
                return result.model_dump_json()

            arguments: dict[str, JsonValue] = {"Name": name, "Parameters": parameters}
            return self._guard("DeviceCommands.SendCommand", arguments, "CommandRejected", run())

        return {"SendCommand": send}

    def _device_identity(self) -> dict[str, Callable[..., Any]]:
        def identity(*, metadata: Any) -> str:
            if self.on_client is not None and self._loop is not None:
                self._loop.call_soon_threadsafe(self.on_client)
            return self.device.info.model_dump_json()

        return {
            "get_Identity": identity,
            "get_Profile": lambda *, metadata: self.device.profile.model_dump_json(),
        }

    def _cancel_controller(self) -> dict[str, Callable[..., Any]]:
        def cancel(execution: str, *, metadata: Any) -> None:
            run = self._find_run("CancelController", execution)
            self._guard(
                "CancelController.CancelCommand",
                {"CommandExecutionUUID": execution},
                "OperationNotSupported",
                run.operation.cancel(),
            )

        def cancel_all(*, metadata: Any) -> None:
            for run in list(self._runs.values()):
                self._guard(
                    "CancelController.CancelAll",
                    {"CommandExecutionUUID": str(run.execution)},
                    "OperationNotSupported",
                    run.operation.cancel(),
                )

        return {"CancelCommand": cancel, "CancelAll": cancel_all}

    def _find_run(self, feature: str, execution: str) -> _Run:
        """The run of `execution`, once it has started (a client can see a run, by its first
        prompt, while its RunProgram call is still on its way back from the device)."""
        with contextlib.suppress(ValueError):
            key = uuid.UUID(execution)
            with self._runs_changed:
                self._runs_changed.wait_for(lambda: key not in self._starting)
            run = self._runs.get(key)
            if run is not None:
                return run
        raise self._error(feature, "InvalidCommandExecutionUUID", f"no running command {execution}")

    def _pause_controller(self) -> dict[str, Callable[..., Any]]:
        def pause(execution: str, *, metadata: Any) -> None:
            run = self._find_run("PauseController", execution)
            self._guard(
                "PauseController.Pause",
                {"CommandExecutionUUID": execution},
                "OperationNotSupported",
                self.device.hold(),
            )
            self._paused.add(run.execution)
            self._publish("PauseController.PausedCommands", [str(u) for u in self._paused])

        def resume(execution: str, *, metadata: Any) -> None:
            run = self._find_run("PauseController", execution)
            self._guard(
                "PauseController.Resume",
                {"CommandExecutionUUID": execution},
                "OperationNotSupported",
                self.device.unhold(),
            )
            self._paused.discard(run.execution)
            self._publish("PauseController.PausedCommands", [str(u) for u in self._paused])

        return {"Pause": pause, "Resume": resume}

    def _simulation_controller(self) -> dict[str, Callable[..., Any]]:
        def real(*, metadata: Any) -> None:
            message = "this server serves a simulator, which has no real mode"
            raise self._error("SimulationController", "StartRealModeFailed", message)

        return {
            "StartSimulationMode": lambda *, metadata: None,
            "StartRealMode": real,
            "get_SimulationMode": lambda *, metadata: True,
        }

    # -- what the device reports -------------------------------------------------------------

    async def _pump_samples(self) -> None:
        feature = channels_identifier(self.device.profile.device)
        keys = {name: f"{feature}.{ident}" for ident, name in self.channel_names.items()}
        feed = self.device.subscribe()
        try:
            async for sample in feed:
                key = keys.get(sample.channel)
                if key is not None:
                    self._publish(key, sample.value)
                self._publish("SampleStream.Samples", sample.model_dump_json())
        finally:
            feed.close()

    async def _pump_events(self) -> None:
        feed = self.device.events()
        try:
            async for event in feed:
                self._record(event)
        finally:
            feed.close()

    def _record(self, event: Event) -> None:
        self._events.append(event.model_dump_json())
        if len(self._events) > EVENT_LOG_SIZE:
            del self._events[0]
            self._first_seq += 1
        if event.kind is EventKind.STATE_CHANGED:
            # the state this event entered: by the time it is published the device may have
            # moved on, and each transition must reach the subscribers
            self._publish("DeviceStateController.State", event.to_state or str(self.device.state))
        elif event.kind in (
            EventKind.ALARM_RAISED,
            EventKind.ALARM_CLEARED,
            EventKind.ALARM_ACKNOWLEDGED,
        ):
            self._publish("AlarmController.Alarms", self._alarm_list())
        elif event.kind in (EventKind.PROMPT, EventKind.PROMPT_ANSWERED):
            self._publish("OperatorPrompts.OpenPrompts", self._prompt_list())
        self._publish("EventLog.LatestSequence", self._first_seq + len(self._events) - 1)
