"""The Python client against the service as ``npm start`` serves it (sync and asyncio)."""

import asyncio
import threading
from typing import Any, List

import pytest
import websockets

from kubently_storage_client import (
    AsyncClient,
    Client,
    FrameError,
    StorageError,
    run_executor,
    run_executor_async,
)

#: Ceiling for an event to arrive on a shared, noisy machine; never an expectation.
EVENT_TIMEOUT = 30


def sync_client(service: Any) -> Client:
    return Client(service.url, service.token, ws_url=service.ws_url)


def async_client(service: Any) -> AsyncClient:
    return AsyncClient(service.url, service.token, ws_url=service.ws_url)


def test_kv_round_trip(service: Any, name: str) -> None:
    client = sync_client(service)
    assert client.kv_set(f"{name}/a", {"n": 1}) == {"key": f"{name}/a", "expiresAt": None}
    assert client.kv_get(f"{name}/a")["value"] == {"n": 1}
    assert client.kv_expire(f"{name}/a", 60)["expiresAt"] is not None
    client.kv_delete(f"{name}/a")
    assert client.kv_incr(f"{name}-n", 5) == 5


def test_async_kv_round_trip(service: Any, name: str) -> None:
    async def run() -> None:
        client = async_client(service)
        await client.kv_set(name, [1, 2])
        assert (await client.kv_get(name))["value"] == [1, 2]
        await client.kv_delete(name)
        assert await client.kv_incr(f"{name}-n") == 1

    asyncio.run(run())


def test_errors_carry_status_code_and_message(service: Any, name: str) -> None:
    client = sync_client(service)
    with pytest.raises(StorageError) as missing:
        client.kv_get(f"{name}-missing")
    assert (missing.value.status, missing.value.code) == (404, "not_found")
    client.kv_set(name, 1)
    with pytest.raises(StorageError) as conflict:
        client.kv_set(name, 2, nx=True)
    assert (conflict.value.status, conflict.value.code) == (409, "conflict")
    with pytest.raises(StorageError) as bad:
        client.kv_set(name, 1, ttl=-1)
    assert (bad.value.status, bad.value.code) == (400, "bad_request") and "ttl" in bad.value.message
    with pytest.raises(StorageError) as unauthorized:
        asyncio.run(AsyncClient(service.url, "kbs_not-a-token").kv_get("a"))
    assert (unauthorized.value.status, unauthorized.value.code) == (401, "unauthorized")


def test_sessions(service: Any, name: str) -> None:
    client = sync_client(service)
    session = client.session_create(name, correlation_id=f"corr-{name}", data={"a": 1})
    assert (session["clusterId"], session["correlationId"], session["data"]) == (name, f"corr-{name}", {"a": 1})
    assert client.session_get(session["sessionId"])["sessionId"] == session["sessionId"]
    assert client.session_keepalive(session["sessionId"], 600)["expiresAt"] > session["expiresAt"]
    assert [s["sessionId"] for s in client.sessions_find(cluster_id=name)] == [session["sessionId"]]
    assert client.cluster_active(name) is True
    client.session_end(session["sessionId"])
    with pytest.raises(StorageError) as ended:
        client.session_get(session["sessionId"])
    assert ended.value.code == "not_found"


def test_async_sessions(service: Any, name: str) -> None:
    async def run() -> None:
        client = async_client(service)
        session = await client.session_create(name, user_id="u")
        assert [s["sessionId"] for s in await client.sessions_find(cluster_id=name)] == [session["sessionId"]]
        await client.session_end(session["sessionId"])
        assert await client.cluster_active(name) is False

    asyncio.run(run())


def test_queue_send_receive_nack_ack(service: Any, name: str) -> None:
    client = sync_client(service)
    first = client.queue_send(name, {"job": 1})
    assert client.queue_send(name, {"job": 2}) != first  # each send has its own generated dedupId
    assert client.queue_send(name, 3, dedup_id="fixed") == client.queue_send(name, 3, dedup_id="fixed")
    [message] = client.queue_receive(name, wait=5)
    assert (message["id"], message["payload"], message["attempts"]) == (first, {"job": 1}, 1)
    client.queue_nack(name, message, delay=0)
    [again] = client.queue_receive(name, wait=5)
    assert (again["id"], again["attempts"]) == (first, 2)
    with pytest.raises(StorageError) as stale:
        client.queue_ack(name, message)
    assert (stale.value.status, stale.value.code) == (409, "conflict")
    client.queue_ack(name, again)
    assert client.queue_stats(name)["depth"] == 2


