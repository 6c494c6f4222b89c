"""A WebSocket server speaking docs/api.md's queue push frames for one in-memory queue, so the
receivers are tested on what the service cannot be made to do on demand (a connection cut while
it holds a delivery, an error frame for a stale receipt). Leases never end here; a closed
connection gives back what it held, as the contract says. The TypeScript twin is
test/clients/push-server.ts."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

import websockets


class PushServer:
    """Runs on its own event loop thread; ``url``, ``send(payload)``, ``frames``, ``remaining()``."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.frames: List[Dict[str, Any]] = []
        self.refuse_receive: Optional[Dict[str, str]] = None
        #: Leave ack, nack and extend unanswered (a connection about to drop), or answer them.
        self.silent = False
        self._messages: List[Dict[str, Any]] = []
        self._consumers: List[Dict[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        async def start() -> Any:
            return await websockets.serve(self._serve, "127.0.0.1", 0)

        self._server = asyncio.run_coroutine_threadsafe(start(), self._loop).result()
        port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://127.0.0.1:{port}"

    def send(self, payload: Any) -> str:
        message_id = str(uuid.uuid4())
        now = datetime.now(timezone.utc).isoformat()

        async def add() -> None:
            self._messages.append({"id": message_id, "payload": payload, "attempts": 0, "enqueuedAt": now})
            self._pump()

        asyncio.run_coroutine_threadsafe(add(), self._loop).result()
        return message_id

    def remaining(self) -> List[Dict[str, Any]]:
        return [{"id": m["id"], "attempts": m["attempts"]} for m in list(self._messages)]

    def drop_connections(self) -> None:
        """Cuts every open connection without a close handshake."""
        for consumer in list(self._consumers):
            self._loop.call_soon_threadsafe(consumer["socket"].transport.abort)

    def broadcast(self, frame: Dict[str, Any]) -> None:
        """Sends ``frame`` to every consumer's connection, unasked."""
        for consumer in list(self._consumers):
            asyncio.run_coroutine_threadsafe(consumer["socket"].send(json.dumps(frame)), self._loop).result()

    def close(self) -> None:
        self._server.close()
        asyncio.run_coroutine_threadsafe(self._server.wait_closed(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def _pump(self) -> None:
        for message in self._messages:
            if "lease" in message:
                continue
            consumer = next((c for c in self._consumers if self._held(c) < c["max"]), None)
            if consumer is None:
                return
            message["attempts"] += 1
            message["lease"] = {"receipt": str(uuid.uuid4()), "holder": consumer}
            frame = {"type": "delivery", "queue": self.queue, "receipt": message["lease"]["receipt"]}
            frame.update({name: message[name] for name in ("id", "payload", "attempts", "enqueuedAt")})
            asyncio.ensure_future(consumer["socket"].send(json.dumps(frame)))

    def _held(self, consumer: Dict[str, Any]) -> int:
        return sum(1 for m in self._messages if m.get("lease", {}).get("holder") is consumer)

    def _give_back(self, consumer: Dict[str, Any]) -> None:
        for message in self._messages:
            if message.get("lease", {}).get("holder") is consumer:
                del message["lease"]
        if consumer in self._consumers:
            self._consumers.remove(consumer)
        self._pump()

    async def _serve(self, socket: Any, *_: Any) -> None:
        consumer: Optional[Dict[str, Any]] = None
        try:
            async for raw in socket:
                frame = json.loads(raw)
                self.frames.append(frame)
                action = frame.get("action")
                if action == "ping":
                    await socket.send(json.dumps({"type": "pong"}))
                    continue
                if action == "receive":
                    if self.refuse_receive:
                        await socket.send(json.dumps({"type": "error", **self.refuse_receive}))
                        continue
                    consumer = {"socket": socket, "max": frame.get("max", 1)}
                    self._consumers.append(consumer)
                    await socket.send(json.dumps({"type": "receiving", "queue": self.queue}))
                    self._pump()
                    continue
                if action == "stop":
                    if consumer:
                        self._give_back(consumer)
                    consumer = None
                    await socket.send(json.dumps({"type": "stopped", "queue": self.queue}))
                    continue
                if self.silent:
                    continue
                message = next((m for m in self._messages if m["id"] == frame.get("id")), None)
                if message is None or message.get("lease", {}).get("receipt") != frame.get("receipt"):
                    # As the service does: the error repeats the frame's queue and id.
                    error = {"type": "error", "code": "conflict", "message": f"receipt of {frame.get('id')} is stale"}
                    error.update(queue=frame.get("queue"), id=frame.get("id"))
                    await socket.send(json.dumps(error))
                    continue
                if action == "ack":
                    self._messages.remove(message)
                elif action == "nack":
                    del message["lease"]
                reply = {"ack": "acked", "nack": "nacked", "extend": "extended"}[action]
                await socket.send(json.dumps({"type": reply, "queue": self.queue, "id": message["id"]}))
                self._pump()
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            if consumer:
                self._give_back(consumer)
