"""`cellauto run`: run an orchestration script, watch its batches live, end with a summary."""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, TextIO

from cellauto.errors import CellautoError
from cellauto.schema import Event, EventKind, Sample

if TYPE_CHECKING:
    from rich.console import RenderableType

    from cellauto.batch import Batch

_KEY_EVENTS = {
    EventKind.STATE_CHANGED,
    EventKind.STEP_STARTED,
    EventKind.PROGRAM_STARTED,
    EventKind.PROGRAM_FINISHED,
    EventKind.ALARM_RAISED,
    EventKind.ALARM_CLEARED,
    EventKind.PROMPT,
    EventKind.PROMPT_ANSWERED,
    EventKind.MATERIAL_TRANSFER,
    EventKind.CONNECTION_CHANGED,
}


@dataclass
class _DeviceView:
    state: str = "?"
    values: dict[str, str] = field(default_factory=dict)
    alarms: set[str] = field(default_factory=set)


class _Watcher:
    """Collects what the batches' devices report; prints it as log lines or renders a table."""

    def __init__(self, out: TextIO, live: bool) -> None:
        self.out = out
        self.live = live
        self.batches: list[Batch] = []
        self.views: dict[tuple[str, str], _DeviceView] = {}
        self.lock = threading.Lock()

    def opened(self, batch: Batch) -> None:
        self.batches.append(batch)
        batch.on_event.append(lambda event: self._event(batch, event))
        batch.on_sample.append(lambda sample: self._sample(batch, sample))
        if not self.live:
            print(f"{batch.now():%Y-%m-%d %H:%M:%S} {batch.batch_id}: opened", file=self.out)

    def closed(self, batch: Batch) -> None:
        if not self.live:
            print(
                f"{batch.now():%Y-%m-%d %H:%M:%S} {batch.batch_id}: {batch.status}", file=self.out
            )

    def _view(self, batch: Batch, device_id: str) -> _DeviceView:
        return self.views.setdefault((batch.batch_id, device_id), _DeviceView())

    def _event(self, batch: Batch, event: Event) -> None:
        with self.lock:
            view = self._view(batch, event.device_id)
            if event.to_state:
                view.state = event.to_state
            alarm_id = str(event.data.get("alarm_id", ""))
            if event.kind is EventKind.ALARM_RAISED:
                view.alarms.add(alarm_id)
            elif event.kind is EventKind.ALARM_CLEARED:
                view.alarms.discard(alarm_id)
        if not self.live and event.kind in _KEY_EVENTS:
            what = event.to_state if event.kind is EventKind.STATE_CHANGED else event.message
            print(
                f"{event.time:%Y-%m-%d %H:%M:%S} {batch.batch_id} {event.device_id}: "
                f"{event.kind}: {what}",
                file=self.out,
            )

    def _sample(self, batch: Batch, sample: Sample) -> None:
        if isinstance(sample.value, float | int) and not isinstance(sample.value, bool):
            with self.lock:
                values = self._view(batch, sample.device_id).values
                if sample.channel in values or len(values) < 3:
                    unit = "" if sample.unit == "1" else f" {sample.unit}"
                    values[sample.channel] = f"{sample.value:.3g}{unit}"

    def render(self) -> RenderableType:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        table = Table(title="cellauto run", expand=True)
        for column in (
            "batch",
            "device",
            "state",
            "step",
            "progress",
            "remaining",
            "values",
            "alarms",
        ):
            table.add_column(column)
        with self.lock:
            for batch in self.batches:
                for device_id, device in batch.devices.items():
                    view = self._view(batch, device_id)
                    op = device.operation
                    status = op.status if op is not None else None
                    step = (
                        f"{status.step_number}/{status.step_count} {status.step_name or ''}"
                        if status is not None and status.step_number is not None
                        else "-"
                    )
                    table.add_row(
                        batch.batch_id,
                        device_id,
                        str(device.state),
                        step,
                        ProgressBar(
                            total=1.0, completed=status.progress if status else 0.0, width=20
                        ),
                        _duration(status.remaining.total_seconds())
                        if status and status.remaining is not None
                        else "-",
                        "\n".join(f"{k.split('.')[-1]} {v}" for k, v in view.values.items()),
                        ", ".join(sorted(view.alarms)) or "-",
                    )
        return table


