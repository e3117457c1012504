"""Many devices in one event loop: the largest N with loop lag p99 < 50 ms and no sample lost.

What it measures (issue 7, "Performance"): N simulated devices, a mix of Prodigy (serial
protocol over loopback TCP) and Cocoon (OPC UA, one asyncua server per device), each started in
this process and connected through its real adapter as ``<kind>+sim://`` does (the simulator
factory, then `cellauto.connect` on its loopback URL; the benchmark keeps the simulator to check
loss against it), subscribed to every channel of its profile and, unless ``--idle``, running its
profile's first program with every operator prompt answered at once. All of it shares one
asyncio event loop. The ramp grows the fleet to each N (``--fresh`` starts over per step) and,
once all N are up and a short warm-up has passed, measures a fixed real-time window:

- loop lag: a probe task sleeps 10 ms again and again and records how late it wakes
  (actual - expected); p50, p99 and max in ms. ``gc max`` is the longest full collection.
- loss, against the simulators as ground truth. Prodigy: every ``SAMPLE`` the simulator logged
  (by event seq) must reach the subscriber. Cocoon: every channel value the simulator wrote to
  its OPC UA server (channel, source timestamp) must reach it. Missing after a 3 s drain, plus
  `feed.dropped`, plus events the Prodigy adapter reported lost from the device log = lost.
- samples/s delivered (total and per device), process CPU, and connection events other than a
  first ``connected`` (``reconn``: a heartbeat or request timed out and the link was rebuilt).

The same figures are kept for the setup phase (while the step's new devices start), shown on
the right and not judged: starting asyncua servers in the loop is a cost of simulating, not of
running. A step passes when all N devices started, window lag p99 < ``--lag-ms`` and nothing
in the window was lost. The ramp stops at the first failure or when the time budget would be
exceeded; it prints the largest N that passed and its ratio to the target of 200.

How to read it: at ``--speed 1`` (real time, the issue's setting) devices report by exception
at their profiles' sample periods: a Prodigy sends almost nothing, a Cocoon ~0.3 samples/s, so
the loop's steady load is mostly heartbeats (1/s per device), simulator timers and, for each
Cocoon, its asyncua server's subscription loops. ``--speed 60`` runs the same devices 60x
faster (more samples and timer wake-ups, same heartbeats) as a stress setting. Each Cocoon adds
~45 MB and ~1 s of CPU to start; the started objects are `gc.freeze()`-d (``--no-gc-freeze``
to see full collections of several seconds). The machine may be shared: run it twice.

Run:
    .venv/bin/python benchmarks/many_devices.py                 # mix 0.5, speed 1, ~5 min
    .venv/bin/python benchmarks/many_devices.py --quick         # ~1 min smoke run
    .venv/bin/python benchmarks/many_devices.py --mix 0         # Prodigy only
    .venv/bin/python benchmarks/many_devices.py --speed 60      # stress: 60x simulated time
    .venv/bin/python benchmarks/many_devices.py --profile 200   # cProfile the window at N=200
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import functools
import gc
import io
import logging
import math
import pstats
import resource
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import cellauto
from cellauto import Device
from cellauto.feeds import Feed
from cellauto.profiles import load_profile
from cellauto.registry import RunningSimulator, load_simulator
from cellauto.schema import DeviceProfile, Event, EventKind, Sample

TARGET = 200
PROBE_PERIOD = 0.010  # s between lag probes
CLOSE_TIMEOUT = 30.0  # s for one device (and its simulator) to close
MIXED_STEPS = (100, 200, 300, 400, 500, 700)
PRODIGY_STEPS = (100, 200, 400, 700, 1000, 1500, 2000, 3000)
QUICK_STEPS = (10, 25, 50)

T = TypeVar("T")
Key = tuple[str, Any]  # (channel, device seq or source timestamp)


# --- one device under test -------------------------------------------------------------------


SETUP, WINDOW, OFF = "setup", "window", "off"


@dataclass
class Tracked:
    """One device with its simulator, its subscription and its loss bookkeeping.

    Each step has two phases: ``setup`` (from the device's connect, or from the step's start
    for a device already running, until the window opens: other devices are being started)
    and ``window`` (the measured real-time window). Loss and connection events are kept apart
    per phase; only the window's count for the verdict.
    """

    kind: str
    device: Device
    simulator: RunningSimulator
    feed: Feed[Sample]
    events: Feed[Event]
    received: set[Key] = field(default_factory=set)
    in_window: int = 0
    """Samples received while the window was open."""
    expected: dict[str, list[Key]] = field(default_factory=dict)
    """Per phase, what the simulator emitted (filled when the window closes)."""
    exact: bool = True
    """Whether loss is checked against the simulator (False: only feed drops)."""
    phase: str = OFF
    connections: dict[str, Counter[str]] = field(default_factory=dict)
    """Per phase, connection events by message (a connect reports one ``connected``)."""
    _marks: dict[str, int] = field(default_factory=dict)
    _drops: dict[str, int] = field(default_factory=dict)
    _cocoon_emitted: dict[str, list[Key]] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def key(self, sample: Sample) -> Key:
        if self.kind == "prodigy":
            return (sample.channel, sample.seq)
        return (sample.channel, sample.timestamp)

    async def consume(self) -> None:
        async for sample in self.feed:
            self.received.add(self.key(sample))
            if self.phase == WINDOW:
                self.in_window += 1

    async def watch(self, answer_prompts: bool) -> None:
        async for event in self.events:
            if event.kind == EventKind.CONNECTION_CHANGED:
                phase = self.connections.setdefault(self.phase, Counter())
                state = event.message.split(":", 1)[0]  # the rest names ports and devices
                phase[f"{self.kind} {state}"[:48]] += 1
            elif event.kind == EventKind.PROMPT and answer_prompts:
                prompt_id = str((event.data or {}).get("prompt_id", ""))
                with contextlib.suppress(cellauto.CellautoError):
                    await self.device.answer_prompt(prompt_id, "done", "benchmark")

    def _enter(self, phase: str) -> None:
        self.phase = phase
        if self.kind == "prodigy":
            self._marks[phase] = _prodigy_model(self.simulator).event_seq
        self._drops[phase] = self._dropped()

    def _dropped(self) -> int:
        return self.feed.dropped + int(getattr(getattr(self.device, "sequencer", None), "lost", 0))

    def begin_step(self) -> None:
        """Counters to zero; what the simulator emits from now on is checked."""
        self.in_window = 0
        self.expected, self.connections, self._cocoon_emitted = {}, {}, {}
        self._enter(SETUP)

    def open_window(self) -> None:
        self._enter(WINDOW)

    def close_window(self) -> None:
        self._enter(OFF)
        if self.kind == "prodigy":
            model = _prodigy_model(self.simulator)
            log = [(seq, fields["ch"]) for seq, verb, fields in list(model.log) if verb == "SAMPLE"]
            bounds = {SETUP: (SETUP, WINDOW), WINDOW: (WINDOW, OFF)}
            for phase, (first, last) in bounds.items():
                lo, hi = self._marks[first], self._marks[last]
                self.expected[phase] = [(ch, seq) for seq, ch in log if lo < seq <= hi]
        else:
            self.expected = {p: list(self._cocoon_emitted.get(p, [])) for p in (SETUP, WINDOW)}

    def missing(self, phase: str) -> int:
        return sum(1 for key in self.expected.get(phase, []) if key not in self.received)

    def lost(self, phase: str) -> int:
        """Samples of `phase` that never arrived, plus feed drops and log losses in it (drops
        after the window, while draining, count for the window)."""
        after = self._dropped() if phase == WINDOW else self._drops[WINDOW]
        return self.missing(phase) + after - self._drops[phase]

    def loss_detail(self, phase: str) -> str:
        """Where this device's loss comes from, with a few missing samples."""
        gone = [key for key in self.expected.get(phase, []) if key not in self.received]
        examples = ", ".join(f"{channel}@{mark}" for channel, mark in gone[:2])
        return (
            f"{phase}: {self.device.device_id}: {len(gone)} missing of "
            f"{len(self.expected.get(phase, []))} ({examples}), dropped or lost from the log "
            f"{self.lost(phase) - len(gone)}, "
            f"connection events {dict(self.connections.get(phase, {}))}"
        )

    def instrument_cocoon(self) -> None:
        """Record every channel value the Cocoon simulator writes, by phase."""
        model = getattr(self.simulator, "device", None)
        server = getattr(model, "server", None)
        try:
            from cellauto_simulators.cocoon.address_space import channel_path

            ns = int(server.namespace_index)  # type: ignore[union-attr]
            original = server.set  # type: ignore[union-attr]
        except (AttributeError, ImportError, TypeError):
            self.exact = False
            return
        channel_of = {channel_path(ns, c): c for c in self.device.profile.channels()}

        async def counting_set(
            path: str, value: Any, source_timestamp: datetime | None = None, status: str = "Good"
        ) -> None:
            channel = channel_of.get(path)
            if channel is not None and self.phase != OFF and source_timestamp is not None:
                self._cocoon_emitted.setdefault(self.phase, []).append((channel, source_timestamp))
            await original(path, value, source_timestamp, status)

        server.set = counting_set  # type: ignore[union-attr]


