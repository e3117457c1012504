"""Bounded fan-out feeds: one per subscriber, with a counted overflow policy."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Generic, Literal, TypeVar

T = TypeVar("T")
Overflow = Literal["drop_oldest", "drop_newest"]

_log = logging.getLogger("cellauto.feeds")


class Feed(Generic[T]):
    """An async iterator over items offered to it, holding at most `maxsize` unread items.

    When full, `drop_oldest` discards the oldest unread item and `drop_newest` the offered one;
    either way `dropped` counts it and the first drop is logged, so loss is never silent.
    The iterator ends when the feed is closed and drained.
    """

    def __init__(
        self,
        name: str,
        *,
        maxsize: int = 10_000,
        overflow: Overflow = "drop_oldest",
        accept: Callable[[T], bool] | None = None,
    ) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.name = name
        self.maxsize = maxsize
        self.overflow = overflow
        self.dropped = 0
        self._accept = accept
        self._items: deque[T] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None
        self._on_close: Callable[[Feed[T]], None] | None = None

    def offer(self, item: T) -> None:
        """Hand an item to the subscriber without ever blocking the producer."""
        if self._closed or (self._accept is not None and not self._accept(item)):
            return
        if len(self._items) >= self.maxsize:
            self.dropped += 1
            if self.dropped == 1:
                _log.warning("%s: subscriber too slow, dropping (%s)", self.name, self.overflow)
            if self.overflow == "drop_newest":
                return
            self._items.popleft()
        self._items.append(item)
        self._wake()

    def close(self, error: BaseException | None = None) -> None:
        """End the iteration once the unread items are consumed; with `error`, the iteration
        then raises it instead of ending."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._wake()
        if self._on_close is not None:
            self._on_close(self)

    def __aiter__(self) -> Feed[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            if self._closed:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class FanOut(Generic[T]):
    """Publishes each item to every open feed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._feeds: list[Feed[T]] = []

    def feed(
        self,
        *,
        maxsize: int = 10_000,
        overflow: Overflow = "drop_oldest",
        accept: Callable[[T], bool] | None = None,
    ) -> Feed[T]:
        """A new subscriber feed."""
        feed: Feed[T] = Feed(self.name, maxsize=maxsize, overflow=overflow, accept=accept)
        feed._on_close = self._feeds.remove
        self._feeds.append(feed)
        return feed

    def publish(self, item: T) -> None:
        """Offer `item` to every feed."""
        for feed in self._feeds:
            feed.offer(item)

    def close(self, error: BaseException | None = None) -> None:
        """Close every feed (each raises `error` once drained, if given)."""
        for feed in list(self._feeds):
            feed.close(error)
