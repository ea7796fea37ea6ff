"""OVN in the lab: its daemons, with their own files in the host's run directory,
and a client of the northbound database (ovsdbapp's OVN northbound API).

    host1 (central)   ovsdb-server ovnnb_db.db  unix:ovnnb_db.sock + ptcp:6641:<underlay>
                      ovsdb-server ovnsb_db.db  unix:ovnsb_db.sock + ptcp:6642:<underlay>
                      ovn-northd   (NB -> SB, over the two unix sockets)
    every host        ovn-controller  (the host's OVS db.sock; SB at tcp:<host1>:6642)

Every daemon runs inside its host's namespace and is started with files named
in that host's run directory (RUN_DIR/<host>/), so `ovs.pids_using` finds it by
its command line and `lab down` / `clean` stop it with the host's OVS daemons.
The argument lists below are the commands the scenario's steps show: shown and
run are one and the same.

Real mode (the seed's VMs) uses the system's OVN instead (SystemOvn): Debian's
ovn-central on host1, ovn-host on every VM, reached over the underlay.
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import NotReady
from .marks import MARK_VALUE
from .ovs import Ovs, OvsPaths, kill_pids, monitor_title_of, pids_running, read_pid

SCHEMAS = Path("/usr/share/ovn")
NB_PORT = 6641
SB_PORT = 6642
#: Geneve in front of the inner frame: outer IPv4 20 + UDP 8 + Geneve 8 + OVN's
#: option 8 + the inner Ethernet header 14 (a 1500 underlay leaves 1442)
GENEVE_OVERHEAD = 20 + 8 + 8 + 8 + 14
BR_INT = "br-int"
ENCAP = "geneve"
#: the packages' control script (Debian's ovn-central / ovn-host run their daemons with it)
OVN_CTL = "/usr/share/ovn/scripts/ovn-ctl"
#: the central's daemons as ovn-ctl names their pidfiles, and the host's
CENTRAL_DAEMONS = ("ovnnb_db", "ovnsb_db", "ovn-northd")
CONTROLLER = "ovn-controller"
#: Open_vSwitch external_ids key where a chassis step keeps what it replaced
SAVED = "containet-ovn"
#: external_ids key of a logical port: the host whose containet made it
PORT_HOST = "containet.host"


def tcp_remote(ip: str, which: str) -> str:
    """The central's NB ("nb") or SB ("sb") on the underlay: tcp:10.0.0.3:6641."""
    return f"tcp:{ip}:{NB_PORT if which == 'nb' else SB_PORT}"


def nb_of(sb_remote: str) -> str | None:
    """The NB beside a chassis' southbound remote (tcp:IP:6642 -> tcp:IP:6641)."""
    proto, _, rest = sb_remote.partition(":")
    ip, _, port = rest.rpartition(":")
    return f"{proto}:{ip}:{NB_PORT}" if proto == "tcp" and port == str(SB_PORT) else None


@dataclass(frozen=True)
class OvnDb:
    """The northbound ("nb") or southbound ("sb") database of the central host."""

    run_dir: Path
    which: str  # nb, sb

    @property
    def stem(self) -> str:
        return f"ovn{self.which}_db"

    @property
    def schema(self) -> Path:
        return SCHEMAS / f"ovn-{self.which}.ovsschema"

    @property
    def database(self) -> str:
        return "OVN_Northbound" if self.which == "nb" else "OVN_Southbound"

    @property
    def port(self) -> int:
        return NB_PORT if self.which == "nb" else SB_PORT

    @property
    def file(self) -> Path:
        return self.run_dir / f"{self.stem}.db"

    @property
    def sock(self) -> Path:
        return self.run_dir / f"{self.stem}.sock"

    @property
    def pidfile(self) -> Path:
        return self.run_dir / f"{self.stem}.pid"

    @property
    def ctl(self) -> Path:
        return self.run_dir / f"{self.stem}.ctl"

    @property
    def log(self) -> Path:
        return self.run_dir / f"{self.stem}.log"

    @property
    def remote(self) -> str:
        return f"unix:{self.sock}"

    def files(self) -> tuple[Path, ...]:
        return (
            self.file,
            self.sock,
            self.pidfile,
            self.ctl,
            self.log,
            self.run_dir / f".{self.stem}.db.~lock~",
        )

    def create_argv(self) -> list[str]:
        return ["ovsdb-tool", "create", str(self.file), str(self.schema)]

    def server_argv(self, listen_ip: str) -> list[str]:
        return [
            "ovsdb-server",
            str(self.file),
            f"--remote=punix:{self.sock}",
            f"--remote=ptcp:{self.port}:{listen_ip}",
            f"--pidfile={self.pidfile}",
            f"--unixctl={self.ctl}",
            f"--log-file={self.log}",
            "--detach",
            "--no-chdir",
        ]


