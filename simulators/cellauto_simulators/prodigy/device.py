"""The Prodigy's program steps on its process model: what each unit operation does to the
`ProdigyProcess` (fluidics, tubing set, magnetic separation, activation, transduction, in-process
samples, harvest), the feed schedule of an expansion, and what an alarm's condition does to the
machine. It knows no wire: `SimulatedProdigy` (server.py) serves it.
"""

from __future__ import annotations

from collections.abc import Callable

from cellauto.schema import ProgramTemplate
from cellauto.sim import Clock, StepContext

from .process import ProcessState, ProdigyProcess

FLUIDIC_MODES = {
    "integrity_test": ("idle", True),
    "wash": ("centrifugation", True),
    "label": ("mixing", False),
    "separate": ("transfer", True),
    "formulate": ("centrifugation", True),
    "harvest": ("transfer", True),
}
"""Unit operation -> the chamber mode and whether the pump runs while it does."""
LOW_GLUCOSE = 2.0  # mmol/L: an in-process sample below this raises glucose_low (assumed)
LOW_MEDIUM = 50.0  # mL left in the medium bag after a feed that raises bag_empty (assumed)

Hook = Callable[[StepContext], None]


def tubing_set(program: str) -> str:
    """The tubing set a program's process needs."""
    return "TS310" if program == "CD34" else "TS520"


def fluidics_active(process: ProdigyProcess) -> bool:
    """Whether the pump or the centrifuge runs."""
    s = process.state
    return s.pump_on or s.mode in ("centrifugation", "mixing")


def alarm_condition(state: ProcessState, code: str, on: bool) -> None:
    """What the condition behind alarm `code` does to the machine while it holds."""
    if code == "door_open":
        state.door_closed = not on
    elif code == "air_detected":
        state.air_detected = on
    elif code == "pressure_high":
        state.pressure_offset = 150.0 if on else 0.0


class ProdigyRun:
    """One program run on a fresh process: its step hooks and feed schedule. `changed(force)`
    is told when the process changed (force: report every channel now), `alarm(code)` raises
    an alarm whose condition the process reached."""

    def __init__(
        self,
        process: ProdigyProcess,
        program: ProgramTemplate,
        params: dict[str, float],
        clock: Clock,
        *,
        changed: Callable[[bool], None],
        alarm: Callable[[str], object],
    ) -> None:
        self.process = process
        self.program = program
        self.params = params
        self.clock = clock
        self.changed = changed
        self.alarm = alarm
        self.next_feed: float | None = None

    def feed_due(self, now: float) -> None:
        """Feed if the expansion's next feed is due (the process advanced to `now`)."""
        if self.next_feed is None or now < self.next_feed:
            return
        self.next_feed = now + self.params.get("feed_interval", 24.0) * 3600.0
        self.process.feed(self.params.get("culture_volume", 250.0))
        if self.process.state.bags.medium < LOW_MEDIUM:
            self.alarm("bag_empty")

    def ended(self) -> None:
        """The program ended: no more feeds, the pump stops."""
        self.next_feed = None
        self.process.state.pump_on = False

    def hooks(self) -> tuple[dict[str, Hook], dict[str, Hook]]:
        """The step hooks by unit operation: (on start, on end)."""
        p = self.process

        def fluidic_start(ctx: StepContext) -> None:
            mode, pump = FLUIDIC_MODES[ctx.step.unit_operation]
            p.state.pump_on = pump
            if ctx.step.unit_operation != "integrity_test":
                p.state.mode = mode
            self.changed(False)

        def fluidic_end(ctx: StepContext) -> None:
            p.state.pump_on = False
            if p.state.mode in ("centrifugation", "mixing", "transfer"):
                p.state.mode = "culture" if p.reactor.culture.state.volume > 0 else "idle"
            self.changed(False)

        def install_end(ctx: StepContext) -> None:
            p.install(tubing_set(self.program.name))
            self.changed(False)

        def connect_end(ctx: StepContext) -> None:
            p.load_starting_material(ctx.runner.program.name, self.params)

        def separate_start(ctx: StepContext) -> None:
            fluidic_start(ctx)
            p.state.separation, p.state.magnet_engaged = "loading", True
            self.changed(False)

        def separate_end(ctx: StepContext) -> None:
            p.separate()
            p.state.separation, p.state.magnet_engaged = "complete", False
            fluidic_end(ctx)

        def activate_start(ctx: StepContext) -> None:
            p.activate(self.params.get("starting_t_cells", 5e7))
            interval = self.params.get("feed_interval", 24.0)
            self.next_feed = self.clock.monotonic() + 3600.0 * interval
            self.changed(False)

        def transduce_end(ctx: StepContext) -> None:
            p.transduce()

        def sample_start(ctx: StepContext) -> None:
            values = p.take_sample()
            self.changed(True)
            if values["glucose"] < LOW_GLUCOSE:
                self.alarm("glucose_low")

        def harvest_end(ctx: StepContext) -> None:
            self.next_feed = None
            p.harvest()
            fluidic_end(ctx)

        def formulate_start(ctx: StepContext) -> None:
            self.next_feed = None
            fluidic_start(ctx)

        on_start: dict[str, Hook] = {
            "integrity_test": fluidic_start,
            "wash": fluidic_start,
            "label": fluidic_start,
            "separate": separate_start,
            "activate": activate_start,
            "take_sample": sample_start,
            "formulate": formulate_start,
            "harvest": fluidic_start,
        }
        on_end: dict[str, Hook] = {
            "integrity_test": fluidic_end,
            "install_tubing_set": install_end,
            "connect_bag": connect_end,
            "wash": fluidic_end,
            "label": fluidic_end,
            "separate": separate_end,
            "transduce": transduce_end,
            "formulate": fluidic_end,
            "harvest": harvest_end,
        }
        return on_start, on_end
