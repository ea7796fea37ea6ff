"""Read the live facts and build the topology from them.

Sources: docker (every container, whoever made it), netlink in every host's
namespace and in every running container's namespace (`workbench.host.Place`),
and each host's OVS database (`workbench.ovs.Ovs`). They are read side by side;
each may be down, which is reported in the facts and never fatal.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from .. import containers as dk
from ..host import Host, Place
from ..ovs import Row, one, select, uuids
from .build import Marks, build
from .facts import (
    ContainerFacts,
    Facts,
    HostFacts,
    LinkFact,
    NetnsFacts,
    NsidFact,
    OvsBridgeFact,
    OvsdbFacts,
    OvsInterfaceFact,
    OvsPortFact,
    OvsQosFact,
    VxlanFact,
)
from .model import Topology
from .rtnl import RawLink, Rtnl

#: at most this many reads at once (each mostly waits on a socket)
WORKERS = 16
#: seconds an OVS database and dockerd get to answer
TIMEOUT = 3
OVS_TABLES = ("Bridge", "Port", "Interface", "QoS")


def discover(hosts: Sequence[Host], marks: Marks | None = None) -> Topology:
    """The topology of these hosts and of every docker container, as it is now."""
    return build(read_facts(hosts), marks)


# --- netlink ------------------------------------------------------------------------
def ns_path(host: Host) -> str:
    """The nsfs file of a host's namespace (this process's own in real mode)."""
    return host.place.path or f"/proc/{os.getpid()}/ns/net"


def read_netns(
    inode: int,
    nsid_targets: Sequence[tuple[str, int]] = (),
    *,
    container: bool = False,
) -> tuple[NetnsFacts, float | None]:
    """The calling thread's namespace (run it through `Place.call`): links with their
    veth peer index and peer nsid, IPv4 addresses and, when a link's peer is in
    another namespace, the nsid it gives each of `nsid_targets` (path, inode), or
    None. A container's also get the default gateway and the tbf rate on eth0."""
    with Rtnl() as nl:
        raw = nl.links()
        addrs = nl.addresses()
        floods = nl.flood_remotes() if any(r.vxlan is not None for r in raw) else {}
        links = tuple(_link_fact(r, addrs, floods) for r in raw)
        nsids = []
        if any(lk.link_netnsid is not None for lk in links):
            for path, target in nsid_targets:
                try:
                    nsids.append(NsidFact(nl.nsid(path), target))
                except OSError:
                    continue  # a vanished namespace or an old kernel: the facts do not say
        gateway, cap = None, None
        if container:
            gateway = nl.default_gateway()
            eth0 = next((lk.index for lk in links if lk.name == "eth0"), None)
            cap = nl.tbf_rate(eth0) if eth0 is not None else None
    return NetnsFacts(inode=inode, links=links, nsids=tuple(nsids), gateway=gateway), cap


def _link_fact(r: RawLink, addrs: dict[int, list[str]], floods: dict[int, list[str]]) -> LinkFact:
    vx = r.vxlan
    return LinkFact(
        index=r.index,
        name=r.name,
        kind=r.kind,
        state=r.state,
        mtu=r.mtu,
        mac=r.mac,
        master=r.master,
        addresses=tuple(addrs.get(r.index, ())),
        peer_index=r.peer_index,
        link_netnsid=r.link_netnsid,
        alias=r.alias,
        vxlan=None
        if vx is None
        else VxlanFact(vx.vni, vx.group, vx.local, vx.port, vx.link, tuple(floods.get(r.index, ()))),
    )


def _inode(path: str) -> int:
    try:
        return os.stat(path).st_ino
    except OSError:
        return 0


def read_host_netns(host: Host) -> tuple[NetnsFacts | None, str | None]:
    if not host.place.exists():
        return None, "namespace missing"
    try:
        return host.place.call(read_netns, _inode(ns_path(host)))[0], None
    except Exception as exc:  # noqa: BLE001 - a source that is down is reported, not fatal
        return None, f"netlink: {exc}"


# --- OVSDB -----------------------------------------------------------------------------
def read_ovsdb(remote: str, timeout: float = TIMEOUT) -> tuple[OvsdbFacts | None, str | None]:
    """One host's OVS database, in one request (workbench.ovs.select)."""
    try:
        return ovsdb_facts(select(remote, OVS_TABLES, timeout)), None
    except Exception as exc:  # noqa: BLE001 - a source that is down is reported, not fatal
        return None, str(exc)


def _pairs(value: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in (value or {}).items()))


