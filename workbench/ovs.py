"""Open vSwitch: per-host daemons (lab mode) and an ovsdbapp client per host.

Every Bridge, Port and Interface row we create carries external_ids
containet=1 so cleanup can tell ours from anything else.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ovs.db import idl
from ovsdbapp.backend.ovs_idl import connection
from ovsdbapp.schema.open_vswitch import impl_idl

from .errors import NotReady, WorkbenchError
from .host import Host, Place
from .marks import MARK_VALUE, OVS_MARK

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
DAEMONS = ("ovsdb-server", "ovs-vswitchd")
MARK = {OVS_MARK: MARK_VALUE}


@dataclass(frozen=True)
class OvsPaths:
    run_dir: Path

    @property
    def db(self) -> Path:
        return self.run_dir / "conf.db"

    @property
    def sock(self) -> Path:
        return self.run_dir / "db.sock"

    def pidfile(self, daemon: str) -> Path:
        return self.run_dir / f"{daemon}.pid"

    def ctl(self, daemon: str) -> Path:
        return self.run_dir / f"{daemon}.ctl"

    def log(self, daemon: str) -> Path:
        return self.run_dir / f"{daemon}.log"


def read_pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is not alive for our purposes
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def daemons_running(paths: OvsPaths) -> bool:
    return all(read_pid(paths.pidfile(d)) for d in DAEMONS)


def start_daemons(place: Place, paths: OvsPaths, only: Sequence[str] = DAEMONS) -> list[str]:
    """One ovsdb-server + ovs-vswitchd inside `place`, with their own run dir.

    A daemon that runs already is left alone, and an existing database file is
    kept as it is: a daemon that died comes back on it, and with it every bridge,
    port and tunnel it held. `only` names the daemons to start (both by
    default). Returns what it did: "created conf.db", then the daemons started."""
    if not SCHEMA.exists():
        raise NotReady("Open vSwitch is not installed (apt-get install openvswitch-switch)")
    paths.run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OVS_RUNDIR=str(paths.run_dir), OVS_DBDIR=str(paths.run_dir))
    done = []
    if not paths.db.exists():
        place.run(["ovsdb-tool", "create", str(paths.db), str(SCHEMA)])
        # the Open_vSwitch root row, which `ovs-vsctl init` would insert
        place.run(
            [
                "ovsdb-tool",
                "transact",
                str(paths.db),
                '["Open_vSwitch",{"op":"insert","table":"Open_vSwitch","row":{}}]',
            ]
        )
        done.append(f"created {paths.db.name}")
    if "ovsdb-server" in only and not read_pid(paths.pidfile("ovsdb-server")):
        place.run(
            [
                "ovsdb-server",
                str(paths.db),
                f"--remote=punix:{paths.sock}",
                # like the system OVS: extra listeners come from Manager rows
                "--remote=db:Open_vSwitch,Open_vSwitch,manager_options",
                f"--pidfile={paths.pidfile('ovsdb-server')}",
                f"--unixctl={paths.ctl('ovsdb-server')}",
                f"--log-file={paths.log('ovsdb-server')}",
                "--detach",
                "--no-chdir",
            ],
            env=env,
        )
        done.append("ovsdb-server")
    if "ovs-vswitchd" in only and not read_pid(paths.pidfile("ovs-vswitchd")):
        # --detach returns once it has read the database and built its bridges
        place.run(
            [
                "ovs-vswitchd",
                f"unix:{paths.sock}",
                f"--pidfile={paths.pidfile('ovs-vswitchd')}",
                f"--unixctl={paths.ctl('ovs-vswitchd')}",
                f"--log-file={paths.log('ovs-vswitchd')}",
                "--detach",
                "--no-chdir",
            ],
            env=env,
        )
        done.append("ovs-vswitchd")
    return done


def restart_vswitchd(place: Place, paths: OvsPaths, timeout: float = 5.0) -> None:
    """Stop ovs-vswitchd without --cleanup (its bridges' devices stay) and start it
    again: after ovsdb-server came back, it reconnects at once instead of at its
    next retry (its back-off grows to 8 s)."""
    pid = read_pid(paths.pidfile("ovs-vswitchd"))
    if pid:
        stop_pid(pid, timeout, cleanup=False)
    start_daemons(place, paths, only=("ovs-vswitchd",))


def stop_daemons(paths: OvsPaths, timeout: float = 5.0) -> list[int]:
    """Stop both daemons of a run dir; returns the pids that were signalled.

    ovs-vswitchd goes first, while its database still answers (see stop_pid)."""
    pids = [p for p in (read_pid(paths.pidfile(d)) for d in reversed(DAEMONS)) if p]
    pids += [p for p in pids_using(paths.run_dir) if p not in pids]
    for pid in pids:
        stop_pid(pid, timeout)
    return pids


def stop_pid(pid: int, timeout: float = 5.0, *, cleanup: bool = True) -> None:
    """Stop one OVS daemon; an ovs-vswitchd first gets `exit --cleanup` on its own
    control socket (read from its command line) so its tap devices go with it
    (plain `exit` with cleanup=False: they stay, for the next ovs-vswitchd)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().decode(errors="replace").split("\0")
    except OSError:
        return
    ctl = next((a.split("=", 1)[1] for a in argv if a.startswith("--unixctl=")), None)
    if argv[0].endswith("ovs-vswitchd") and ctl and os.path.exists(ctl):
        with suppress(OSError, subprocess.SubprocessError):
            subprocess.run(
                ["ovs-appctl", f"--target={ctl}", "exit", *(["--cleanup"] if cleanup else [])],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
    kill_pids([pid], timeout)


def kill_pids(pids: list[int], timeout: float = 5.0) -> None:
    """SIGTERM (and SIGCONT: a stopped process handles it too), SIGKILL for those
    still alive after `timeout`; returns once they are gone (or 2 s after that)."""
    for pid in pids:
        for sig in (signal.SIGTERM, signal.SIGCONT):
            with suppress(ProcessLookupError):
                os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if pid_alive(pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.02)


#: the programs containet starts on a run directory: OVS's, and OVN's (workbench.ovn)
DAEMON_NAMES = (b"ovsdb-server", b"ovs-vswitchd", b"ovn-northd", b"ovn-controller")


#: what an OVS/OVN daemon's --monitor process calls itself after its program name
MONITOR_TITLE = ": monitoring pid "


def monitor_title(first_arg: str) -> tuple[str, str | None]:
    """A process's first argument -> its program, and for a --monitor process (which
    overwrites its command line with "<program>: monitoring pid N (note)") the rest
    of that title, "N (note)"; None for any other process."""
    program, monitor, rest = first_arg.partition(MONITOR_TITLE)
    return program, (rest if monitor else None)


def process_title(pid: int) -> tuple[str, str | None] | None:
    """monitor_title of a running process's first argument; None: no such process."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            first = fh.read().split(b"\0", 1)[0]
    except OSError:
        return None
    return monitor_title(first.decode(errors="replace"))


def monitor_title_of(pid: int) -> str | None:
    """The title a monitor gave itself ("<pid> (<note>)"); None: not a monitor, or gone."""
    found = process_title(pid)
    return found[1] if found else None


def pids_running(programs: tuple[bytes, ...], needle: bytes) -> list[int]:
    """Processes whose program name ends with one of `programs` and whose command line
    contains `needle` (a run directory: how our processes are marked). A daemon's
    --monitor process counts too: it renames itself "<program>: monitoring pid N",
    which overwrites its command line, so its environment (OVS_RUNDIR=..., as we
    start ovn-controller) is where it names the run directory."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmd = fh.read()
        except OSError:
            continue
        program, title = monitor_title(cmd.split(b"\0", 1)[0].decode(errors="replace"))
        if not program.encode().endswith(programs):
            continue
        if needle in cmd or (title is not None and needle in _environ(entry)):
            found.append(int(entry))
    return found


def _environ(pid: str) -> bytes:
    """A process's environment, each value ending with "/" (so that a run directory
    given as "dir/" matches "OVS_RUNDIR=dir" too)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return fh.read().replace(b"\0", b"/\0")
    except OSError:
        return b""


def pids_using(run_dir: Path) -> list[int]:
    """OVS and OVN processes whose command line names `run_dir` (our mark on processes)."""
    return pids_running(DAEMON_NAMES, (str(run_dir).rstrip("/") + "/").encode())


def one(value: Any) -> Any:
    """An optional OVSDB column as ovsdbapp returns it ([] or [x]) -> None or x."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


def uuids(value: Any) -> list[Any]:
    """A reference column (one row, or a set of rows or UUIDs) -> a list of UUIDs."""
    if value is None:
        return []
    if isinstance(value, list | tuple | set):
        return [getattr(v, "uuid", v) for v in value]
    return [getattr(value, "uuid", value)]


Row = dict[str, Any]


def bridge_ports(ovs: Ovs) -> list[tuple[Row, list[tuple[Row, Row]]]]:
    """Each Bridge row (by name) with its Port rows, each beside its (first) Interface
    row ({} when it has none): the walk every reader of bridges and ports needs."""
    ifaces = {r["_uuid"]: r for r in ovs.rows("Interface")}
    ports = {r["_uuid"]: r for r in ovs.rows("Port")}
    out = []
    for br in sorted(ovs.rows("Bridge"), key=lambda r: r["name"]):
        found = [ports[u] for u in uuids(br.get("ports")) if u in ports]
        pairs = [(p, next((ifaces[u] for u in uuids(p.get("interfaces")) if u in ifaces), {})) for p in found]
        out.append((br, pairs))
    return out


def select(
    remote: str, tables: Sequence[str], timeout: float = 3.0, database: str = "Open_vSwitch"
) -> dict[str, list[Row]]:
    """Every row of `tables`, in one `transact` of selects on a short JSON-RPC session.

    For a one-off read (the inventory): no IDL, no monitor of the whole schema, no
    connection thread -- about 1-2 ms where opening an `Ovs` client takes 20 ms.
    Rows come as `Ovs.rows` gives them: UUIDs as strings, sets as lists (a set of
    one as the value itself), maps as dicts."""
    import errno

    import ovs.jsonrpc
    import ovs.poller
    import ovs.stream

    sock = remote.removeprefix("unix:")
    if remote.startswith("unix:") and not os.path.exists(sock):
        raise NotReady(f"Open vSwitch database {sock} is not there: is the lab up?")
    deadline = time.monotonic() + timeout
    err, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote), int(timeout * 1000))
    if err:
        raise NotReady(f"cannot reach Open vSwitch at {remote}: {os.strerror(err)}")
    conn = ovs.jsonrpc.Connection(stream)
    try:
        ops: list[Any] = [database] + [{"op": "select", "table": t, "where": []} for t in tables]
        request = ovs.jsonrpc.Message.create_request("transact", ops)
        err = conn.send(request)
        while not err:
            err, msg = conn.recv()
            if err == errno.EAGAIN:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise NotReady(f"Open vSwitch at {remote} did not answer within {timeout:g}s")
                conn.run()
                poller = ovs.poller.Poller()
                conn.wait(poller)
                conn.recv_wait(poller)
                poller.timer_wait(max(1, int(left * 1000)))
                poller.block()
                err = 0
                continue
            if msg is not None and msg.id == request.id:
                if msg.type == ovs.jsonrpc.Message.T_ERROR or not isinstance(msg.result, list):
                    raise WorkbenchError(f"Open vSwitch at {remote}: {msg.error or msg.result}")
                break
        if err:
            raise NotReady(f"cannot read Open vSwitch at {remote}: {os.strerror(err)}")
    finally:
        conn.close()
    out = {}
    for table, result in zip(tables, msg.result, strict=False):
        if "error" in result:
            raise WorkbenchError(f"Open vSwitch at {remote}: {table}: {result['error']}")
        out[table] = [{k: _datum(v) for k, v in row.items()} for row in result.get("rows", [])]
    return out


