"""Remove everything that carries the project's mark, and nothing else.

Marks: docker label containet=<mark> together with a containet.name label (a
container run by hand from containet's image has neither: the image is labelled
containet.image); namespaces registered in /run/containet or
marked inside (lo alias); OVS processes started on /run/containet; on the
system OVS, rows with external_ids containet=1; root-namespace links whose
alias is "containet" (real mode); iptables rules commented "containet".
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from pyroute2 import IPRoute

from . import containers as dk
from . import lab, links, ovn
from .capture.mirror import marked_mirrors, remove_marked
from .errors import NotReady, WorkbenchError
from .host import Place
from .marks import IPT_COMMENT, MARK_VALUE, OVS_MARK, RUN_DIR
from .ovs import Ovs, pids_using, process_title, select, stop_pid, uuids

SYSTEM_OVS_SOCK = Path("/var/run/openvswitch/db.sock")


@dataclass(frozen=True)
class Item:
    what: str
    remove: Callable[[], object]


def _containers() -> list[Item]:
    try:
        cli = dk.client(timeout=10)
    except NotReady:
        return []
    return [
        Item(f"container {r.docker_name} ({r.host or '?'})", lambda r=r: dk.remove(cli, r.id))  # type: ignore[misc]
        for r in dk.list_marked(cli)
    ]


def _injected() -> list[Item]:
    """Faults and impairments (workbench.impair, workbench.faults): revert what their
    records say while the hosts still exist, then stop the helper processes
    (delay lines, flappers) by their mark."""
    from .impair import procs, store

    items = []
    records = sum(len(store.load_all(kind)) for kind in ("fault", "link", "impair"))
    if records:
        items.append(Item(f"{records} injected fault(s) and impairment(s): reverted", _revert_injected))
    items += [Item(f"helper process {pid}", partial(procs.stop_pid, pid)) for pid in procs.marked()]
    return items


def _revert_injected() -> None:
    from .context import Context
    from .impair.ops import revert_all

    hosts = [h for h in lab.lab_hosts() if h.place.exists()]
    with Context(hosts) as ctx:
        revert_all(ctx)


def _processes() -> list[Item]:
    """Our OVS daemons, and OVN's (ovsdb-server of NB/SB, ovn-northd, ovn-controller):
    OVN's go first, so no ovn-controller reprograms an OVS that is going away."""
    from .capture import capture_pids  # tcpdump of a capture: its filter file is under RUN_DIR

    # OVN's first, and a monitor before its daemon (it restarts one killed by a signal it takes for a crash)
    labels = {pid: _label(pid) for pid in pids_using(RUN_DIR)}
    pids = sorted(labels, key=lambda p: (not labels[p].startswith("ovn"), "monitor" not in labels[p]))
    items = [Item(labels[pid], partial(stop_pid, pid)) for pid in pids]
    return items + [Item(f"capture process {pid}", partial(stop_pid, pid)) for pid in capture_pids()]


def _program(pid: int) -> str:
    found = process_title(pid)
    if found is None:
        return "?"
    program, title = found
    return os.path.basename(program) + (" monitor" if title is not None else "")


def _label(pid: int) -> str:
    """ "ovs process PID" as before; an OVN daemon says which (an ovsdb-server of OVN's
    NB or SB is named by its database)."""
    program = _program(pid)
    if program.startswith("ovn"):
        return f"ovn process {pid} ({program})"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().decode(errors="replace").split("\0")
    except OSError:
        argv = []
    db = next((os.path.basename(a) for a in argv[1:2] if a.endswith(("ovnnb_db.db", "ovnsb_db.db"))), None)
    return f"ovn process {pid} (ovsdb-server {db})" if db else f"ovs process {pid}"


def _namespaces() -> list[Item]:
    return [Item(f"namespace {n}", lambda n=n: lab.delete_ns(n)) for n in lab.marked_namespaces()]  # type: ignore[misc]


def _root_links() -> list[Item]:
    """Links in the root namespace (real mode) marked with our ifalias."""
    with IPRoute() as ipr:
        names = [r.name for r in links.read_links(ipr) if r.alias == IPT_COMMENT]
    return [Item(f"link {n}", partial(Place.root().netlink, links.delete_link, n)) for n in names]


def _system_ovs(sock: Path) -> list[Item]:
    if not sock.exists():
        return []
    try:
        ovs = Ovs(f"unix:{sock}", timeout=3)
    except NotReady:
        return []
    items = []
    try:
        for row in ovs.rows("Bridge", ["name", "external_ids"]):
            if (row.get("external_ids") or {}).get(OVS_MARK) == MARK_VALUE:
                items.append(
                    Item(f"system OVS bridge {row['name']}", partial(_del_bridge, sock, row["name"]))
                )
        for row in ovs.rows("Manager", ["target", "external_ids"]):
            if (row.get("external_ids") or {}).get(OVS_MARK) == MARK_VALUE:
                items.append(
                    Item(f"system OVS manager {row['target']}", partial(_del_manager, sock, row["target"]))
                )
        marked_bridges = {i.what.rsplit(" ", 1)[1] for i in items if " bridge " in i.what}
        for mname, mbr, uuid in marked_mirrors(ovs):  # a capture's mirror (its port: below)
            if mbr not in marked_bridges:
                items.append(Item(f"system OVS mirror {mname}", partial(_del_mirror, sock, mbr, uuid)))
        for row in ovs.rows("Port", ["name", "external_ids"]):
            if (row.get("external_ids") or {}).get(OVS_MARK) == MARK_VALUE:
                br = ovs.port_bridge(row["name"])
                if br not in marked_bridges:
                    items.append(
                        Item(f"system OVS port {row['name']}", partial(_del_port, sock, row["name"]))
                    )
        items += _system_ovn(ovs, sock)
    finally:
        ovs.close()
    return items


