"""cellauto alarms as OPC UA Alarms & Conditions (AlarmConditionType events).

Each alarm occurrence is one condition: an event is fired (from the Server object) whenever it
is raised, acknowledged or cleared, with ActiveState, AckedState, ConfirmedState and Retain.
A client's Acknowledge goes to the device (`Device.acknowledge`) as the OPC UA user. The
device interface has no confirm, so Confirm is recorded (audit) and shown by the gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asyncua import ua

from cellauto.gateway.security import UserStore, current_identity
from cellauto.lads._ua import ObjectIds, Server, StatusCodes, nid, status
from cellauto.lads.mapping import SEVERITY
from cellauto.schema import Alarm

if TYPE_CHECKING:
    from asyncua.common.event_objects import BaseEvent

    from cellauto.gateway.binding import DeviceBinding


@dataclass
class _Condition:
    binding: DeviceBinding
    alarm: Alarm
    event_ids: list[bytes]
    confirmed: bool = False


class AlarmConditions:
    """Conditions of every device on one gateway; dispatches Acknowledge and Confirm."""

    def __init__(self, server: Server, users: UserStore) -> None:
        self.server = server
        self.users = users
        self._conditions: dict[str, _Condition] = {}
        self._generator: Any = None

    async def setup(self) -> None:
        """Create the event generator and serve the standard Acknowledge/Confirm methods."""
        self._generator = await self.server.get_event_generator(
            ObjectIds.AlarmConditionType, ObjectIds.Server
        )
        for method, handler in (
            (ObjectIds.AcknowledgeableConditionType_Acknowledge, self._acknowledge),
            (ObjectIds.AcknowledgeableConditionType_Confirm, self._confirm),
        ):
            self.server.link_method(self.server.get_node(nid(method)), handler)

    def condition_id(self, binding: DeviceBinding, alarm: Alarm) -> ua.NodeId:
        """The ConditionId of an alarm occurrence."""
        return nid(f"{binding.device.device_id}.Alarms.{alarm.alarm_id}", binding.builder.idx)

    async def show(self, binding: DeviceBinding, alarm: Alarm) -> None:
        """Fire the condition event for the alarm's current state."""
        key = self.condition_id(binding, alarm).to_string()
        condition = self._conditions.get(key)
        if condition is None:
            condition = self._conditions[key] = _Condition(binding, alarm, [])
        condition.alarm = alarm
        await self._fire(key, condition)

    async def _fire(self, key: str, condition: _Condition) -> None:
        alarm = condition.alarm
        binding = condition.binding
        event: BaseEvent = self._generator.event
        source = binding.nodes.node.nodeid if binding.nodes else nid()
        fields: dict[str, Any] = {
            "NodeId": self.condition_id(binding, alarm),  # the ConditionId clients select
            "SourceNode": source,
            "SourceName": f"{binding.device.device_id}/{alarm.source}",
            "Message": ua.LocalizedText(alarm.message),
            "Severity": SEVERITY[alarm.severity],
            "ConditionName": alarm.code,
            "ConditionClassName": ua.LocalizedText("ProcessConditionClass"),
            "BranchId": nid(),
            "Retain": alarm.active or not alarm.acknowledged,
            "EnabledState": ua.LocalizedText("Enabled"),
            "EnabledState/Id": True,
            "ActiveState": ua.LocalizedText("Active" if alarm.active else "Inactive"),
            "ActiveState/Id": alarm.active,
            "AckedState": ua.LocalizedText(
                "Acknowledged" if alarm.acknowledged else "Unacknowledged"
            ),
            "AckedState/Id": alarm.acknowledged,
            "ConfirmedState": ua.LocalizedText(
                "Confirmed" if condition.confirmed else "Unconfirmed"
            ),
            "ConfirmedState/Id": condition.confirmed,
        }
        for name, value in fields.items():
            setattr(event, name, value)
        # asyncua's trigger stamps a fresh EventId and Time (now, unless given): keep the id it
        # sent, so Acknowledge and Confirm by EventId find the condition
        time = alarm.raised_at if alarm.active else (alarm.cleared_at or alarm.raised_at)
        await self._generator.trigger(time_attr=time)
        sent: Any = getattr(event, "EventId", b"")
        condition.event_ids.append(bytes(sent.Value if isinstance(sent, ua.Variant) else sent))

    def _find(self, object_id: ua.NodeId, event_id: Any) -> tuple[str, _Condition] | None:
        key = object_id.to_string()
        if key in self._conditions:
            return key, self._conditions[key]
        raw = event_id.Value if isinstance(event_id, ua.Variant) else event_id
        for found_key, condition in self._conditions.items():
            if raw in condition.event_ids:
                return found_key, condition
        return None

    async def _acknowledge(
        self, parent: ua.NodeId, event_id: Any = None, comment: Any = None
    ) -> Any:
        found = self._find(parent, event_id)
        if found is None:
            return status(StatusCodes.BadEventIdUnknown)
        _, condition = found
        binding = condition.binding
        user, _ = current_identity(self.users)
        alarm_id = condition.alarm.alarm_id

        async def call() -> None:
            await binding.device.acknowledge(alarm_id, f"opcua:{user}")

        result = await binding.run_call("Acknowledge", {"alarm": alarm_id}, call)
        return [] if result is None else result

    async def _confirm(self, parent: ua.NodeId, event_id: Any = None, comment: Any = None) -> Any:
        found = self._find(parent, event_id)
        if found is None:
            return status(StatusCodes.BadEventIdUnknown)
        key, condition = found

        async def call() -> None:
            condition.confirmed = True
            await self._fire(key, condition)

        result = await condition.binding.run_call(
            "Confirm", {"alarm": condition.alarm.alarm_id}, call
        )
        return [] if result is None else result
