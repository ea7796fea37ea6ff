"""Take a snapshot of the real state: netlink per namespace, OVSDB per host,
docker for containers. Read-only; every source may be down and is reported so."""

from __future__ import annotations

from typing import Any

from .. import containers as dk
from .. import links
from ..errors import WorkbenchError
from ..host import Host, Place
from ..marks import MARK_VALUE, OVS_MARK
from ..ovs import Ovs, bridge_ports, one, uuids
from .model import Container, HostView, Iface, LinuxBridge, OvsBridge, OvsPort, Snapshot


def iface_of(row: links.LinkRow) -> Iface:
    return Iface(
        name=row.name,
        kind=row.kind,
        state=row.state,
        mtu=row.mtu,
        mac=row.mac,
        addresses=row.addresses,
        master=row.master,
    )


def bridges_of(rows: list[links.LinkRow]) -> tuple[LinuxBridge, ...]:
    out = []
    for row in rows:
        if row.kind == "bridge":
            ports = tuple(sorted(r.name for r in rows if r.master == row.name))
            out.append(LinuxBridge(row.name, row.state, row.mtu, row.addresses, ports))
    return tuple(out)


def ovs_bridges(ovs: Ovs) -> tuple[OvsBridge, ...]:
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


def host_view(host: Host) -> HostView:
    if not host.place.exists():
        return HostView(host.name, host.underlay_ip, False, False, error="namespace missing")
    try:
        rows = host.place.netlink(links.read_links)
    except Exception as exc:  # noqa: BLE001 - a source that is down is reported, not fatal
        return HostView(host.name, host.underlay_ip, False, False, error=f"netlink: {exc}")
    obr: tuple[OvsBridge, ...] = ()
    error = None
    connected = False
    try:
        ovs = Ovs(host.ovs_db, timeout=3)
        try:
            obr = ovs_bridges(ovs)
            connected = True
        finally:
            ovs.close()
    except Exception as exc:  # noqa: BLE001
        error = f"ovs: {exc}"
    return HostView(
        name=host.name,
        underlay_ip=host.underlay_ip,
        reachable=True,
        ovs_connected=connected,
        links=tuple(iface_of(r) for r in rows),
        linux_bridges=bridges_of(rows),
        ovs_bridges=obr,
        error=error,
    )


def _container_net(pid: int) -> tuple[list[links.LinkRow], str | None, float | None]:
    from ..qos import tbf_rate

    def read(ipr: Any) -> tuple[list[links.LinkRow], str | None, float | None]:
        return links.read_links(ipr), links.default_gateway(ipr), tbf_rate(ipr, "eth0")

    return Place.of_pid(pid).netlink(read)


def container_view(row: dk.ContainerRow, hosts: dict[str, HostView]) -> Container:
    from ..marks import host_veth

    ifaces: tuple[Iface, ...] = ()
    gateway = None
    cap = None
    if row.status == "running" and row.pid:
        try:
            lrows, gateway, cap = _container_net(row.pid)
            ifaces = tuple(iface_of(r) for r in lrows)
        except (OSError, WorkbenchError):
            pass  # exited meanwhile
    veth = host_veth(row.name)
    hv = hosts.get(row.host)
    attached = None
    vlan = None
    present = False
    if hv is not None:
        link = next((lk for lk in hv.links if lk.name == veth), None)
        if link is not None:
            present = True
            attached = link.master
            for br in hv.ovs_bridges:
                for port in br.ports:
                    if port.name == veth:
                        attached, vlan = br.name, port.tag
    return Container(
        name=row.name,
        host=row.host,
        docker_name=row.docker_name,
        id=row.id[:12],
        status=row.status,
        pid=row.pid,
        interfaces=ifaces,
        gateway=gateway,
        host_veth=veth if present else None,
        attached_to=attached,
        vlan=vlan,
        cap_mbit=cap,
    )


def snapshot(hosts: list[Host], mode: str = "lab", lab_line: str = "") -> Snapshot:
    views = {h.name: host_view(h) for h in hosts}
    errors = [f"{v.name}: {v.error}" for v in views.values() if v.error]
    cts: list[Container] = []
    docker_ok = True
    try:
        cli = dk.client(timeout=5)
        try:
            cts = [container_view(r, views) for r in dk.list_marked(cli)]
        finally:
            cli.close()
    except WorkbenchError as exc:
        docker_ok = False
        errors.append(str(exc))
    return Snapshot(
        mode=mode,
        lab=lab_line,
        hosts=tuple(views[h.name] for h in hosts),
        containers=tuple(cts),
        docker_connected=docker_ok,
        errors=tuple(errors),
    )
