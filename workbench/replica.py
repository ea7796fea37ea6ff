"""A read-only replica of a host's Open vSwitch database, for its peer to read.

`share` must let the other host read this host's switch and never write it. A
Manager row (`ptcp:6640:IP`) on the host's own ovsdb-server would open the
database itself to the network, writes included. Instead a second ovsdb-server
runs in backup mode: its own database file, created from the schema the host's
server reports, kept in step by `--sync-from=<the host's database>`, listening
only on `ptcp:PORT:IP`. A backup server refuses every client write by design
("insert operation not allowed when database server is in read only mode"), and
the host's database is reached only through its local socket.

Its database, pidfile, control socket and log live in RUN_DIR/share, so it
carries containet's mark like the lab's own OVS processes: `share --stop`,
`containet clean` (processes started on the run directory) and `lab down` (a
run directory's ovsdb-server) stop it.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import NotReady
from .host import Place
from .marks import RUN_DIR
from .ovs import OvsPaths, pids_using, read_pid, stop_pid

DIR = RUN_DIR / "share"
DAEMON = "ovsdb-server"
DATABASE = "Open_vSwitch"
#: how long a new replica may take to copy the database and listen
READY_WITHIN = 10.0


@dataclass(frozen=True)
class Replica:
    pid: int
    target: str  # ptcp:PORT:IP, the one address it listens on
    source: str  # the database it copies (unix:<db.sock>)


def paths() -> OvsPaths:
    return OvsPaths(DIR)


def running() -> Replica | None:
    """The replica of this instance, when one runs."""
    pid = read_pid(paths().pidfile(DAEMON))
    pids = [pid] if pid else pids_using(DIR)
    for p in pids:
        argv = _cmdline(p)
        target = _option(argv, "--remote")
        source = _option(argv, "--sync-from")
        if target and source:
            return Replica(p, target, source)
    return None


def start(place: Place, source: str, target: str) -> Replica:
    """Serve a read-only copy of the database at `source` on `target` (ptcp:PORT:IP),
    from `place`'s namespace; returns once it has copied the database and listens."""
    now = running()
    if now is not None and (now.target, now.source) == (target, source):
        return now
    stop()
    p = paths()
    DIR.mkdir(parents=True, exist_ok=True)
    schema = DIR / "schema.json"
    got = place.run(["ovsdb-client", "get-schema", source, DATABASE], timeout=10)
    schema.write_text(got.stdout)
    place.run(["ovsdb-tool", "create", str(p.db), str(schema)])
    env = dict(os.environ, OVS_RUNDIR=str(DIR), OVS_DBDIR=str(DIR))
    place.run(
        [
            DAEMON,
            str(p.db),
            f"--sync-from={source}",  # backup mode: read-only to every client
            f"--remote={target}",  # the only listener (no punix, no Manager rows)
            f"--pidfile={p.pidfile(DAEMON)}",
            f"--unixctl={p.ctl(DAEMON)}",
            f"--log-file={p.log(DAEMON)}",
            "--detach",
            "--no-chdir",
        ],
        env=env,
    )
    try:
        return _wait_ready(place, target)
    except BaseException:
        stop()
        raise


def stop() -> list[str]:
    """Stop the replica (and anything else of ours running on its directory);
    returns the targets it listened on."""
    gone = []
    now = running()
    if now is not None:
        gone.append(now.target)
    for pid in {*(pids_using(DIR)), *([now.pid] if now else [])}:
        stop_pid(pid)
    shutil.rmtree(DIR, ignore_errors=True)
    return gone


def _wait_ready(place: Place, target: str) -> Replica:
    p = paths()
    _proto, port, ip = target.split(":")
    deadline = time.monotonic() + READY_WITHIN
    synced = listening = False
    while time.monotonic() < deadline:
        now = running()
        if now is None:
            break
        if not synced:
            out = place.run(["ovs-appctl", "-t", str(p.ctl(DAEMON)), "ovsdb-server/sync-status"], check=False)
            synced = "replicating:" in out.stdout  # the initial copy is in
        listening = listening or _listens(now.pid, ip, int(port))
        if synced and listening:
            return now
        time.sleep(0.05)
    why = "it copied nothing from the local database" if listening else f"nothing listens on {ip}:{port}"
    raise NotReady(f"the read-only replica did not start: {why}{_log_tail(p.log(DAEMON))}")


def _listens(pid: int, ip: str, port: int) -> bool:
    """Whether process `pid` has a TCP socket listening on ip:port (read in /proc,
    which shows the sockets of the process's own network namespace)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    # /proc/net/tcp prints the address as the kernel's 32-bit word, in host byte order
    want = f"{struct.unpack('=I', socket.inet_aton(ip))[0]:08X}:{port:04X}"
    for line in lines:
        f = line.split()
        if f[1] == want and f[3] == "0A" and f[9] in inodes:  # 0A: LISTEN
            return True
    return False


def _log_tail(log: Path) -> str:
    """The replica's last warning or error, e.g. why it could not listen."""
    try:
        lines = [ln for ln in log.read_text().splitlines() if "|WARN|" in ln or "|ERR|" in ln]
    except OSError:
        return ""
    return f" ({lines[-1].split('|')[-1].strip()})" if lines else ""


def _cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def _option(argv: list[str], name: str) -> str | None:
    return next((a.split("=", 1)[1] for a in argv if a.startswith(f"{name}=")), None)