def _datum(value: Any) -> Any:
    """OVSDB's JSON encoding of a column value -> plain Python."""
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
        tag, body = value
        if tag in ("uuid", "named-uuid"):
            return body
        if tag == "set":
            return [_datum(v) for v in body]
        if tag == "map":
            return {_datum(k): _datum(v) for k, v in body}
    return value


#: the tables containet reads and writes; the client mirrors only these
TABLES = ("Open_vSwitch", "Bridge", "Port", "Interface", "QoS", "Queue", "Mirror", "Manager")


def _schema_helper() -> idl.SchemaHelper | None:
    """The schema from the installed package file, parsed with the C json module.

    Fetching it from the server goes through the OVS library's pure-Python JSON
    parser, which was most of the time a snapshot took. Our databases are created
    from this very file, and a system OVS comes from the same package; without
    the file, ovsdbapp fetches the schema from the server as usual."""
    global _SCHEMA
    if _SCHEMA is None:
        try:
            _SCHEMA = json.loads(SCHEMA.read_text())
        except (OSError, ValueError):
            return None
    return idl.SchemaHelper(schema_json=copy.deepcopy(_SCHEMA))


_SCHEMA: dict[str, Any] | None = None

#: where Debian's python3-openvswitch (a dependency of openvswitch-switch) keeps
#: the OVS library's C JSON parser, built for the system python
SYSTEM_OVS_PY = Path("/usr/lib/python3/dist-packages/ovs")


