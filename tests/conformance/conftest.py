"""The device conformance suite: every device with both an adapter and a simulator registered
(entry points or `register_*`) is run through the same cases. A device declares cases that do
not apply, with the reason, in its adapter's `conformance` (docs/adding-a-device.md)."""

from conformance_support import _known_defects, conformance, kind, rig

__all__ = ["_known_defects", "conformance", "kind", "rig"]
