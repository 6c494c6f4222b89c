"""Retries against a tiny local HTTP server that answers scripted statuses, then 200."""

import asyncio
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, List

import pytest

from kubently_storage_client import AsyncClient, Client, RetryPolicy, StorageError

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.005)


class Scripted:
    def __init__(self) -> None:
        self.statuses: List[int] = []
        self.bodies: List[dict] = []


@pytest.fixture
def server() -> Iterator[tuple]:
    script = Scripted()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            script.bodies.append(json.loads(body) if body else {})
            status = script.statuses.pop(0) if script.statuses else 200
            code = {503: "unavailable", 429: "unavailable"}.get(status, "internal")
            text = json.dumps({"id": "m1"} if status == 200 else {"error": {"code": code, "message": f"status {status}"}})
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(text)))
            self.end_headers()
            self.wfile.write(text.encode())

        do_GET = do_POST = _answer

        def log_message(self, *_: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()
    httpd.server_close()


def test_503_and_429_are_retried_with_the_same_dedup_id(server: tuple) -> None:
    url, script = server
    script.statuses = [503, 429, 503]
    assert Client(url, "t", retry=FAST).queue_send("q", {"a": 1}) == "m1"
    assert len(script.bodies) == 4
    assert len({body["dedupId"] for body in script.bodies}) == 1
    assert re.fullmatch(r"[0-9a-f-]{36}", script.bodies[0]["dedupId"])


def test_async_503_and_429_are_retried_with_the_same_dedup_id(server: tuple) -> None:
    url, script = server
    script.statuses = [429, 503]
    assert asyncio.run(AsyncClient(url, "t", retry=FAST).queue_send("q", {"a": 1})) == "m1"
    assert len(script.bodies) == 3
    assert len({body["dedupId"] for body in script.bodies}) == 1


def test_attempts_are_bounded(server: tuple) -> None:
    url, script = server
    script.statuses = [503] * 5
    with pytest.raises(StorageError) as raised:
        Client(url, "t", retry=FAST).kv_get("a")
    assert (raised.value.status, raised.value.code) == (503, "unavailable")
    assert len(script.bodies) == 4


def test_other_statuses_are_not_retried(server: tuple) -> None:
    url, script = server
    script.statuses = [500]
    with pytest.raises(StorageError) as raised:
        asyncio.run(AsyncClient(url, "t", retry=FAST).kv_get("a"))
    assert (raised.value.status, raised.value.code) == (500, "internal")
    assert len(script.bodies) == 1
