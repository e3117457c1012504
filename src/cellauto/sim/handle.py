"""One handle for every simulator, and the factory that starts one by device kind.

`SimHandle` is what a started simulator gives its user: `url` to connect an adapter to, `clock`
(also `time`), `stop()`, alarm and fault injection, and `truth`, the device's ground truth. A
device simulator subclasses it, declares its `kind`, whether its wire can be served on a pty and
any options of its own, and implements starting and dropping its link; the base parses the one
option set, schedules faults (profile alarm codes included) and records outages.

The base's defaults work on two attributes a simulator sets in `_start`: `device`, whose
``raise_alarm(code)`` and ``clear_alarm(code)`` make an alarm happen (`_raise` and `_clear`,
behind `raise_alarm` and `clear_alarm`, which check the code and time the clearing), and
`server` (or else ``device.server``), whose ``stall()`` and ``resume()`` stall the wire
(`_stall`); `_stop` stops `device` and then `server` (each by ``stop()`` or ``close()``). A
simulator overrides whichever does not fit.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sized
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

from cellauto.errors import FaultSpecError, SimOptionError, SimulationError
from cellauto.schema import DeviceProfile
from cellauto.sim.clock import Clock, Speed, make_clock
from cellauto.sim.faults import SENSOR, Fault, FaultKind, FaultScheduler, parse_duration
from cellauto.sim.faults import parse_faults as parse_engine_faults
from cellauto.sim.models import Bioreactor
from cellauto.sim.options import COMMON_OPTIONS, SimOptions, parse_sim_options
from cellauto.sim.truth import GroundTruth

_log = logging.getLogger("cellauto.sim")


@dataclass(frozen=True, slots=True)
class AlarmInjection:
    """A profile alarm raised `at` virtual seconds from scheduling, for `duration` (None: until
    cleared)."""

    code: str
    at: float
    duration: float | None = None


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """A parsed ``faults=`` spec: engine faults and profile-alarm injections."""

    faults: tuple[Fault, ...] = ()
    alarms: tuple[AlarmInjection, ...] = ()


def plan_faults(spec: str, profile: DeviceProfile) -> FaultPlan:
    """Parse a ``faults=`` spec against a profile: engine fault kinds, and any profile alarm
    code as a kind (``door_open@10m:2m``). A sensor fault must name a profile channel."""
    codes = {a.code for a in profile.alarms}
    engine: list[str] = []
    alarms: list[AlarmInjection] = []
    for n, raw in enumerate(spec.split(","), start=1):
        item = raw.strip()
        if not item:
            continue
        kind = item.split("@")[0].split(":")[0]
        if kind in codes and kind not in set(FaultKind):
            _, at_sign, when = item.partition("@")
            at, _, duration = when.partition(":")
            if not at_sign or not at:
                raise FaultSpecError(f"fault {n} {item!r}: expected {kind}@<time>[:<duration>]")
            alarms.append(
                AlarmInjection(
                    kind, parse_duration(at), parse_duration(duration) if duration else None
                )
            )
        else:
            engine.append(item)
    faults = parse_engine_faults(",".join(engine))
    channels = profile.channels()
    for fault in faults:
        if fault.kind in SENSOR and fault.target not in channels:
            raise FaultSpecError(
                f"{fault}: {profile.device} has no channel {fault.target!r}; "
                f"channels: {', '.join(sorted(channels))}"
            )
    return FaultPlan(tuple(faults), tuple(alarms))


@runtime_checkable
class AlarmDevice(Protocol):
    """A simulated device that raises and clears its profile alarms."""

    def raise_alarm(self, code: str) -> str: ...

    def clear_alarm(self, code: str) -> None: ...


@runtime_checkable
class StallableWire(Protocol):
    """A wire server that can stop answering and resume."""

    def stall(self) -> None: ...

    def resume(self) -> None: ...


@runtime_checkable
class PromptingDevice(Protocol):
    """A simulated device whose open operator prompts a link outage must wait for."""

    @property
    def prompts(self) -> Sized: ...

    @property
    def prompts_changed(self) -> asyncio.Event: ...


class SimHandle(ABC):
    """A running simulator (see the module doc). Also a `registry.RunningSimulator`."""

    kind: ClassVar[str]
    pty_capable: ClassVar[bool] = False
    """Whether the wire is a byte stream that can be served on a pseudo-terminal."""
    extra_options: ClassVar[Mapping[str, str]] = {}
    """The device's own options, name -> meaning (the common set is `COMMON_OPTIONS`)."""
    process_alarms: ClassVar[Mapping[str, str]] = {}
    """Engine process-fault kinds -> the profile alarm code each raises on this device."""

    def __init__(self, profile: DeviceProfile, options: SimOptions, clock: Clock | None) -> None:
        self.profile = profile
        self.options = options
        self.clock: Clock = clock or make_clock(options.speed)
        self.time: Clock = self.clock
        """The simulator's clock (what adapters and records take 'now' from)."""
        self.url = ""
        self.truth = GroundTruth()
        self._schedulers: list[FaultScheduler] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopped = False

    @property
    def seed(self) -> int:
        return self.options.seed

    @classmethod
    def option_names(cls) -> frozenset[str]:
        """Every option this simulator accepts."""
        return frozenset(COMMON_OPTIONS) | frozenset(cls.extra_options)

    @classmethod
    async def launch(
        cls,
        profile: DeviceProfile,
        options: Mapping[str, str],
        *,
        clock: Clock | None = None,
        default_speed: Speed = 1.0,
    ) -> Self:
        """Check `options`, start the simulator, arm its ``faults``; refuses before serving."""
        parsed = parse_sim_options(
            cls.kind,
            options,
            pty=cls.pty_capable,
            extra=cls.extra_options,
            default_speed=default_speed,
        )
        try:
            plan = plan_faults(parsed.faults, profile)
        except FaultSpecError as exc:
            raise SimOptionError(cls.kind, "faults", str(exc)) from None
        handle = cls(profile, parsed, clock)
        try:
            await handle._start()
        except OSError as exc:
            await handle._safe_stop()
            where = f"port {parsed.port}" if parsed.port else "a loopback endpoint"
            raise SimOptionError(
                cls.kind, "port", f"cannot listen on {where}: {exc.strerror or exc}"
            ) from None
        handle._arm(plan)
        return handle

    # --- what a device simulator implements ------------------------------------------------

    @abstractmethod
    async def _start(self) -> None:
        """Start the device and its server; set `url`."""

    async def _stop(self) -> None:
        """Stop the device, then its server (whichever was started)."""
        for name in ("device", "server"):
            part = getattr(self, name, None)
            stop = getattr(part, "stop", None) or getattr(part, "close", None)
            if stop is not None:
                await stop()

    def raise_alarm(self, code: str, duration: float | None = None) -> str:
        """Raise a profile alarm now (it clears after `duration` virtual s; None: stays until
        `clear_alarm`); returns the alarm id. `SimulationError` for a code the profile lacks."""
        if code not in {a.code for a in self.profile.alarms}:
            known = ", ".join(a.code for a in self.profile.alarms) or "none"
            raise SimulationError(f"{self.kind} simulator: no alarm {code!r}; alarms: {known}")
        alarm_id = self._raise(code)
        if duration is not None:
            self.spawn(self.after(duration, self.clear_alarm, code))
        return alarm_id

    def clear_alarm(self, code: str) -> None:
        """The condition behind an alarm is gone."""
        self._clear(code)

    def _raise(self, code: str) -> str:
        """Make alarm `code` happen now; its id (default: ``device.raise_alarm``)."""
        return self._alarm_device().raise_alarm(code)

    def _clear(self, code: str) -> None:
        """End alarm `code`'s condition (default: ``device.clear_alarm``)."""
        self._alarm_device().clear_alarm(code)

    def _alarm_device(self) -> AlarmDevice:
        device = getattr(self, "device", None)
        if not isinstance(device, AlarmDevice):
            raise SimulationError(f"{self.kind} simulator: its device raises no alarms")
        return device

    @abstractmethod
    def _disconnect(self, duration: float) -> Awaitable[None]:
        """Drop the link for `duration` virtual s (awaited: returns when it is back)."""

    async def _outage_between_prompts(
        self,
        device: PromptingDevice,
        duration: float,
        unplug: Callable[[], Awaitable[None] | None],
        plug: Callable[[], Awaitable[None] | None],
    ) -> None:
        """Drop the link (`unplug` ... `plug`) for `duration` virtual s, between prompts. An open
        operator prompt stops a max-speed clock, so the outage waits for open prompts to close
        and ends early if one opens: otherwise its answer could never arrive and the outage
        could never end."""
        while device.prompts:
            await device.prompts_changed.wait()
            device.prompts_changed.clear()
        if inspect.isawaitable(unplugged := unplug()):
            await unplugged
        device.prompts_changed.clear()
        ended = asyncio.ensure_future(self.clock.sleep(duration))
        prompted = asyncio.ensure_future(device.prompts_changed.wait())
        try:
            await asyncio.wait({ended, prompted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            ended.cancel()
            prompted.cancel()
            if inspect.isawaitable(plugged := plug()):
                await plugged

    def _stall(self, duration: float) -> None:
        """Stop answering for `duration` virtual s."""
        wire = getattr(self, "server", None)
        if not isinstance(wire, StallableWire):
            wire = getattr(getattr(self, "device", None), "server", None)
        if not isinstance(wire, StallableWire):
            raise SimulationError(f"the {self.kind} simulator cannot stall its wire")
        wire.stall()
        self.spawn(self.after(duration, wire.resume))

    def _corrupt(self, frames: int) -> None:
        _log.warning("%s: corrupt is not possible on this wire; ignored", self.kind)

    def _drop_bytes(self, count: int) -> None:
        _log.warning("%s: drop_bytes is not possible on this wire; ignored", self.kind)

    def _model(self) -> Bioreactor | None:
        """The process model a temperature excursion acts on (None: none)."""
        return None

    def _fault_alarm(self, code: str) -> None:
        """A process fault starts: by default raise its alarm."""
        self.raise_alarm(code)

    def _fault_clear(self, code: str) -> None:
        self.clear_alarm(code)

    # --- faults -------------------------------------------------------------------------------

    def inject(self, fault: str) -> None:
        """Schedule faults in the fault grammar (alarm codes included), timed from now."""
        try:
            plan = plan_faults(fault, self.profile)
        except FaultSpecError as exc:
            raise SimOptionError(self.kind, "faults", str(exc)) from None
        self._arm(plan)

    def sensor(self, channel: str, value: float) -> float | None:
        """`value` of `channel` as the faulty sensors report it now (None: no reading)."""
        out: float | None = value
        for scheduler in self._schedulers:
            if out is None:
                break
            out = scheduler.apply(channel, out)
        return out

    def _arm(self, plan: FaultPlan) -> None:
        if plan.faults:
            scheduler = FaultScheduler(
                plan.faults,
                self.clock,
                seed=self.options.seed,
                sink=_Sink(self),
                model=self._model(),
                alarm_codes=self.process_alarms,
                on_alarm=lambda code, _f: self._fault_alarm(code),
                on_clear=lambda code, _f: self._fault_clear(code),
            )
            self._schedulers.append(scheduler)
            self.spawn(scheduler.run())
        for injection in plan.alarms:
            self.spawn(self._alarm_at(injection))

    async def _alarm_at(self, injection: AlarmInjection) -> None:
        await self.clock.sleep(injection.at)
        self.raise_alarm(injection.code, injection.duration)

    async def _outage(self, duration: float) -> None:
        self.truth.link_down(self.clock.now())
        try:
            await self._disconnect(duration)
        finally:
            self.truth.link_up(self.clock.now())

    async def after(self, seconds: float, action: Any, *args: Any) -> None:
        """Call `action(*args)` after `seconds` virtual seconds (spawn this)."""
        await self.clock.sleep(seconds)
        action(*args)

    # --- tasks and life cycle -----------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a task that `stop()` cancels; a failure is logged."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("%s simulator task failed", self.kind, exc_info=task.exception())

    async def stop(self) -> None:
        """Stop serving: cancel every timer and fault, stop the device and its server."""
        if self._stopped:
            return
        self._stopped = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._stop()

    async def _safe_stop(self) -> None:
        try:
            await self.stop()
        except Exception:  # a half-started server may fail to stop; it is going anyway
            _log.debug("%s: stopping a half-started simulator failed", self.kind, exc_info=True)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class _Sink:
    """The fault scheduler's wire faults, on a handle."""

    def __init__(self, handle: SimHandle) -> None:
        self.handle = handle

    def disconnect(self, duration: float) -> None:
        self.handle.spawn(self.handle._outage(duration))

    def stall(self, duration: float) -> None:
        self.handle._stall(duration)

    def corrupt(self, frames: int) -> None:
        self.handle._corrupt(frames)

    def drop_bytes(self, count: int) -> None:
        self.handle._drop_bytes(count)


async def start_simulator(
    kind: str,
    *,
    profile: DeviceProfile | None = None,
    speed: float | str = "max",
    seed: int = 0,
    port: int | None = None,
    pty: bool = False,
    faults: str | None = None,
    clock: Clock | None = None,
    **device_options: str,
) -> SimHandle:
    """Start the `kind` device's simulator on a loopback endpoint and return its handle.

    One option set for every simulator (see `cellauto.sim.options`; `speed` is ``"max"`` or a
    factor of real time, also as text); `pty=True` where the wire cannot do it, or an unknown
    option, raise `SimOptionError` naming the device and the option.
    """
    from cellauto.profiles import load_profile
    from cellauto.registry import load_simulator

    factory = load_simulator(kind)
    options: dict[str, str] = {"speed": str(speed), "seed": str(seed)}
    if port is not None:
        options["port"] = str(port)
    if pty:
        options["pty"] = "1"
    if faults:
        options["faults"] = faults
    options |= {k: str(v) for k, v in device_options.items()}
    profile = profile or load_profile(kind)
    started: object = (
        await factory(profile, options)
        if clock is None
        else await factory(profile, options, clock=clock)
    )
    if not isinstance(started, SimHandle):
        stop = getattr(started, "stop", None)
        if stop is not None:
            await stop()
        raise SimulationError(
            f"the {kind} simulator returned a {type(started).__name__}, not a SimHandle"
        )
    return started