def ovsdb_facts(rows: Mapping[str, Sequence[Row]]) -> OvsdbFacts:
    """Bridges, ports, interfaces and QoS rows (as `Ovs.rows` or `select` give them),
    references resolved."""
    qos = {
        r["_uuid"]: OvsQosFact(str(r.get("type") or ""), _pairs(r.get("other_config"))) for r in rows["QoS"]
    }
    ifaces = {}
    for r in rows["Interface"]:
        stats = r.get("statistics") or {}
        ifaces[r["_uuid"]] = OvsInterfaceFact(
            name=r["name"],
            type=str(r.get("type") or ""),
            options=_pairs(r.get("options")),
            ofport=one(r.get("ofport")),
            statistics=tuple(sorted((str(k), int(v)) for k, v in stats.items())),
            external_ids=_pairs(r.get("external_ids")),
        )
    ports = {}
    for r in rows["Port"]:
        ports[r["_uuid"]] = OvsPortFact(
            name=r["name"],
            tag=one(r.get("tag")),
            external_ids=_pairs(r.get("external_ids")),
            interfaces=tuple(ifaces[u] for u in uuids(r.get("interfaces")) if u in ifaces),
            qos=next((qos[u] for u in uuids(r.get("qos")) if u in qos), None),
        )
    bridges = []
    for r in sorted(rows["Bridge"], key=lambda r: r["name"]):
        dp = r.get("datapath_type") or ""
        bridges.append(
            OvsBridgeFact(
                name=r["name"],
                datapath_type=dp if isinstance(dp, str) else "",
                external_ids=_pairs(r.get("external_ids")),
                ports=tuple(
                    sorted((ports[u] for u in uuids(r.get("ports")) if u in ports), key=lambda p: p.name)
                ),
            )
        )
    return OvsdbFacts(tuple(bridges))


# --- docker ---------------------------------------------------------------------------
def list_containers(cli: Any) -> list[ContainerFacts]:
    """Every container, in one request (no pid yet: see `read_container`)."""
    out = []
    for c in cli.api.containers(all=True):
        out.append(
            ContainerFacts(
                id=c["Id"],
                names=tuple(n.removeprefix("/") for n in c.get("Names") or ()),
                labels=_pairs(c.get("Labels")),
                status=str(c.get("State") or ""),
            )
        )
    return out


def read_container(cli: Any, row: ContainerFacts, nsid_targets: Sequence[tuple[str, int]]) -> ContainerFacts:
    """A running container's pid and namespace."""
    try:
        state = cli.api.inspect_container(row.id).get("State") or {}
    except Exception as exc:  # noqa: BLE001 - removed meanwhile
        return replace(row, error=f"docker inspect: {exc}")
    pid = int(state.get("Pid") or 0)
    row = replace(row, pid=pid, status=str(state.get("Status") or row.status))
    if row.status != "running" or not pid:
        return row
    inode = _inode(f"/proc/{pid}/ns/net")
    try:
        netns, cap = Place.of_pid(pid, row.name).call(read_netns, inode, nsid_targets, container=True)
    except Exception as exc:  # noqa: BLE001 - exited meanwhile
        return replace(row, error=f"netlink: {exc}")
    return replace(row, netns=netns, cap_mbit=cap)


# --- all of it ------------------------------------------------------------------------
def read_facts(
    hosts: Sequence[Host],
    *,
    previous: Facts | None = None,
    hosts_to_read: Collection[str] | None = None,
    containers: bool = True,
) -> Facts:
    """Every host's namespace and OVS database and every container, side by side.

    With `previous`, only the hosts named in `hosts_to_read` (and hosts it does not
    have) are read again, and the containers only when `containers` is true."""
    stale = [
        h
        for h in hosts
        if previous is None
        or previous.host(h.name) is None
        or hosts_to_read is None
        or h.name in hosts_to_read
    ]
    inodes = [(ns_path(h), _inode(ns_path(h))) for h in hosts]
    targets = [(path, inode) for path, inode in inodes if inode]
    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="discover") as pool:
        nl = {h.name: pool.submit(read_host_netns, h) for h in stale}
        db = {h.name: pool.submit(read_ovsdb, h.ovs_db) for h in stale}
        cts: tuple[ContainerFacts, ...] = previous.containers if previous else ()
        docker_error = previous.docker_error if previous else None
        if containers or previous is None:
            cts, docker_error = _read_docker(pool, targets)
        merged = []
        for h in hosts:
            if h.name in nl:
                netns, nerr = nl[h.name].result()
                ovs, oerr = db[h.name].result()
                merged.append(HostFacts(h.name, h.underlay_ip, netns, ovs, nerr, oerr))
            else:
                old = previous.host(h.name) if previous else None
                assert old is not None
                merged.append(replace(old, underlay_ip=h.underlay_ip))
    return Facts(hosts=tuple(merged), containers=cts, docker_error=docker_error)


def _read_docker(
    pool: ThreadPoolExecutor, targets: Sequence[tuple[str, int]]
) -> tuple[tuple[ContainerFacts, ...], str | None]:
    try:
        cli = dk.client(timeout=TIMEOUT)
    except Exception as exc:  # noqa: BLE001
        return (), str(exc)
    try:
        try:
            rows = list_containers(cli)
        except Exception as exc:  # noqa: BLE001
            return (), f"docker: {exc}"
        futs: list[ContainerFacts | Future[ContainerFacts]] = [
            pool.submit(read_container, cli, r, targets)
            if r.status in ("running", "restarting", "paused")
            else r
            for r in rows
        ]
        done = [f.result() if isinstance(f, Future) else f for f in futs]
        return tuple(sorted(done, key=lambda c: c.name)), None
    finally:
        cli.close()
