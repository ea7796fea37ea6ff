"""Pieces two or more scenarios declare the same way."""

from __future__ import annotations

from collections.abc import Callable

from workbench import actions as a
from workbench.intents import TunnelsCarry
from workbench.setup import Setup
from workbench.steps import Step

SegmentOf = Callable[[a.ContainerSpec], str]  # the layer-2 segment a container is on


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


def converged(setup: Setup, segment_of: SegmentOf = lambda _c: "") -> list[Step]:
    """The end of an OVS plan, so that "applied" means every pair can talk: with loops
    (a mesh of three or more hosts), wait until spanning tree has converged; then wait
    until the tunnels carry frames (see `carries`). `segment_of` names the layer-2
    segment a container is on (exp3: its VLAN); probes stay within a segment."""
    steps = []
    if setup.loops():
        bridges = tuple((h.name, setup.rc(h.name).ovs_bridge) for h in setup.hosts)
        steps.append(
            a.rstp_converged(
                bridges,
                why="Turning RSTP on is instant, settling the tree is not: for a few seconds ports are "
                "still Learning or Discarding and frames between some hosts are dropped. This step "
                "waits (30 s at most) until every port of every bridge is stable (Forwarding, or "
                "blocked as Alternate/Backup) and all bridges agree on one root; a container's new "
                "port on the bridge goes through the same.",
            )
        )
    return steps + carries(
        setup,
        segment_of,
        waiting="Every port and tunnel is configured, but the first frames across still wait on "
        "ARP through the tunnel, the bridges' MAC learning and, on the userspace datapath, OVS "
        "resolving the other host's underlay address",
    )


def carries(
    setup: Setup, segment_of: SegmentOf, *, waiting: str, within: str = "", after: str = ""
) -> list[Step]:
    """A traffic barrier (actions.tunnels_carry), per segment: the first container of
    each host pings the first of every other host (every tunnel, both ways), and every
    other container pings the first of the next host (its own port, both ways).
    Nothing when no segment spans two hosts (one host; real mode, where a machine
    plans its own). Its why: `waiting` (what frames still wait for), what the step
    does, `within` ("on each ..., ") before its probes, then `after`."""
    why = (
        f"{waiting}: this step changes nothing and waits ({TunnelsCarry.bound:g} s at most) until every "
        "tunnel and every container's port carries frames, so that `apply` returns when traffic "
        f"flows: {within}the first container of each host reaches the first of every other host, "
        f"every other container the first of the next host.{after}"
    )
    segments: dict[str, dict[str, list[a.ContainerSpec]]] = {}
    for spec in setup.all_containers:
        segments.setdefault(segment_of(spec), {}).setdefault(spec.host, []).append(spec)
    pairs = []
    for by_host in segments.values():
        if len(by_host) < 2:
            continue
        firsts = [specs[0] for specs in by_host.values()]
        pairs += [(x, y) for x in firsts for y in firsts if x.host != y.host]
        for k, specs in enumerate(by_host.values()):
            pairs += [(rest, firsts[(k + 1) % len(firsts)]) for rest in specs[1:]]
    return [a.tunnels_carry(pairs, why=why)] if pairs else []


def run_containers(setup: Setup) -> list[Step]:
    return [
        a.container_run(
            spec,
            why=f"A container on {spec.host} with no network at all (--net=none): "
            "we wire it by hand, exactly as the seed does.",
        )
        for spec in setup.all_containers
    ]
