"""The sync form of an asyncio receiver or subscription: the asyncio object runs on a loop in a
thread of its own, and each call waits for its answer from that loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Awaitable, Callable, Generic, Optional, Tuple, TypeVar

Item = TypeVar("Item")


class Threaded(Generic[Item]):
    """``for item in wrapper``; ``next(timeout=…)``; ``close()`` (or ``with``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, thread: threading.Thread, inner: Any) -> None:
        self.loop = loop
        self._thread = thread
        self._inner = inner

    @staticmethod
    def _start(
        name: str, opening: Callable[[], Awaitable[Any]]
    ) -> Tuple[asyncio.AbstractEventLoop, threading.Thread, Any]:
        """A loop in a new thread, and the asyncio object ``opening`` returns, opened on it."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
        thread.start()
        try:
            inner = asyncio.run_coroutine_threadsafe(opening(), loop).result()  # type: ignore[arg-type]
        except BaseException:
            Threaded._stop(loop, thread)
            raise
        return loop, thread, inner

    @property
    def connections(self) -> int:
        return self._inner.connections

    def __iter__(self) -> "Threaded[Item]":
        return self

    def __next__(self) -> Item:
        return self.next()

    def next(self, timeout: Optional[float] = None) -> Item:
        """The next item; TimeoutError after ``timeout`` seconds, StopIteration once closed."""
        if self.loop.is_closed():
            raise StopIteration
        future = asyncio.run_coroutine_threadsafe(self._inner.__anext__(), self.loop)
        try:
            return future.result(timeout)
        except StopAsyncIteration:
            raise StopIteration from None
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def close(self) -> None:
        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._inner.close(), self.loop).result()
            self._stop(self.loop, self._thread)

    def __enter__(self) -> "Threaded[Item]":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    @staticmethod
    def _stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
