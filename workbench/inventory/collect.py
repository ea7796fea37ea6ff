"""The inventory as a view of the discovered topology (workbench.topology):
netlink per namespace, OVSDB per host, docker for every container. Read-only;
every source may be down and is reported so.

A container is listed when it is on one of the lab's hosts (whoever built it)
or is containet's own; containers elsewhere on the machine (another instance's
lab, plain docker) are in the topology but not in the inventory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .. import ovn
from ..errors import WorkbenchError
from ..host import Host
from ..lab import MAX_HOSTS, underlay_ip
from ..marks import MARK_VALUE, OVS_MARK
from ..ovs import Ovs, bridge_ports, one, read_pid, select, uuids
from ..topology import model as tm
from ..topology.build import build
from ..topology.discover import read_facts
from ..topology.facts import Facts
from .model import (
    Container,
    HostView,
    Iface,
    KernelTunnel,
    LinuxBridge,
    OvnChassis,
    OvnPort,
    OvnSwitch,
    OvnView,
    OvsBridge,
    OvsPort,
    Snapshot,
)


def iface_of(link: tm.Link) -> Iface:
    return Iface(
        name=link.name,
        kind=link.kind,
        state=str(link.state),
        mtu=link.mtu,
        mac=link.mac,
        addresses=link.addresses,
        master=link.master,
    )


def _port(p: tm.OvsPort | tm.Tunnel) -> OvsPort:
    return OvsPort(
        name=p.name,
        type=str(p.type),
        tag=p.tag,
        options=p.options,
        ofport=p.ofport,
        rx_packets=p.rx_packets,
        tx_packets=p.tx_packets,
        ours=p.ours,
        qos_mbit=p.qos_mbit if isinstance(p, tm.OvsPort) else None,
    )


def host_view(topo: tm.Topology, name: str) -> HostView:
    """One host of the topology as the inventory shows it."""
    h = topo.host(name)
    if h is None:
        return HostView(name, "", False, False, error="not discovered")
    if not h.reachable:
        return HostView(h.name, h.underlay_ip, False, h.ovs_connected, error=h.error)
    return HostView(
        name=h.name,
        underlay_ip=h.underlay_ip,
        reachable=True,
        ovs_connected=h.ovs_connected,
        links=tuple(iface_of(lk) for lk in topo.links(h)),
        linux_bridges=tuple(
            LinuxBridge(br.name, str(br.state), br.mtu, br.addresses, tuple(m.name for m in topo.members(br)))
            for br in topo.linux_bridges(name)
        ),
        ovs_bridges=tuple(
            OvsBridge(obr.name, obr.datapath_type, tuple(_port(p) for p in topo.ports(obr)), obr.ours)
            for obr in sorted(topo.ovs_bridges(name), key=lambda b: b.name)
        ),
        error=h.error,
        kernel_tunnels=tuple(kernel_tunnel(t) for t in topo.kernel_tunnels(name)),
    )


def kernel_tunnel(t: tm.Tunnel) -> KernelTunnel:
    return KernelTunnel(
        name=t.name,
        type=str(t.type),
        bridge=t.bridge,
        vni=t.vni,
        remotes=t.remotes,
        dst_port=t.dst_port,
        local_ip=t.local_ip,
        underlay=t.underlay,
        mtu=t.mtu,
        state=str(t.state),
        ours=t.ours,
    )


def container_view(topo: tm.Topology, c: tm.Container) -> Container:
    """One container of the topology, with its place found by discovery."""
    w = topo.wiring(c)
    return Container(
        name=c.name,
        host=w.host or "",
        docker_name=c.docker_name,
        id=c.short_id,
        status=str(c.status),
        pid=c.pid,
        interfaces=tuple(iface_of(lk) for lk in topo.interfaces(c)),
        gateway=c.gateway,
        host_veth=w.host_veth,
        attached_to=w.attached_to,
        vlan=w.vlan,
        cap_mbit=c.cap_mbit,
        ours=c.ours,
        attach_kind=str(w.attachment.kind) if w.attachment else None,
        reaches=w.ovs_bridge,
        full_id=c.docker_id,
        meant_for=c.label_host or "",
    )


def view(topo: tm.Topology, mode: str = "lab", lab_line: str = "", facts: Facts | None = None) -> Snapshot:
    """The inventory of a topology: its hosts in order, the containers on them and
    containet's own (see the module's docstring)."""
    hosts = tuple(host_view(topo, h.name) for h in topo.hosts)
    cts = [container_view(topo, c) for c in topo.containers if c.ours or topo.host_of(c) is not None]
    hosts, cts = _impaired(hosts, cts)
    return Snapshot(
        mode=mode,
        lab=lab_line,
        hosts=hosts,
        containers=tuple(sorted(cts, key=lambda c: (c.host or "~", c.name))),
        docker_connected=topo.docker_connected,
        errors=topo.errors,
        facts=facts,
    )


def snapshot(hosts: Sequence[Host], mode: str = "lab", lab_line: str = "") -> Snapshot:
    facts = read_facts(hosts)
    snap = view(build(facts), mode, lab_line, facts)
    found = ovn_view(hosts, snap.hosts)
    return replace(snap, ovn=found) if found is not None else snap


def ovn_central(hosts: Sequence[Host]) -> Host | None:
    """The lab host whose run directory holds a running OVN northbound database."""
    for h in hosts:
        if h.run_dir is not None and read_pid(ovn.OvnDb(h.run_dir, "nb").pidfile):
            return h
    return None


def _controller_alive(host: Host) -> bool:
    if host.run_dir is not None:
        return read_pid(ovn.Controller(host.run_dir).pidfile) is not None
    return ovn.SystemOvn(host.ovs_db.removeprefix("unix:")).running([ovn.CONTROLLER])


def _where(hosts: Sequence[Host]) -> tuple[OvnView, bool] | None:
    """Where OVN's databases are: a lab host's run directory, or (real mode) the
    central this host's OVS points ovn-controller at (no ovn-remote there: no OVN);
    and whether ovn-northd runs elsewhere (its pidfile is not here to read)."""
    hub = ovn_central(hosts)
    if hub is not None and hub.run_dir is not None:
        nb_db, sb_db = ovn.OvnDb(hub.run_dir, "nb"), ovn.OvnDb(hub.run_dir, "sb")
        northd = read_pid(ovn.Northd(hub.run_dir).pidfile) is not None
        return OvnView(central=hub.name, nb=nb_db.remote, sb=sb_db.remote, northd=northd), False
    real = [h for h in hosts if h.real]
    if not real:
        return None
    try:
        rows = select(real[0].ovs_db, ["Open_vSwitch"], timeout=1)["Open_vSwitch"]
    except WorkbenchError:
        return None
    sb = str((rows[0].get("external_ids") or {}).get("ovn-remote", "")) if rows else ""
    nb = ovn.nb_of(sb)
    if nb is None:
        return None
    # the central's name as the seed numbers hosts (10.0.0.3 is host1), else its address
    ip = sb.split(":")[1]
    central = next((f"host{i}" for i in range(1, MAX_HOSTS + 1) if ip == underlay_ip(i)), ip)
    northd = ovn.SystemOvn(real[0].ovs_db.removeprefix("unix:")).running(["ovn-northd"])
    return OvnView(central=central, nb=nb, sb=sb, northd=northd), not northd


def ovn_view(hosts: Sequence[Host], views: Sequence[HostView]) -> OvnView | None:
    """OVN as NB and SB say, one `select` transaction each (no IDL): logical switches and
    their ports (up, bound where), the chassis (encap, controller alive, ports bound,
    Geneve tunnels from the host's own OVS). None: no OVN central in this lab."""
    where = _where(hosts)
    if where is None:
        return None
    base, elsewhere = where
    try:
        nb = select(
            base.nb, ["NB_Global", "Logical_Switch", "Logical_Switch_Port"], database="OVN_Northbound"
        )
        sb = select(base.sb, ["Chassis", "Encap", "Port_Binding"], database="OVN_Southbound")
    except WorkbenchError as exc:
        return replace(base, error=str(exc))
    if elsewhere and nb["NB_Global"]:  # northd has passed the NB's last change on to the SB
        glob = nb["NB_Global"][0]
        base = replace(base, northd=glob.get("nb_cfg") == glob.get("sb_cfg"))
    chassis_name = {r["_uuid"]: r["name"] for r in sb["Chassis"]}
    bound = {r["logical_port"]: chassis_name.get(_one_ref(r.get("chassis"))) for r in sb["Port_Binding"]}
    lsps = {r["_uuid"]: r for r in nb["Logical_Switch_Port"]}
    switches = []
    for ls in sorted(nb["Logical_Switch"], key=lambda r: r["name"]):
        ports = [lsps[u] for u in _refs(ls.get("ports")) if u in lsps]
        switches.append(
            OvnSwitch(
                ls["name"],
                tuple(
                    OvnPort(
                        name=p["name"],
                        switch=ls["name"],
                        addresses=tuple(str(a) for a in _refs(p.get("addresses"))),
                        up=_one_ref(p.get("up")) is True,
                        chassis=bound.get(p["name"]),
                    )
                    for p in sorted(ports, key=lambda r: r["name"])
                ),
            )
        )
    encaps = {r["_uuid"]: r for r in sb["Encap"]}
    by_name = {h.name: h for h in hosts}
    hviews = {v.name: v for v in views}
    chassis = []
    for ch in sorted(sb["Chassis"], key=lambda r: r["name"]):
        encap = next((encaps[u] for u in _refs(ch.get("encaps")) if u in encaps), {})
        host = by_name.get(ch["name"])
        alive = _controller_alive(host) if host is not None else None
        hv = hviews.get(ch["name"])
        tunnels: tuple[str, ...] = ()
        if hv is not None:
            tunnels = tuple(
                sorted(
                    dict(p.options).get("remote_ip", "?")
                    for b in hv.ovs_bridges
                    if b.name == ovn.BR_INT
                    for p in b.ports
                    if p.type == ovn.ENCAP
                )
            )
        chassis.append(
            OvnChassis(
                name=ch["name"],
                encap=encap.get("type", ""),
                encap_ip=encap.get("ip", ""),
                controller=alive,
                ports=tuple(sorted(p for p, c in bound.items() if c == ch["name"])),
                tunnels=tunnels,
                crashes=ovn.Controller(host.run_dir).crashes() if host and host.run_dir else "",
            )
        )
    return replace(base, switches=tuple(switches), chassis=tuple(chassis))


def _refs(value: object) -> list[object]:
    """An OVSDB set as `select` gives it (a list, one value, or nothing) -> a list."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _one_ref(value: object) -> object:
    got = _refs(value)
    return got[0] if got else None


def ovs_bridges(ovs: Ovs) -> tuple[OvsBridge, ...]:
    """The bridges and ports of one OVS database through an open client (a peer's
    shared database in real mode: see workbench.peer)."""
    qos_rate = {
        r["_uuid"]: float((r.get("other_config") or {}).get("max-rate", 0)) / 1e6 for r in ovs.rows("QoS")
    }
    out = []
    for br, pairs in bridge_ports(ovs):
        plist = []
        for port, iface in pairs:
            stats = iface.get("statistics") or {}
            plist.append(
                OvsPort(
                    name=port["name"],
                    type=iface.get("type", "") or "",
                    tag=one(port.get("tag")),
                    options=tuple(sorted((iface.get("options") or {}).items())),
                    ofport=one(iface.get("ofport")),
                    rx_packets=int(stats.get("rx_packets", 0)),
                    tx_packets=int(stats.get("tx_packets", 0)),
                    ours=(port.get("external_ids") or {}).get(OVS_MARK) == MARK_VALUE,
                    qos_mbit=next((qos_rate.get(u) for u in uuids(port.get("qos"))), None) or None,
                )
            )
        dp = br.get("datapath_type") or ""
        out.append(
            OvsBridge(
                name=br["name"],
                datapath_type=dp if isinstance(dp, str) else "",
                ports=tuple(sorted(plist, key=lambda p: p.name)),
                ours=(br.get("external_ids") or {}).get(OVS_MARK) == MARK_VALUE,
            )
        )
    return tuple(out)


def _impaired(
    hosts: tuple[HostView, ...], cts: list[Container]
) -> tuple[tuple[HostView, ...], list[Container]]:
    """Impairments and link states next to their links (from containet's records)."""
    from ..impair.ops import impairments

    marks = impairments()
    if not marks:
        return hosts, cts
    cts = [replace(c, impaired=marks.get(c.name, "")) for c in cts]
    hosts = tuple(
        replace(
            h,
            ovs_bridges=tuple(
                replace(
                    b, ports=tuple(replace(p, impaired=marks.get(f"{h.name}:{p.name}", "")) for p in b.ports)
                )
                for b in h.ovs_bridges
            ),
        )
        for h in hosts
    )
    return hosts, cts
