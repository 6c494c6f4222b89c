"""Errors the API answers with, as exceptions."""

from __future__ import annotations

import json


class StorageError(Exception):
    """A non-success answer: the status and the ``code`` and ``message`` of its
    ``{"error": {"code", "message"}}`` body (``unexpected_response`` when the body has another shape)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def from_response(cls, status: int, text: str) -> "StorageError":
        try:
            error = json.loads(text).get("error", {})
            if isinstance(error.get("code"), str) and isinstance(error.get("message"), str):
                return cls(status, error["code"], error["message"])
        except (ValueError, AttributeError):
            pass
        return cls(status, "unexpected_response", f"HTTP {status}: {text[:200]}")


class FrameError(Exception):
    """An error frame the WebSocket answered with (``{"type": "error", "code", "message"}``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ConnectionClosedError(Exception):
    """An ack, nack or extend that its WebSocket did not answer before it closed (or sent while
    reconnecting): the server gave that lease back, so the message comes again."""
