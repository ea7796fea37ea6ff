"""The doctor's hands: read the facts along the path between two containers,
probe, trace, and apply fixes. The judging is in `doctor_checks` (pure).

Reads: netlink in each namespace (Place.netlink), OVSDB per host (Ovs),
`iptables-save` and /proc/sys inside the host namespace, `ovs-appctl
ofproto/trace`, `dpif/show` and `ovs/route/lookup`, and pings (icmplib) from
inside the source container and from the source host to the peer host's
underlay address (inside namespaces the lab created). Every wait is bounded.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pyroute2.netlink.exceptions import NetlinkError

from . import links
from .actions import render
from .doctor_checks import (
    DoctorFacts,
    DoctorReport,
    EndFacts,
    EndPlan,
    FirewallFact,
    FixAction,
    FixOp,
    HostFacts,
    HostPlan,
    MtuHop,
    MtuReport,
    OvsPortFact,
    ProbeFact,
    RouteFact,
    TraceFact,
    build_report,
    growing_sizes,
    host_plan,
    mtu_op,
    mtu_verdict,
    next_probe,
    ovs_entry,
    parse_dp_ports,
    parse_trace,
    path_mtu_limit,
    path_tunnel,
    tunnel_route,
)
from .errors import BadInput, NotReady, WorkbenchError
from .host import Host, Place
from .inventory.model import Container, Snapshot
from .marks import IPT_COMMENT, host_veth
from .measure.ping import PingOptions, Target, ping_from
from .ovs import Ovs, appctl, bridge_ports, one
from .setup import load_tunrc
from .steps import Cmd

if TYPE_CHECKING:
    from .engine import Engine

Progress = Callable[[str], None]
BRIDGE_NF = "/proc/sys/net/bridge/bridge-nf-call-iptables"


def _quiet(_msg: str) -> None:
    pass


# --- expectations from the active scenario's plan -------------------------------------
_PLUMB_ADDR = re.compile(r"ip addr add (\S+) dev eth0")
_PLUMB_GW = re.compile(r"ip route add default via (\S+)")
_PLUMB_OVS = re.compile(r"ovs-vsctl add-port (\S+) (\S+)(?: tag=(\d+))?")
_PLUMB_LB = re.compile(r"ip link set (\S+) master (\S+)")
_TUNNEL = re.compile(r"add-port (\S+) (\S+) -- set interface \S+ type=(\S+) options:remote_ip=(\S+)")


def plans_of(engine: Engine) -> tuple[str | None, str | None, dict[str, EndPlan], dict[str, HostPlan]]:
    """(scenario, subnet, per-container plan, per-host plan) read from the plan's own commands."""
    active = engine.active()
    if active is None:
        try:
            hosts = tuple(engine.hosts())
            rcs = load_tunrc(hosts, engine.tunrc_dir)
            subnet = rcs[hosts[0].name].subnet
            hp = {h: HostPlan(ovs_bridge=r.ovs_bridge) for h, r in rcs.items()}
            return None, subnet, {}, hp
        except WorkbenchError:
            return None, None, {}, {}
    setup = engine.setup(active.scenario)
    plan = engine.plan(active.scenario, setup)
    subnet = setup.rc(setup.hosts[0].name).subnet
    ends: dict[str, EndPlan] = {}
    hostplans: dict[str, HostPlan] = {}
    for h in setup.hosts:
        rc = setup.rc(h.name)
        lb = next((s.id.split(":", 1)[1] for s in plan.steps if s.id.startswith(f"{h.name}/bridge:")), None)
        tunnels = []
        for s in plan.steps:
            if s.id.startswith(f"{h.name}/tunnel:"):
                for c in s.commands:
                    m = _TUNNEL.search(c.text)
                    if m:
                        tunnels.append((m.group(2), m.group(3), m.group(4)))
        hostplans[h.name] = HostPlan(lb, rc.ovs_bridge, tuple(tunnels))
    for s in plan.steps:
        if "/plumb:" not in s.id:
            continue
        name = s.id.split(":", 1)[1]
        text = "\n".join(c.text for c in s.commands)
        addr, gw = _PLUMB_ADDR.search(text), _PLUMB_GW.search(text)
        on_ovs, on_lb = _PLUMB_OVS.search(text), _PLUMB_LB.search(text)
        ends[name] = EndPlan(
            cidr=addr.group(1) if addr else None,
            attach=on_ovs.group(1) if on_ovs else (on_lb.group(2) if on_lb else None),
            ovs=on_ovs is not None,
            vlan=int(on_ovs.group(3)) if on_ovs and on_ovs.group(3) else None,
            vlan_known=on_ovs is not None,
            gateway=gw.group(1) if gw else None,
        )
    return active.scenario, subnet, ends, hostplans


