"""The reconnect loop the receiver and the subscription share: back-off with jitter between
connections, and a limit on failures in a row."""

from __future__ import annotations

import asyncio
import random
import urllib.parse
from typing import Any, Awaitable, Callable, Tuple

import websockets
import websockets.exceptions

#: Opens a socket: ``websockets.connect`` by default; anything with ``send``, ``close`` and ``async for``.
Connect = Callable[[str], Awaitable[Any]]

#: Raised by a connection that may succeed when tried again.
TRANSIENT = (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException)


async def _default_connect(url: str) -> Any:
    return await websockets.connect(url)


async def open_socket(connect: Connect, ws_url: str, token: str) -> Any:
    """A socket to the API, the token in the query."""
    separator = "&" if "?" in ws_url else "?"
    return await connect(f"{ws_url}{separator}token={urllib.parse.quote(token, safe='')}")


async def reconnect(
    connection: Callable[[], Awaitable[bool]],
    *,
    reconnect_delay: Tuple[float, float],
    max_failures: int,
    retryable: Callable[[Exception], bool],
    failing: str,
) -> None:
    """Runs ``connection`` (one socket, until it closes; True when it got as far as it needed to)
    until cancelled, sleeping a jittered, doubling delay between attempts. An error that is not
    ``retryable`` is raised; ``max_failures`` failures in a row raise ConnectionError
    (``failing``: what could not be done, such as ``could not subscribe to c``)."""
    first, largest = reconnect_delay
    failures = 0
    while True:
        succeeded = False
        try:
            succeeded = await connection()
        except Exception as error:  # noqa: BLE001 - retried or raised, as retryable says
            if not retryable(error):
                raise
        failures = 0 if succeeded else failures + 1
        if failures >= max_failures:
            raise ConnectionError(f"{failing}: {failures} connections failed")
        ceiling = min(largest, first * 2**failures)
        await asyncio.sleep(random.uniform(ceiling / 2, ceiling))