def _use_c_json() -> bool:
    """Parse OVSDB traffic with OVS's C JSON parser when one fits this interpreter.

    The `ovs` package from PyPI ships only the pure-Python parser (its C one
    needs libopenvswitch to build), and parsing is most of what opening a
    client costs: the C one halves it (about 20 -> 10 ms per client here).
    The distribution's compiled module is loaded when its ABI suffix matches
    this interpreter's; anything else leaves the pure-Python parser in place."""
    import importlib.machinery
    import importlib.util
    import sys

    import ovs
    import ovs.json

    if ovs.json.PARSER == ovs.json.PARSER_C:
        return True
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = SYSTEM_OVS_PY / f"_json{suffix}"
        if not path.is_file():
            continue
        try:
            spec = importlib.util.spec_from_file_location("ovs._json", path)
            if spec is None or spec.loader is None:
                return False
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            module.Parser(check_trailer=False)  # the one entry point ovs.json uses
        except (ImportError, OSError, AttributeError, TypeError):
            return False
        sys.modules["ovs._json"] = module
        ovs._json = module  # type: ignore[attr-defined]
        ovs.json.ovs = ovs  # type: ignore[attr-defined]  # its failed import left the name unbound
        ovs.json.PARSER = ovs.json.PARSER_C
        return True
    return False


