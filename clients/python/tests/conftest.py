"""The live service comes from the environment (test/clients/python.test.ts starts it):
KUBENTLY_URL, KUBENTLY_WS_URL, KUBENTLY_TOKEN. Without them the live tests skip, or fail when CI is set."""

import os
import sys
import uuid
from pathlib import Path

import pytest

# The package and its examples, importable without installing.
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]


class Service:
    def __init__(self, url: str, ws_url: str, token: str) -> None:
        self.url, self.ws_url, self.token = url, ws_url, token


@pytest.fixture(scope="session")
def service() -> Service:
    names = ("KUBENTLY_URL", "KUBENTLY_WS_URL", "KUBENTLY_TOKEN")
    missing = [name for name in names if not os.environ.get(name)]
    if missing:
        message = f"no service to test against: {', '.join(missing)} not set (run through npm test)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return Service(*(os.environ[name] for name in names))


@pytest.fixture
def name() -> str:
    """A name no other test run uses."""
    return f"py-{uuid.uuid4().hex[:8]}"
