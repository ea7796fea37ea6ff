"""Typed intents: what a scenario step or a doctor's fix wants to hold (see base)."""

from .base import Cmd, ContainerRef, Intent, Where, render, render_plain
from .commands import Containet, LabUp, ScenarioApplied
from .containers import (
    Address,
    Attach,
    ContainerRun,
    ContainerSpec,
    PairTalks,
    Plumb,
    Route,
    TunnelsCarry,
    TxChecksumOff,
)
from .firewall import AcceptBridged, FirewallRules, Rule, seed_rules
from .kernel import KernelUnderlay, VxlanDevice, VxlanRemote
from .netlink import Enslave, LinkUp, LinuxBridge, NeighboursRetried, SetMtu
from .shaping import QosCap
from .switch import InterfaceType, OvsBridge, OvsPort, PortTag, Rstp, RstpConverged, TunnelPort, TunnelRemote

__all__ = [
    "AcceptBridged",
    "Address",
    "Attach",
    "Cmd",
    "ContainerRef",
    "ContainerRun",
    "ContainerSpec",
    "Containet",
    "Enslave",
    "FirewallRules",
    "Intent",
    "KernelUnderlay",
    "InterfaceType",
    "LabUp",
    "LinkUp",
    "NeighboursRetried",
    "PairTalks",
    "LinuxBridge",
    "OvsBridge",
    "OvsPort",
    "Plumb",
    "PortTag",
    "QosCap",
    "Route",
    "Rstp",
    "RstpConverged",
    "Rule",
    "ScenarioApplied",
    "SetMtu",
    "TunnelPort",
    "TunnelRemote",
    "TunnelsCarry",
    "TxChecksumOff",
    "VxlanDevice",
    "VxlanRemote",
    "Where",
    "render",
    "render_plain",
    "seed_rules",
]
