"""Shared fixtures.

Every test run uses its own containet instance (CONTAINET_INSTANCE, default
"test"), so the suite never touches a presenter's lab on the same machine. The
lab is cleaned before (leftovers of a crashed run) and after (even on failure).
"""

from __future__ import annotations

import os

os.environ.setdefault("CONTAINET_INSTANCE", "test")

import subprocess  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import tests_support  # noqa: E402

INSTANCE = os.environ["CONTAINET_INSTANCE"]
ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Lab tests need root. Outside CI a non-root run skips them; in CI it fails."""
    if os.geteuid() == 0:
        return
    for item in items:
        if "lab" in item.keywords:
            if os.environ.get("CI"):
                item.add_marker(pytest.mark.xfail(reason="CI must run as root", strict=True, run=False))
            else:
                item.add_marker(pytest.mark.skip(reason="needs root (namespaces, OVS, docker)"))


def run_cli(*args: str, check: bool = False, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The `containet` command as a user runs it (same instance as the tests)."""
    return tests_support.run_cli(INSTANCE, *args, check=check, timeout=timeout)


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_cli


@pytest.fixture(scope="session")
def lab_engine() -> Iterator[object]:
    """A lab that is up for the whole session; cleaned before and after."""
    from workbench import cleanup
    from workbench.engine import Engine

    cleanup.clean(progress=lambda _m: None)
    engine = Engine()
    try:
        engine.lab_up(progress=lambda _m: None)
        yield engine
    finally:
        cleanup.clean(progress=lambda _m: None)


@pytest.fixture
def engine(lab_engine: object) -> Iterator[object]:
    """The session lab, with no scenario applied before and after the test."""
    from workbench.engine import Engine

    assert isinstance(lab_engine, Engine)
    lab_engine.lab_up(progress=lambda _m: None)  # up already: a no-op; else a test broke it
    _undo_active(lab_engine)
    try:
        yield lab_engine
    finally:
        _undo_active(lab_engine)


def _undo_active(engine: object) -> None:
    from workbench.engine import Engine

    assert isinstance(engine, Engine)
    active = engine.active()
    if active is not None:
        engine.undo(active.scenario)


@pytest.fixture(scope="module")
def _undone_after_module(lab_engine: object) -> Iterator[None]:
    """What `kept` left applied is undone when its module ends (real-mode tests and
    others that do not go through `engine` must find the lab bare)."""
    yield
    _undo_active(lab_engine)


@pytest.fixture
def kept(lab_engine: object, _undone_after_module: None) -> Callable[[str], object]:
    """kept("exp1"): the scenario applied, and left applied for the next test that
    keeps the same one. For bad-input tests, which must change nothing: they share
    one apply instead of an apply and an undo each. (Tests on `engine` undo it first.)"""
    from workbench.engine import Engine

    assert isinstance(lab_engine, Engine)

    def keep(name: str) -> Engine:
        lab_engine.lab_up(progress=lambda _m: None)  # up already: a no-op
        active = lab_engine.active()
        if active is None or active.scenario != name:
            _undo_active(lab_engine)
            lab_engine.apply(name)
        return lab_engine

    return keep


@pytest.fixture
def applied(engine: object) -> Callable[[str], object]:
    """applied("exp1") applies a scenario for this test; the engine fixture undoes it."""
    from workbench.engine import Engine

    assert isinstance(engine, Engine)

    def apply(name: str) -> Engine:
        engine.apply(name)
        return engine

    return apply
