"""Every scenario renders the same shell text as before steps became typed intents.

The files in exports/ (`<scenario>-<N>hosts[-plain].<sh|json>.golden`) were
written by `Engine.export` before the change (2 and 3 hosts, bash and json, lab
and --plain); the commands are rendered from each step's intent now, and must
not have moved by a byte. The one change on purpose since, in the qos files:
QoS's bucket (burst) went from ~5 to 20 ms at the rate on the tbf and the htb
queue, and the queue has min-rate = max-rate. (Named .golden: they are data,
not code.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.engine import Engine

EXPORTS = Path(__file__).parent / "exports"
CASES = sorted(EXPORTS.glob("*.golden"))


@pytest.mark.parametrize("path", CASES, ids=[p.name for p in CASES])
def test_export_is_unchanged(path: Path) -> None:
    name, ext = path.name.removesuffix(".golden").rsplit(".", 1)
    scenario, hosts, *rest = name.split("-")
    engine = Engine(hosts=int(hosts.removesuffix("hosts")))
    fmt = "json" if ext == "json" else "bash"
    assert engine.export(scenario, fmt, plain=rest == ["plain"]) == path.read_text()