@dataclass(frozen=True)
class Northd:
    run_dir: Path

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "ovn-northd.pid"

    @property
    def ctl(self) -> Path:
        return self.run_dir / "ovn-northd.ctl"

    @property
    def log(self) -> Path:
        return self.run_dir / "ovn-northd.log"

    def files(self) -> tuple[Path, ...]:
        return (self.pidfile, self.ctl, self.log)

    def argv(self) -> list[str]:
        return [
            "ovn-northd",
            f"--ovnnb-db={OvnDb(self.run_dir, 'nb').remote}",
            f"--ovnsb-db={OvnDb(self.run_dir, 'sb').remote}",
            f"--pidfile={self.pidfile}",
            f"--unixctl={self.ctl}",
            f"--log-file={self.log}",
            "--detach",
            "--no-chdir",
        ]


@dataclass(frozen=True)
class Controller:
    """ovn-controller of one host. 23.03 has no --unixctl: its control socket is
    $OVN_RUNDIR/ovn-controller.<pid>.ctl, and it reaches ovs-vswitchd's OpenFlow
    socket as $OVS_RUNDIR/br-int.mgmt, so both name the host's run directory.

    --monitor: measured here, 23.03.1 dies of a segmentation fault right after
    its first OpenFlow connection in about one start of eight (then no port of
    that host ever comes up). Its monitor process starts it again after a crash;
    a daemon killed (SIGKILL, SIGTERM) is not restarted by the monitor, which
    exits with it: that is for `scenario apply` to see and repair. A second crash
    within 10 s makes the monitor wait out those 10 s (then only the monitor runs,
    the pidfile names a dead process): see intents.ovn.restart_held_off."""

    run_dir: Path

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "ovn-controller.pid"

    @property
    def log(self) -> Path:
        return self.run_dir / "ovn-controller.log"

    def ctl(self, pid: int) -> Path:
        return self.run_dir / f"ovn-controller.{pid}.ctl"

    def files(self) -> list[Path]:
        return [self.pidfile, self.log, *self.run_dir.glob("ovn-controller.*.ctl")]

    def crashes(self) -> str:
        """What its monitor says of crashes ("2 crashes: pid 13900 died, killed
        (Segmentation fault)"), "" when it says "healthy" or there is no monitor.
        A running daemon's monitor is its parent; only a daemon that is down makes
        this scan /proc for a monitor (the inventory asks on every refresh)."""
        pid = read_pid(self.pidfile)
        if pid:
            parent = monitor_of(pid)
            candidates = [parent] if parent else []
        else:
            candidates = self.pids()
        for candidate in candidates:
            title = monitor_title_of(candidate)
            if title is None:
                continue  # the daemon itself (or gone): only a monitor has a note
            note = title.partition(" (")[2].rstrip().removesuffix(")")
            if note != "healthy":
                return note
        return ""

    def pids(self) -> list[int]:
        """Its processes: the daemon and its monitor (alone while it restarts a crashed
        daemon, when the pidfile names nobody)."""
        return pids_running((b"ovn-controller",), f"{self.run_dir}/".encode())

    def argv(self) -> list[str]:
        return [
            "env",
            f"OVS_RUNDIR={self.run_dir}",
            f"OVN_RUNDIR={self.run_dir}",
            "ovn-controller",
            f"unix:{OvsPaths(self.run_dir).sock}",
            f"--pidfile={self.pidfile}",
            f"--log-file={self.log}",
            "--monitor",
            "--detach",
            "--no-chdir",
        ]


@dataclass(frozen=True)
class SystemOvn:
    """The system's OVN (real mode), as Debian's packages run it: ovn-ctl keeps the
    daemons' pidfiles in $OVN_RUNDIR (default /var/run/ovn) and finds the OVS
    database as $OVS_RUNDIR/db.sock. containet starts a part that does not run the
    package's way (systemctl where systemd runs, else ovn-ctl) and never stops it:
    the daemons and their databases are the system's."""

    ovs_sock: str  # the system OVS database socket (a path)
    run_dir: Path = field(default_factory=lambda: Path(os.environ.get("OVN_RUNDIR") or "/var/run/ovn"))

    def running(self, daemons: Sequence[str]) -> bool:
        return all(read_pid(self.run_dir / f"{d}.pid") is not None for d in daemons)

    def start_argv(self, part: str) -> list[str]:
        """Start "central" (NB, SB, ovn-northd) or "controller" the package's way."""
        if Path("/run/systemd/system").is_dir():
            return ["systemctl", "start", f"ovn-{part}"]
        command = "start_northd" if part == "central" else "start_controller"
        return ["env", f"OVS_RUNDIR={Path(self.ovs_sock).parent}", OVN_CTL, command]


