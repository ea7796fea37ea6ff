"""The seed's to-do: Exp2 with a VXLAN tunnel instead of GRE."""

from __future__ import annotations

from workbench.setup import Setup
from workbench.steps import Plan

from . import exp2

NAME = "vxlan"
TITLE = "VXLAN variant"
SUMMARY = "Exp2 (OVS only) with TUN_TYPE=vxlan: UDP-encapsulated frames, port 4789."


def plan(setup: Setup) -> Plan:
    base = exp2.plan(setup.with_tunnel("vxlan"))
    return Plan(NAME, TITLE, SUMMARY, base.steps, expect=base.expect)
