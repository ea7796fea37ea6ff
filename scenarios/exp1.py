"""Experiment 1: docker bridge + Open vSwitch (the seed's tunnel_via_docker_and_ovs)."""

from __future__ import annotations

from workbench import actions as a
from workbench.setup import Setup
from workbench.steps import Plan

from .common import converged, run_containers, tunnel_steps

NAME = "exp1"
TITLE = "Exp1 docker bridge + OVS"
SUMMARY = "Containers on a linux bridge docker0; OVS br0 inside docker0 carries a tunnel to the other host."


def plan(setup: Setup) -> Plan:
    steps = []
    for host in setup.hosts:
        rc = setup.rc(host.name)
        steps += [
            a.linux_bridge(
                host.name,
                rc.bridge_name,
                rc.bridge_address,
                why=f"Containers on {host.name} plug into a linux bridge, as docker does; "
                f"it holds the host's address {rc.bridge_ip} in the container subnet.",
            ),
            a.ovs_bridge(
                host.name,
                rc.ovs_bridge,
                datapath=host.datapath,
                why="An Open vSwitch bridge to carry the tunnel (userspace datapath: "
                "this kernel has no OVS module).",
            ),
        ]
        steps += tunnel_steps(setup, host.name)
        steps += [
            a.enslave(
                host.name,
                rc.ovs_bridge,
                rc.bridge_name,
                why=f"Plugging {rc.ovs_bridge} into {rc.bridge_name} joins the two bridges: "
                "container frames now reach OVS and the tunnel.",
            ),
            a.iptables_rules(
                host.name,
                a.seed_rules(rc.subnet, rc.ovs_bridge),
                why="The seed's iptables.sh: masquerade what leaves the subnet, accept forwarding "
                "through the bridge (each rule is marked 'containet' so undo removes exactly these).",
            ),
        ]
    steps += run_containers(setup)
    for spec in setup.all_containers:
        rc = setup.rc(spec.host)
        mtu = setup.container_mtu(rc.tun_type)
        odd = (
            f" As in the seed, the route points at {setup.rc(setup.hosts[0].name).bridge_ip}, "
            "host1's bridge, even from another host: the tunnel makes it reachable."
            if spec.host != setup.hosts[0].name
            else ""
        )
        steps.append(
            a.container_plumb(
                spec,
                a.Attach(rc.bridge_name),
                gateway=setup.rc(setup.hosts[0].name).bridge_ip,
                mtu=mtu,
                why=f"The seed's start-container.sh: a veth pair, one end is eth0 inside with "
                f"{spec.cidr} and a default route, the other joins {rc.bridge_name}. "
                f"MTU {mtu} leaves room for the {rc.tun_type.upper()} header (at 1500 ping works "
                f"but TCP stalls).{odd}",
            )
        )
    steps += converged(setup)
    return Plan(NAME, TITLE, SUMMARY, tuple(steps), expect={"all_talk": True})
