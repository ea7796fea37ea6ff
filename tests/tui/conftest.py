"""Helpers for Pilot tests: a fake engine, waiting on worker threads, reading the
screens (the tree, a label, the open scenario panel, the Measure view)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from .fake_data import STEPS
from .fake_engine import FakeEngine

if TYPE_CHECKING:
    from screens.app import ContainetApp
    from screens.measure import MeasureView
    from screens.scenario import ScenarioPanel

#: the terminal most Pilot tests run in
SIZE = (100, 32)


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


def label_text(app: ContainetApp, selector: str) -> str:
    from textual.widgets import Label

    return str(app.query_one(selector, Label).render())


def applied_all(engine: FakeEngine) -> None:
    """Every step of exp1 applied: both hosts bridged and tunnelled, h1-a and h2-a running."""
    engine.applied["exp1"] = [True] * len(STEPS)


def panel(app: ContainetApp) -> ScenarioPanel:
    """The open scenario's panel."""
    from screens.scenario import ScenariosView

    current = app.query_one(ScenariosView).current
    assert current is not None
    return current


async def measure_ready(pilot, app: ContainetApp) -> MeasureView:  # type: ignore[no-untyped-def]
    """The Measure tab, open, with h1-a and h2-a to pick."""
    from screens.measure import MeasureView

    await pilot.press("3")
    view = app.query_one(MeasureView)
    await wait_for(pilot, lambda: view._names == ("h1-a", "h2-a"))
    return view


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine()
