"""The executor loop: receive (pushed over the WebSocket, or HTTP long polls), run the handler,
ack on success, nack on failure.

``delivery`` is ``"push"`` (over the WebSocket: no function runs while the executor waits),
``"poll"`` (HTTP long polls) or ``"auto"`` (the default): push when the client has a ``ws_url``,
falling back to long polls when the socket cannot receive (refused, or unreachable)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Awaitable, Callable, Optional, Union

from .aio import AsyncClient
from .client import Client
from .receive import AsyncReceiver, Receiver
from .types import Delivery, QueueMessage

#: Long-poll wait per receive, seconds (the API's largest).
DEFAULT_WAIT = 20
#: Seconds before a failed message is delivered again.
DEFAULT_NACK_DELAY = 5
#: Pause after a failed receive, so a service that is down is not polled in a tight loop.
RECEIVE_FAILURE_PAUSE = 1.0
#: How often the sync push loop looks at ``stop`` while no delivery arrives, seconds.
STOP_CHECK_INTERVAL = 0.5

OnError = Callable[[BaseException, Optional[QueueMessage]], None]


def _ignore(_error: BaseException, _message: Optional[QueueMessage]) -> None:
    pass


def _push_failed(delivery: str, error: Exception, on_error: OnError) -> None:
    """Push could not receive: raised when push was asked for, else reported (long polls follow)."""
    if delivery == "push":
        raise error
    on_error(error, None)


def run_executor(
    client: Client,
    queue: str,
    handler: Callable[[QueueMessage], Any],
    stop: threading.Event,
    *,
    wait: float = DEFAULT_WAIT,
    max: int = 1,
    visibility_timeout: Optional[float] = None,
    nack_delay: float = DEFAULT_NACK_DELAY,
    on_error: OnError = _ignore,
    delivery: str = "auto",
) -> None:
    """Receives from ``queue`` until ``stop`` is set: each message to ``handler``, acked when it
    returns, nacked with ``nack_delay`` when it raises. By push, ``stop`` is seen within half a
    second; by long poll a receive in progress finishes first (at most ``wait`` seconds)."""
    if delivery == "push" or (delivery == "auto" and client.ws_url):
        try:
            receiver = client.receive(queue, max=max, visibility_timeout=visibility_timeout)
        except Exception as error:  # noqa: BLE001 - refused or unreachable: long polls instead
            _push_failed(delivery, error, on_error)
        else:
            try:
                with receiver:
                    _push_loop(receiver, handler, stop, nack_delay, on_error)
                return
            except Exception as error:  # noqa: BLE001 - the socket failed for good: long polls instead
                _push_failed(delivery, error, on_error)
    while not stop.is_set():
        try:
            messages = client.queue_receive(queue, max=max, visibility_timeout=visibility_timeout, wait=wait)
        except Exception as error:  # noqa: BLE001 - reported, and the loop goes on
            on_error(error, None)
            stop.wait(RECEIVE_FAILURE_PAUSE)
            continue
        for message in messages:
            try:
                handler(message)
            except Exception as error:  # noqa: BLE001
                on_error(error, message)
                try:
                    client.queue_nack(queue, message, delay=nack_delay)
                except Exception as nack_error:  # noqa: BLE001
                    on_error(nack_error, message)
                continue
            try:
                client.queue_ack(queue, message)
            except Exception as ack_error:  # noqa: BLE001
                on_error(ack_error, message)


def _push_loop(
    receiver: Receiver,
    handler: Callable[[QueueMessage], Any],
    stop: threading.Event,
    nack_delay: float,
    on_error: OnError,
) -> None:
    while not stop.is_set():
        try:
            message = receiver.next(timeout=STOP_CHECK_INTERVAL)
        except (TimeoutError, concurrent.futures.TimeoutError):
            continue
        except StopIteration:
            return
        _settle(receiver, message, handler, nack_delay, on_error)


def _settle(
    receiver: Receiver, message: Delivery, handler: Callable[[QueueMessage], Any], nack_delay: float, on_error: OnError
) -> None:
    try:
        handler(_message(message))
    except Exception as error:  # noqa: BLE001
        on_error(error, _message(message))
        try:
            receiver.nack(message, delay=nack_delay)
        except Exception as nack_error:  # noqa: BLE001
            on_error(nack_error, _message(message))
        return
    try:
        receiver.ack(message)
    except Exception as ack_error:  # noqa: BLE001
        on_error(ack_error, _message(message))


def _message(delivery: Union[Delivery, QueueMessage]) -> QueueMessage:
    """The delivery as the handler sees it: a QueueMessage, whichever way it came."""
    return {name: delivery[name] for name in ("id", "receipt", "payload", "attempts", "enqueuedAt")}  # type: ignore[return-value, literal-required]


async def run_executor_async(
    client: AsyncClient,
    queue: str,
    handler: Callable[[QueueMessage], Awaitable[Any]],
    stop: asyncio.Event,
    *,
    wait: float = DEFAULT_WAIT,
    max: int = 1,
    visibility_timeout: Optional[float] = None,
    nack_delay: float = DEFAULT_NACK_DELAY,
    on_error: OnError = _ignore,
    delivery: str = "auto",
) -> None:
    """The asyncio form: ``stop`` ends it at once (by push, unacknowledged deliveries are given
    back; by long poll, the poll in progress is abandoned and a message it leased returns after
    its visibility timeout)."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        if delivery == "push" or (delivery == "auto" and client.ws_url):
            try:
                receiver = await client.receive(queue, max=max, visibility_timeout=visibility_timeout)
            except Exception as error:  # noqa: BLE001 - refused or unreachable: long polls instead
                _push_failed(delivery, error, on_error)
            else:
                try:
                    await _push_loop_async(receiver, handler, stop, stopped, nack_delay, on_error)
                    return
                except Exception as error:  # noqa: BLE001 - the socket failed for good: long polls instead
                    _push_failed(delivery, error, on_error)
                finally:
                    await receiver.close()
        while not stop.is_set():
            receive = asyncio.ensure_future(
                client.queue_receive(queue, max=max, visibility_timeout=visibility_timeout, wait=wait)
            )
            await asyncio.wait({receive, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if stop.is_set():
                receive.cancel()
                return
            try:
                messages = receive.result()
            except Exception as error:  # noqa: BLE001
                on_error(error, None)
                await asyncio.sleep(RECEIVE_FAILURE_PAUSE)
                continue
            for message in messages:
                try:
                    await handler(message)
                except Exception as error:  # noqa: BLE001
                    on_error(error, message)
                    try:
                        await client.queue_nack(queue, message, delay=nack_delay)
                    except Exception as nack_error:  # noqa: BLE001
                        on_error(nack_error, message)
                    continue
                try:
                    await client.queue_ack(queue, message)
                except Exception as ack_error:  # noqa: BLE001
                    on_error(ack_error, message)
    finally:
        stopped.cancel()


async def _push_loop_async(
    receiver: AsyncReceiver,
    handler: Callable[[QueueMessage], Awaitable[Any]],
    stop: asyncio.Event,
    stopped: "asyncio.Future[Any]",
    nack_delay: float,
    on_error: OnError,
) -> None:
    while not stop.is_set():
        arriving = asyncio.ensure_future(receiver.__anext__())
        await asyncio.wait({arriving, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            arriving.cancel()
            return
        try:
            message = arriving.result()
        except StopAsyncIteration:
            return
        try:
            await handler(_message(message))
        except Exception as error:  # noqa: BLE001
            on_error(error, _message(message))
            try:
                await receiver.nack(message, delay=nack_delay)
            except Exception as nack_error:  # noqa: BLE001
                on_error(nack_error, _message(message))
            continue
        try:
            await receiver.ack(message)
        except Exception as ack_error:  # noqa: BLE001
            on_error(ack_error, _message(message))
