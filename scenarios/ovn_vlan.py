"""Exp3's isolation the OVN way: a logical switch per VLAN instead of a tag per port."""

from __future__ import annotations

from workbench.setup import Setup
from workbench.steps import Plan

from .ovn import build

NAME = "ovn-vlan"
TITLE = "OVN + isolation"
SUMMARY = "As ovn, with a logical switch per VLAN of exp3: only containers on the same switch talk."
#: the engine numbers containers' VLANs as for exp3
VLANS = True


def plan(setup: Setup) -> Plan:
    return build(setup, NAME, TITLE, SUMMARY, lambda c: f"ls{c.vlan if c.vlan is not None else 10}")