def _prodigy_model(simulator: RunningSimulator) -> Any:
    return simulator.device  # type: ignore[attr-defined]


async def start_simulator(
    kind: str, index: int, profile: DeviceProfile, speed: str
) -> tuple[str, int, RunningSimulator]:
    """What ``<kind>+sim://?speed=<speed>&seed=<index>`` starts, kept to check loss against."""
    factory = load_simulator(kind)
    return kind, index, await factory(profile, {"speed": speed, "seed": str(index)})


async def connect_device(
    kind: str,
    index: int,
    simulator: RunningSimulator,
    profile: DeviceProfile,
    run_program: bool,
) -> Tracked:
    """Connect the real adapter to a running simulator, subscribe to everything, start the
    profile's first program; the simulator stops when the device closes."""
    holder: dict[str, Feed[Any]] = {}

    def subscribe(device: Device) -> None:
        holder["samples"] = device.subscribe()
        holder["events"] = device.events()

    try:
        device = await cellauto.connect(
            simulator.url,
            device_id=f"{kind}-{index:04d}",
            profile=profile,
            time=simulator.time,
            before_connect=subscribe,
        )
    except BaseException:
        await simulator.stop()
        raise
    device.add_closer(simulator.stop)
    tracked = Tracked(kind, device, simulator, holder["samples"], holder["events"])
    if kind == "cocoon":
        tracked.instrument_cocoon()
    tracked.begin_step()
    tracked.tasks = [
        asyncio.create_task(tracked.consume(), name=f"{device.device_id} samples"),
        asyncio.create_task(tracked.watch(run_program), name=f"{device.device_id} events"),
    ]
    if run_program:
        try:
            if str(device.state) in ("Stopped", "Running/Complete"):
                await device.reset()
            await device.start_program(profile.programs[0].name)
        except BaseException:
            await close_device(tracked)
            raise
    return tracked