def _system_ovn(ovs: Ovs, sock: Path) -> list[Item]:
    """Real mode, an ovn scenario of this instance left behind: this host's logical
    ports in host1's northbound, its switches once no other port is on them, and the
    chassis settings of the system's OVS, put back as they were. The system's OVN
    daemons and databases stay: they are not ours."""
    ids = ovn.ovs_ids(ovs)
    saved = ovn.saved_settings(ids)
    if saved is None:
        return []
    nb, host = ovn.nb_of(ids.get("ovn-remote", "")), ids.get("system-id")
    items = _nb_leftovers(nb, host) if nb else []
    keys = ", ".join(sorted(saved))
    items.append(
        Item(f"system OVS OVN settings ({keys}), put back as they were", partial(_restore_ovn, sock))
    )
    return items


def _nb_leftovers(nb: str, host: str | None) -> list[Item]:
    """This host's marked logical ports, and marked switches nothing else is on."""
    try:
        rows = select(nb, ["Logical_Switch", "Logical_Switch_Port"], timeout=2, database="OVN_Northbound")
    except WorkbenchError:  # the NB does not answer: the settings still go back
        return []

    def ours(row: dict[str, Any]) -> bool:
        return bool((row.get("external_ids") or {}).get(OVS_MARK) == MARK_VALUE)

    mine = {
        r["_uuid"]: r["name"]
        for r in rows["Logical_Switch_Port"]
        if ours(r) and r["external_ids"].get(ovn.PORT_HOST) == host
    }
    items = [
        Item(f"OVN logical port {n} ({nb})", partial(_nb_del, nb, "lsp", n)) for n in sorted(mine.values())
    ]
    for ls in rows["Logical_Switch"]:
        if ours(ls) and set(uuids(ls.get("ports"))) <= set(mine):
            items.append(
                Item(f"OVN logical switch {ls['name']} ({nb})", partial(_nb_del, nb, "ls", ls["name"]))
            )
    return items


def _nb_del(nb: str, kind: str, name: str) -> None:
    client = ovn.OvnNb(nb, timeout=3)
    try:
        api = client.api
        cmd = api.lsp_del(name, if_exists=True) if kind == "lsp" else api.ls_del(name, if_exists=True)
        cmd.execute(check_error=True)
    finally:
        client.close()


def _restore_ovn(sock: Path) -> None:
    ovs = Ovs(f"unix:{sock}", timeout=3)
    try:
        ovn.restore_chassis(ovs)
    finally:
        ovs.close()


def _del_bridge(sock: Path, name: str) -> None:
    ovs = Ovs(f"unix:{sock}", timeout=3)
    try:
        ovs.del_bridge(name)
    finally:
        ovs.close()


def _del_manager(sock: Path, target: str) -> None:
    ovs = Ovs(f"unix:{sock}", timeout=3)
    try:
        ovs.api.remove_manager(target).execute(check_error=True)
    finally:
        ovs.close()


def _del_mirror(sock: Path, bridge: str, uuid: object) -> None:
    ovs = Ovs(f"unix:{sock}", timeout=3)
    try:
        remove_marked(ovs, bridge, uuid)
    finally:
        ovs.close()


def _del_port(sock: Path, name: str) -> None:
    ovs = Ovs(f"unix:{sock}", timeout=3)
    try:
        ovs.del_port(name)
    finally:
        ovs.close()


def _iptables() -> list[Item]:
    if not shutil.which("iptables-save"):
        return []
    items = []
    for table in ("nat", "filter"):
        out = Place.root().run(["iptables-save", "-t", table], check=False).stdout
        for line in out.splitlines():
            words = shlex.split(line)
            if words[:1] == ["-A"] and _comment(words) == IPT_COMMENT:
                argv = ["iptables", "-w", "-t", table, "-D", *words[1:]]
                items.append(Item(f"iptables {table} {line}", partial(Place.root().run, argv, check=False)))
    return items


def _comment(words: list[str]) -> str | None:
    for i, word in enumerate(words[:-1]):
        if word == "--comment":
            return words[i + 1]
    return None


def _run_dir() -> list[Item]:
    def leftover(p: Path) -> bool:
        return p.name != ".lock" and not (p.is_dir() and not any(p.iterdir()))

    if not RUN_DIR.exists() or not any(leftover(p) for p in RUN_DIR.iterdir()):
        return []
    return [Item(f"run directory {RUN_DIR}", lambda: _wipe_run_dir())]


def _wipe_run_dir() -> None:
    for entry in RUN_DIR.iterdir():
        if entry.name == ".lock":
            continue
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def find(system_ovs: Path | None = None) -> list[Item]:
    """What carries the mark, in the order it must go: rows of the system OVS while
    it answers, our own OVS processes before their namespaces."""
    return (
        _injected()
        + _containers()
        + _system_ovs(system_ovs or SYSTEM_OVS_SOCK)
        + _root_links()
        + _iptables()
        + _processes()
        + _namespaces()
        + _run_dir()
    )


def clean(
    dry_run: bool = False, progress: Callable[[str], None] = print, system_ovs: Path | None = None
) -> list[str]:
    """Remove (or with dry_run, list) what carries the mark; `system_ovs` is the real-mode
    OVS database socket to look in (default /var/run/openvswitch/db.sock)."""
    if os.geteuid() != 0:
        raise NotReady("containet needs root (network namespaces, OVS): run it with sudo")
    if dry_run:
        items = find(system_ovs)
        for item in items:
            progress(f"would remove {item.what}")
        return [i.what for i in items]
    done = []
    with lab.locked(release=True, on_wait=progress):
        for item in find(system_ovs):
            item.remove()
            done.append(item.what)
            progress(f"removed {item.what}")
    return done