def test_async_queue_send_receive_ack(service: Any, name: str) -> None:
    async def run() -> None:
        client = async_client(service)
        sent = await client.queue_send(name, "x")
        [message] = await client.queue_receive(name, wait=5)
        assert message["id"] == sent
        await client.queue_ack(name, message)
        assert (await client.queue_stats(name))["inFlight"] == 0

    asyncio.run(run())


class Doubled:
    """A socket whose every incoming frame is handed on twice (a relay Lambda retries repeats frames)."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket

    async def send(self, data: str) -> None:
        await self.socket.send(data)

    async def close(self) -> None:
        await self.socket.close()

    async def __aiter__(self) -> Any:
        async for frame in self.socket:
            yield frame
            yield frame


def test_async_subscribe_resumes_after_a_dropped_connection(service: Any, name: str) -> None:
    async def run() -> None:
        client = async_client(service)
        before = await client.publish(name, "before")
        sockets: List[Any] = []
        reconnect = asyncio.Event()

        async def connect(url: str) -> Any:
            if sockets:
                await reconnect.wait()  # the second connection waits until the gap was published
            socket = await websockets.connect(url)
            sockets.append(socket)
            return Doubled(socket)

        subscription = await client.subscribe(name, after=before["id"], connect=connect, reconnect_delay=(0.01, 0.05))
        published: List[str] = []
        received: List[Any] = []

        async def publish(message: str) -> None:
            published.append((await client.publish(name, message))["id"])

        async def take(count: int) -> None:
            for _ in range(count):
                received.append(await asyncio.wait_for(subscription.__anext__(), EVENT_TIMEOUT))

        for n in (1, 2):
            await publish(f"live-{n}")
        await take(2)
        sockets[0].transport.abort()  # the connection drops mid-stream
        for n in (1, 2, 3):
            await publish(f"gap-{n}")
        reconnect.set()
        await take(3)
        while subscription.connections < 2:
            await asyncio.sleep(0.05)
        for n in (1, 2):
            await publish(f"after-{n}")
        await take(2)
        await subscription.close()

        assert [event["id"] for event in received] == published
        assert [event["message"] for event in received] == [
            "live-1", "live-2", "gap-1", "gap-2", "gap-3", "after-1", "after-2",
        ]
        with pytest.raises(StopAsyncIteration):
            await subscription.__anext__()

    asyncio.run(run())


def test_sync_subscribe_resumes_after_a_dropped_connection(service: Any, name: str) -> None:
    client = sync_client(service)
    sockets: List[Any] = []
    reconnect = threading.Event()

    async def connect(url: str) -> Any:
        if sockets:
            await asyncio.to_thread(reconnect.wait)
        socket = await websockets.connect(url)
        sockets.append(socket)
        return Doubled(socket)

    with client.subscribe(name, connect=connect, reconnect_delay=(0.01, 0.05)) as subscription:
        published = [client.publish(name, "live")["id"]]
        received = [subscription.next(EVENT_TIMEOUT)]
        subscription.loop.call_soon_threadsafe(sockets[0].transport.abort)
        published += [client.publish(name, f"gap-{n}")["id"] for n in (1, 2)]
        reconnect.set()
        received += [subscription.next(EVENT_TIMEOUT) for _ in range(2)]
        assert subscription.connections == 2
        published.append(client.publish(name, "after")["id"])
        received.append(subscription.next(EVENT_TIMEOUT))
    assert [event["id"] for event in received] == published
    with pytest.raises(StopIteration):
        subscription.next(EVENT_TIMEOUT)


def test_subscribe_to_a_forbidden_channel_raises_the_error_frame(service: Any, name: str) -> None:
    token = sync_client(service).token_issue(name, ["events:subscribe"], resources=["allowed-*"])["token"]
    limited = Client(service.url, token, ws_url=service.ws_url)
    with pytest.raises(FrameError) as forbidden:
        limited.subscribe(f"{name}-secret")
    assert forbidden.value.code == "forbidden"


def test_run_executor_acks_nacks_and_stops(service: Any, name: str) -> None:
    client = sync_client(service)
    client.queue_send(name, "ok")
    client.queue_send(name, "fails-once")
    handled: List[Any] = []
    failures: List[str] = []
    stop = threading.Event()

    def handler(message: Any) -> None:
        handled.append((message["payload"], message["attempts"]))
        if message["payload"] == "fails-once" and message["attempts"] == 1:
            raise RuntimeError("try again")
        if len(handled) == 3:
            stop.set()

    thread = threading.Thread(
        target=run_executor,
        args=(client, name, handler, stop),
        kwargs={
            "delivery": "poll",
            "wait": 1,
            "nack_delay": 0,
            "on_error": lambda error, _: failures.append(str(error)),
        },
    )
    thread.start()
    thread.join(EVENT_TIMEOUT)
    assert not thread.is_alive()
    assert handled == [("ok", 1), ("fails-once", 1), ("fails-once", 2)]
    assert failures == ["try again"]
    assert client.queue_stats(name)["depth"] == 0 and client.queue_stats(name)["inFlight"] == 0


def test_run_executor_async_stops_during_a_long_poll(service: Any, name: str) -> None:
    async def run() -> None:
        client = async_client(service)
        await client.queue_send(name, "fails-once")
        handled: List[Any] = []
        stop = asyncio.Event()

        async def handler(message: Any) -> None:
            handled.append(message["attempts"])
            if message["attempts"] == 1:
                raise RuntimeError("try again")

        loop = asyncio.create_task(
            run_executor_async(client, name, handler, stop, delivery="poll", wait=20, nack_delay=0)
        )
        while len(handled) < 2:
            await asyncio.sleep(0.05)
        stop.set()  # during a 20 s long poll: the loop ends without waiting for it
        await asyncio.wait_for(loop, 15)
        assert handled == [1, 2]
        assert (await client.queue_stats(name))["depth"] == 0

    asyncio.run(run())


def test_examples_the_executor_answers_the_agent(service: Any, name: str) -> None:
    from agent import agent
    from executor import executor

    stop = threading.Event()
    thread = threading.Thread(target=executor, args=(sync_client(service), name, stop))
    thread.start()
    try:
        received = asyncio.run(asyncio.wait_for(agent(async_client(service), name, "kubectl get pods"), EVENT_TIMEOUT))
    finally:
        stop.set()
        thread.join()
    assert received == [
        {"status": "running", "command": "kubectl get pods"},
        {"status": "done", "command": "kubectl get pods", "output": f"ran kubectl get pods on {name}"},
    ]



def test_push_receive_ack_nack_extend(service: Any, name: str) -> None:
    client = sync_client(service)
    with client.receive(name, max=2, visibility_timeout=60) as receiver:
        first, second = client.queue_send(name, {"n": 1}), client.queue_send(name, {"n": 2})
        a, b = receiver.next(EVENT_TIMEOUT), receiver.next(EVENT_TIMEOUT)
        assert sorted([a["id"], b["id"]]) == sorted([first, second])
        assert (a["queue"], a["attempts"]) == (name, 1)
        receiver.extend(a, 120)
        receiver.ack(a)
        receiver.nack(b, delay=0)
        again = receiver.next(EVENT_TIMEOUT)
        assert (again["id"], again["attempts"]) == (b["id"], 2)
        with pytest.raises(FrameError) as stale:
            receiver.ack(b)
        assert stale.value.code == "conflict"
        client.queue_ack(name, again)  # a pushed receipt is acked over HTTP too
    stats = client.queue_stats(name)
    assert (stats["depth"], stats["inFlight"]) == (0, 0)


def test_push_reconnect_gives_back_and_receives_again(service: Any, name: str) -> None:
    sockets: List[Any] = []

    async def connect(url: str) -> Any:
        socket = await websockets.connect(url)
        sockets.append(socket)
        return socket

    async def run() -> None:
        client = async_client(service)
        receiver = await client.receive(name, connect=connect, reconnect_delay=(0.05, 0.2))
        message_id = await client.queue_send(name, "work")
        held = await asyncio.wait_for(receiver.__anext__(), EVENT_TIMEOUT)
        assert (held["id"], held["attempts"]) == (message_id, 1)
        sockets[0].transport.abort()  # cut, no close handshake
        again = await asyncio.wait_for(receiver.__anext__(), EVENT_TIMEOUT)
        assert (again["id"], again["attempts"]) == (message_id, 2)
        assert receiver.connections == 2
        await receiver.ack(again)
        await receiver.close()

    asyncio.run(run())


def test_push_forbidden_queue_raises_the_error_frame(service: Any, name: str) -> None:
    client = sync_client(service)
    limited = Client(service.url, client.token_issue(name, ["queues:receive"], resources=["allowed-*"])["token"], ws_url=service.ws_url)
    with pytest.raises(FrameError) as refused:
        limited.receive(f"{name}-secret")
    assert refused.value.code == "forbidden"
