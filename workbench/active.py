"""Which scenario is applied in this lab (or on this real host), and with what.

Saved next to the lab's run files so that every command (CLI or TUI, any
process) sees the same answer; the scenario's steps still read their own state.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from .intents import ContainerSpec
from .marks import RUN_DIR

ACTIVE = RUN_DIR / "active.json"


@dataclass(frozen=True)
class Active:
    scenario: str
    extra: tuple[ContainerSpec, ...] = ()
    mtu: int | None = None
    tunrc_dir: str | None = None

    @classmethod
    def load(cls, path: Path = ACTIVE) -> Active | None:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        return cls(
            scenario=data["scenario"],
            extra=tuple(ContainerSpec(**c) for c in data.get("extra", [])),
            mtu=data.get("mtu"),
            tunrc_dir=data.get("tunrc_dir"),
        )

    def save(self, path: Path = ACTIVE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = asdict(self)
        data["extra"] = [asdict(c) for c in self.extra]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)

    @staticmethod
    def clear(path: Path = ACTIVE) -> None:
        path.unlink(missing_ok=True)