C_JSON = _use_c_json()


class Ovs:
    """ovsdbapp API on one host's database."""

    def __init__(self, remote: str, timeout: float = 10) -> None:
        self.remote = remote
        sock = remote.removeprefix("unix:")
        if remote.startswith("unix:") and not os.path.exists(sock):
            raise NotReady(f"Open vSwitch database {sock} is not there: is the lab up?")
        try:
            idl = connection.OvsdbIdl.from_server(
                remote, "Open_vSwitch", helper=_schema_helper(), helper_tables=TABLES
            )
            self._conn = connection.Connection(idl=idl, timeout=timeout)
            # ovsdbapp keeps its connection on the class, so that a second
            # OVS instance would silently reuse the first one's: one class each.
            api_cls = type("OvsdbIdlFor", (impl_idl.OvsdbIdl,), {"_ovsdb_connection": None})
            self.api = api_cls(self._conn)
        except Exception as exc:  # ovsdbapp raises several kinds
            raise NotReady(f"cannot reach Open vSwitch at {remote}: {exc}") from exc

    def close(self) -> None:
        try:
            self._conn.stop(timeout=2)
        except Exception:  # noqa: BLE001 - best effort at shutdown
            pass

    # --- reads -----------------------------------------------------------
    def bridges(self) -> list[str]:
        return sorted(self.api.list_br().execute(check_error=True))

    def has_bridge(self, name: str) -> bool:
        return bool(self.api.br_exists(name).execute(check_error=True))

    def ports(self, bridge: str) -> list[str]:
        return sorted(self.api.list_ports(bridge).execute(check_error=True))

    def port_bridge(self, port: str) -> str | None:
        for br in self.bridges():
            if port in self.ports(br):
                return br
        return None

    def rows(self, table: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
        return list(self.api.db_list(table, columns=columns).execute(check_error=True))

    def row(self, table: str, name: str) -> dict[str, Any] | None:
        rows = self.api.db_find(table, ("name", "=", name)).execute(check_error=True)
        return rows[0] if rows else None

    # --- writes ----------------------------------------------------------
    def is_ours(self, table: str, name: str) -> bool:
        row = self.row(table, name)
        return row is not None and (row.get("external_ids") or {}).get(OVS_MARK) == MARK_VALUE

    def add_bridge(self, name: str, datapath_type: str = "netdev", fail_mode: str | None = None) -> None:
        """Create and mark a bridge (with `fail_mode`, in the same transaction); one that
        exists already is left as it is."""
        if self.has_bridge(name):
            return
        with self.api.transaction(check_error=True) as txn:
            txn.add(self.api.add_br(name, may_exist=True, datapath_type=datapath_type))
            if fail_mode is not None:
                txn.add(self.api.db_set("Bridge", name, ("fail_mode", fail_mode)))
            txn.add(self.api.db_set("Bridge", name, ("external_ids", MARK)))
            txn.add(self.api.db_set("Port", name, ("external_ids", MARK)))
            txn.add(self.api.db_set("Interface", name, ("external_ids", MARK)))

    def del_bridge(self, name: str) -> None:
        self.api.del_br(name, if_exists=True).execute(check_error=True)

    def add_port(
        self,
        bridge: str,
        port: str,
        *,
        iface_type: str | None = None,
        options: dict[str, str] | None = None,
        tag: int | None = None,
        external_ids: dict[str, str] | None = None,
    ) -> None:
        """Add and mark a port; `external_ids` go on its Interface beside the mark
        (OVN's iface-id)."""
        with self.api.transaction(check_error=True) as txn:
            txn.add(self.api.add_port(bridge, port, may_exist=True))
            txn.add(self.api.db_set("Port", port, ("external_ids", MARK)))
            iface: list[tuple[str, Any]] = [("external_ids", {**MARK, **(external_ids or {})})]
            if iface_type:
                iface.append(("type", iface_type))
            if options:
                iface.append(("options", options))
            txn.add(self.api.db_set("Interface", port, *iface))
            if tag is not None:
                txn.add(self.api.db_set("Port", port, ("tag", tag)))

    def set_tag(self, port: str, tag: int | None) -> None:
        if tag is None:
            self.api.db_clear("Port", port, "tag").execute(check_error=True)
        else:
            self.api.db_set("Port", port, ("tag", tag)).execute(check_error=True)

    def del_port(self, port: str, bridge: str | None = None) -> None:
        self.api.del_port(port, bridge=bridge, if_exists=True).execute(check_error=True)


@contextmanager
def ovs_for(host: Host) -> Iterator[Ovs]:
    client = Ovs(host.ovs_db)
    try:
        yield client
    finally:
        client.close()


def appctl(host: Host, *args: str, daemon: str = "ovs-vswitchd") -> str:
    """ovs-appctl diagnostics (e.g. ofproto/trace) for a host's own daemon."""
    argv = ["ovs-appctl"]
    if host.run_dir is not None:
        argv.append(f"--target={OvsPaths(host.run_dir).ctl(daemon)}")
    elif host.ovs_db.startswith("unix:"):  # real mode: the daemon beside its database socket
        paths = OvsPaths(Path(host.ovs_db.removeprefix("unix:")).parent)
        pid = read_pid(paths.pidfile(daemon))
        for ctl in (paths.ctl(daemon), paths.run_dir / f"{daemon}.{pid}.ctl"):
            if ctl.exists():
                argv.append(f"--target={ctl}")
                break
    argv += list(args)
    try:
        return host.place.run(argv).stdout
    except WorkbenchError:
        raise


#: seconds a readiness wait over OVS bridges waits before it drops their datapath
#: flows, and again after as many more (see purge_datapath_flows)
PURGE_EVERY = 3.0


def purge_datapath_flows(hosts: Iterable[Host]) -> None:
    """Drop every datapath flow of these hosts' ovs-vswitchd (`revalidator/purge`); the
    next packet makes each again from the OpenFlow tables. For a readiness wait that
    does not end: flows made while spanning tree was moving can outlive the tree's
    change on the userspace datapath, and traffic that keeps hitting them keeps them
    (measured, 8-host mesh: a port's BPDUs, or a few pairs' frames, held for 30 s and
    more; each time, the tree settled or the pairs answered within 3 s of a purge).
    A host whose daemon cannot be reached is passed over."""
    for host in hosts:
        with suppress(WorkbenchError, OSError):
            appctl(host, "revalidator/purge")