async def close_device(tracked: Tracked) -> bool:
    """Close the device (and its simulator); False if that took over `CLOSE_TIMEOUT`."""
    closed = True
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await tracked.device.close()
    except TimeoutError:
        closed = False
    except Exception:
        pass  # a device that cannot close cleanly is still done with
    for task in tracked.tasks:
        task.cancel()
    await asyncio.gather(*tracked.tasks, return_exceptions=True)
    return closed


async def in_batches(
    calls: Sequence[Callable[[], Awaitable[T]]],
    size: int,
    *,
    after_batch: Callable[[], None] | None = None,
) -> list[T | BaseException]:
    """Run the calls `size` at a time; exceptions are returned, not raised."""
    results: list[T | BaseException] = []
    for start in range(0, len(calls), size):
        batch = [call() for call in calls[start : start + size]]
        results.extend(await asyncio.gather(*batch, return_exceptions=True))
        if after_batch is not None:
            after_batch()
    return results


# --- the lag probe ---------------------------------------------------------------------------


class LagProbe:
    """Sleeps 10 ms again and again and records how late it wakes, in the current phase."""

    def __init__(self) -> None:
        self.phase = SETUP
        self.lags: dict[str, list[float]] = {SETUP: [], WINDOW: []}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="lag probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            expected = loop.time() + PROBE_PERIOD
            await asyncio.sleep(PROBE_PERIOD)
            late = loop.time() - expected
            if self.phase in self.lags:
                self.lags[self.phase].append(late)