def run_script(
    script: Path,
    *,
    sim: bool,
    speed: str | None,
    records: Path | None,
    operator: str | None,
    faults: str | None = None,
    args: Sequence[str] = (),
    out: TextIO = sys.stdout,
    reports: bool = True,
) -> int:
    """Run `script` as ``__main__`` (with ``sys.argv == [script, *args]``) and the batch settings
    given; returns an exit status. With `reports`, each batch's report is written beside its
    record. SIGTERM and SIGHUP end it as Ctrl-C does: executing devices are held and every record
    is sealed with the reason."""
    from cellauto.batch import observe_batches
    from cellauto.records import verify

    if not script.is_file():
        print(f"cellauto run: no script {script}", file=sys.stderr)
        return 2
    settings = {
        "CELLAUTO_SIM": "1" if sim else None,
        "CELLAUTO_SPEED": speed,
        "CELLAUTO_RECORDS": str(records) if records else None,
        "CELLAUTO_OPERATOR": operator,
        "CELLAUTO_FAULTS": faults,
    }
    for key, value in settings.items():
        if value is not None:
            os.environ[key] = value
    live = out.isatty()
    watcher = _Watcher(out, live)
    stop_observing = observe_batches(watcher)
    status = 0
    interrupted = ""
    saved_argv = sys.argv
    sys.argv = [str(script), *args]
    restore_signals = _signals_interrupt()
    try:
        if live:
            from rich.live import Live

            with Live(get_renderable=watcher.render, refresh_per_second=4, transient=False):
                runpy.run_path(str(script), run_name="__main__")
        else:
            runpy.run_path(str(script), run_name="__main__")
    except CellautoError as exc:
        print(f"{_script_line(exc, script)}{exc}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        from cellauto import batch as batch_module

        interrupted = batch_module._interrupt_reason
        status = 130
    finally:
        restore_signals()
        sys.argv = saved_argv
        stop_observing()
    for batch in watcher.batches:
        report = verify(batch.path)
        print(
            f"batch {batch.batch_id}: {batch.status}; record {batch.path} ({report.status}; "
            + ", ".join(f"{n} {table}" for table, n in sorted(report.rows.items()))
            + ")",
            file=out,
        )
        if reports:
            _write_report(batch.path, out)
    if not watcher.batches:
        print("the script opened no batch", file=out)
    if interrupted:
        print(f"{interrupted}; {_safe_state_line(watcher.batches)}", file=sys.stderr)
    elif status:
        unsafe = [b for b in watcher.batches if b.safe_state is not None]
        if unsafe:
            print(f"after the error: {_safe_state_line(unsafe)}", file=sys.stderr)
    return status


def _write_report(record: Path, out: TextIO) -> None:
    from cellauto.records.reporting import report

    try:
        print(f"  report {report(record)}", file=out)
    except CellautoError as exc:
        print(f"  no report: {exc}", file=out)


_SIGNALS = ("SIGTERM", "SIGHUP")


def _signals_interrupt() -> Callable[[], None]:
    """Make SIGINT, SIGTERM and SIGHUP interrupt the script alike (as Ctrl-C does, so whatever
    handles Ctrl-C at that moment, e.g. ``asyncio.run``, handles them); returns the undo."""
    from cellauto.batch import set_interrupt_reason

    def interrupt(signum: int, frame: FrameType | None) -> None:
        set_interrupt_reason(f"interrupted by {signal.Signals(signum).name}")
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler) and handler is not interrupt:
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {
        name: signal.signal(getattr(signal, name), interrupt)
        for name in _SIGNALS
        if hasattr(signal, name)
    }

    def restore() -> None:
        for name, handler in previous.items():
            signal.signal(getattr(signal, name), handler)
        set_interrupt_reason("interrupted")

    return restore


def _safe_state_line(batches: Sequence[Batch]) -> str:
    """Which devices were held and which could not be, batch by batch; never more."""
    lines = [
        f"{batch.batch_id}: {batch.safe_state.summary()}"
        for batch in batches
        if batch.safe_state is not None
    ]
    return " | ".join(lines) or "no batch had devices to hold"


def _duration(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86_400)
    hours, rest = divmod(rest, 3_600)
    return f"{days}d {hours:02d}h{rest // 60:02d}m" if days else f"{hours}h{rest // 60:02d}m"


def _script_line(exc: BaseException, script: Path) -> str:
    """``script.py:42: `` for the script line the error came from, if it did."""
    frames = traceback.extract_tb(exc.__traceback__)
    target = str(script.resolve())
    for frame in reversed(frames):
        if str(Path(frame.filename).resolve()) == target:
            return f"{script}:{frame.lineno}: "
    return ""
