"""A channel followed over the WebSocket, with reconnect and resume: asyncio, and a sync wrapper.

Per connection: subscribe, and once ``subscribed`` arrives read history after the last id seen
(frames arriving meanwhile wait in the socket), so nothing published while disconnected is
missed; ids already delivered are dropped, so nothing comes twice. A dropped connection is
reopened with back-off.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Any, Optional, Tuple

from . import routes
from ._reconnect import TRANSIENT, Connect, _default_connect, open_socket, reconnect
from ._threaded import Threaded
from .errors import FrameError, StorageError
from .transport import Transport
from .types import ChannelEvent

#: History is read in pages of this size (the API's largest).
HISTORY_PAGE = 1000
#: Ids remembered to drop a frame relayed twice (a retried relay repeats within seconds).
SEEN_IDS = 10_000


class AsyncSubscription:
    """``sub = await client.subscribe("c")``; ``async for event in sub``; ``await sub.close()``."""

    def __init__(
        self,
        transport: Transport,
        ws_url: str,
        channel: str,
        after: Optional[str],
        connect: Optional[Connect],
        reconnect_delay: Tuple[float, float],
        max_failures: int,
    ) -> None:
        self.channel = channel
        #: The id of the last event delivered (or ``after``).
        self.last_id = after
        #: Connections opened so far.
        self.connections = 0
        self._transport = transport
        self._ws_url = ws_url
        self._after = after
        self._connect = connect or _default_connect
        self._reconnect_delay = reconnect_delay
        self._max_failures = max_failures
        # False until the position to follow from is known: ``after``, or the newest id at the first subscribe.
        self._started = after is not None
        self._seen: "OrderedDict[str, None]" = OrderedDict()
        self._events: "asyncio.Queue[Tuple[Optional[ChannelEvent], Optional[BaseException]]]" = asyncio.Queue()
        self._ready: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self._task: Optional["asyncio.Task[None]"] = None
        self._closed = False

    @classmethod
    async def open(
        cls,
        client: Any,
        channel: str,
        *,
        after: Optional[str] = None,
        connect: Optional[Connect] = None,
        reconnect_delay: Tuple[float, float] = (0.25, 10.0),
        max_failures: int = 10,
    ) -> "AsyncSubscription":
        """Returns once subscribed with its position known: everything published after that is delivered."""
        if not client.ws_url:
            raise ValueError("subscribe needs the client's ws_url")
        subscription = cls(client.transport, client.ws_url, channel, after, connect, reconnect_delay, max_failures)
        subscription._task = asyncio.create_task(subscription._run())
        try:
            await subscription._ready
        except BaseException:
            await subscription.close()
            raise
        return subscription

    def __aiter__(self) -> "AsyncSubscription":
        return self

    async def __anext__(self) -> ChannelEvent:
        event, error = await self._events.get()
        if event is not None:
            return event
        self._events.put_nowait((None, error))  # every later call ends the same way
        if error is not None:
            raise error
        raise StopAsyncIteration

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._end(None)

    def _end(self, error: Optional[BaseException]) -> None:
        if not self._ready.done():
            self._ready.set_exception(error or RuntimeError("subscription closed"))
        self._events.put_nowait((None, error))

    def _deliver(self, event: ChannelEvent) -> None:
        if event["id"] in self._seen or (self._after is not None and event["id"] <= self._after):
            return
        self._seen[event["id"]] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        if self.last_id is None or event["id"] > self.last_id:
            self.last_id = event["id"]
        self._events.put_nowait((event, None))

    async def _run(self) -> None:
        try:
            await reconnect(
                self._connection,
                reconnect_delay=self._reconnect_delay,
                max_failures=self._max_failures,
                retryable=lambda error: isinstance(error, TRANSIENT)
                or (isinstance(error, StorageError) and error.status in (429, 503)),
                failing=f"could not subscribe to {self.channel}",
            )
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - handed to the reader
            self._closed = True
            self._end(error)

    async def _catch_up(self) -> None:
        """Reads history after the last id: delivered once started; before that only read to
        find the newest id, so a reconnect knows where to resume from."""
        while True:
            page = await self._transport.request_async(routes.history(self.channel, self.last_id, HISTORY_PAGE))
            events = page["messages"]
            if self._started:
                for event in events:
                    self._deliver(event)
            elif events:
                self.last_id = events[-1]["id"]
            if len(events) < HISTORY_PAGE:
                break
        self._started = True
        if not self._ready.done():
            self._ready.set_result(None)

    async def _connection(self) -> bool:
        """One connection, until it closes; True when it got as far as ``subscribed``."""
        socket = await open_socket(self._connect, self._ws_url, self._transport.token)
        self.connections += 1
        subscribed = False
        try:
            await socket.send(json.dumps({"action": "subscribe", "channel": self.channel}))
            async for raw in socket:
                try:
                    frame = json.loads(raw)
                except ValueError:
                    continue
                kind = frame.get("type")
                if kind == "subscribed" and frame.get("channel") == self.channel:
                    subscribed = True
                    await self._catch_up()
                elif kind == "message" and frame.get("channel") == self.channel:
                    self._deliver({name: frame[name] for name in ("id", "channel", "message", "publishedAt")})
                elif kind == "error":
                    if not subscribed:
                        raise FrameError(frame.get("code", ""), frame.get("message", ""))
                    if frame.get("code") == "payload_too_large":
                        await self._catch_up()  # an event too large for a frame: read it from history
        finally:
            await socket.close()
        return subscribed


class Subscription(Threaded[ChannelEvent]):
    """The sync form: the asyncio subscription runs on a loop in its own thread.

    ``for event in client.subscribe("c")``; ``next(timeout=…)``; ``close()`` (or ``with``).
    """

    _inner: AsyncSubscription

    @classmethod
    def open(cls, client: Any, channel: str, **options: Any) -> "Subscription":
        return cls(*cls._start(f"subscribe {channel}", lambda: AsyncSubscription.open(client, channel, **options)))

    @property
    def last_id(self) -> Optional[str]:
        return self._inner.last_id
