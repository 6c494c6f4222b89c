"""Queue push delivery over the WebSocket (docs/api.md, Queue push delivery): asyncio, and a sync wrapper.

Per connection: send ``receive``, wait for ``receiving``, then take deliveries; at most ``max``
are unacknowledged at a time (the server holds the rest back). ``ack``, ``nack`` and ``extend``
go over the same socket and return once answered. A dropped connection is reopened with
back-off and ``receive`` sent again. The server gives back what a closed connection held, so
deliveries received but not yet handed on are dropped then (they come again), and an ack in
flight raises ``ConnectionClosedError``. ``close()`` sends ``stop``, which gives back what is
unacknowledged.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Dict, List, Optional, Tuple

import websockets
import websockets.exceptions

from ._reconnect import Connect, Reconnecting
from ._threaded import Threaded
from .errors import ConnectionClosedError, FrameError
from .types import Delivery

#: A ``ping`` this often keeps an idle connection open (API Gateway closes one after 10 minutes idle).
PING_INTERVAL = 300.0

_REPLY = {"ack": "acked", "nack": "nacked", "extend": "extended"}
_DELIVERY_FIELDS = ("queue", "id", "receipt", "payload", "attempts", "enqueuedAt")


class AsyncReceiver(Reconnecting[Delivery]):
    """``receiver = await client.receive("jobs")``; ``async for delivery in receiver``;
    ``await receiver.ack(delivery)``; ``await receiver.close()``."""

    _kind = "receiver"

    def __init__(
        self,
        token: str,
        ws_url: str,
        queue: str,
        receive: Dict[str, Any],
        connect: Optional[Connect],
        reconnect_delay: Tuple[float, float],
        max_failures: int,
        ping_interval: float = PING_INTERVAL,
    ) -> None:
        super().__init__(ws_url, connect, reconnect_delay, max_failures)
        self._token = token
        self.queue = queue
        self._ping_interval = ping_interval
        self._receive = receive
        self._pending: List[Tuple[str, str, "asyncio.Future[None]"]] = []
        self._live: Any = None  # the socket once ``receiving`` arrived on it

    @classmethod
    async def open(
        cls,
        client: Any,
        queue: str,
        *,
        max: Optional[int] = None,
        visibility_timeout: Optional[float] = None,
        connect: Optional[Connect] = None,
        reconnect_delay: Tuple[float, float] = (0.25, 10.0),
        max_failures: int = 10,
        ping_interval: float = PING_INTERVAL,
    ) -> "AsyncReceiver":
        """Returns once ``receiving`` arrived; raises the error frame if the receive is refused."""
        if not client.ws_url:
            raise ValueError("receive needs the client's ws_url")
        receive: Dict[str, Any] = {"action": "receive", "queue": queue}
        if max is not None:
            receive["max"] = max
        if visibility_timeout is not None:
            receive["visibilityTimeout"] = visibility_timeout
        receiver = cls(
            client.transport.token, client.ws_url, queue, receive, connect, reconnect_delay, max_failures, ping_interval
        )
        await receiver._start()
        return receiver

    async def ack(self, delivery: Delivery) -> None:
        """The message is done; returns on ``acked``."""
        await self._settle("ack", delivery, {})

    async def nack(self, delivery: Delivery, *, delay: Optional[float] = None) -> None:
        """Gives the message back, delivered again after ``delay`` seconds; returns on ``nacked``."""
        await self._settle("nack", delivery, {} if delay is None else {"delay": delay})

    async def extend(self, delivery: Delivery, visibility_timeout: float) -> None:
        """Extends the lease to ``visibility_timeout`` seconds from now; returns on ``extended``."""
        await self._settle("extend", delivery, {"visibilityTimeout": visibility_timeout})

    async def _closing(self) -> None:
        """``stop`` gives back what is unacknowledged."""
        socket = self._live
        if socket is not None:
            try:
                await socket.send(json.dumps({"action": "stop", "queue": self.queue}))
            except websockets.exceptions.WebSocketException:
                pass

    async def _settle(self, action: str, delivery: Delivery, extra: Dict[str, Any]) -> None:
        socket = self._live
        if socket is None:
            raise ConnectionClosedError(f"{action} {delivery['id']}: not connected (the lease was given back)")
        answered: "asyncio.Future[None]" = asyncio.get_running_loop().create_future()
        self._pending.append((_REPLY[action], delivery["id"], answered))
        frame = {"action": action, "queue": self.queue, "id": delivery["id"], "receipt": delivery["receipt"], **extra}
        await socket.send(json.dumps(frame))
        await answered

    def _failing(self) -> str:
        return f"could not receive from {self.queue}"

    def _answer(self, frame: Dict[str, Any]) -> None:
        kind = frame.get("type")
        for at, (reply, message_id, answered) in enumerate(self._pending):
            if reply == kind and message_id == frame.get("id"):
                del self._pending[at]
                if not answered.done():
                    answered.set_result(None)
                return

    def _refuse(self, error: FrameError, message_id: Optional[str]) -> None:
        """An error frame answers the request it names by id (answers may arrive in any order).

        One without an id (from a server that does not say) is taken to answer the oldest request.
        """
        if not self._pending:
            return
        if message_id is None:
            at = 0
        else:
            found = [i for i, pending in enumerate(self._pending) if pending[1] == message_id]
            if not found:
                return
            at = found[0]
        _reply, _id, answered = self._pending.pop(at)
        if not answered.done():
            answered.set_exception(error)

    async def _ping(self, socket: Any) -> None:
        try:
            while True:
                await asyncio.sleep(self._ping_interval)
                await socket.send(json.dumps({"action": "ping"}))
        except websockets.exceptions.WebSocketException:
            pass

    async def _connection(self) -> bool:
        """One connection, until it closes; True when it got as far as ``receiving``."""
        socket = await self._open_socket(self._token)
        receiving = False
        pinger: Optional["asyncio.Task[None]"] = None
        try:
            await socket.send(json.dumps(self._receive))
            async for raw in socket:
                try:
                    frame = json.loads(raw)
                except ValueError:
                    continue
                if not isinstance(frame, dict) or frame.get("queue", self.queue) != self.queue:
                    continue
                kind = frame.get("type")
                if kind == "receiving":
                    receiving = True
                    self._live = socket
                    if pinger is None:
                        pinger = asyncio.ensure_future(self._ping(socket))
                    if not self._ready.done():
                        self._ready.set_result(None)
                elif kind == "delivery":
                    delivery: Delivery = {name: frame[name] for name in _DELIVERY_FIELDS}  # type: ignore[assignment]
                    self._items.put_nowait((delivery, None))
                elif kind in ("acked", "nacked", "extended"):
                    self._answer(frame)
                elif kind == "error":
                    error = FrameError(frame.get("code", ""), frame.get("message", ""))
                    if not receiving:
                        raise error  # the receive itself was refused: nothing to retry
                    self._refuse(error, frame.get("id"))
        finally:
            if pinger is not None:
                pinger.cancel()
            self._live = None
            await socket.close()
            # The server gave back this connection's leases: what was not handed on comes again.
            while not self._items.empty():
                self._items.get_nowait()
            for reply, message_id, answered in self._pending:
                if not answered.done():
                    answered.set_exception(ConnectionClosedError(f"connection closed before {reply} {message_id}"))
            self._pending.clear()
        return receiving


class Receiver(Threaded[Delivery]):
    """The sync form: the asyncio receiver runs on a loop in its own thread.

    ``for delivery in client.receive("jobs")``; ``next(timeout=…)``; ``ack``/``nack``/``extend``;
    ``close()`` (or ``with``).
    """

    _inner: AsyncReceiver

    @classmethod
    def open(cls, client: Any, queue: str, **options: Any) -> "Receiver":
        return cls(*cls._start(f"receive {queue}", lambda: AsyncReceiver.open(client, queue, **options)))

    def ack(self, delivery: Delivery) -> None:
        self._call(self._inner.ack(delivery))

    def nack(self, delivery: Delivery, *, delay: Optional[float] = None) -> None:
        self._call(self._inner.nack(delivery, delay=delay))

    def extend(self, delivery: Delivery, visibility_timeout: float) -> None:
        self._call(self._inner.extend(delivery, visibility_timeout))

    def _call(self, coroutine: Any) -> None:
        if self.loop.is_closed():
            coroutine.close()
            raise ConnectionClosedError("receiver closed")
        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()
