"""Experiment 3: Open vSwitch + VLAN: a tag per container port."""

from __future__ import annotations

from dataclasses import replace

from workbench.setup import Setup
from workbench.steps import Plan

from .common import converged, run_containers
from .exp2 import infrastructure, plumb_on_ovs

NAME = "exp3"
TITLE = "Exp3 OVS + VLAN"
SUMMARY = "As Exp2, with a VLAN tag on each container port: only containers with the same tag talk."


def plan(setup: Setup) -> Plan:
    # containers without a tag get VLAN 10, so every port is tagged
    setup = replace(
        setup,
        containers=tuple(c if c.vlan is not None else replace(c, vlan=10) for c in setup.containers),
    )
    steps = (
        infrastructure(setup)
        + run_containers(setup)
        + plumb_on_ovs(
            setup,
            vlan_note=" as an access port with its VLAN tag (OVS keeps tags apart, also across the tunnel)",
            tagged=True,
        )
        + converged(setup, lambda c: f"vlan {c.vlan}")
    )
    return Plan(NAME, TITLE, SUMMARY, tuple(steps), expect={"same_vlan_only": True})
