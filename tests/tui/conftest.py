"""Helpers for Pilot tests: a fake engine and waiting on worker threads."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from .fake_engine import FakeEngine


async def wait_for(pilot, cond: Callable[[], bool], timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Let workers and messages run until cond() holds (bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await pilot.pause()
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met within timeout")


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine()
