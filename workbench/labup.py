"""`lab up`: build the lab, or repair it in place -- never rebuild what works.

A lab that is down is built from nothing. A lab that is not healthy is
repaired, one fault at a time, per host (`diagnose` says what is broken and
what `lab up` will do about it; `up` does it and returns what it did):

    underlay    namespace or bridge ul0 missing: re-created
    stray       a marked namespace no host of this lab accounts for: removed
    namespace   a host's namespace missing: re-attached from its running OVS
                daemon (nothing inside was lost), or created again empty
    ovsdb       ovsdb-server dead: started again on its existing database file
                (ovs-vswitchd is restarted too, so that it reconnects at once)
    vswitchd    ovs-vswitchd dead: started again; it rebuilds every bridge, port
                and tunnel of the database
    link        the host's veth into ul0 (eth1 inside) missing, detached or down
    phy         br-phy missing, eth1 not its port, or not open in OVS (a
                re-created device: the port is deleted and added again)
    address     br-phy without its underlay address, or down

While a scenario has handed the underlay to the kernel (kvxlan: br-phy marked
external_ids:containet-underlay=kernel), that is the healthy state: eth1 is then
meant to be out of br-phy and to hold the address itself. A fault in it is repaired
in it (eth1 back out of br-phy, the address back on eth1), never by rebuilding the
OVS underlay.

Nothing healthy is touched: no host, container or plumbing is removed. Only a
host whose repair fails is built again from nothing (and it says so), and a lab
of another size than the one asked for is rebuilt (it is another lab).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from typing import Any

from pyroute2 import IPRoute, netns

from . import links
from .errors import NotReady, WorkbenchError
from .host import Host, Place
from .lab import (
    MAX_HOSTS,
    NIC,
    PHY_BRIDGE,
    REGISTRY,
    TOPOLOGIES,
    UNDERLAY_BRIDGE,
    UNDERLAY_KEY,
    UNDERLAY_NS,
    UNDERLAY_PREFIX,
    Progress,
    _down,
    _quiet,
    create_ns,
    delete_ns,
    handed_to_kernel,
    health,
    host_names,
    lab_hosts,
    locked,
    marked_namespaces,
    ns_is_ours,
    preflight,
    saved_host_count,
    saved_topology,
    underlay_holder,
)
from .labreport import Fault, LabReport, Repair
from .marks import RUN_DIR, netns_name
from .ovs import (
    OvsPaths,
    ovs_for,
    pids_using,
    read_pid,
    restart_vswitchd,
    select,
    start_daemons,
    stop_daemons,
    stop_pid,
)

IFF_PROMISC = 0x100  # OVS turns it on for every device its userspace datapath has open


# --- what is broken -------------------------------------------------------------------
def _live_daemon(host: Host) -> int | None:
    """A running OVS daemon of this host (its network namespace is the host's)."""
    assert host.run_dir is not None
    paths = OvsPaths(host.run_dir)
    for daemon in ("ovs-vswitchd", "ovsdb-server"):
        pid = read_pid(paths.pidfile(daemon))
        if pid:
            return pid
    found = pids_using(host.run_dir)
    return found[0] if found else None


def _host_links(ipr: IPRoute) -> tuple[links.LinkRow | None, bool, links.LinkRow | None]:
    """eth1, whether it is promiscuous (open in OVS), and br-phy's device."""
    nic = links.link_row(ipr, NIC)
    promisc = nic is not None and bool(ipr.link("get", index=nic.index)[0]["flags"] & IFF_PROMISC)
    return nic, promisc, links.link_row(ipr, PHY_BRIDGE)


def underlay_faults(hosts: list[Host]) -> list[Fault]:
    ul = Place.named(UNDERLAY_NS)
    out = []
    if not ul.exists():
        out.append(
            Fault("underlay", "underlay", f"namespace {UNDERLAY_NS} is missing", "re-create it with ul0")
        )
    else:
        row = ul.netlink(links.link_row, UNDERLAY_BRIDGE)
        if row is None or not row.admin_up:
            broken = f"bridge {UNDERLAY_BRIDGE} is {'missing' if row is None else 'down'}"
            out.append(Fault("underlay", "underlay", broken, "re-create it, up"))
    known = {UNDERLAY_NS, *(netns_name(h.name) for h in hosts)}
    for name in marked_namespaces():
        if name not in known:
            out.append(Fault(name, "stray", "no host of this lab accounts for it", "remove it"))
    return out


def host_faults(host: Host) -> list[Fault]:
    """What is broken on one host, in the order `lab up` repairs it."""
    assert host.run_dir is not None and host.netns is not None
    paths = OvsPaths(host.run_dir)
    out = []
    if not host.place.exists():
        pid = _live_daemon(host)
        plan = (
            f"re-attach it from its running OVS daemon (pid {pid}): nothing inside is lost"
            if pid
            else "create it again, empty (its containers need `containet scenario apply`)"
        )
        out.append(Fault(host.name, "namespace", f"namespace {host.netns} is missing", plan))
    db = "its database" if paths.db.exists() else "a new database (conf.db is missing)"
    server = read_pid(paths.pidfile("ovsdb-server"))
    switch = read_pid(paths.pidfile("ovs-vswitchd"))
    if not server:
        out.append(Fault(host.name, "ovsdb", "ovsdb-server is not running", f"restart it on {db}"))
    if not switch:
        plan = "restart it: bridges, ports and tunnels come back from the database"
        out.append(Fault(host.name, "vswitchd", "ovs-vswitchd is not running", plan))
    if out and out[0].kind == "namespace":
        return out  # nothing inside to read yet
    ul = Place.named(UNDERLAY_NS)
    peer = ul.netlink(links.link_row, host.name) if ul.exists() else None
    nic, promisc, phy = host.place.netlink(_host_links)
    kernel = False  # the underlay handed to the kernel (br-phy's mark): read with OVSDB below
    link = f"veth {host.name} in {UNDERLAY_BRIDGE} <-> {NIC}"
    if peer is None or nic is None:
        out.append(Fault(host.name, "link", f"its underlay link ({link}) is missing", "re-create it"))
    elif peer.master != UNDERLAY_BRIDGE or not peer.admin_up or not nic.admin_up:
        out.append(
            Fault(host.name, "link", f"its underlay link ({link}) is detached or down", "attach it, up")
        )
    if server:
        try:
            tables = select(host.ovs_db, ["Bridge", "Port"])
        except WorkbenchError:  # running, but not answering (stopped, hung)
            return [
                *out,
                Fault(host.name, "ovsdb", "ovsdb-server does not answer", "restart it on its database"),
            ]
        port_names = {r["_uuid"]: r["name"] for r in tables["Port"]}
        bridge = next((b for b in tables["Bridge"] if b["name"] == PHY_BRIDGE), None)
        ports = set() if bridge is None else {port_names.get(u) for u in _uuid_list(bridge.get("ports"))}
        kernel = handed_to_kernel(tables["Bridge"])
        if bridge is None:
            out.append(
                Fault(host.name, "phy", f"OVS bridge {PHY_BRIDGE} is missing", f"re-create it, port {NIC}")
            )
        elif kernel and NIC in ports:
            out.append(
                Fault(
                    host.name,
                    "nic",
                    f"{NIC} is a port of {PHY_BRIDGE}, but the underlay is handed to the kernel "
                    f"({PHY_BRIDGE}'s external_ids:{UNDERLAY_KEY})",
                    f"take it out of {PHY_BRIDGE}",
                )
            )
        elif kernel:
            pass  # eth1 is the kernel's: not a port, not open in OVS
        elif NIC not in ports:
            out.append(Fault(host.name, "phy", f"{NIC} is not a port of {PHY_BRIDGE}", "add it"))
        elif nic is not None and switch and not promisc:
            plan = "delete the port and add it again"
            out.append(Fault(host.name, "phy", f"OVS does not have {NIC} open (a new device)", plan))
    want = f"{host.underlay_ip}/{UNDERLAY_PREFIX}"
    holder_name = NIC if server and kernel else PHY_BRIDGE
    holder = nic if holder_name == NIC else phy
    if holder is None or want not in holder.addresses or not holder.admin_up:
        broken = (
            f"{holder_name} lacks its underlay address {want}"
            if holder is None or holder.admin_up
            else f"{holder_name} is down"
        )
        out.append(Fault(host.name, "address", broken, "give it back, up"))
    return out


def _uuid_list(value: Any) -> list[str]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def diagnose(count: int | None = None) -> list[Fault]:
    """What `lab up` would repair in this lab (nothing: it is healthy)."""
    hosts = lab_hosts(count)
    return underlay_faults(hosts) + [f for h in hosts for f in host_faults(h)]


# --- repairs --------------------------------------------------------------------------
def _fix_underlay(fault: Fault) -> Repair:
    if fault.kind == "stray":
        host = fault.host.removeprefix(netns_name(""))
        if host in host_names(MAX_HOSTS):  # a host of a bigger lab: its OVS daemons go first
            stop_daemons(OvsPaths(RUN_DIR / host))
            shutil.rmtree(RUN_DIR / host, ignore_errors=True)
        delete_ns(fault.host)
        return Repair(fault.host, "removed (a namespace of ours that no host of this lab accounts for)")
    missing = not Place.named(UNDERLAY_NS).exists()
    ul = create_ns(UNDERLAY_NS)
    ul.netlink(links.add_bridge, UNDERLAY_BRIDGE)
    ul.netlink(links.set_up, UNDERLAY_BRIDGE)
    if missing:
        return Repair("underlay", f"namespace {UNDERLAY_NS} created again with bridge {UNDERLAY_BRIDGE}, up")
    again = "re-created, up" if "missing" in fault.broken else "up again"
    return Repair("underlay", f"bridge {UNDERLAY_BRIDGE} {again}")


def _fix_host(fault: Fault, host: Host) -> Repair:
    assert host.run_dir is not None and host.netns is not None
    paths = OvsPaths(host.run_dir)
    if fault.kind == "namespace":
        pid = _live_daemon(host)
        if pid:
            REGISTRY.mkdir(parents=True, exist_ok=True)
            (REGISTRY / host.netns).touch()
            netns.attach(host.netns, pid)
            return Repair(
                host.name, f"re-attached namespace {host.netns} from its running OVS daemon (pid {pid})"
            )
        create_ns(host.netns)
        return Repair(host.name, f"created namespace {host.netns} again (it was gone, and all inside it)")
    if fault.kind == "ovsdb":
        hung = read_pid(paths.pidfile("ovsdb-server"))
        if hung:
            stop_pid(hung)
        switch_alive = read_pid(paths.pidfile("ovs-vswitchd")) is not None
        done = start_daemons(host.place, paths, only=("ovsdb-server",))
        which = "a new" if "created conf.db" in done else "its"
        what = f"restarted ovsdb-server on {which} database {paths.db.name}"
        if switch_alive:  # it would reconnect only at its next retry (up to 8 s)
            restart_vswitchd(host.place, paths)
            what += " (and ovs-vswitchd, to reconnect at once)"
        return Repair(host.name, what)
    if fault.kind == "vswitchd":
        start_daemons(host.place, paths, only=("ovs-vswitchd",))
        return Repair(
            host.name, "restarted ovs-vswitchd: the bridges, ports and tunnels of its database are back"
        )
    if fault.kind == "link":
        attach_host(Place.named(UNDERLAY_NS), host)
        host.place.netlink(links.set_up, NIC)
        link = f"veth {host.name} in {UNDERLAY_BRIDGE} <-> {NIC}"
        return Repair(
            host.name,
            f"underlay link {'re-created' if 'missing' in fault.broken else 'attached'}: {link}, up",
        )
    if fault.kind == "phy":
        reopen = fault.broken.startswith("OVS does not have")
        with ovs_for(host) as ovs:
            if reopen:  # each transaction waits for ovs-vswitchd: it closes the old device first
                ovs.del_port(NIC, PHY_BRIDGE)
            ovs.add_bridge(PHY_BRIDGE, datapath_type=host.datapath)
            ovs.add_port(PHY_BRIDGE, NIC)
        if reopen:
            what = f"port {NIC} re-opened"
        else:
            what = "re-created, port " + NIC if "missing" in fault.broken else f"port {NIC} added"
        return Repair(host.name, f"OVS bridge {PHY_BRIDGE}: {what}")
    if fault.kind == "nic":
        with ovs_for(host) as ovs:
            ovs.del_port(NIC, PHY_BRIDGE)
        return Repair(host.name, f"{NIC} out of {PHY_BRIDGE} again: the underlay stays the kernel's")
    if fault.kind == "address":
        holder = underlay_holder(host)
        if holder == NIC:
            host.place.netlink(_kernel_underlay_address, host)
        else:
            host.place.call(wait_for_link, PHY_BRIDGE)
            host.place.netlink(_underlay_address, host)
        return Repair(
            host.name, f"{holder} has its underlay address {host.underlay_ip}/{UNDERLAY_PREFIX} again, up"
        )
    raise WorkbenchError(f"no repair for {fault}")


def _repair_host(host: Host, progress: Progress) -> list[Repair]:
    """Fix the first fault, read again, until none is left; a fault that its repair does
    not remove (or a repair that fails) leaves only one way: this host, from nothing."""
    done: list[Repair] = []
    last: Fault | None = None
    for _ in range(12):
        faults = host_faults(host)
        if not faults:
            return done
        fault = faults[0]
        try:
            if fault == last:
                raise WorkbenchError(f"{fault.broken}, still, after: {done[-1].what}")
            repair = _fix_host(fault, host)
        except (WorkbenchError, OSError) as exc:
            return [*done, _rebuild_host(host, f"{fault.broken}: {exc}", progress)]
        progress(str(repair))
        done.append(repair)
        last = fault
    return [*done, _rebuild_host(host, "repairs did not converge", progress)]


def _rebuild_host(host: Host, why: str, progress: Progress) -> Repair:
    """What cannot be repaired: this host alone, built again from nothing."""
    assert host.run_dir is not None and host.netns is not None
    progress(f"{host.name}: cannot be repaired ({why}): building {host.name} alone again from nothing")
    stop_daemons(OvsPaths(host.run_dir))
    delete_ns(host.netns)
    shutil.rmtree(host.run_dir, ignore_errors=True)
    create_ns(host.netns)
    attach_host(Place.named(UNDERLAY_NS), host)
    build_host(host, progress)
    repair = Repair(
        host.name, f"rebuilt from nothing ({why}): the scenario's steps there need applying", True
    )
    progress(str(repair))
    return repair


def repair(hosts: list[Host], progress: Progress = _quiet) -> list[Repair]:
    done: list[Repair] = []
    for _ in range(2 + len(hosts)):
        faults = underlay_faults(hosts)
        if not faults:
            break
        done.append(_fix_underlay(faults[0]))
        progress(str(done[-1]))
    for host in hosts:
        done += _repair_host(host, progress)
    return done


# --- building -------------------------------------------------------------------------
def attach_host(ul: Place, host: Host) -> None:
    """veth hostN (in the underlay switch) <-> eth1 (in the host)."""
    assert host.netns is not None

    def make(ipr: IPRoute) -> None:
        if links.index_of(ipr, host.name) is None:
            ipr.link("add", ifname=host.name, kind="veth", peer={"ifname": NIC, "net_ns_fd": host.netns})
        links.set_master(ipr, host.name, UNDERLAY_BRIDGE)
        links.set_up(ipr, host.name)

    ul.netlink(make)


def _underlay_address(ipr: IPRoute, host: Host) -> None:
    links.set_up(ipr, NIC)
    links.set_up(ipr, PHY_BRIDGE)
    links.add_address(ipr, PHY_BRIDGE, f"{host.underlay_ip}/{UNDERLAY_PREFIX}")


def _kernel_underlay_address(ipr: IPRoute, host: Host) -> None:
    """The underlay handed to the kernel (kvxlan): the address on eth1, not on br-phy."""
    cidr = f"{host.underlay_ip}/{UNDERLAY_PREFIX}"
    links.delete_address(ipr, PHY_BRIDGE, cidr)
    links.add_address(ipr, NIC, cidr)
    links.set_up(ipr, NIC)


def build_host(host: Host, progress: Progress) -> None:
    assert host.run_dir is not None
    progress(f"{host.name}: Open vSwitch (ovsdb-server + ovs-vswitchd, userspace datapath)")
    start_daemons(host.place, OvsPaths(host.run_dir))
    with ovs_for(host) as ovs:
        ovs.add_bridge(PHY_BRIDGE)
        ovs.add_port(PHY_BRIDGE, NIC)
    progress(f"{host.name}: underlay {host.underlay_ip}/{UNDERLAY_PREFIX} on {PHY_BRIDGE}")
    host.place.call(wait_for_link, PHY_BRIDGE)
    host.place.netlink(_underlay_address, host)


def wait_for_link(name: str, timeout: float = 10.0) -> None:
    """ovs-vswitchd creates a bridge's tap a moment after the OVSDB commit."""
    deadline = time.monotonic() + timeout
    with IPRoute() as ipr:
        while links.index_of(ipr, name) is None:
            if time.monotonic() > deadline:
                raise WorkbenchError(f"{name} did not appear within {timeout:.0f}s")
            time.sleep(0.02)


def _build(hosts: list[Host], progress: Progress) -> None:
    try:
        progress(f"underlay switch: namespace {UNDERLAY_NS}, bridge {UNDERLAY_BRIDGE}")
        ul = create_ns(UNDERLAY_NS)
        ul.netlink(links.add_bridge, UNDERLAY_BRIDGE)
        ul.netlink(links.set_up, UNDERLAY_BRIDGE)
        for host in hosts:
            assert host.netns is not None
            progress(f"{host.name}: namespace {host.netns}")
            create_ns(host.netns)
            attach_host(ul, host)
        for host in hosts:
            build_host(host, progress)
    except BaseException:
        progress("lab up failed: removing what was built")
        _down(_quiet)
        raise


def _save(count: int, topology: str) -> None:
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    (RUN_DIR / "lab.json").write_text(json.dumps({"hosts": count, "topology": topology}))


def up(
    count: int | None = None,
    progress: Progress = _quiet,
    topology: str | None = None,
    on_wait: Callable[[str], None] | None = None,
    after: Callable[[LabReport], LabReport] | None = None,
) -> LabReport:
    """Build the lab (it is down), repair it (it is half-built), or leave it as it is.

    `count` and `topology` default to the lab's own (2 hosts, mesh for a new one).
    `after` runs under the same hold of the lab's lock (the engine re-reads the
    applied scenario there)."""
    if count is not None:
        host_names(count)  # validates the count before anything changes
    if topology is not None and topology not in TOPOLOGIES:
        raise WorkbenchError(f"unknown topology {topology!r} ({' or '.join(TOPOLOGIES)})")
    preflight()
    with locked(on_wait=on_wait):
        report = _up(count, progress, topology)
        return after(report) if after is not None else report


def _up(count: int | None, progress: Progress, topology: str | None) -> LabReport:
    known = (RUN_DIR / "lab.json").exists()
    saved = saved_host_count() if known else 2
    n = count or saved
    topo = topology or (saved_topology() if known else "mesh")
    hosts = lab_hosts(n)
    for name in (UNDERLAY_NS, *(netns_name(h.name) for h in hosts)):
        if Place.named(name).exists() and not ns_is_ours(name):  # refused before anything changes
            raise NotReady(
                f"network namespace {name} exists and is not containet's: "
                f"remove it (ip netns del {name}) or rename it, then retry"
            )
    state = health(n)
    databases = any(OvsPaths(h.run_dir).db.exists() for h in hosts if h.run_dir is not None)
    if state.down and not databases:
        _save(n, topo)
        _build(hosts, progress)
        return LabReport(health(n).describe(), built=True)
    if known and count is not None and count != saved:
        why = f"it had {saved} host(s), {count} asked for: another lab, not a repair"
        progress(f"rebuilding the lab from nothing: {why}")
        _down(progress)
        _save(n, topo)
        _build(hosts, progress)
        return LabReport(health(n).describe(), rebuilt=why)
    changed = topo if known and topo != saved_topology() else ""
    if changed:
        progress(f"changing the tunnel topology to {topo}")
    _save(n, topo)
    repairs = repair(hosts, progress)
    after = health(n)
    if not after.up:
        raise NotReady(f"{after.describe()} after repairing: `containet lab down`, then `containet lab up`")
    return LabReport(after.describe(), tuple(repairs), topology=changed)