class GcWatch:
    """Durations of the collector's full (generation 2) collections, by phase."""

    def __init__(self, probe: LagProbe) -> None:
        self.probe = probe
        self.pauses: dict[str, list[float]] = {SETUP: [], WINDOW: []}
        self._began = 0.0

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._began = time.perf_counter()
        elif self.probe.phase in self.pauses:
            self.pauses[self.probe.phase].append(time.perf_counter() - self._began)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# --- one step of the ramp --------------------------------------------------------------------


@dataclass
class StepResult:
    n: int
    prodigy: int
    cocoon: int
    ok: int
    setup_s: float
    samples: int
    window_s: float
    lags: dict[str, list[float]]
    """Late wake-ups of the 10 ms probe (s), per phase."""
    gc_pauses: dict[str, list[float]]
    """Full garbage collections (s), per phase."""
    cpu: float
    checked: dict[str, int]
    """Per phase, samples the simulators emitted (each must arrive)."""
    lost: dict[str, int]
    connections: dict[str, Counter[str]]
    """Per phase, connection events by message."""
    exact: bool
    errors: list[str]
    rss_mb: float
    loss_details: list[str] = field(default_factory=list)
    passed: bool = False

    def lag(self, q: float, phase: str = WINDOW) -> float:
        """Lag percentile `q` (100: max) in ms."""
        return percentile(self.lags[phase], q) * 1e3

    def gc_max(self, phase: str) -> str:
        """The longest full collection in ms, or ``-`` if none ran."""
        pauses = self.gc_pauses[phase]
        return f"{max(pauses) * 1e3:.0f}" if pauses else "-"

    def reconnects(self, phase: str = WINDOW) -> int:
        """Connection events other than ``connected``: timeouts, disconnects, reconnects."""
        counts = self.connections.get(phase, Counter())
        return sum(n for m, n in counts.items() if not m.split(" ", 1)[1].startswith("connected"))

    @property
    def rate(self) -> float:
        return self.samples / self.window_s if self.window_s else 0.0


def kinds_for(n: int, mix: float) -> list[str]:
    """`n` device kinds with a Cocoon share of `mix`, interleaved evenly (prefix-stable)."""
    return [
        "cocoon" if math.floor((i + 1) * mix) > math.floor(i * mix) else "prodigy" for i in range(n)
    ]


