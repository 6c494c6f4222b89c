"""What the asyncio receiver and subscription share: a reconnect loop (back-off with jitter
between connections, a limit on failures in a row) feeding a queue that ``async for`` reads."""

from __future__ import annotations

import asyncio
import random
import urllib.parse
from typing import Any, Awaitable, Callable, Generic, Optional, Tuple, TypeVar

import websockets
import websockets.exceptions

#: Opens a socket: ``websockets.connect`` by default; anything with ``send``, ``close`` and ``async for``.
Connect = Callable[[str], Awaitable[Any]]

#: Raised by a connection that may succeed when tried again.
TRANSIENT = (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException)

Item = TypeVar("Item")


async def _default_connect(url: str) -> Any:
    return await websockets.connect(url)


class Reconnecting(Generic[Item]):
    """Opens one connection after another (``_connection``, until its socket closes) from
    ``_start`` until ``close()``. A connection that fails with a ``_retryable`` error, or does
    not get as far as it needs to, is retried after a jittered, doubling delay;
    ``max_failures`` of those in a row, or any other error, end the stream with that error."""

    #: What this is, in the error a closed one ends ``ready`` with: ``receiver closed``.
    _kind = "stream"

    def __init__(
        self, ws_url: str, connect: Optional[Connect], reconnect_delay: Tuple[float, float], max_failures: int
    ) -> None:
        #: Connections opened so far.
        self.connections = 0
        self._ws_url = ws_url
        self._connect = connect or _default_connect
        self._reconnect_delay = reconnect_delay
        self._max_failures = max_failures
        self._items: "asyncio.Queue[Tuple[Optional[Item], Optional[BaseException]]]" = asyncio.Queue()
        self._ready: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self._task: Optional["asyncio.Task[None]"] = None
        self._closed = False

    async def _connection(self) -> bool:
        """One connection, until it closes; True when it got as far as it needed to."""
        raise NotImplementedError

    def _retryable(self, error: Exception) -> bool:
        return isinstance(error, TRANSIENT)

    def _failing(self) -> str:
        """What could not be done, for the give-up error: ``could not subscribe to c``."""
        raise NotImplementedError

    async def _closing(self) -> None:
        """Called once by ``close()`` before the connection is cancelled."""

    async def _start(self) -> None:
        """Starts the reconnect loop; returns once ``_ready`` is set, else closes and raises."""
        self._task = asyncio.create_task(self._run())
        try:
            await self._ready
        except BaseException:
            await self.close()
            raise

    async def _open_socket(self, token: str) -> Any:
        """A socket to the API, the token in the query."""
        separator = "&" if "?" in self._ws_url else "?"
        socket = await self._connect(f"{self._ws_url}{separator}token={urllib.parse.quote(token, safe='')}")
        self.connections += 1
        return socket

    def __aiter__(self) -> "Reconnecting[Item]":
        return self

    async def __anext__(self) -> Item:
        item, error = await self._items.get()
        if item is not None:
            return item
        self._items.put_nowait((None, error))  # every later call ends the same way
        if error is not None:
            raise error
        raise StopAsyncIteration

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._closing()
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._end(None)

    def _end(self, error: Optional[BaseException]) -> None:
        if not self._ready.done():
            self._ready.set_exception(error or RuntimeError(f"{self._kind} closed"))
        self._items.put_nowait((None, error))

    async def _run(self) -> None:
        first, largest = self._reconnect_delay
        failures = 0
        try:
            while True:
                succeeded = False
                try:
                    succeeded = await self._connection()
                except Exception as error:  # noqa: BLE001 - retried or raised, as _retryable says
                    if not self._retryable(error):
                        raise
                failures = 0 if succeeded else failures + 1
                if failures >= self._max_failures:
                    raise ConnectionError(f"{self._failing()}: {failures} connections failed")
                ceiling = min(largest, first * 2**failures)
                await asyncio.sleep(random.uniform(ceiling / 2, ceiling))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - handed to the reader
            self._closed = True
            self._end(error)
