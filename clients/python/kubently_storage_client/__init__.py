"""Client for Kubently Storage's HTTP and WebSocket API (docs/api.md, docs/clients.md)."""

from .aio import AsyncClient
from .client import Client
from .errors import ConnectionClosedError, FrameError, StorageError
from .executor import run_executor, run_executor_async
from .receive import AsyncReceiver, Receiver
from .retry import RETRYABLE_STATUSES, RetryPolicy
from .subscribe import AsyncSubscription, Subscription
from .types import (
    ChannelEvent,
    Delivery,
    IssuedToken,
    KvEntry,
    KvSetResult,
    Published,
    QueueMessage,
    QueueStats,
    Session,
)

__all__ = [
    "AsyncClient",
    "AsyncReceiver",
    "AsyncSubscription",
    "ChannelEvent",
    "Client",
    "ConnectionClosedError",
    "Delivery",
    "FrameError",
    "IssuedToken",
    "KvEntry",
    "KvSetResult",
    "Published",
    "QueueMessage",
    "QueueStats",
    "RETRYABLE_STATUSES",
    "Receiver",
    "RetryPolicy",
    "Session",
    "StorageError",
    "Subscription",
    "run_executor",
    "run_executor_async",
]