# --- reading -----------------------------------------------------------------------------
def ovs_facts(ovs: Ovs) -> tuple[tuple[str, ...], tuple[OvsPortFact, ...]]:
    bridges, out = [], []
    for br, pairs in bridge_ports(ovs):
        bridges.append(br["name"])
        for port, iface in pairs:
            stats = iface.get("statistics") or {}
            out.append(
                OvsPortFact(
                    name=port["name"],
                    bridge=br["name"],
                    type=iface.get("type") or "",
                    tag=one(port.get("tag")),
                    options=tuple(sorted((iface.get("options") or {}).items())),
                    admin_state=one(iface.get("admin_state")) or "",
                    link_state=one(iface.get("link_state")) or "",
                    error=one(iface.get("error")) or "",
                    stats=tuple(sorted((k, int(v)) for k, v in stats.items())),
                )
            )
    return tuple(bridges), tuple(out)


def _read_sysctl(path: str) -> int | None:
    try:
        with open(path) as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def firewall_facts(host: Host) -> FirewallFact:
    nf = host.place.call(_read_sysctl, BRIDGE_NF)  # /proc/sys/net follows the thread's netns
    try:
        save = host.place.run(["iptables-save", "-c", "-t", "filter"], timeout=10).stdout
    except WorkbenchError as exc:
        return FirewallFact("", nf, str(exc))
    return FirewallFact(save, nf)


def host_facts(host: Host, peer: Host | None, probe: bool) -> HostFacts:
    if not host.place.exists():
        return HostFacts(host.name, host.underlay_ip, ns_ok=False, ovs_ok=False, error="namespace missing")
    try:
        rows = host.place.netlink(links.read_links)
    except Exception as exc:  # noqa: BLE001 - reported as the fact
        return HostFacts(host.name, host.underlay_ip, ns_ok=False, ovs_ok=False, error=f"netlink: {exc}")
    facts = HostFacts(host.name, host.underlay_ip, links=tuple(rows), userspace=host.datapath == "netdev")
    try:
        ovs = Ovs(host.ovs_db, timeout=3)
        try:
            bridges, ports = ovs_facts(ovs)
        finally:
            ovs.close()
        facts = replace(facts, ovs_bridges=bridges, ovs_ports=ports)
    except Exception as exc:  # noqa: BLE001
        facts = replace(facts, ovs_ok=False, error=f"ovs: {exc}")
    facts = replace(facts, firewall=firewall_facts(host))
    if peer is not None and facts.ovs_ok:
        try:
            out = appctl(host, "ovs/route/lookup", peer.underlay_ip)
            facts = replace(facts, underlay_route=" ".join(out.split()))
        except WorkbenchError as exc:
            facts = replace(facts, underlay_route_error=str(exc))
        if probe:
            facts = replace(
                facts, underlay_ping=ping_probe(host.place, host.name, peer.underlay_ip, 56, False)
            )
    return facts


def ping_probe(place: Place, src: str, ip: str, size: int, df: bool, count: int = 2) -> ProbeFact:
    opts = PingOptions(count=count, interval=0.05, size=max(size, 0), df=df, timeout=0.6)
    try:
        res = ping_from(place, src, [Target(ip, ip)], opts)[Target(ip, ip)]
    except (OSError, WorkbenchError) as exc:
        return ProbeFact(size, df, count, 0, str(exc))
    return ProbeFact(size, df, res.sent, res.received, "; ".join(res.errors) or None)


def _route_get(ipr: Any, dst: str) -> RouteFact:
    try:
        msgs = ipr.route("get", dst=dst)
    except NetlinkError as exc:
        return RouteFact(dst, error=exc.args[1] if len(exc.args) > 1 else str(exc))
    if not msgs:
        return RouteFact(dst, error="no answer")
    msg = msgs[0]
    oif = msg.get("RTA_OIF") or msg.get("oif")
    names = {m["index"]: m.get("ifname") for m in ipr.get_links()}
    return RouteFact(dst, dev=names.get(oif), gateway=msg.get("RTA_GATEWAY") or msg.get("gateway"))


