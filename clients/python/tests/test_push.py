"""The push receivers (sync and asyncio) and the executor loop on push, against a local server
speaking docs/api.md's queue push frames (push_server.py). The same against ``npm start`` is in
test_live.py."""

import asyncio
import threading
import time
from typing import Any, Iterator, List, Tuple

import pytest

from kubently_storage_client import (
    AsyncClient,
    Client,
    ConnectionClosedError,
    FrameError,
    QueueMessage,
    run_executor,
    run_executor_async,
)
from push_server import PushServer

QUEUE = "jobs"
#: Ceiling for a frame to arrive; never an expectation.
TIMEOUT = 10


@pytest.fixture
def server() -> Iterator[PushServer]:
    push_server = PushServer(QUEUE)
    yield push_server
    push_server.close()


def wait_for(condition: Any) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def clients(server: PushServer) -> Tuple[Client, AsyncClient]:
    # No HTTP service behind the base URL: everything here must go over the socket.
    return Client("http://127.0.0.1:9", "t", ws_url=server.url), AsyncClient("http://127.0.0.1:9", "t", ws_url=server.url)


def test_sync_receive_ack_nack_extend(server: PushServer) -> None:
    client, _ = clients(server)
    with client.receive(QUEUE, max=2, visibility_timeout=60) as receiver:
        assert server.frames[0] == {"action": "receive", "queue": QUEUE, "max": 2, "visibilityTimeout": 60}
        first, second = server.send({"n": 1}), server.send({"n": 2})
        a, b = receiver.next(TIMEOUT), receiver.next(TIMEOUT)
        assert (a["queue"], a["id"], a["payload"], a["attempts"]) == (QUEUE, first, {"n": 1}, 1)
        assert b["id"] == second
        receiver.extend(a, 120)
        receiver.ack(a)
        receiver.nack(b, delay=0)
        again = receiver.next(TIMEOUT)
        assert (again["id"], again["attempts"]) == (second, 2)
        with pytest.raises(FrameError) as stale:
            receiver.ack(b)  # the first lease's receipt is stale now
        assert stale.value.code == "conflict"
        receiver.ack(again)
        assert server.remaining() == []
    wait_for(lambda: server.frames[-1] == {"action": "stop", "queue": QUEUE})


def test_async_reconnect_receives_again_and_held_delivery_comes_back(server: PushServer) -> None:
    _, client = clients(server)

    async def run() -> None:
        receiver = await client.receive(QUEUE, reconnect_delay=(0.01, 0.05))
        message_id = server.send("work")
        held = await asyncio.wait_for(receiver.__anext__(), TIMEOUT)
        assert (held["id"], held["attempts"]) == (message_id, 1)
        server.drop_connections()
        again = await asyncio.wait_for(receiver.__anext__(), TIMEOUT)
        assert (again["id"], again["attempts"]) == (message_id, 2)
        assert receiver.connections == 2
        assert [f["action"] for f in server.frames].count("receive") == 2
        await receiver.ack(again)
        assert server.remaining() == []
        await receiver.close()

    asyncio.run(run())


def test_ack_without_a_connection_raises(server: PushServer) -> None:
    _, client = clients(server)

    async def run() -> None:
        receiver = await client.receive(QUEUE, reconnect_delay=(5, 5))
        server.send("work")
        held = await asyncio.wait_for(receiver.__anext__(), TIMEOUT)
        server.drop_connections()
        while receiver._live is not None:  # the cut reaches the client
            await asyncio.sleep(0.01)
        with pytest.raises(ConnectionClosedError):
            await receiver.ack(held)
        await receiver.close()

    asyncio.run(run())


def test_an_error_frame_answers_the_request_it_names(server: PushServer) -> None:
    """However many older requests wait (answers come in any order); one naming none answers none."""
    _, client = clients(server)

    async def run() -> None:
        receiver = await client.receive(QUEUE, max=2)
        server.send("a")
        server.send("b")
        a = await asyncio.wait_for(receiver.__anext__(), TIMEOUT)
        b = await asyncio.wait_for(receiver.__anext__(), TIMEOUT)
        server.silent = True
        ack_a = asyncio.ensure_future(receiver.ack(a))
        while not server.frames or server.frames[-1].get("action") != "ack":
            await asyncio.sleep(0.01)
        server.broadcast({"type": "error", "code": "conflict", "message": "not yours", "queue": QUEUE, "id": "nobody"})
        server.silent = False
        with pytest.raises(FrameError) as stale:
            await asyncio.wait_for(receiver.ack({**b, "receipt": "stale"}), TIMEOUT)
        assert stale.value.code == "conflict"
        assert not ack_a.done()
        server.drop_connections()
        with pytest.raises(ConnectionClosedError):
            await asyncio.wait_for(ack_a, TIMEOUT)
        await receiver.close()

    asyncio.run(run())


def test_pings_an_idle_connection(server: PushServer) -> None:
    client, _ = clients(server)
    with client.receive(QUEUE, ping_interval=0.02):
        wait_for(lambda: [f["action"] for f in server.frames].count("ping") > 1)


def test_refused_receive_raises_the_error_frame(server: PushServer) -> None:
    server.refuse_receive = {"code": "forbidden", "message": "token lacks queues:receive on jobs"}
    client, _ = clients(server)
    with pytest.raises(FrameError) as refused:
        client.receive(QUEUE)
    assert (refused.value.code, refused.value.message) == ("forbidden", "token lacks queues:receive on jobs")


def handled_by(server: PushServer) -> Tuple[List[Tuple[Any, int]], Any]:
    handled: List[Tuple[Any, int]] = []

    def handle(message: QueueMessage) -> None:
        handled.append((message["payload"], message["attempts"]))
        if message["payload"] == "fails-once" and message["attempts"] == 1:
            raise RuntimeError("try again")

    server.send("ok")
    server.send("fails-once")
    return handled, handle


def test_run_executor_by_push(server: PushServer) -> None:
    client, _ = clients(server)
    handled, handle = handled_by(server)
    failures: List[BaseException] = []
    stop = threading.Event()
    loop = threading.Thread(
        target=run_executor,
        args=(client, QUEUE, handle, stop),
        kwargs={"delivery": "push", "nack_delay": 0, "on_error": lambda error, _: failures.append(error)},
    )
    loop.start()
    wait_for(lambda: server.remaining() == [])
    stop.set()
    loop.join(TIMEOUT)
    assert not loop.is_alive()
    assert handled == [("ok", 1), ("fails-once", 1), ("fails-once", 2)]
    assert [str(error) for error in failures] == ["try again"]
    wait_for(lambda: [f["action"] for f in server.frames] == ["receive", "ack", "nack", "ack", "stop"])


def test_run_executor_async_by_push(server: PushServer) -> None:
    _, client = clients(server)
    handled, handle = handled_by(server)

    async def handle_async(message: QueueMessage) -> None:
        handle(message)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.ensure_future(run_executor_async(client, QUEUE, handle_async, stop, delivery="push", nack_delay=0))
        while server.remaining():
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(loop, TIMEOUT)

    asyncio.run(run())
    assert handled == [("ok", 1), ("fails-once", 1), ("fails-once", 2)]
    wait_for(lambda: [f["action"] for f in server.frames] == ["receive", "ack", "nack", "ack", "stop"])
