"""Helpers for Pilot tests: a fake engine, waiting on worker threads, reading the tree."""

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


def tree_text(app, host: str) -> str:  # type: ignore[no-untyped-def]
    """Every label of a host's inventory tree, one per line."""
    from screens.inventory import HostTree

    out: list[str] = []

    def walk(node) -> None:  # type: ignore[no-untyped-def]
        out.append(str(node.label))
        for child in node.children:
            walk(child)

    walk(app.query_one(f"#tree-{host}", HostTree).root)
    return "\n".join(out)


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine()
