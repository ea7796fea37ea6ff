"""The walk: every check in path order, from facts (already read) to a DoctorReport.

Nothing here touches the system: `collect` reads the facts and hands them to
`build_report`, which walks the path between two containers hop by hop and says
OK / FAIL / WARN for each check with the value it read and, on FAIL, the fix.
"""

from __future__ import annotations

from dataclasses import replace

from ..intents import LabUp, PairTalks
from .check_end import check_container, check_veth
from .check_kernel import kernel_walk
from .check_path import check_firewall, check_linux_bridge, check_ovs, check_tunnel
from .facts import DoctorFacts
from .impaired import check_flap, check_link_impair, check_underlay_loss
from .model import Check, DoctorReport, Out, Render, Status, plain
from .path import host_plan, kernel_path, linux_bridge, ovs_entry, path_tunnel


def check_host_ok(out: Out, f: DoctorFacts, host_name: str) -> bool:
    host = f.hosts[host_name]
    if host.ns_ok:
        return True
    out.add(
        f"host {host_name}",
        "reachable",
        Status.FAIL,
        f"{host_name} cannot be read: {host.error or 'namespace missing'}",
        out.fix("bring the lab up", LabUp(host_name)),
    )
    return False


def check_end_to_end(out: Out, f: DoctorFacts) -> None:
    hop = "end to end"
    if f.small is None:
        return
    if f.small.ok and (f.big is None or f.big.ok):
        out.add(hop, "ping", Status.OK, ", ".join(p.describe() for p in (f.small, f.big) if p))
    elif f.small.ok:
        out.add(
            hop,
            "ping",
            Status.FAIL,
            f"small pings pass ({f.small.describe()}) but full-size DF frames are lost ({f.big.describe()})"  # type: ignore[union-attr]
            ": a hop drops big frames (MTU)",
        )
    else:
        out.add(hop, "ping", Status.FAIL, f"{f.src.name} cannot ping {f.dst.name}: {f.small.describe()}")


def _loss(out: Out, f: DoctorFacts, host: str, peer: str) -> None:
    port = path_tunnel(f, host, peer)
    check_underlay_loss(out, f, host, port.name if port else "?")


def build_report(f: DoctorFacts, render: Render = plain, seconds: float = 0.0) -> DoctorReport:
    """Every check, in path order: src container, its veth, its bridge(s), its OVS and tunnel,
    both ends of each tunnel on the way (and the OVS of any host in between), the far host's
    OVS, bridge, veth and the destination container; then end to end."""
    out = Out(render)
    src, dst = f.src, f.dst
    hosts_ok = all(check_host_ok(out, f, h) for h in f.hosts_on_path)
    if not hosts_ok:
        return DoctorReport(src.name, dst.name, src.host, dst.host, f.scenario, tuple(out.checks), seconds)
    check_container(out, f, src, f.src_plan, f.dst_ip)
    if src.running and src.eth0 is not None:
        check_flap(out, f, src)
        check_veth(out, f, src, f.src_plan, dst)
        check_link_impair(out, f, src)
    lb_src = linux_bridge(f, src, f.src_plan)
    lb_dst = linux_bridge(f, dst, f.dst_plan)
    if lb_src:
        check_linux_bridge(out, f, src.host, lb_src)
    src_br = host_plan(f, src.host).ovs_bridge
    dst_br = host_plan(f, dst.host).ovs_bridge
    if f.cross_host and kernel_path(f):
        kernel_walk(out, f)
    elif f.cross_host:
        check_ovs(out, f, src.host, ovs_entry(f, src, f.src_plan), None)
        if not lb_src:
            check_firewall(out, f, src.host, None, f"OVS {src_br} ({src.host})")
        path = f.hosts_on_path
        for a, b in zip(path, path[1:], strict=False):
            _loss(out, f, a, b)
            check_tunnel(out, f, a, b, outbound=True)
            _loss(out, f, b, a)
            check_tunnel(out, f, b, a, outbound=False)
            back = path_tunnel(f, b, a)
            if b != dst.host:  # a host in between: in by one tunnel, out by the next
                check_ovs(out, f, b, back.name if back else None, None)
        back = path_tunnel(f, dst.host, path[-2])
        check_ovs(out, f, dst.host, back.name if back else None, ovs_entry(f, dst, f.dst_plan))
        if not lb_dst:
            check_firewall(out, f, dst.host, None, f"OVS {dst_br} ({dst.host})")
    elif f.src_plan.ovs or lb_src is None:
        check_ovs(out, f, src.host, ovs_entry(f, src, f.src_plan), ovs_entry(f, dst, f.dst_plan))
    if lb_dst and (f.cross_host or lb_dst != lb_src):
        check_linux_bridge(out, f, dst.host, lb_dst)
    if dst.running and dst.eth0 is not None:
        check_flap(out, f, dst)
        check_veth(out, f, dst, f.dst_plan, src)
        check_link_impair(out, f, dst)
    check_container(out, f, dst, f.dst_plan, f.src_ip)
    check_end_to_end(out, f)
    return DoctorReport(
        src.name, dst.name, src.host, dst.host, f.scenario, _until_talks(out.checks, f), seconds
    )


def _until_talks(checks: list[Check], f: DoctorFacts) -> tuple[Check, ...]:
    """Each fix ends by waiting until the pair talks again (intents.PairTalks): a fix
    is done when traffic flows, as `scenario apply` is. Its commands stay the fix's."""
    if not (f.src.running and f.dst_ip):
        return tuple(checks)
    talks = PairTalks(f.src.host, f.src.ref, f.dst_ip)
    return tuple(
        replace(c, fix=replace(c.fix, intents=(*c.fix.intents, talks))) if c.fix is not None else c
        for c in checks
    )