def end_facts(c: Container, other_ip: str | None) -> EndFacts:
    running = c.status == "running" and c.pid > 0
    if not running:
        return EndFacts(c.name, c.host, False, host_veth=host_veth(c.name))

    def read(ipr: Any) -> tuple[links.LinkRow | None, RouteFact | None, bool | None]:
        eth0 = links.link_row(ipr, "eth0")
        try:
            offload = links.tx_checksum("eth0") if eth0 is not None else None
        except OSError:
            offload = None
        return eth0, _route_get(ipr, other_ip) if other_ip else None, offload

    try:
        eth0, route, offload = Place.of_pid(c.pid, c.name).netlink(read)
    except (OSError, WorkbenchError):
        return EndFacts(c.name, c.host, False, host_veth=host_veth(c.name))
    return EndFacts(c.name, c.host, True, eth0, route, host_veth(c.name), tx_checksum=offload)


def _trace(host: Host, bridge: str, flow: str) -> TraceFact:
    try:
        dp = parse_dp_ports(appctl(host, "dpif/show"))
        text = appctl(host, "ofproto/trace", bridge, flow)
    except WorkbenchError as exc:
        return TraceFact(bridge, flow, error=str(exc))
    return parse_trace(bridge, flow, text, dp)


def _in_port(facts: HostFacts, port: str | None, bridge: str) -> str | None:
    if port is None:
        return None
    if port == bridge:
        return "LOCAL"
    return port if facts.port(port) is not None else None


def traces(f: DoctorFacts, hosts: dict[str, Host]) -> dict[str, TraceFact]:
    """ofproto/trace on the source host (into OVS from the container side) and, across hosts,
    on every later host of the path (out of the tunnel from the host before it)."""
    out: dict[str, TraceFact] = {}
    src, dst = f.src, f.dst
    if src.eth0 is None or dst.eth0 is None or not f.src_ip or not f.dst_ip:
        return out
    pkt = f"dl_src={src.eth0.mac},dl_dst={dst.eth0.mac},ip,nw_src={f.src_ip},nw_dst={f.dst_ip},nw_proto=1"
    sh = f.hosts[src.host]
    sbr = host_plan(f, src.host).ovs_bridge
    if sh.ovs_ok and sbr in sh.ovs_bridges:
        entry = _in_port(sh, ovs_entry(f, src, f.src_plan), sbr)
        if entry and (f.cross_host or f.src_plan.ovs):
            out[src.host] = _trace(hosts[src.host], sbr, f"in_port={entry},{pkt}")
    if f.cross_host:
        sport = sh.port(src.host_veth)
        vlan = f"dl_vlan={sport.tag}," if sport is not None and sport.tag is not None else ""
        for host in f.hosts_on_path[1:]:  # out of the tunnel from the host before
            prev = f.previous_host(host)
            here = f.hosts.get(host)
            br = host_plan(f, host).ovs_bridge
            tun = path_tunnel(f, host, prev) if prev else None
            if prev is None or here is None or not here.ovs_ok or br not in here.ovs_bridges or tun is None:
                continue
            tun_ips = f"tun_src={f.hosts[prev].underlay_ip},tun_dst={here.underlay_ip}"
            flow = f"{tun_ips},in_port={tun.name},{vlan}{pkt}"
            out[host] = _trace(hosts[host], br, flow)
    return out


def _resolve(engine: Engine, snap: Snapshot, who: str) -> Container:
    found = engine.resolve(who, snap)
    assert isinstance(found, Container)
    return found


