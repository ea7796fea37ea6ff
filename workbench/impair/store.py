"""What containet injected, recorded in the instance's run directory.

    RUN_DIR/impair/impair-<target>.json   an impairment: its link, spec and backend
    RUN_DIR/impair/fault-<name>.json      a fault: its intent, with the values it replaced

A record is what `netem clear`, `fault revert`, `scenario undo` and `clean` undo
(a fault's record holds the prior values, so revert restores them, not defaults).
The system itself is read to say whether an impairment holds (verify).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .procs import DIR


def path(kind: str, key: str) -> Path:
    return DIR / f"{kind}-{key}.json"


def save(kind: str, key: str, data: dict[str, Any]) -> None:
    DIR.mkdir(parents=True, exist_ok=True)
    tmp = path(kind, key).with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path(kind, key))


def load(kind: str, key: str) -> dict[str, Any] | None:
    try:
        data = json.loads(path(kind, key).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def drop(kind: str, key: str) -> None:
    path(kind, key).unlink(missing_ok=True)


def load_all(kind: str) -> list[dict[str, Any]]:
    out = []
    for p in sorted(DIR.glob(f"{kind}-*.json")) if DIR.exists() else []:
        try:
            data = json.loads(p.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out.append(data)
    return sorted(out, key=lambda d: d.get("at", 0))
