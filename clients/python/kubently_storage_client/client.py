"""The sync client: one method per route, and ``subscribe`` over the WebSocket."""

from __future__ import annotations

from typing import Any, List, Optional

from . import routes
from .retry import RetryPolicy
from .receive import Receiver
from .subscribe import Subscription
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


class Client:
    """``Client("http://localhost:3000", token, ws_url="ws://localhost:3001")``."""

    def __init__(
        self, base_url: str, token: str, *, ws_url: Optional[str] = None, retry: Optional[RetryPolicy] = None
    ) -> None:
        self.transport = Transport(base_url, token, retry)
        self.ws_url = ws_url

    def _run(self, call: routes.Call) -> Any:
        return self.transport.request(call)

    # kv
    def kv_set(
        self, key: str, value: Any, *, ttl: Optional[float] = None, nx: Optional[bool] = None, xx: Optional[bool] = None
    ) -> KvSetResult:
        return self._run(routes.kv_set(key, value, ttl, nx, xx))

    def kv_get(self, key: str) -> KvEntry:
        return self._run(routes.kv_get(key))

    def kv_delete(self, key: str) -> None:
        self._run(routes.kv_delete(key))

    def kv_expire(self, key: str, ttl: Optional[float]) -> KvSetResult:
        """``ttl=None`` persists the key."""
        return self._run(routes.kv_expire(key, ttl))

    def kv_incr(self, key: str, by: Optional[int] = None) -> int:
        return self._run(routes.kv_incr(key, by))["value"]

    # sessions
    def session_create(self, cluster_id: str, **fields: Any) -> Session:
        """Fields: user_id, correlation_id, service_identity, data, ttl."""
        return self._run(routes.session_create(cluster_id, **fields))

    def session_get(self, session_id: str) -> Session:
        return self._run(routes.session_get(session_id))

    def session_keepalive(self, session_id: str, ttl: Optional[float] = None) -> Session:
        return self._run(routes.session_keepalive(session_id, ttl))

    def session_end(self, session_id: str) -> None:
        self._run(routes.session_end(session_id))

    def sessions_find(self, *, cluster_id: Optional[str] = None, correlation_id: Optional[str] = None) -> List[Session]:
        return self._run(routes.sessions_find(cluster_id, correlation_id))["sessions"]

    def clusters_active(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> ActiveClusters:
        return self._run(routes.clusters_active(limit, cursor))

    def cluster_active(self, cluster_id: str) -> bool:
        return self._run(routes.cluster_active(cluster_id))["active"]

    # queues
    def queue_send(
        self, queue: str, payload: Any, *, delay: Optional[float] = None, dedup_id: Optional[str] = None
    ) -> str:
        """Enqueues ``payload``; returns its id. A generated dedupId makes retries safe."""
        return self._run(routes.queue_send(queue, payload, delay, dedup_id))["id"]

    def queue_receive(
        self,
        queue: str,
        *,
        max: Optional[int] = None,
        visibility_timeout: Optional[float] = None,
        wait: Optional[float] = None,
    ) -> List[QueueMessage]:
        """Leases up to ``max`` messages; with ``wait`` (seconds) waits for one to arrive."""
        return self._run(routes.queue_receive(queue, max, visibility_timeout, wait))["messages"]

    def queue_ack(self, queue: str, message: QueueMessage) -> None:
        self._run(routes.queue_ack(queue, message["id"], message["receipt"]))

    def queue_nack(self, queue: str, message: QueueMessage, *, delay: Optional[float] = None) -> None:
        self._run(routes.queue_nack(queue, message["id"], message["receipt"], delay))

    def queue_stats(self, queue: str) -> QueueStats:
        return self._run(routes.queue_stats(queue))

    # events
    def publish(self, channel: str, message: Any) -> Published:
        return self._run(routes.publish(channel, message))

    def history(self, channel: str, *, after: Optional[str] = None, limit: Optional[int] = None) -> List[ChannelEvent]:
        return self._run(routes.history(channel, after, limit))["messages"]

    def subscribe(self, channel: str, *, after: Optional[str] = None, **options: Any) -> "Subscription":
        """Follows ``channel``: returns once subscribed; iterate it for events, ``close()`` it when done."""
        return Subscription.open(self, channel, after=after, **options)

    def receive(
        self, queue: str, *, max: Optional[int] = None, visibility_timeout: Optional[float] = None, **options: Any
    ) -> "Receiver":
        """Leased messages of ``queue`` pushed over the WebSocket: returns once receiving; iterate it,
        ``receiver.ack(delivery)`` (or ``nack``, ``extend``), ``close()`` it when done."""
        return Receiver.open(self, queue, max=max, visibility_timeout=visibility_timeout, **options)

    # tokens
    def token_issue(
        self,
        identity: str,
        scopes: List[str],
        *,
        resources: Optional[List[str]] = None,
        ttl: Optional[float] = None,
    ) -> IssuedToken:
        return self._run(routes.token_issue(identity, scopes, resources, ttl))

    def token_revoke(self, token_id: str) -> None:
        self._run(routes.token_revoke(token_id))
