"""Client for Kubently Storage's HTTP and WebSocket API (docs/api.md, docs/clients.md)."""

from .aio import AsyncClient
from .client import Client
from .errors import FrameError, StorageError
from .executor import run_executor, run_executor_async
from .retry import RETRYABLE_STATUSES, RetryPolicy
from .subscribe import AsyncSubscription, Subscription
from .types import (
    ChannelEvent,
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
    "AsyncSubscription",
    "ChannelEvent",
    "Client",
    "FrameError",
    "IssuedToken",
    "KvEntry",
    "KvSetResult",
    "Published",
    "QueueMessage",
    "QueueStats",
    "RETRYABLE_STATUSES",
    "RetryPolicy",
    "Session",
    "StorageError",
    "Subscription",
    "run_executor",
    "run_executor_async",
]