def collect(
    engine: Engine, src: str, dst: str, *, probe: bool = True, trace: bool = True, progress: Progress = _quiet
) -> DoctorFacts:
    engine.require_lab()
    progress("reading the inventory")
    snap = engine.snapshot()
    if not snap.docker_connected:
        raise NotReady("dockerd is not answering: the doctor needs the containers' namespaces")
    a, b = _resolve(engine, snap, src), _resolve(engine, snap, dst)
    if a.name == b.name:
        raise BadInput(f"the doctor needs two different containers (got {a.name} twice)")
    hosts = {h.name: h for h in engine.hosts()}
    for c in (a, b):
        if c.host not in hosts:
            raise BadInput(f"{c.name} is on host {c.host!r}, which this lab does not have")
    scenario, subnet, ends, hostplans = plans_of(engine)
    src_plan, dst_plan = ends.get(a.name, EndPlan()), ends.get(b.name, EndPlan())
    a_ip = a.ip or (src_plan.cidr.split("/")[0] if src_plan.cidr else None)
    b_ip = b.ip or (dst_plan.cidr.split("/")[0] if dst_plan.cidr else None)
    route = tunnel_route(
        a.host,
        b.host,
        {h.name: h.underlay_ip for h in hosts.values()},
        {name: [remote for _port, _type, remote in plan.tunnels] for name, plan in hostplans.items()},
    )
    progress("reading hosts, containers and probing")
    with ThreadPoolExecutor(max_workers=6) as pool:
        # each host on the way probes the underlay toward the next one
        fut_hosts = {
            h: pool.submit(host_facts, hosts[h], hosts[route[i + 1]] if i + 1 < len(route) else None, probe)
            for i, h in enumerate(route)
        }
        fut_a = pool.submit(end_facts, a, b_ip)
        fut_b = pool.submit(end_facts, b, a_ip)
        small = big = None
        if probe and a.status == "running" and a.pid and b_ip:
            place = Place.of_pid(a.pid, a.name)
            small = ping_probe(place, a.name, b_ip, 56, False)
            mtu = a.mtu or 1500
            big = ping_probe(place, a.name, b_ip, mtu - 28, True)
        host_map = {h: fut.result() for h, fut in fut_hosts.items()}
        facts = DoctorFacts(
            src=fut_a.result(),
            dst=fut_b.result(),
            src_ip=a_ip,
            dst_ip=b_ip,
            hosts=host_map,
            src_plan=src_plan,
            dst_plan=dst_plan,
            host_plans=hostplans,
            scenario=scenario,
            subnet=subnet,
            small=small,
            big=big,
            route=route,
        )
    if trace:
        progress("tracing the flow in OVS")
        for h, t in traces(facts, hosts).items():
            facts.hosts[h] = replace(facts.hosts[h], trace=t)
    return facts


def renderer(hosts: dict[str, Host]) -> Callable[[str, str, str], str]:
    def rend(host: str, where: str, text: str) -> str:
        if where == "containet" or host not in hosts:
            return text
        return render(hosts[host], Cmd(where, text))

    return rend


def diagnose(
    engine: Engine, src: str, dst: str, *, probe: bool = True, trace: bool = True, progress: Progress = _quiet
) -> DoctorReport:
    started = time.monotonic()
    facts = collect(engine, src, dst, probe=probe, trace=trace, progress=progress)
    hosts = {h.name: h for h in engine.hosts()}
    return build_report(facts, renderer(hosts), seconds=time.monotonic() - started)


# --- fixing --------------------------------------------------------------------------------
def _container_place(engine: Engine, name: str) -> Place:
    c = _resolve(engine, engine.snapshot(), name)
    if c.status != "running" or not c.pid:
        raise NotReady(f"container {c.name} is not running")
    return Place.of_pid(c.pid, c.name)


def _add_route(ipr: Any, dst: str, gateway: str | None) -> None:
    idx = links.must_index(ipr, "eth0")
    kwargs: dict[str, Any] = {"dst": dst, "oif": idx}
    if gateway:
        kwargs["gateway"] = gateway
    else:
        kwargs["scope"] = 253  # link
    try:
        ipr.route("add", **kwargs)
    except NetlinkError as exc:
        if exc.code != 17:
            raise


def apply_op(engine: Engine, op: FixOp) -> None:
    hosts = {h.name: h for h in engine.hosts()}
    if op.kind == "scenario_apply":
        engine.apply(op.arg("name"))
        return
    if op.kind == "lab_up":
        engine.lab_up(progress=_quiet)
        return
    if op.host not in hosts:
        raise BadInput(f"unknown host {op.host!r} in fix {op.cmd!r}")
    host = hosts[op.host]
    place = (
        _container_place(engine, op.where.split(":", 1)[1])
        if op.where.startswith("container:")
        else host.place
    )
    if op.kind == "link_up":
        place.netlink(links.set_up, op.arg("link"))
    elif op.kind == "set_mtu":
        place.netlink(links.set_mtu, op.arg("link"), int(op.arg("mtu")))
    elif op.kind == "set_master":
        place.netlink(links.set_master, op.arg("link"), op.arg("master"))
    elif op.kind == "tx_offload_off":
        place.call(links.tx_checksum, op.arg("link"), False)
    elif op.kind == "add_address":
        place.netlink(links.add_address, "eth0", op.arg("cidr"))
    elif op.kind == "add_route":
        place.netlink(_add_route, op.arg("dst"), dict(op.args).get("gateway"))
    elif op.kind == "iptables_accept_bridge":
        br = op.arg("bridge")
        rule = ["FORWARD", "-i", br, "-o", br, "-m", "comment", "--comment", IPT_COMMENT, "-j", "ACCEPT"]
        if place.run(["iptables", "-w", "-C", *rule], check=False).returncode != 0:
            place.run(["iptables", "-w", "-I", *rule])
    elif op.kind.startswith("ovs_"):
        ovs = Ovs(host.ovs_db, timeout=5)
        try:
            _ovs_op(ovs, op)
        finally:
            ovs.close()
    else:
        raise BadInput(f"unknown fix kind {op.kind!r}")