class Fleet:
    """The devices of the ramp; grows to each step's N (or starts afresh with --fresh)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.devices: list[Tracked] = []
        self.started = 0
        """Device indices handed out so far (failed starts included)."""
        self.profiles: dict[str, DeviceProfile] = {}

    async def grow(self, n: int) -> tuple[float, list[str]]:
        """Start devices until `n` have been attempted. The simulators come first, then the
        adapters connect; Cocoons `--cocoon-batch` at a time (each asyncua server fills its
        standard address space in a worker thread, about a second of CPU, and a client
        connect is ~0.2 s of CPU), Prodigys `--batch` at a time."""
        args = self.args
        kinds = kinds_for(n, args.mix)
        todo = list(range(self.started, n))
        self.started = n
        began = time.perf_counter()
        outcomes: list[Any] = []
        for kind, size in (("cocoon", args.cocoon_batch), ("prodigy", args.batch)):
            profile = self.profiles.setdefault(kind, load_profile(kind))
            starts = [
                functools.partial(start_simulator, kind, i, profile, args.speed)
                for i in todo
                if kinds[i] == kind
            ]
            outcomes += await in_batches(starts, size, after_batch=self._freeze)
        running = [o for o in outcomes if isinstance(o, tuple)]
        outcomes = [o for o in outcomes if not isinstance(o, tuple)]
        for kind, size in (("cocoon", args.cocoon_batch), ("prodigy", args.batch)):
            connects = [
                functools.partial(connect_device, k, i, sim, self.profiles[k], not args.idle)
                for k, i, sim in running
                if k == kind
            ]
            outcomes += await in_batches(connects, size)
        self._freeze()
        errors: list[str] = []
        for outcome in outcomes:
            if isinstance(outcome, Tracked):
                self.devices.append(outcome)
            else:
                errors.append(f"{type(outcome).__name__}: {outcome}"[:160])
        return time.perf_counter() - began, sorted(set(errors))

    def _freeze(self) -> None:
        """Move everything alive now out of the collector's sight (unless --no-gc-freeze).

        An asyncua server holds ~45 MB of long-lived objects; with 100 of them in the heap a
        full collection pauses the loop for 5-11 s, which is what a long-running process that
        hosts many simulators should avoid."""
        if self.args.gc_freeze:
            gc.freeze()

    async def close(self) -> None:
        devices, self.devices, self.started = self.devices, [], 0
        closed = await in_batches([functools.partial(close_device, t) for t in devices], 100)
        stuck = [t.device.device_id for t, ok in zip(devices, closed, strict=True) if ok is False]
        if stuck:
            print(
                f"      {len(stuck)} devices did not close within {CLOSE_TIMEOUT:g} s: "
                f"{', '.join(stuck[:5])}",
                flush=True,
            )
        gc.unfreeze()
        gc.collect()


async def run_step(n: int, fleet: Fleet, profiler: cProfile.Profile | None) -> StepResult:
    args = fleet.args
    if args.fresh:
        await fleet.close()
    probe = LagProbe()
    probe.start()
    try:
        with GcWatch(probe) as gc_watch:
            for t in fleet.devices:
                t.begin_step()
            setup, errors = await fleet.grow(n)
            tracked = fleet.devices
            await asyncio.sleep(args.warmup)
            probe.phase = WINDOW
            for t in tracked:
                t.open_window()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            await asyncio.sleep(args.duration)
            if profiler is not None:
                profiler.disable()
            probe.phase = OFF
            for t in tracked:
                t.close_window()
            window = time.perf_counter() - wall0
            cpu = (time.process_time() - cpu0) / window
    finally:
        await probe.stop()
    for _ in range(max(1, round(args.drain / 0.1))):
        if not any(t.missing(p) for t in tracked for p in (SETUP, WINDOW)):
            break
        await asyncio.sleep(0.1)
    kinds = kinds_for(n, args.mix)
    phases = (SETUP, WINDOW)
    connections: dict[str, Counter[str]] = {p: Counter() for p in phases}
    for t in tracked:
        for p in phases:
            connections[p].update(t.connections.get(p, Counter()))
    return StepResult(
        n=n,
        prodigy=kinds.count("prodigy"),
        cocoon=kinds.count("cocoon"),
        ok=len(tracked),
        setup_s=setup,
        samples=sum(t.in_window for t in tracked),
        window_s=window,
        lags=probe.lags,
        gc_pauses=gc_watch.pauses,
        cpu=cpu,
        checked={p: sum(len(t.expected.get(p, [])) for t in tracked) for p in phases},
        lost={p: sum(t.lost(p) for t in tracked) for p in phases},
        connections=connections,
        exact=all(t.exact for t in tracked),
        errors=errors,
        rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        loss_details=[t.loss_detail(p) for p in phases for t in tracked if t.lost(p)],
    )


# --- the ramp --------------------------------------------------------------------------------

COLUMNS = (
    (("N", 5), ("prod", 5), ("coc", 4)),
    (
        ("samples/s", 9),
        ("/device", 7),
        ("lag p50", 7),
        ("p99", 6),
        ("max", 6),
        ("gc max", 6),
        ("CPU", 4),
        ("checked", 7),
        ("lost", 4),
        ("reconn", 6),
    ),
    (("time s", 6), ("lag max", 7), ("gc max", 6), ("lost", 4), ("reconn", 6)),
    (("ok", 4), ("RSS MB", 6), ("result", 6)),
)
"""Table columns in groups: the step, the measured window (lag in ms), the setup phase."""


def _line(cells: Sequence[Sequence[str]]) -> str:
    groups = [
        " ".join(f"{cell:>{width}}" for cell, (_, width) in zip(group, spec, strict=True))
        for group, spec in zip(cells, COLUMNS, strict=True)
    ]
    return " | ".join(groups)


def header() -> str:
    names = _line([[name for name, _ in group] for group in COLUMNS])
    widths = [sum(w + 1 for _, w in group) - 1 for group in COLUMNS]
    titles = ["", " measured window ", " setup phase ", ""]
    top = " | ".join(
        t.center(w, "-") if t else " " * w for t, w in zip(titles, widths, strict=True)
    )
    return f"{top}\n{names}"


def row(r: StepResult) -> str:
    per_device = r.rate / r.ok if r.ok else 0.0
    verdict = "pass" if r.passed else "FAIL"
    line = _line(
        [
            [str(r.n), str(r.prodigy), str(r.cocoon)],
            [
                f"{r.rate:.1f}",
                f"{per_device:.3f}",
                f"{r.lag(50):.2f}",
                f"{r.lag(99):.2f}",
                f"{r.lag(100):.1f}",
                r.gc_max(WINDOW),
                f"{r.cpu:.0%}",
                str(r.checked[WINDOW]),
                str(r.lost[WINDOW]),
                str(r.reconnects(WINDOW)),
            ],
            [
                f"{r.setup_s:.1f}",
                f"{r.lag(100, SETUP):.0f}",
                r.gc_max(SETUP),
                str(r.lost[SETUP]),
                str(r.reconnects(SETUP)),
            ],
            [str(r.ok), f"{r.rss_mb:.0f}", verdict],
        ]
    )
    return line + ("" if r.exact else " (Cocoon loss: feed drops only)")


def judge(r: StepResult, lag_ms: float) -> list[str]:
    reasons = []
    if r.ok < r.n:
        reasons.append(f"{r.n - r.ok} devices failed to start")
    if not r.lag(99) < lag_ms:
        reasons.append(f"lag p99 {r.lag(99):.1f} ms >= {lag_ms:g} ms")
    if r.lost[WINDOW]:
        reasons.append(f"{r.lost[WINDOW]} samples lost in the window")
    return reasons


async def ramp(args: argparse.Namespace) -> int:
    print(
        f"many devices: Cocoon share {args.mix:g}, speed {args.speed}, "
        f"{'idle' if args.idle else 'running a program'}, window {args.duration:g} s "
        f"(+{args.warmup:g} s warm-up), {'fresh devices per step' if args.fresh else 'grown'}; "
        f"pass: lag p99 < {args.lag_ms:g} ms and 0 lost",
        flush=True,
    )
    print(header(), flush=True)
    fleet = Fleet(args)
    best = 0
    began = time.perf_counter()
    last_step = 0.0
    try:
        for n in args.steps:
            spent = time.perf_counter() - began
            if args.budget and spent + last_step > args.budget:
                print(
                    f"      time budget of {args.budget:g} s reached before N={n}: the largest N "
                    "below is a lower bound (raise --budget)",
                    flush=True,
                )
                break
            result = await run_step(n, fleet, None)
            last_step = time.perf_counter() - began - spent
            reasons = judge(result, args.lag_ms)
            result.passed = not reasons
            print(row(result), flush=True)
            for error in result.errors[:3]:
                print(f"      start error: {error}", flush=True)
            for phase in (SETUP, WINDOW):
                if result.reconnects(phase):
                    events = dict(result.connections[phase].most_common(4))
                    print(f"      {phase} connection events: {events}", flush=True)
            for detail in result.loss_details[:5]:
                print(f"      loss: {detail}", flush=True)
            if reasons:
                print(f"      stop: {'; '.join(reasons)}", flush=True)
                break
            best = n
        else:
            print("      (every step passed; raise --steps to find the limit)")
    finally:
        closing = time.perf_counter()
        count = len(fleet.devices)
        await fleet.close()
        print(f"      closed {count} devices in {time.perf_counter() - closing:.1f} s", flush=True)
    print(f"largest N that passed: {best} ({best / TARGET:.2f}x the target of {TARGET})")
    return 0 if best >= TARGET else 1


async def profile_step(args: argparse.Namespace) -> int:
    profiler = cProfile.Profile()
    fleet = Fleet(args)
    try:
        result = await run_step(args.profile, fleet, profiler)
    finally:
        await fleet.close()
    result.passed = not judge(result, args.lag_ms)
    print(header())
    print(row(result), "(under cProfile: lag is inflated)")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("tottime")
    stats.print_stats(30)
    print(out.getvalue())
    return 0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mix", type=float, default=0.5, help="Cocoon share, 0..1 (0.5)")
    parser.add_argument("--steps", type=str, default=None, help="N of each step, e.g. 25,50,100")
    parser.add_argument("--duration", type=float, default=None, help="window per step, s (20)")
    parser.add_argument("--warmup", type=float, default=2.0, help="s after setup, unmeasured")
    parser.add_argument("--drain", type=float, default=3.0, help="s to wait for late samples")
    parser.add_argument("--speed", type=str, default="1", help="simulator speed (1: real time)")
    parser.add_argument("--idle", action="store_true", help="do not start programs")
    parser.add_argument("--batch", type=int, default=25, help="Prodigys started at once (25)")
    parser.add_argument("--cocoon-batch", type=int, default=4, help="Cocoons started at once")
    parser.add_argument(
        "--fresh", action="store_true", help="close every device between steps (slow with Cocoons)"
    )
    parser.add_argument("--lag-ms", type=float, default=50.0, help="p99 lag limit (50 ms)")
    parser.add_argument(
        "--no-gc-freeze",
        dest="gc_freeze",
        action="store_false",
        help="do not gc.freeze() the started devices (full collections then scan them all)",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="s; start no step that would likely end after it (270, --quick 45; 0: none)",
    )
    parser.add_argument("--quick", action="store_true", help="~1 min smoke run")
    parser.add_argument("--profile", type=int, default=0, help="cProfile one step of this N")
    args = parser.parse_args(argv)
    if not 0.0 <= args.mix <= 1.0:
        parser.error("--mix is the Cocoon share, between 0 and 1")
    default_steps = QUICK_STEPS if args.quick else PRODIGY_STEPS if args.mix == 0 else MIXED_STEPS
    args.steps = [int(s) for s in args.steps.split(",")] if args.steps else list(default_steps)
    if args.duration is None:
        args.duration = 5.0 if args.quick else 20.0
    if args.quick:
        args.warmup = min(args.warmup, 1.0)
    if args.budget is None:
        args.budget = 45.0 if args.quick else 270.0  # closing the devices comes on top
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING)
    # connection trouble is counted in the table; asyncua logs every retry with a traceback
    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    for noisy in ("cellauto", "cellauto_adapters", "cellauto_simulators"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    del soft
    return asyncio.run(profile_step(args) if args.profile else ramp(args))


if __name__ == "__main__":
    sys.exit(main())
