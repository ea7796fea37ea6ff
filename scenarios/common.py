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


def converged(setup: Setup) -> list[Step]:
    """With loops (a mesh of three or more hosts): wait, at the very end, until spanning
    tree has converged, so that "applied" means every pair can talk."""
    if not setup.loops():
        return []
    bridges = tuple((h.name, setup.rc(h.name).ovs_bridge) for h in setup.hosts)
    return [
        a.rstp_converged(
            bridges,
            why="Turning RSTP on is instant, settling the tree is not: for a few seconds ports are "
            "still Learning or Discarding and frames between some hosts are dropped. This step "
            "waits (30 s at most) until every port of every bridge is stable (Forwarding, or "
            "blocked as Alternate/Backup) and all bridges agree on one root; a container's new "
            "port on the bridge goes through the same.",
        )
    ]


def run_containers(setup: Setup) -> list[Step]:
    return [
        a.container_run(
            spec,
            why=f"A container on {spec.host} with no network at all (--net=none): "
            "we wire it by hand, exactly as the seed does.",
        )
        for spec in setup.all_containers
    ]
