"""The engine's comparing part: one pair of containers over several paths.

`compare` measures the pair over each path asked for, beside the raw veth ceiling
measured in the same run (workbench.measure.compare). A path is a scenario: the one
applied is measured where it stands; another one is applied for its turn (undo the
current, apply it: `apply` returns once traffic can flow), and at the end the
scenario that was applied before is applied again, so the user finds the lab as
they left it, with the same names and addresses (new container IDs). Switching is
refused where it would cost work: containers added by hand, injected faults, or
real mode (each VM holds only its half).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from .active import Active
from .errors import BadInput, NotReady
from .host import Place
from .inventory.model import Snapshot
from .measure.compare import CompareResult, PathFigure, measure_ceiling, measure_pair

#: the paths of issue 17's comparison, in the order they are measured when nothing is applied
DEFAULT_PATHS = ("kvxlan", "exp2", "vxlan")


class _Core(Protocol):
    mode: str

    @property
    def scenarios(self) -> dict[str, Any]: ...

    def require_lab(self) -> None: ...

    def snapshot(self, peers: list[str] | None = None) -> Snapshot: ...

    def active(self) -> Active | None: ...

    def apply(self, name: str, on_event: Any = None) -> int: ...

    def undo(self, name: str, on_event: Any = None) -> int: ...

    def faults_active(self) -> list[str]: ...

    def _running(self, who: str, snap: Snapshot) -> Any: ...


def _quiet(_msg: str) -> None:
    pass


class Comparing:
    def compare_paths(self: _Core, paths: list[str] | None = None) -> list[str]:
        """The paths `compare` measures: those asked for (checked), else the applied
        scenario, else the default comparison (the ones this lab has)."""
        if paths:
            unknown = [p for p in paths if p not in self.scenarios]
            if unknown:
                raise BadInput(
                    f"unknown path {unknown[0]!r}: use scenario names ({', '.join(self.scenarios)})"
                )
            return list(dict.fromkeys(paths))
        active = self.active()
        if active is not None:
            return [active.scenario]
        return [p for p in DEFAULT_PATHS if p in self.scenarios]

    def _may_switch(self: _Core, applied: Active | None, paths: list[str]) -> None:
        if all(applied is not None and p == applied.scenario for p in paths):
            return
        if self.mode == "real":
            raise BadInput(
                "compare switches scenarios in lab mode only: on the VMs, apply the path on every "
                "host, then compare it alone"
            )
        if applied is not None and applied.extra:
            names = ", ".join(c.name for c in applied.extra)
            raise BadInput(
                f"compare would rebuild {applied.scenario}, which has containers added by hand ({names}): "
                f"compare {applied.scenario} alone, or remove them first"
            )
        faults = self.faults_active()
        if faults:
            raise BadInput(
                f"compare would rebuild the lab under faults ({', '.join(faults)}): revert them first"
            )

    def compare(
        self: _Core,
        src: str = "h1-a",
        dst: str = "h2-a",
        *,
        paths: list[str] | None = None,
        seconds: float = 3.0,
        progress: Callable[[str], None] = _quiet,
        cancel: threading.Event | None = None,
    ) -> CompareResult:
        """src -> dst over each path (see the module's docstring), with the veth ceiling."""
        if not 1 <= seconds <= 60:
            raise BadInput(f"bad duration {seconds}: use 1 to 60 seconds")
        self.require_lab()
        cancel = cancel or threading.Event()
        chosen = Comparing.compare_paths(self, paths)
        if not chosen:
            raise BadInput("nothing to compare: apply a scenario, or name paths with --paths")
        applied = self.active()
        Comparing._may_switch(self, applied, chosen)
        if applied is not None and applied.scenario in chosen:  # measured where it stands: first
            chosen.remove(applied.scenario)
            chosen.insert(0, applied.scenario)
        if applied is not None:  # the pair must exist before anything is rebuilt
            snap = self.snapshot()
            self._running(src, snap), self._running(dst, snap)

        ceiling = measure_ceiling(seconds, cancel, progress)
        figures: list[PathFigure] = []
        current = applied.scenario if applied else None
        try:
            for path in chosen:
                if cancel.is_set():
                    break
                title = self.scenarios[path].TITLE
                if path != current:
                    progress(f"{path}: " + (f"undo {current}, " if current else "") + f"apply {path}")
                    if current:
                        self.undo(current)
                    current = path  # from here on, restoring undoes it (also half applied)
                    self.apply(path)
                progress(f"{path}: measuring {src} -> {dst}")
                figures.append(_measure(self, path, title, src, dst, seconds, cancel))
        finally:
            restored = _restore(self, applied, current, progress)
        return CompareResult(src, dst, seconds, ceiling, tuple(figures), restored)


def _measure(
    engine: _Core, path: str, title: str, src: str, dst: str, seconds: float, cancel: threading.Event
) -> PathFigure:
    snap = engine.snapshot()
    try:
        a, b = engine._running(src, snap), engine._running(dst, snap)
    except (BadInput, NotReady) as exc:
        return PathFigure(path, title, note=str(exc))
    return measure_pair(
        path,
        title,
        (a.name, Place.of_pid(a.pid, a.name)),
        (b.name, Place.of_pid(b.pid, b.name), b.ip),
        seconds,
        cancel,
    )


def _restore(
    engine: _Core, applied: Active | None, current: str | None, progress: Callable[[str], None]
) -> str | None:
    """Leave the lab as compare found it: the scenario applied before, or none."""
    before = applied.scenario if applied else None
    if current == before:
        return None
    if current and engine.active() is not None:
        progress(f"restoring: undo {current}")
        engine.undo(current)
    if before:
        progress(f"restoring: apply {before}")
        engine.apply(before)
    return before
