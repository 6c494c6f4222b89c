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
from ._reconnect import Connect, Reconnecting
from ._threaded import Threaded
from .errors import FrameError, StorageError
from .transport import Transport
from .types import ChannelEvent

#: History is read in pages of this size (the API's largest).
HISTORY_PAGE = 1000
#: Ids remembered to drop a frame relayed twice (a retried relay repeats within seconds).
SEEN_IDS = 10_000


class AsyncSubscription(Reconnecting[ChannelEvent]):
    """``sub = await client.subscribe("c")``; ``async for event in sub``; ``await sub.close()``."""

    _kind = "subscription"

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
        super().__init__(ws_url, connect, reconnect_delay, max_failures)
        self.channel = channel
        #: The id of the last event delivered (or ``after``).
        self.last_id = after
        self._transport = transport
        self._after = after
        # False until the position to follow from is known: ``after``, or the newest id at the first subscribe.
        self._started = after is not None
        self._seen: "OrderedDict[str, None]" = OrderedDict()

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
        await subscription._start()
        return subscription

    def _deliver(self, event: ChannelEvent) -> None:
        if event["id"] in self._seen or (self._after is not None and event["id"] <= self._after):
            return
        self._seen[event["id"]] = None
        if len(self._seen) > SEEN_IDS:
            self._seen.popitem(last=False)
        if self.last_id is None or event["id"] > self.last_id:
            self.last_id = event["id"]
        self._items.put_nowait((event, None))

    def _retryable(self, error: Exception) -> bool:
        return super()._retryable(error) or (isinstance(error, StorageError) and error.status in (429, 503))

    def _failing(self) -> str:
        return f"could not subscribe to {self.channel}"

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
        socket = await self._open_socket(self._transport.token)
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
