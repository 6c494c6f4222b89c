"""Each route of the API as a Call, shared by the sync and the asyncio client."""

from __future__ import annotations

import uuid
from typing import Any, Dict, List, Optional

from .transport import Call, segment


def _some(**fields: Any) -> Dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def kv_set(key: str, value: Any, ttl: Optional[float], nx: Optional[bool], xx: Optional[bool]) -> Call:
    return Call("PUT", f"/kv/{segment(key)}", {"value": value, **_some(ttl=ttl, nx=nx, xx=xx)})


def kv_get(key: str) -> Call:
    return Call("GET", f"/kv/{segment(key)}")


def kv_delete(key: str) -> Call:
    return Call("DELETE", f"/kv/{segment(key)}")


def kv_expire(key: str, ttl: Optional[float]) -> Call:
    return Call("POST", f"/kv/{segment(key)}/expire", {"ttl": ttl})


def kv_incr(key: str, by: Optional[int]) -> Call:
    return Call("POST", f"/kv/{segment(key)}/incr", _some(by=by))


def session_create(cluster_id: str, **fields: Any) -> Call:
    names = {"user_id": "userId", "correlation_id": "correlationId", "service_identity": "serviceIdentity"}
    body = {"clusterId": cluster_id, **_some(**{names.get(k, k): v for k, v in fields.items()})}
    return Call("POST", "/sessions", body)


def session_get(session_id: str) -> Call:
    return Call("GET", f"/sessions/{segment(session_id)}")


def session_keepalive(session_id: str, ttl: Optional[float]) -> Call:
    return Call("POST", f"/sessions/{segment(session_id)}/keepalive", _some(ttl=ttl))


def session_end(session_id: str) -> Call:
    return Call("DELETE", f"/sessions/{segment(session_id)}")


def sessions_find(cluster_id: Optional[str], correlation_id: Optional[str]) -> Call:
    return Call("GET", "/sessions", query=_some(clusterId=cluster_id, correlationId=correlation_id))


def clusters_active(limit: Optional[int], cursor: Optional[str]) -> Call:
    return Call("GET", "/clusters/active", query=_some(limit=limit, cursor=cursor))


def cluster_active(cluster_id: str) -> Call:
    return Call("GET", f"/clusters/{segment(cluster_id)}/active")


def queue_send(queue: str, payload: Any, delay: Optional[float], dedup_id: Optional[str]) -> Call:
    # A dedupId is generated when none is given, so a send retried after a 503 or 429 enqueues once.
    body = {"payload": payload, "dedupId": dedup_id or str(uuid.uuid4()), **_some(delay=delay)}
    return Call("POST", f"/queues/{segment(queue)}/messages", body)


def queue_receive(queue: str, max: Optional[int], visibility_timeout: Optional[float], wait: Optional[float]) -> Call:
    body = _some(max=max, visibilityTimeout=visibility_timeout, wait=wait)
    return Call("POST", f"/queues/{segment(queue)}/receive", body, wait=wait or 0)


def queue_ack(queue: str, message_id: str, receipt: str) -> Call:
    return Call("POST", f"/queues/{segment(queue)}/messages/{segment(message_id)}/ack", {"receipt": receipt})


def queue_nack(queue: str, message_id: str, receipt: str, delay: Optional[float]) -> Call:
    body = {"receipt": receipt, **_some(delay=delay)}
    return Call("POST", f"/queues/{segment(queue)}/messages/{segment(message_id)}/nack", body)


def queue_stats(queue: str) -> Call:
    return Call("GET", f"/queues/{segment(queue)}")


def publish(channel: str, message: Any) -> Call:
    return Call("POST", f"/channels/{segment(channel)}/messages", {"message": message})


def history(channel: str, after: Optional[str], limit: Optional[int]) -> Call:
    return Call("GET", f"/channels/{segment(channel)}/messages", query=_some(after=after, limit=limit))


def token_issue(identity: str, scopes: List[str], resources: Optional[List[str]], ttl: Optional[float]) -> Call:
    return Call("POST", "/tokens", {"identity": identity, "scopes": scopes, **_some(resources=resources, ttl=ttl)})


def token_revoke(token_id: str) -> Call:
    return Call("DELETE", f"/tokens/{segment(token_id)}")
