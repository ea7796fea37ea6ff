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
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import NotReady
from .ovs import OvsPaths, kill_pids, read_pid

SCHEMAS = Path("/usr/share/ovn")
NB_PORT = 6641
SB_PORT = 6642
#: Geneve in front of the inner frame: outer IPv4 20 + UDP 8 + Geneve 8 + OVN's
#: option 8 + the inner Ethernet header 14 (a 1500 underlay leaves 1442)
GENEVE_OVERHEAD = 20 + 8 + 8 + 8 + 14
BR_INT = "br-int"
ENCAP = "geneve"


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
    exits with it: that is for `scenario apply` to see and repair."""

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


def text(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def stop(pidfile: Path, files: Sequence[Path], timeout: float = 5.0) -> None:
    """Stop the daemon of a pidfile and its --monitor process, if it has one (SIGTERM,
    then SIGKILL), and once both are gone remove its files (a monitor still running
    would write "died, exiting" into the log after it was removed)."""
    pid = read_pid(pidfile)
    if pid:
        kill_pids([p for p in (monitor_of(pid), pid) if p], timeout)
    for path in files:
        path.unlink(missing_ok=True)


def monitor_of(pid: int) -> int | None:
    """The --monitor process of an OVS/OVN daemon: its parent, which renamed itself
    "<program>: monitoring pid <pid> ..." (None: it has none)."""
    try:
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        title = Path(f"/proc/{ppid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        return None
    return ppid if f": monitoring pid {pid}".encode() in title else None


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
