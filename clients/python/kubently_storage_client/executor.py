"""The executor loop: long-poll receive, run the handler, ack on success, nack on failure."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable, Callable, Optional

from .aio import AsyncClient
from .client import Client
from .types import QueueMessage

#: Long-poll wait per receive, seconds (the API's largest).
DEFAULT_WAIT = 20
#: Seconds before a failed message is delivered again.
DEFAULT_NACK_DELAY = 5
#: Pause after a failed receive, so a service that is down is not polled in a tight loop.
RECEIVE_FAILURE_PAUSE = 1.0

OnError = Callable[[BaseException, Optional[QueueMessage]], None]


def _ignore(_error: BaseException, _message: Optional[QueueMessage]) -> None:
    pass


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
) -> None:
    """Receives from ``queue`` until ``stop`` is set: each message to ``handler``, acked when it
    returns, nacked with ``nack_delay`` when it raises. A receive in progress finishes first
    (at most ``wait`` seconds): a smaller ``wait`` stops sooner."""
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
) -> None:
    """The asyncio form: ``stop`` ends it at once, abandoning the long poll in progress (a
    message it leased returns after its visibility timeout)."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
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
