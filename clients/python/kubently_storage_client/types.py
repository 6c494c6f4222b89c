"""The API's JSON shapes (docs/api.md, openapi.yaml)."""

from __future__ import annotations

import sys
from typing import Any, Dict, List, Optional

if sys.version_info >= (3, 11):
    from typing import NotRequired, TypedDict
else:  # pragma: no cover
    from typing_extensions import NotRequired, TypedDict


class KvEntry(TypedDict):
    key: str
    value: Any
    expiresAt: Optional[str]


class KvSetResult(TypedDict):
    key: str
    expiresAt: Optional[str]


class Session(TypedDict):
    sessionId: str
    clusterId: str
    userId: Optional[str]
    correlationId: Optional[str]
    serviceIdentity: Optional[str]
    data: Dict[str, Any]
    createdAt: str
    lastActivity: str
    expiresAt: str


class QueueMessage(TypedDict):
    id: str
    receipt: str
    payload: Any
    attempts: int
    enqueuedAt: str


class Delivery(TypedDict):
    """A leased message pushed over the WebSocket: a QueueMessage plus its queue."""

    queue: str
    id: str
    receipt: str
    payload: Any
    attempts: int
    enqueuedAt: str


class QueueStats(TypedDict):
    queue: str
    depth: int
    inFlight: int
    dead: int


class ChannelEvent(TypedDict):
    id: str
    channel: str
    message: Any
    publishedAt: str


class Published(TypedDict):
    id: str
    publishedAt: str


class ActiveClusters(TypedDict):
    clusters: List[str]
    cursor: NotRequired[str]


class IssuedToken(TypedDict):
    id: str
    token: str
    identity: str
    scopes: List[str]
    resources: List[str]
    expiresAt: Optional[str]
