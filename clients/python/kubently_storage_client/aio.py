"""The asyncio client: the same methods as Client, as coroutines."""

from __future__ import annotations

from typing import Any, List, Optional

from . import routes
from .retry import RetryPolicy
from .receive import AsyncReceiver
from .subscribe import AsyncSubscription
from .transport import Transport
from .types import (
    ActiveClusters,
    ChannelEvent,
    IssuedToken,
    KvEntry,
    KvSetResult,
    Published,
    QueueMessage,
    QueueStats,
    Session,
)


class AsyncClient:
    """``AsyncClient("http://localhost:3000", token, ws_url="ws://localhost:3001")``."""

    def __init__(
        self, base_url: str, token: str, *, ws_url: Optional[str] = None, retry: Optional[RetryPolicy] = None
    ) -> None:
        self.transport = Transport(base_url, token, retry)
        self.ws_url = ws_url

    async def _run(self, call: routes.Call) -> Any:
        return await self.transport.request_async(call)

    # kv
    async def kv_set(
        self, key: str, value: Any, *, ttl: Optional[float] = None, nx: Optional[bool] = None, xx: Optional[bool] = None
    ) -> KvSetResult:
        return await self._run(routes.kv_set(key, value, ttl, nx, xx))

    async def kv_get(self, key: str) -> KvEntry:
        return await self._run(routes.kv_get(key))

    async def kv_delete(self, key: str) -> None:
        await self._run(routes.kv_delete(key))

    async def kv_expire(self, key: str, ttl: Optional[float]) -> KvSetResult:
        """``ttl=None`` persists the key."""
        return await self._run(routes.kv_expire(key, ttl))

    async def kv_incr(self, key: str, by: Optional[int] = None) -> int:
        return (await self._run(routes.kv_incr(key, by)))["value"]

    # sessions
    async def session_create(self, cluster_id: str, **fields: Any) -> Session:
        """Fields: user_id, correlation_id, service_identity, data, ttl."""
        return await self._run(routes.session_create(cluster_id, **fields))

    async def session_get(self, session_id: str) -> Session:
        return await self._run(routes.session_get(session_id))

    async def session_keepalive(self, session_id: str, ttl: Optional[float] = None) -> Session:
        return await self._run(routes.session_keepalive(session_id, ttl))

    async def session_end(self, session_id: str) -> None:
        await self._run(routes.session_end(session_id))

    async def sessions_find(self, *, cluster_id: Optional[str] = None, correlation_id: Optional[str] = None) -> List[Session]:
        return (await self._run(routes.sessions_find(cluster_id, correlation_id)))["sessions"]

    async def clusters_active(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> ActiveClusters:
        return await self._run(routes.clusters_active(limit, cursor))

    async def cluster_active(self, cluster_id: str) -> bool:
        return (await self._run(routes.cluster_active(cluster_id)))["active"]

    # queues
    async def queue_send(
        self, queue: str, payload: Any, *, delay: Optional[float] = None, dedup_id: Optional[str] = None
    ) -> str:
        """Enqueues ``payload``; returns its id. A generated dedupId makes retries safe."""
        return (await self._run(routes.queue_send(queue, payload, delay, dedup_id)))["id"]

    async def queue_receive(
        self,
        queue: str,
        *,
        max: Optional[int] = None,
        visibility_timeout: Optional[float] = None,
        wait: Optional[float] = None,
    ) -> List[QueueMessage]:
        """Leases up to ``max`` messages; with ``wait`` (seconds) waits for one to arrive."""
        return (await self._run(routes.queue_receive(queue, max, visibility_timeout, wait)))["messages"]

    async def queue_ack(self, queue: str, message: QueueMessage) -> None:
        await self._run(routes.queue_ack(queue, message["id"], message["receipt"]))

    async def queue_nack(self, queue: str, message: QueueMessage, *, delay: Optional[float] = None) -> None:
        await self._run(routes.queue_nack(queue, message["id"], message["receipt"], delay))

    async def queue_stats(self, queue: str) -> QueueStats:
        return await self._run(routes.queue_stats(queue))

    # events
    async def publish(self, channel: str, message: Any) -> Published:
        return await self._run(routes.publish(channel, message))

    async def history(self, channel: str, *, after: Optional[str] = None, limit: Optional[int] = None) -> List[ChannelEvent]:
        return (await self._run(routes.history(channel, after, limit)))["messages"]

    async def subscribe(self, channel: str, *, after: Optional[str] = None, **options: Any) -> "AsyncSubscription":
        """Follows ``channel``: returns once subscribed; ``async for`` it for events, ``await close()`` it when done."""
        return await AsyncSubscription.open(self, channel, after=after, **options)

    async def receive(
        self, queue: str, *, max: Optional[int] = None, visibility_timeout: Optional[float] = None, **options: Any
    ) -> "AsyncReceiver":
        """Leased messages of ``queue`` pushed over the WebSocket: returns once receiving; ``async for``
        it, ``await receiver.ack(delivery)`` (or ``nack``, ``extend``), ``await close()`` it when done."""
        return await AsyncReceiver.open(self, queue, max=max, visibility_timeout=visibility_timeout, **options)

    # tokens
    async def token_issue(
        self,
        identity: str,
        scopes: List[str],
        *,
        resources: Optional[List[str]] = None,
        ttl: Optional[float] = None,
    ) -> IssuedToken:
        return await self._run(routes.token_issue(identity, scopes, resources, ttl))

    async def token_revoke(self, token_id: str) -> None:
        await self._run(routes.token_revoke(token_id))
