"""The doctor's eyes: read the facts along the path between two containers, live.

Reads: netlink in each namespace (Place.netlink), OVSDB per host (Ovs),
`iptables-save` and /proc/sys inside the host namespace, `ovs-appctl
ofproto/trace`, `dpif/show` and `ovs/route/lookup`, and pings (icmplib) from
inside the source container and from the source host to the peer host's
underlay address (inside namespaces the lab created). Every wait is bounded.

The caller hands in the hosts, the discovered topology (which container is on
which host, through which veth, bridge and tunnel, whoever built it) and what
the active scenario's intents expect (`Expected`); the doctor never asks the
engine.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from .. import links
from ..errors import BadInput, NotReady, WorkbenchError
from ..host import Host, Place
from ..intents import Cmd, render
from ..inventory.collect import container_view
from ..inventory.model import Container
from ..marks import host_veth
from ..measure.ping import PingOptions, Target, ping_from
from ..ovs import Ovs, appctl, bridge_ports, one
from ..topology.model import AttachKind, Topology
from .facts import (
    DoctorFacts,
    EndFacts,
    Expected,
    FirewallFact,
    HostFacts,
    HostPlan,
    OvsPortFact,
    ProbeFact,
    RouteFact,
    TraceFact,
    tunnel_route,
)
from .impaired import MIN_WINDOW, Flap, carrier_changes, link_impair, underlay_drops
from .model import DoctorReport, Render
from .path import host_plan, ovs_entry, path_tunnel
from .report import build_report
from .trace import parse_dp_ports, parse_trace

Progress = Callable[[str], None]
BRIDGE_NF = "/proc/sys/net/bridge/bridge-nf-call-iptables"


def quiet(_msg: str) -> None:
    pass


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
    names = [r.name for r in rows if r.kind == "vxlan"]
    if names:
        found = [host.place.netlink(links.vxlan_row, n) for n in names]
        facts = replace(facts, vxlans=tuple(v for v in found if v is not None))
    if peer is not None and facts.vxlans:  # the kernel sends the tunnel's packets: its route
        facts = replace(facts, peer_route=host.place.netlink(_route_get, peer.underlay_ip))
    if peer is not None and facts.ovs_ok:
        try:
            out = appctl(host, "ovs/route/lookup", peer.underlay_ip)
            facts = replace(facts, underlay_route=route_lookup_text(out))
        except WorkbenchError as exc:
            facts = replace(facts, underlay_route_error=str(exc))
    if peer is not None and probe and (facts.ovs_ok or facts.vxlans):
        facts = replace(facts, underlay_ping=ping_probe(host.place, host.name, peer.underlay_ip, 56, False))
    return facts


#: what `ovs/route/lookup` prints as the gateway of an on-link route
NO_GATEWAY = {"::", "0.0.0.0", ""}


def route_lookup_text(out: str) -> str:
    """`ovs-appctl ovs/route/lookup` ("src 10.0.0.3 / gateway :: / dev br-phy", a line
    each) as one line in `ip route` words: "dev br-phy src 10.0.0.3 (on-link)" when
    the route has no gateway (OVS prints `::` for it), "via GW dev ... src ..." else."""
    words = out.split()
    fields = dict(zip(words[::2], words[1::2], strict=False))
    if not {"src", "dev"} <= fields.keys():
        return " ".join(words)  # a format we do not know: as OVS printed it
    gateway = fields.get("gateway", "")
    via = f"via {gateway} " if gateway not in NO_GATEWAY else ""
    return f"{via}dev {fields['dev']} src {fields['src']}" + (" (on-link)" if not via else "")


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
    veth = c.host_veth or host_veth(c.name)  # discovered; else where containet would put it
    gone = EndFacts(c.name, c.host, False, host_veth=veth, docker=c.docker_name)
    if not (c.status == "running" and c.pid > 0):
        return gone

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
        return gone
    return EndFacts(c.name, c.host, True, eth0, route, veth, tx_checksum=offload, docker=c.docker_name)


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


def traces(f: DoctorFacts, hosts: Mapping[str, Host]) -> dict[str, TraceFact]:
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


def resolve(topology: Topology, who: str) -> Container:
    """A container by containet name, docker name, ID (or a unique prefix) or IP, with
    its host and host-side veth as discovered (whoever made it)."""
    found = topology.container(who)
    if found is None:
        names = ", ".join(sorted(c.name for c in topology.containers if topology.host_of(c))) or "none"
        raise BadInput(f"unknown container {who!r} (have: {names})")
    return container_view(topology, found)


def observed_plans(
    topology: Topology, ends: Sequence[Container], default: Mapping[str, HostPlan]
) -> dict[str, HostPlan]:
    """With no scenario applied, what each end's host is wired with, as discovered: the
    linux bridge its veth is on, the OVS bridge its frames reach (the seed's br0 or any
    other name), and no planned tunnels (the discovered ones are looked up by remote_ip)."""
    out = dict(default)
    for end in ends:
        found = topology.container(end.full_id or end.docker_name)
        if found is None or not end.host:
            continue
        wiring = topology.wiring(found)
        base = out.get(end.host, HostPlan())
        attach = wiring.attachment
        lb = attach.bridge if attach and attach.kind == AttachKind.LINUX_BRIDGE else None
        out[end.host] = replace(
            base, linux_bridge=lb or base.linux_bridge, ovs_bridge=wiring.ovs_bridge or base.ovs_bridge
        )
    return out


def collect(
    hosts: Sequence[Host],
    topology: Topology,
    expected: Expected,
    src: str,
    dst: str,
    *,
    probe: bool = True,
    trace: bool = True,
    progress: Progress = quiet,
) -> DoctorFacts:
    """Every fact along the path from container `src` to `dst`: the ends, their hosts and
    the hosts between come from the discovered `topology`; what the scenario wanted, if
    one is applied, from `expected`."""
    if not topology.docker_connected:
        raise NotReady("dockerd is not answering: the doctor needs the containers' namespaces")
    a, b = resolve(topology, src), resolve(topology, dst)
    if a.full_id == b.full_id:
        raise BadInput(f"the doctor needs two different containers (got {a.name} twice)")
    by_name = {h.name: h for h in hosts}
    for c in (a, b):
        if c.host not in by_name:
            where = f"on host {c.host!r}, which this lab does not have" if c.host else "wired into no host"
            raise BadInput(f"{c.name} is {where} (see `containet status`)")
    src_plan, dst_plan = expected.end(a.name), expected.end(b.name)
    a_ip = a.ip or (src_plan.cidr.split("/")[0] if src_plan.cidr else None)
    b_ip = b.ip or (dst_plan.cidr.split("/")[0] if dst_plan.cidr else None)
    plans = dict(expected.hosts) if expected.scenario else observed_plans(topology, (a, b), expected.hosts)
    route = tunnel_route(
        a.host,
        b.host,
        {h.name: h.underlay_ip for h in by_name.values()},
        {name: [remote for _port, _type, remote in plan.tunnels] for name, plan in plans.items()},
    )
    if len(route) == 2 and a.host != b.host:  # no planned chain: the tunnels as discovered
        route = topology.host_chain(a.host, b.host) or route
    progress("reading hosts, containers and probing")
    started = time.monotonic()
    veths = [(by_name[c.host], c.host_veth or host_veth(c.name)) for c in (a, b)]
    carriers = [carrier_changes(h, v) for h, v in veths]
    from ..marks import NS_PREFIX

    ns = f"{NS_PREFIX}underlay"  # workbench.lab.UNDERLAY_NS
    with ThreadPoolExecutor(max_workers=9) as pool:
        # how each end's link is shaped, and drops in the underlay: beside the rest
        fut_imp = [
            pool.submit(link_impair, host, c.name, c.pid, veth)
            for c, (host, veth) in zip((a, b), veths, strict=True)
            if c.status == "running" and c.pid
        ]
        fut_drops = pool.submit(underlay_drops, ns)
        # each host on the way probes the underlay toward the next one
        fut_hosts = {
            h: pool.submit(
                host_facts, by_name[h], by_name[route[i + 1]] if i + 1 < len(route) else None, probe
            )
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
            host_plans=plans,
            scenario=expected.scenario,
            subnet=expected.subnet,
            small=small,
            big=big,
            route=route,
            underlays=tuple(h.underlay_ip for h in hosts),
        )
    if trace:
        progress("tracing the flow in OVS")
        for h, t in traces(facts, by_name).items():
            facts.hosts[h] = replace(facts.hosts[h], trace=t)
    facts = replace(
        facts,
        underlay_drops=fut_drops.result(),
        underlay_ns=ns,
        impairs=tuple(f.result() for f in fut_imp),
    )
    return _flapped(facts, veths, carriers, started)


def _flapped(
    facts: DoctorFacts, veths: list[tuple[Host, str]], before: list[int | None], started: float
) -> DoctorFacts:
    """The flaps seen while the doctor ran (it looks for MIN_WINDOW s at least)."""
    rest = MIN_WINDOW - (time.monotonic() - started)
    if rest > 0:
        time.sleep(rest)
    flaps = []
    for (host, veth), first in zip(veths, before, strict=True):
        last = carrier_changes(host, veth)
        if first is not None and last is not None and last != first:
            flaps.append(Flap(veth, last - first, time.monotonic() - started))
    return replace(facts, flaps=tuple(flaps))


def renderer(hosts: Sequence[Host]) -> Render:
    """Commands as typed in this mode (inside the lab's namespaces, or on a VM)."""
    by_name = {h.name: h for h in hosts}

    def rend(host: str, cmd: Cmd) -> str:
        return render(by_name[host], cmd) if host in by_name else cmd.text

    return rend


def container_place(topology: Topology, name: str) -> Place:
    c = resolve(topology, name)
    if c.status != "running" or not c.pid:
        raise NotReady(f"container {c.name} is not running")
    return Place.of_pid(c.pid, c.name)


def diagnose(
    hosts: Sequence[Host],
    topology: Topology,
    expected: Expected,
    src: str,
    dst: str,
    *,
    probe: bool = True,
    trace: bool = True,
    progress: Progress = quiet,
    started: float | None = None,
) -> DoctorReport:
    """collect + build_report. `started`: time.monotonic() when the caller began (reading
    the topology counts in the report's seconds); default: now."""
    started = time.monotonic() if started is None else started
    facts = collect(hosts, topology, expected, src, dst, probe=probe, trace=trace, progress=progress)
    return build_report(facts, renderer(hosts), seconds=time.monotonic() - started)
