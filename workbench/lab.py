"""The emulated lab: hosts as network namespaces on one machine.

    cn-underlay  (linux bridge ul0: the seed's private network 10.0.0.0/24)
        |  veth host1 <-> eth1          |  veth host2 <-> eth1
    cn-host1                          cn-host2
      ovsdb-server + ovs-vswitchd       ovsdb-server + ovs-vswitchd
      br-phy (netdev) 10.0.0.3/24       br-phy (netdev) 10.0.0.4/24
        port eth1                         port eth1

The userspace datapath routes tunnel packets by the addresses on OVS bridges,
so the underlay address sits on br-phy, whose port is the host's NIC eth1.

Scenario kvxlan hands the underlay to the kernel: eth1 leaves br-phy and takes the
address, and br-phy is marked (external_ids:containet-underlay=kernel). Health and
`lab up` read that mark: the address is then wanted on eth1 (see `underlay_holder`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute, netns

from . import containers, links, portio
from .errors import NotReady, WorkbenchError
from .host import NETNS_DIR, Host, Place
from .marks import NS_ALIAS, NS_PREFIX, RUN_DIR, netns_name
from .ovs import OvsPaths, Row, daemons_running, select, stop_daemons

Progress = Callable[[str], None]

UNDERLAY_NS = f"{NS_PREFIX}underlay"
UNDERLAY_BRIDGE = "ul0"
UNDERLAY_NET = "10.0.0"
UNDERLAY_PREFIX = 24
PHY_BRIDGE = "br-phy"
NIC = "eth1"
REGISTRY = RUN_DIR / "netns.d"
MAX_HOSTS = 8
#: external_ids key on br-phy while the underlay address is on the NIC itself (kvxlan)
UNDERLAY_KEY = "containet-underlay"
UNDERLAY_KERNEL = "kernel"


def _quiet(_msg: str) -> None:
    pass


def host_names(count: int = 2) -> list[str]:
    if not 1 <= count <= MAX_HOSTS:
        raise WorkbenchError(f"a lab has 1 to {MAX_HOSTS} hosts, not {count}")
    return [f"host{i}" for i in range(1, count + 1)]


def underlay_ip(index: int) -> str:
    """host1 -> 10.0.0.3, host2 -> 10.0.0.4 (the seed's Vagrant addresses)."""
    return f"{UNDERLAY_NET}.{index + 2}"


def lab_host(name: str, index: int) -> Host:
    run_dir = RUN_DIR / name
    return Host(
        name=name,
        index=index,
        underlay_ip=underlay_ip(index),
        place=Place.named(netns_name(name)),
        ovs_db=f"unix:{OvsPaths(run_dir).sock}",
        run_dir=run_dir,
    )


TOPOLOGIES = ("mesh", "star")


def _saved() -> dict[str, object]:
    try:
        data = json.loads((RUN_DIR / "lab.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def saved_host_count() -> int:
    value = _saved().get("hosts", 2)
    return value if isinstance(value, int) else 2


def saved_topology() -> str:
    value = _saved().get("topology", "mesh")
    return value if value in TOPOLOGIES else "mesh"  # type: ignore[return-value]


def lab_hosts(count: int | None = None) -> list[Host]:
    n = count or saved_host_count()
    return [lab_host(name, i) for i, name in enumerate(host_names(n), start=1)]


# --- marked namespaces ---------------------------------------------------
def _lo_alias(ipr: IPRoute) -> str | None:
    for msg in ipr.get_links(ifname="lo"):
        return msg.get("ifalias")
    return None


def _mark_ns(ipr: IPRoute) -> None:
    idx = ipr.link_lookup(ifname="lo")[0]
    ipr.link("set", index=idx, ifalias=NS_ALIAS, state="up")


def ns_is_ours(name: str) -> bool:
    """Registered before creation, or marked inside (lo's alias)."""
    if (REGISTRY / name).exists():
        return True
    place = Place.named(name)
    if not place.exists():
        return False
    try:
        return place.netlink(_lo_alias) == NS_ALIAS
    except Exception:  # noqa: BLE001 - unreadable namespace: not provably ours
        return False


def create_ns(name: str) -> Place:
    place = Place.named(name)
    if place.exists():
        if not ns_is_ours(name):
            raise NotReady(
                f"network namespace {name} exists and is not containet's: "
                f"remove it (ip netns del {name}) or rename it, then retry"
            )
        return place
    REGISTRY.mkdir(parents=True, exist_ok=True)
    (REGISTRY / name).touch()  # registered before it exists: a crash leaves no orphan
    netns.create(name)
    place.netlink(_mark_ns)
    return place


def delete_ns(name: str) -> bool:
    existed = Place.named(name).exists()
    if existed:
        netns.remove(name)
    (REGISTRY / name).unlink(missing_ok=True)
    return existed


def marked_namespaces() -> list[str]:
    names = set(os.listdir(NETNS_DIR)) if NETNS_DIR.exists() else set()
    names |= set(os.listdir(REGISTRY)) if REGISTRY.exists() else set()
    return sorted(n for n in names if n.startswith(NS_PREFIX) and ns_is_ours(n))


# --- status ---------------------------------------------------------------
@dataclass(frozen=True)
class HostHealth:
    name: str
    netns: bool
    ovs: bool
    underlay: bool  # br-phy carries the underlay address and is up

    @property
    def ok(self) -> bool:
        return self.netns and self.ovs and self.underlay


@dataclass(frozen=True)
class LabHealth:
    hosts: tuple[HostHealth, ...]
    underlay_ns: bool
    leftovers: tuple[str, ...]  # marked namespaces that no host accounts for

    @property
    def up(self) -> bool:
        return self.underlay_ns and all(h.ok for h in self.hosts) and not self.leftovers

    @property
    def down(self) -> bool:
        return not self.underlay_ns and not any(h.netns or h.ovs for h in self.hosts) and not self.leftovers

    def describe(self) -> str:
        if self.up:
            return f"lab is up: {', '.join(h.name for h in self.hosts)}"
        if self.down:
            return "lab is down"
        broken = [h.name for h in self.hosts if not h.ok] + ([] if self.underlay_ns else ["underlay"])
        what = [f"not healthy: {', '.join(broken)}"] if broken else []
        what += [f"stray namespaces {', '.join(self.leftovers)}"] if self.leftovers else []
        return f"lab is half-built ({'; '.join(what)})"


def handed_to_kernel(bridges: list[Row]) -> bool:
    """br-phy's mark says the underlay is on the NIC (rows of OVSDB's Bridge table)."""
    phy = next((b for b in bridges if b.get("name") == PHY_BRIDGE), None)
    return phy is not None and (phy.get("external_ids") or {}).get(UNDERLAY_KEY) == UNDERLAY_KERNEL


def underlay_holder(host: Host) -> str:
    """The device meant to hold the host's underlay address: br-phy, or eth1 while a
    scenario has handed the underlay to the kernel (br-phy's mark; unreadable: br-phy)."""
    try:
        bridges = select(host.ovs_db, ["Bridge"], timeout=2)["Bridge"]
    except Exception:  # noqa: BLE001 - OVS down: its own fault, the default holder
        return PHY_BRIDGE
    return NIC if handed_to_kernel(bridges) else PHY_BRIDGE


def _underlay_ok(host: Host) -> bool:
    """The underlay address is on its holder (br-phy, or eth1 handed to the kernel), up,
    and eth1 (the host's end of the veth into the underlay switch) is up at both ends.
    OVSDB is asked about the mark only when br-phy does not hold the address."""
    want = f"{host.underlay_ip}/{UNDERLAY_PREFIX}"

    def read(ipr: IPRoute) -> tuple[links.LinkRow | None, links.LinkRow | None]:
        return links.link_row(ipr, PHY_BRIDGE), links.link_row(ipr, NIC)

    try:
        phy, nic = host.place.netlink(read)
    except Exception:  # noqa: BLE001
        return False
    holder = phy
    if (phy is None or want not in phy.addresses) and underlay_holder(host) == NIC:
        holder = nic
    return (
        holder is not None
        and want in holder.addresses
        and holder.admin_up
        and nic is not None
        and nic.admin_up
        and nic.state != "LOWERLAYERDOWN"
    )


def health(count: int | None = None) -> LabHealth:
    hosts = lab_hosts(count)
    rows = []
    for h in hosts:
        assert h.run_dir is not None
        exists = h.place.exists()
        rows.append(
            HostHealth(
                name=h.name,
                netns=exists,
                ovs=daemons_running(OvsPaths(h.run_dir)),
                underlay=exists and _underlay_ok(h),
            )
        )
    known = {UNDERLAY_NS, *(netns_name(h.name) for h in hosts)}
    stray = tuple(n for n in marked_namespaces() if n not in known)
    return LabHealth(tuple(rows), Place.named(UNDERLAY_NS).exists(), stray)


# --- up / down --------------------------------------------------------------
_held = threading.local()  # how deep this thread holds the lock (see locked)


def _holder_line() -> str:
    """Who holds the lock, as written into the lock file: pid and command line
    (`containet scenario apply exp1`, `containet-tui`, a bench script)."""
    try:
        with open("/proc/self/cmdline", "rb") as fh:
            argv = [a.decode(errors="replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        argv = []
    if argv and os.path.basename(argv[0]).startswith("python") and len(argv) > 1:
        argv = argv[1:]  # the script python runs, not python itself
    if argv:
        argv[0] = os.path.basename(argv[0])
    return f"{os.getpid()} {' '.join(argv)}".replace("\n", " ")[:200].strip()


def lock_holder(lock: Path | None = None) -> str | None:
    """'pid command' of the process holding this instance's lock (None: unknown)."""
    try:
        text = (lock or RUN_DIR / ".lock").read_text().strip()
    except OSError:
        return None
    return text or None


@contextmanager
def locked(*, release: bool = False, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """One command that changes the lab at a time (an flock on RUN_DIR/.lock), from
    the CLI and the TUI alike. The holder writes its pid and command line into the
    lock file; a second writer that finds the lock taken says who holds it through
    `on_wait`, then waits for it.

    With release=True (clean, lab down) the instance's run directory goes too
    when nothing but the lock is left in it. A command that was waiting on the
    removed lock file notices (the path no longer names the file it locked)
    and locks the new one instead, so two commands never both hold the lock.

    Re-entrant within a thread: a doctor's fix that re-applies the scenario takes
    it again inside its own hold."""
    if getattr(_held, "depth", 0):
        _held.depth += 1
        try:
            yield
        finally:
            _held.depth -= 1
        return
    lock = RUN_DIR / ".lock"
    told = False
    while True:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        fh = open(lock, "a+")  # noqa: SIM115 - held until the end of the with block below
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None and not told:
                holder = lock_holder(lock) or "another containet command"
                on_wait(f"waiting for the lab lock, held by {holder}")
                told = True
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            same = os.stat(lock).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        fh.close()
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(_holder_line() + "\n")
        fh.flush()
        _held.depth = 1
        yield
    finally:
        _held.depth = 0
        with suppress(OSError):
            fh.truncate(0)
        if release:
            _remove_if_spent(lock)
        fh.close()


def _remove_if_spent(lock: Path) -> None:
    """The run directory, its lock and empty folders, when that is all it holds."""
    rest = [p for p in RUN_DIR.iterdir() if p != lock]
    if all(p.is_dir() and not any(p.iterdir()) for p in rest):
        for p in rest:
            p.rmdir()
        lock.unlink()
        with suppress(OSError):
            RUN_DIR.rmdir()
            RUN_DIR.parent.rmdir()  # /run/containet, when no other instance is there


def preflight(need_docker: bool = True) -> None:
    if os.geteuid() != 0:
        raise NotReady("containet needs root (network namespaces, OVS): run it with sudo")
    missing = [t for t in ("ovsdb-server", "ovs-vswitchd", "ovsdb-tool") if not shutil.which(t)]
    if missing:
        raise NotReady(
            f"Open vSwitch tools missing ({', '.join(missing)}): apt-get install openvswitch-switch"
        )
    if need_docker:
        containers.ensure_image(containers.client())


def _down(progress: Progress) -> list[str]:
    removed = []
    for name in sorted(os.listdir(RUN_DIR)) if RUN_DIR.exists() else []:
        run_dir = RUN_DIR / name
        if run_dir.is_dir() and name != "netns.d":
            pids = stop_daemons(OvsPaths(run_dir))
            if pids:
                removed.append(f"ovs processes {' '.join(map(str, pids))} ({name})")
                progress(removed[-1])
            shutil.rmtree(run_dir, ignore_errors=True)
    for name in marked_namespaces():
        if delete_ns(name):
            removed.append(f"namespace {name}")
            progress(removed[-1])
    (RUN_DIR / "lab.json").unlink(missing_ok=True)
    portio.SAVED.unlink(missing_ok=True)  # a new lab starts with OVS's default port I/O
    return removed


def down(progress: Progress = _quiet, remove_containers: bool = True) -> list[str]:
    """Remove the lab: containers of lab hosts, OVS instances, namespaces."""
    if os.geteuid() != 0:
        raise NotReady("containet needs root (network namespaces, OVS): run it with sudo")
    with locked(release=True, on_wait=progress):
        removed = []
        if remove_containers:
            try:
                cli = containers.client()
            except NotReady:
                cli = None
            if cli is not None:
                for row in containers.list_marked(cli):
                    if containers.remove(cli, row.id):
                        removed.append(f"container {row.name}")
                        progress(removed[-1])
        removed += _down(progress)
        return removed
