"""The doctor on an OVN path (scenarios ovn, ovn-vlan): the logical path by `ovn-trace`
on the southbound, the physical one by `ofproto/trace` on the source chassis, and
what OVN needs for either to hold -- central up, each end's chassis running its
ovn-controller, each logical port bound where its container is and up, the Geneve
tunnel between the two chassis.

Hops, in path order: the source container, OVN central, the source chassis, the
logical switch (ovn-trace), the source's br-int (ofproto/trace), the Geneve tunnel,
the destination chassis, the destination container (a ping). A broken daemon or a
lost binding is fixed by re-applying the scenario (its steps re-create what is gone).
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Sequence

from .. import ovn
from ..errors import WorkbenchError
from ..host import Host, Place
from ..intents import Cmd, render
from ..inventory.model import Container, OvnPort, OvnView, Snapshot
from ..measure.ping import PingOptions, Target, ping_from
from ..ovs import appctl
from .model import DoctorReport, Fix, Out, Status
from .trace import parse_dp_ports, parse_trace


def _icmp_match(src_port: str, smac: str, dmac: str, sip: str, dip: str) -> str:
    return (
        f'inport == "{src_port}" && eth.src == {smac} && eth.dst == {dmac} && '
        f"ip4.src == {sip} && ip4.dst == {dip} && ip.ttl == 64 && icmp4.type == 8"
    )


def _port(view: OvnView, name: str) -> OvnPort | None:
    return next((p for ls in view.switches for p in ls.ports if p.name == name), None)


def _mac_ip(port: OvnPort) -> tuple[str, str]:
    words = (port.addresses[0] if port.addresses else "").split()
    return (words[0], words[1]) if len(words) >= 2 else ("", "")


def diagnose_ovn(
    hosts: Sequence[Host],
    snap: Snapshot,
    scenario: str,
    src: str,
    dst: str,
    *,
    probe: bool = True,
    progress: Callable[[str], None] | None = None,
    started: float | None = None,
) -> DoctorReport:
    say = progress or (lambda _m: None)
    t0 = started or time.monotonic()
    by_name = {h.name: h for h in hosts}

    def shown(host: str, cmd: Cmd) -> str:
        return render(by_name[host], cmd) if host in by_name else cmd.text

    out = Out(shown)
    a, b = snap.container(src), snap.container(dst)
    if a is None or b is None:
        raise WorkbenchError(f"unknown container {src if a is None else dst!r} (see `containet status`)")
    hub = hosts[0].name
    redo = out.redo(hub, scenario)
    view = snap.ovn

    def report() -> DoctorReport:
        return DoctorReport(
            a.name,
            b.name,
            a.host or a.meant_for,
            b.host or b.meant_for,
            scenario,
            tuple(out.checks),
            time.monotonic() - t0,
        )

    # the source container
    _end(out, a, redo)
    # OVN central
    hop = f"ovn central ({hub})"
    if view is None:
        out.add(hop, "northbound database", Status.FAIL, f"no OVN northbound database runs on {hub}", redo)
        return report()
    out.add(
        hop,
        "ovn-northd",
        Status.OK if view.northd else Status.FAIL,
        "running" if view.northd else f"not running on {view.central}",
        redo,
    )
    if view.error:
        out.add(hop, "databases", Status.FAIL, view.error, redo)
        return report()
    out.add(hop, "databases", Status.OK, f"northbound and southbound answer ({view.nb}, {view.sb})")
    pa, pb = _port(view, a.name), _port(view, b.name)
    # the source chassis
    _chassis(out, view, a, pa, redo)
    if pa is None or pb is None:
        return report()
    # the logical path
    say("ovn-trace on the southbound")
    hop = f"logical switch {pa.switch}"
    if pa.switch != pb.switch:
        out.add(
            hop,
            "same logical switch",
            Status.WARN,
            f"{a.name} is on {pa.switch}, {b.name} on {pb.switch}: isolated by design (no router joins them)",
        )
        return report()
    smac, sip = _mac_ip(pa)
    dmac, dip = _mac_ip(pb)
    match = _icmp_match(pa.name, smac, dmac, sip, dip)
    argv = ["ovn-trace", f"--db={view.sb}", "--minimal", pa.switch, match]
    traced = Place.root().run(argv, check=False)
    text = (traced.stdout or traced.stderr).strip()
    want = f'output("{pb.name}")'
    last = text.splitlines()[-1] if text else "(no output)"
    out.add(
        hop,
        "ovn-trace",
        Status.OK if want in text else Status.FAIL,
        f"{shlex.join(argv)} -> {want if want in text else last}",
        redo,
    )
    # the source's br-int: what OVS does with the frame
    host_a, host_b = by_name.get(a.host), by_name.get(b.host)
    if host_a is not None and a.host_veth:
        say(f"ofproto/trace on {a.host}")
        hop = f"{a.host} {ovn.BR_INT}"
        flow = (
            f"in_port={a.host_veth},icmp,dl_src={smac},dl_dst={dmac},nw_src={sip},nw_dst={dip},"
            "nw_ttl=64,icmp_type=8"
        )
        try:
            dp = parse_dp_ports(appctl(host_a, "dpif/show"))
            fact = parse_trace(ovn.BR_INT, flow, appctl(host_a, "ofproto/trace", ovn.BR_INT, flow), dp)
        except WorkbenchError as exc:
            out.add(hop, "ofproto/trace", Status.FAIL, str(exc), redo)
            return report()
        if a.host != b.host and host_b is not None:
            ok = host_b.underlay_ip in fact.tunnels
            evidence = f"Datapath actions: {fact.actions or 'drop'}" + (
                f" (Geneve to {host_b.underlay_ip})" if ok else f" (no tunnel to {host_b.underlay_ip})"
            )
        else:
            ok = bool(b.host_veth and b.host_veth in fact.outputs)
            evidence = f"Datapath actions: {fact.actions or 'drop'}"
        out.add(hop, "ofproto/trace", Status.OK if ok else Status.FAIL, evidence, redo)
    # the Geneve tunnel between the chassis
    if a.host != b.host and host_a is not None and host_b is not None:
        hop = f"geneve {a.host} <-> {b.host}"
        ca = next((c for c in view.chassis if c.name == a.host), None)
        cb = next((c for c in view.chassis if c.name == b.host), None)
        for here, there, ch in ((host_a, host_b, ca), (host_b, host_a, cb)):
            has = ch is not None and there.underlay_ip in ch.tunnels
            out.add(
                hop,
                f"{here.name} -> {there.underlay_ip}",
                Status.OK if has else Status.FAIL,
                f"{here.name}'s br-int has {'a' if has else 'no'} Geneve port to {there.underlay_ip}",
                redo,
            )
    # the destination chassis and container
    if b.host != a.host:
        _chassis(out, view, b, pb, redo)
    _end(out, b, redo)
    if probe and a.pid and b.ip:
        say(f"ping {b.name} from {a.name}")
        target = Target(b.name, b.ip)
        opts = PingOptions(count=2, interval=0.05, timeout=0.6)
        got = ping_from(Place.of_pid(a.pid, a.name), a.name, [target], opts)[target]
        out.add(
            b.name,
            "ping",
            Status.OK if got.received else Status.FAIL,
            f"{got.received} of {got.sent} echo replies from {b.ip}",
            redo,
        )
    return report()


def _end(out: Out, c: Container, fix: Fix | None) -> None:
    ok = c.status == "running" and bool(c.pid) and c.host_veth is not None
    out.add(
        c.name,
        "container wired",
        Status.OK if ok else Status.FAIL,
        f"{c.status}, eth0 {c.ip or 'no address'}, host side {c.host_veth or 'none'} on "
        f"{c.attached_to or 'nothing'}",
        fix,
    )


def _controller_state(host: str, alive: bool, crashes: str) -> str:
    """ "running", or why not; a crash its monitor saw is named either way (23.03.1
    crashes now and then right after it starts: the monitor starts it again, after
    10 s when it crashed twice within 10 s)."""
    if alive:
        return f"running (its monitor saw {crashes})" if crashes else "running"
    if crashes:
        return (
            f"ovn-controller on {host} is down: it crashed, its monitor starts it again within 10 s "
            f"(monitor: {crashes})"
        )
    return f"ovn-controller is not running on {host}"


def _chassis(out: Out, view: OvnView, c: Container, port: OvnPort | None, fix: Fix | None) -> None:
    host = c.host or c.meant_for
    hop = f"chassis {host}"
    ch = next((x for x in view.chassis if x.name == host), None)
    if ch is None:
        out.add(hop, "registered", Status.FAIL, f"no chassis {host} in the southbound", fix)
    else:
        alive = ch.controller is not False
        out.add(
            hop,
            "ovn-controller",
            Status.OK if alive else Status.FAIL,
            _controller_state(host, alive, ch.crashes),
            fix,
        )
    if port is None:
        out.add(
            hop, f"logical port {c.name}", Status.FAIL, f"no logical port {c.name} in the northbound", fix
        )
        return
    where = port.chassis or "nowhere"
    ok = port.chassis == host and port.up
    out.add(
        hop,
        f"logical port {c.name}",
        Status.OK if ok else Status.FAIL,
        f"{port.switch}/{port.name} bound on {where}, {'up' if port.up else 'down'}",
        fix,
    )