def saved_settings(ids: dict[str, str]) -> dict[str, str | None] | None:
    """What this instance's chassis step replaced in Open_vSwitch external_ids (key ->
    the value before, None: absent), or None when it set nothing there."""
    try:
        blob = json.loads(ids[SAVED])
    except (KeyError, ValueError):
        return None
    if not isinstance(blob, dict) or blob.get("mark") != MARK_VALUE:
        return None
    return dict(blob.get("replaced") or {})


def set_chassis(ovs: Ovs, settings: dict[str, str]) -> None:
    """Write a chassis' external_ids, keeping (the first time) what they replace."""
    ids = ovs_ids(ovs)
    new = dict(settings)
    if saved_settings(ids) is None:
        replaced = {k: ids.get(k) for k in settings}
        new[SAVED] = json.dumps({"mark": MARK_VALUE, "replaced": replaced}, sort_keys=True)
    ovs.api.db_set("Open_vSwitch", ".", ("external_ids", new)).execute(check_error=True)


def restore_chassis(ovs: Ovs) -> list[str]:
    """Put back what set_chassis replaced (set with a record of it, in the same
    transaction: no record, nothing of ours is there); returns the keys restored."""
    saved = saved_settings(ovs_ids(ovs))
    if saved is None:
        return []
    back = {k: v for k, v in saved.items() if v is not None}
    gone = [k for k, v in saved.items() if v is None]
    with ovs.api.transaction(check_error=True) as txn:
        txn.add(ovs.api.db_remove("Open_vSwitch", ".", "external_ids", *gone, SAVED))
        if back:
            txn.add(ovs.api.db_set("Open_vSwitch", ".", ("external_ids", back)))
    return sorted(saved)


def ovs_ids(ovs: Ovs) -> dict[str, str]:
    rows = ovs.rows("Open_vSwitch", ["external_ids"])
    return dict((rows[0].get("external_ids") or {}) if rows else {})


def text(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def stop(pidfile: Path, files: Sequence[Path], timeout: float = 5.0, others: Sequence[int] = ()) -> None:
    """Stop the daemon of a pidfile and its --monitor process, if it has one, and
    `others` of it (SIGTERM, then SIGKILL); once all are gone remove its files (a
    monitor still running would write "died, exiting" into the log after it was
    removed)."""
    pid = read_pid(pidfile)
    pids = [p for p in (monitor_of(pid), pid) if p] if pid else []
    pids += [p for p in others if p not in pids]
    if pids:
        kill_pids(pids, timeout)
    for path in files:
        path.unlink(missing_ok=True)


def monitor_of(pid: int) -> int | None:
    """The --monitor process of an OVS/OVN daemon: its parent, which renamed itself
    "<program>: monitoring pid <pid> ..." (None: it has none)."""
    try:
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None
    title = monitor_title_of(ppid)
    return ppid if title is not None and title.split(" ", 1)[0] == str(pid) else None


def mac_for(ip: str) -> str:
    """A stable, locally administered MAC for a container's address: 0a:00 + the IPv4
    bytes (172.15.42.100 -> 0a:00:ac:0f:2a:64), so OVN's logical port and the
    container's eth0 agree without asking each other."""
    return "0a:00:" + ":".join(f"{int(b):02x}" for b in ip.split("."))


class OvnNb:
    """ovsdbapp's OVN northbound API on one NB database."""

    def __init__(self, remote: str, timeout: float = 10) -> None:
        self.remote = remote
        sock = remote.removeprefix("unix:")
        if remote.startswith("unix:") and not Path(sock).exists():
            raise NotReady(f"OVN northbound database {sock} is not there: is OVN central up?")
        # imported here: the NB API costs every command ~80 ms, and only OVN steps need it
        from ovsdbapp.backend.ovs_idl import connection
        from ovsdbapp.schema.ovn_northbound import impl_idl

        try:
            idl = connection.OvsdbIdl.from_server(remote, "OVN_Northbound")
            self._conn = connection.Connection(idl=idl, timeout=timeout)
            # ovsdbapp keeps the connection on the class: one class per database
            api_cls = type("OvnNbFor", (impl_idl.OvnNbApiIdlImpl,), {"_ovsdb_connection": None})
            self.api = api_cls(self._conn)
        except Exception as exc:  # ovsdbapp raises several kinds
            raise NotReady(f"cannot reach OVN northbound at {remote}: {exc}") from exc

    def close(self) -> None:
        try:
            self._conn.stop(timeout=2)
        except Exception:  # noqa: BLE001 - best effort at shutdown
            pass

    def rows(self, table: str) -> list[dict[str, Any]]:
        return list(self.api.db_list(table).execute(check_error=True))

    def row(self, table: str, name: str) -> dict[str, Any] | None:
        rows = self.api.db_find(table, ("name", "=", name)).execute(check_error=True)
        return rows[0] if rows else None
