"""The experiments, one module each: an ordered, declared list of steps."""

from __future__ import annotations

from types import ModuleType

from workbench.errors import BadInput

from . import exp1, exp2, exp3, kvxlan, ovn, ovn_vlan, qos, vxlan

SCENARIOS: dict[str, ModuleType] = {m.NAME: m for m in (exp1, exp2, exp3, vxlan, kvxlan, qos, ovn, ovn_vlan)}


def get(name: str) -> ModuleType:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise BadInput(f"unknown scenario {name!r} (have: {', '.join(SCENARIOS)})") from None
