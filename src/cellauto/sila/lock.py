"""The LockController of cellauto's SiLA servers, and the refusals its lock causes.

The `sila2` library refuses a locked call before any feature implementation runs: without a
LockIdentifier as ``InvalidMetadata`` while reading the metadata, with another one as
``InvalidLockIdentifier``. `LockRefusals` sees every call as it arrives (a gRPC interceptor)
and tells `on_refused` of each command the lock is about to refuse, so it can be audited.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc  # type: ignore[import-untyped]
from sila2.features.lockcontroller import LockControllerFeature
from sila2.server.default_feature_implementations.lockcontroller_impl import (
    LockControllerImpl,
)

LOCK_METADATA = "sila-org.silastandard-core-lockcontroller-v1-metadata-lockidentifier-bin"
"""The gRPC metadata key a client sends its LockIdentifier under."""


class ServerLock(LockControllerImpl):
    """LockController whose lock guards the commands of cellauto's features, and only while a
    client holds it: properties stay readable by everyone, and an unlocked server needs no
    LockIdentifier."""

    def _server_features(self) -> list[Any]:
        server: Any = self.parent_server
        return list(server.features.values())

    def _guarded(self, feature: Any) -> bool:
        return bool(
            feature.fully_qualified_identifier.startswith("org.cellauto/")
            or feature._identifier in ("CancelController", "PauseController")
        )

    def get_calls_affected_by_LockIdentifier(self) -> list[Any]:
        if not self.is_locked:
            return []
        return [
            command
            for feature in self._server_features()
            if self._guarded(feature)
            for command in (
                *feature._unobservable_commands.values(),
                *feature._observable_commands.values(),
            )
        ]

    def refuses(self, feature_id: str, command_id: str, token: bytes | None) -> bool:
        """Whether the lock refuses command `feature_id`.`command_id` sent with the raw
        LockIdentifier metadata `token` (None: not sent)."""
        if not self.is_locked or self.lock is None:
            return False
        feature = next((f for f in self._server_features() if f._identifier == feature_id), None)
        if feature is None or not self._guarded(feature):
            return False
        if command_id not in (*feature._unobservable_commands, *feature._observable_commands):
            return False
        if token is None:
            return True
        try:
            metadata: Any = LockControllerFeature["LockIdentifier"]
            sent = metadata.to_native_type(token)
        except Exception:  # the library refuses an unreadable identifier too
            return True
        return bool(sent != self.lock.token)


class LockRefusals(grpc.ServerInterceptor):  # type: ignore[misc]
    """Calls `on_refused("<Feature>.<Command>")` for each command the lock will refuse."""

    def __init__(self) -> None:
        self.lock: ServerLock | None = None
        self.on_refused: Callable[[str], None] = lambda command: None

    def intercept_service(self, continuation: Any, details: Any) -> Any:
        lock = self.lock
        service, _, command_id = str(details.method).lstrip("/").partition("/")
        feature_id = service.rsplit(".", 1)[-1]
        if lock is not None:
            token = dict(details.invocation_metadata or ()).get(LOCK_METADATA)
            if lock.refuses(feature_id, command_id, token):
                self.on_refused(f"{feature_id}.{command_id}")
        return continuation(details)
