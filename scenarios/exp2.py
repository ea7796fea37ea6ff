"""Experiment 2: Open vSwitch only (the seed's tunnel_via_ovs): no docker0."""

from __future__ import annotations

from workbench import actions as a
from workbench.setup import Setup
from workbench.steps import Plan, Step

from .common import converged, run_containers, tunnel_steps

NAME = "exp2"
TITLE = "Exp2 OVS only"
SUMMARY = "No linux bridge: each container's host-side veth is a port of OVS br0, which carries the tunnel."


def infrastructure(setup: Setup) -> list[Step]:
    steps = []
    for host in setup.hosts:
        rc = setup.rc(host.name)
        steps += [
            a.ovs_bridge(
                host.name,
                rc.ovs_bridge,
                datapath=host.datapath,
                why="The only bridge on this host: containers and the tunnel are all ports "
                "of this Open vSwitch bridge (userspace datapath).",
            ),
        ]
        steps += tunnel_steps(setup, host.name)
    return steps


def plumb_on_ovs(setup: Setup, vlan_note: str = "", tagged: bool = False) -> list[Step]:
    userspace = {h.name: h.datapath == "netdev" for h in setup.hosts}
    steps = []
    for spec in setup.all_containers:
        rc = setup.rc(spec.host)
        mtu = setup.container_mtu(rc.tun_type, tagged=tagged)
        steps.append(
            a.container_plumb(
                spec,
                a.Attach(rc.ovs_bridge, ovs=True),
                gateway=setup.rc(setup.hosts[0].name).bridge_ip,
                mtu=mtu,
                tx_offload=not userspace[spec.host],
                why=f"A veth pair: eth0 inside with {spec.cidr}, the other end becomes a port of "
                f"{rc.ovs_bridge}{vlan_note}. The seed still adds a default route via "
                f"{setup.rc(setup.hosts[0].name).bridge_ip}, which no one owns in this "
                f"experiment: the subnet itself is reachable, the outside is not. MTU {mtu} "
                + (
                    "fits the tunnel with the VLAN tag the frame carries inside it."
                    if tagged
                    else "fits the tunnel."
                )
                + (
                    " Checksum offload is turned off inside: OVS's userspace datapath would "
                    "forward TCP segments with their checksum never filled in (ping works, "
                    "TCP dies)."
                    if userspace[spec.host]
                    else ""
                ),
            )
        )
    return steps


def plan(setup: Setup) -> Plan:
    steps = infrastructure(setup) + run_containers(setup) + plumb_on_ovs(setup) + converged(setup)
    return Plan(NAME, TITLE, SUMMARY, tuple(steps), expect={"all_talk": True})
