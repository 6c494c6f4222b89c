"""When and how long to wait before a request is sent again."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Optional

#: Only these are retried: the request was not served, so sending it again is safe.
RETRYABLE_STATUSES = frozenset({429, 503})


@dataclass(frozen=True)
class RetryPolicy:
    #: Attempts in all, the first included.
    attempts: int = 4
    #: The first back-off ceiling in seconds, doubled per attempt.
    base_delay: float = 0.1
    #: The largest back-off in seconds.
    max_delay: float = 5.0

    def backoff(self, attempt: int, retry_after: Optional[str] = None) -> float:
        """The wait before attempt ``attempt + 1`` (counting from 1): full jitter over an
        exponential ceiling; a ``Retry-After`` in seconds is a floor."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        delay = random.uniform(0, ceiling)
        try:
            floor = float(retry_after) if retry_after else None
        except ValueError:
            floor = None
        if floor is not None and floor >= 0:
            delay = min(self.max_delay, max(delay, floor))
        return delay
