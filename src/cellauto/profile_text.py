"""A device profile as text for people: `cellauto devices <device>`."""

from __future__ import annotations

from collections.abc import Iterator

from cellauto.schema import DeviceProfile, ParameterSpec, SourcedRange


def describe(profile: DeviceProfile) -> Iterator[str]:
    """Lines listing the profile's programs, channels (unit, range), commands and alarms."""
    yield (
        f"{profile.device}: {profile.manufacturer} {profile.model} "
        f"(profile {profile.profile_version})"
    )
    yield f"transports: {', '.join(profile.transports)}"
    yield ""
    yield f"programs ({len(profile.programs)}):"
    for program in profile.programs:
        hours = sum((s.duration_seconds or 0.0) for s in program.steps) / 3600
        yield f"  {program.name} v{program.version}: {len(program.steps)} steps, ~{hours:g} h"
        for spec in program.parameters:
            yield f"      {_parameter(spec)}"
    channels = profile.channels()
    yield f"channels ({len(channels)}):"
    width = max((len(name) for name in channels), default=0)
    for name, channel in channels.items():
        unit = channel.unit or ("-" if channel.dtype != "float" else "1")
        extra = f"  range {_range(channel.eu_range)}" if channel.eu_range else ""
        if channel.alarm_limits:
            extra += f"  alarm outside {_range(channel.alarm_limits)}"
        if channel.choices:
            extra += f"  one of {', '.join(channel.choices)}"
        rw = "control" if channel.writable else channel.kind
        yield f"  {name:<{width}}  {channel.dtype:<5} {unit:<12} {rw:<7}{extra}"
    yield f"commands ({len(profile.commands)}):"
    for command in profile.commands:
        states = f" (in {', '.join(command.allowed_states)})" if command.allowed_states else ""
        yield f"  {command.name}{states}: {command.description}"
        for spec in command.parameters:
            yield f"      {_parameter(spec)}"
    yield f"alarms ({len(profile.alarms)}):"
    for alarm in profile.alarms:
        yield f"  {alarm.code} [{alarm.severity}] {alarm.title}" + (
            f": {alarm.action}" if alarm.action else ""
        )


def _range(r: SourcedRange) -> str:
    low = "-inf" if r.low is None else f"{r.low:g}"
    high = "inf" if r.high is None else f"{r.high:g}"
    return f"{low}..{high}"


def _parameter(spec: ParameterSpec) -> str:
    text = f"{spec.name}: {spec.dtype}"
    if spec.unit and spec.unit != "1":
        text += f" in {spec.unit}"
    if spec.minimum is not None or spec.maximum is not None:
        low = "-inf" if spec.minimum is None else f"{spec.minimum:g}"
        high = "inf" if spec.maximum is None else f"{spec.maximum:g}"
        text += f", {low}..{high}"
    if spec.choices:
        text += f", one of {', '.join(spec.choices)}"
    if spec.default is not None:
        default = spec.default
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        text += f", default {shown}"
    if spec.required:
        text += ", required"
    return text
