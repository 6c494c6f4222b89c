"""One HTTP request with its retries, over urllib: sync, and asyncio (urllib in a worker thread)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple

from .errors import StorageError
from .retry import RETRYABLE_STATUSES, RetryPolicy

#: Seconds a request may take beyond a long poll's own ``wait``.
REQUEST_TIMEOUT = 30.0


@dataclass(frozen=True)
class Call:
    """A request: method, path (names already encoded), query and JSON body."""

    method: str
    path: str
    body: Any = None
    query: Mapping[str, Any] = field(default_factory=dict)
    #: The long poll's wait in seconds, added to the timeout.
    wait: float = 0


def segment(name: str) -> str:
    """A path segment: names are URL-encoded (``a/b`` → ``a%2Fb``)."""
    return urllib.parse.quote(name, safe="")


class Transport:
    def __init__(self, base_url: str, token: str, retry: Optional[RetryPolicy] = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.retry = retry or RetryPolicy()

    def _once(self, call: Call) -> Tuple[int, str, Optional[str]]:
        query = {name: value for name, value in call.query.items() if value is not None}
        url = self.base_url + call.path + ("?" + urllib.parse.urlencode(query) if query else "")
        headers: Dict[str, str] = {"authorization": f"Bearer {self.token}"}
        data = None
        if call.body is not None:
            headers["content-type"] = "application/json"
            data = json.dumps(call.body).encode()
        request = urllib.request.Request(url, data=data, headers=headers, method=call.method)
        try:
            with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT + call.wait) as response:
                return response.status, response.read().decode(), None
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), error.headers.get("retry-after")

    @staticmethod
    def _result(status: int, text: str) -> Any:
        if 200 <= status < 300:
            return json.loads(text) if text else None
        raise StorageError.from_response(status, text)

    def request(self, call: Call) -> Any:
        """The parsed JSON answer (None for a 204); 429 and 503 retried, other failures raised."""
        attempt = 1
        while True:
            status, text, retry_after = self._once(call)
            if status not in RETRYABLE_STATUSES or attempt >= self.retry.attempts:
                return self._result(status, text)
            time.sleep(self.retry.backoff(attempt, retry_after))
            attempt += 1

    async def request_async(self, call: Call) -> Any:
        attempt = 1
        while True:
            status, text, retry_after = await asyncio.to_thread(self._once, call)
            if status not in RETRYABLE_STATUSES or attempt >= self.retry.attempts:
                return self._result(status, text)
            await asyncio.sleep(self.retry.backoff(attempt, retry_after))
            attempt += 1
