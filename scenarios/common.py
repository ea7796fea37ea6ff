"""Pieces two or more scenarios declare the same way."""

from __future__ import annotations

from workbench import actions as a
from workbench.setup import Setup
from workbench.steps import Step


def tunnel_steps(setup: Setup, host: str) -> list[Step]:
    """The host's tunnel port(s) on its OVS bridge; RSTP when the tunnels form loops."""
    rc = setup.rc(host)
    tunnels = setup.tunnels(host)
    steps = [
        a.tunnel_port(
            host,
            rc.ovs_bridge,
            port,
            rc.tun_type,
            remote,
            why=f"Wraps the containers' Ethernet frames in {rc.tun_type.upper()} to "
            f"{'the other host' if len(tunnels) == 1 else 'a peer host'} ({remote}), so the hosts "
            "share one layer-2 segment.",
        )
        for port, remote in tunnels
    ]
    if setup.loops():
        steps.append(
            a.bridge_rstp(
                host,
                rc.ovs_bridge,
                why="A full mesh of tunnels is a layer-2 loop: broadcasts would circle forever. "
                "Rapid spanning tree blocks one path per loop (one setting in OVSDB, any number "
                "of hosts); the price is that blocked pairs talk through a third host.",
            )
        )
    return steps


def run_containers(setup: Setup) -> list[Step]:
    return [
        a.container_run(
            spec,
            why=f"A container on {spec.host} with no network at all (--net=none): "
            "we wire it by hand, exactly as the seed does.",
        )
        for spec in setup.all_containers
    ]