def _ovs_op(ovs: Ovs, op: FixOp) -> None:
    if op.kind == "ovs_add_port":
        tag = op.arg("tag")
        ovs.add_port(op.arg("bridge"), op.arg("port"), tag=int(tag) if tag else None)
    elif op.kind == "ovs_set_tag":
        tag = op.arg("tag")
        ovs.set_tag(op.arg("port"), int(tag) if tag else None)
    elif op.kind == "ovs_set_remote_ip":
        ovs.api.db_set("Interface", op.arg("port"), ("options", {"remote_ip": op.arg("remote_ip")})).execute(
            check_error=True
        )
    elif op.kind == "ovs_set_type":
        ovs.api.db_set("Interface", op.arg("port"), ("type", op.arg("type"))).execute(check_error=True)
    else:
        raise BadInput(f"unknown fix kind {op.kind!r}")


def apply_fix(engine: Engine, fix: FixAction) -> str:
    for op in fix.ops:
        apply_op(engine, op)
    return f"applied: {fix.title}"


# --- path MTU --------------------------------------------------------------------------------
MAX_PROBES = 14


def measure_mtu(
    engine: Engine, src: str, dst: str, fix: bool = False, progress: Progress = _quiet
) -> MtuReport:
    facts = collect(engine, src, dst, probe=False, trace=False)
    s, d = facts.src, facts.dst
    if s.eth0 is None or d.eth0 is None or not facts.dst_ip:
        raise NotReady(f"{s.name} and {d.name} need eth0 with an address: run `containet doctor {src} {dst}`")
    fits, why = path_mtu_limit(facts)
    tunnel = why if facts.cross_host else None
    hops: list[MtuHop] = [MtuHop(f"{s.name} eth0", s.eth0.mtu)]
    for end in (s, d):
        row = facts.hosts[end.host].link(end.host_veth)
        if row is not None:
            hops.append(MtuHop(f"{end.host} {end.host_veth}", row.mtu))
        lb = row.master if row is not None else None
        lrow = facts.hosts[end.host].link(lb)
        if lrow is not None and lrow.kind == "bridge":
            hops.append(MtuHop(f"{end.host} {lb}", lrow.mtu))
        if end is s and fits is not None:
            hops.append(MtuHop(f"tunnel ({why})", fits))
    hops.append(MtuHop(f"{d.name} eth0", d.eth0.mtu))
    interfaces = tuple(dict.fromkeys(hops))
    local = s.eth0.mtu
    place = _container_place(engine, s.name)
    probes: list[tuple[int, bool]] = []

    def probe(packet: int) -> bool:
        progress(f"DF ping {packet} B")
        ok = ping_probe(place, s.name, facts.dst_ip or "", packet - 28, True).ok
        probes.append((packet, ok))
        return ok

    lo: int | None = None
    hi: int | None = None
    for size in growing_sizes(local):
        if probe(size):
            lo = size
        else:
            hi = size
            break
    if lo is not None and hi is not None:
        while len(probes) < MAX_PROBES:
            mid = next_probe(lo, hi)
            if mid is None:
                break
            if probe(mid):
                lo = mid
            else:
                hi = mid
    ok, verdict = mtu_verdict(interfaces, fits, lo, local, tunnel)
    report = MtuReport(s.name, d.name, interfaces, tunnel, fits, lo, tuple(probes), verdict, ok)
    if not fix or fits is None:
        return report
    ops = []
    for end in (s, d):
        if end.eth0 is not None and end.eth0.mtu != fits:
            ops.append(mtu_op(end.host, f"container:{end.name}", "eth0", fits))
        row = facts.hosts[end.host].link(end.host_veth)
        if row is not None and row.mtu != fits:
            ops.append(mtu_op(end.host, "host", end.host_veth, fits))
    if not ops:
        return report
    hosts = {h.name: h for h in engine.hosts()}
    rend = renderer(hosts)
    for op in ops:
        apply_op(engine, op)
    after = measure_mtu(engine, src, dst, fix=False, progress=progress)
    return replace(after, fixed=tuple(rend(op.host, op.where, op.cmd) for op in ops))
