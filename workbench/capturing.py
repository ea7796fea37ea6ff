"""The engine's capturing half: capture on a port of the lab, OVS flows, traces
and live rates. The logic is in workbench.capture; these resolve names against
the discovered topology and delegate. `Engine` inherits them."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from .capture import Capture, CaptureOptions, CaptureResult, Record, Target, resolve
from .host import Host
from .topology.model import Topology


class _Core(Protocol):
    def require_lab(self) -> None: ...

    def hosts(self) -> list[Host]: ...

    def topology(self) -> Topology: ...


class Capturing:
    def capture_target(self: _Core, where: str) -> Target:
        """WHERE (a container, HOST:IFACE, or HOST:OVS-PORT) as a capture target."""
        self.require_lab()
        return resolve(where, self.hosts(), self.topology())

    def open_capture(
        self: _Core,
        where: str,
        opts: CaptureOptions,
        on_record: Callable[[Record], None] | None = None,
    ) -> Capture:
        """A started capture (tcpdump listens): stop() it, or let it end at its bounds.
        `on_record` is called from the capture's reader thread."""
        target = Capturing.capture_target(self, where)  # type: ignore[arg-type]
        return Capture(target, opts, on_record).start()

    def capture(
        self: _Core,
        where: str,
        opts: CaptureOptions,
        *,
        on_record: Callable[[Record], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> CaptureResult:
        """Capture until the count, the time bound, `cancel`, or the port going away."""
        cap = Capturing.open_capture(self, where, opts, on_record)  # type: ignore[arg-type]
        return cap.wait(cancel)
