"""Intents of an OVN network: central (NB, SB, ovn-northd), a chassis per host
(external_ids, ovn-controller), logical switches and ports (through ovsdbapp's OVN
northbound API), a container bound to its logical port, and the readiness of it all.

The daemons' files live in the host's run directory (see workbench.ovn); every
command shown is the argument list that runs."""

from __future__ import annotations

import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .. import links, ovn
from ..errors import BadInput, NotReady, WorkbenchError
from ..host import Place
from ..marks import IPT_COMMENT, MARK_VALUE, OVS_MARK
from ..ovs import one, read_pid, select, uuids
from .base import Cmd, Intent, Readiness, Where, pid_expr
from .containers import Plumb

if TYPE_CHECKING:
    from ..steps import Context

MARK = {OVS_MARK: MARK_VALUE}


def _nbctl(remote: str, *args: str) -> str:
    return shlex.join(["ovn-nbctl", f"--db={remote}", *args])


def _ours(row: dict[str, Any]) -> bool:
    return (row.get("external_ids") or {}).get(OVS_MARK) == MARK_VALUE


def _nb_there(remote: str) -> bool:
    """The NB database's socket exists (else there is nothing in it to undo)."""
    return not remote.startswith("unix:") or Path(remote.removeprefix("unix:")).exists()


@dataclass(frozen=True)
class OvnDatabase(Intent):
    """OVN's northbound or southbound database: a database file from OVN's schema and
    an ovsdb-server on it, on a local socket and on the underlay address."""

    host: str
    run_dir: str
    which: str  # nb, sb
    listen_ip: str

    @property
    def db(self) -> ovn.OvnDb:
        return ovn.OvnDb(Path(self.run_dir), self.which)

    def key(self) -> str:
        return f"ovn-{self.which}-db"

    def title(self) -> str:
        kind = "northbound" if self.which == "nb" else "southbound"
        return f"OVN {kind} database, served on {self.listen_ip}:{self.db.port}"

    def commands(self) -> tuple[Cmd, ...]:
        db = self.db
        return (
            Cmd(Where.HOST, ovn.text(db.create_argv())),
            Cmd(Where.HOST, ovn.text(db.server_argv(self.listen_ip))),
        )

    def apply(self, ctx: Context) -> None:
        db, place = self.db, ctx.host(self.host).place
        db.run_dir.mkdir(parents=True, exist_ok=True)
        if not db.file.exists():
            ctx.run(place, db.create_argv())
        if not read_pid(db.pidfile):
            ctx.run(place, db.server_argv(self.listen_ip))

    def verify(self, ctx: Context) -> bool:
        db = self.db
        return db.file.exists() and db.sock.exists() and read_pid(db.pidfile) is not None

    def undo(self, ctx: Context) -> None:
        db = self.db
        ovn.stop(db.pidfile, db.files())


class _Daemon(Protocol):
    @property
    def pidfile(self) -> Path: ...

    def argv(self) -> list[str]: ...

    def files(self) -> Sequence[Path]: ...


class _OvnDaemon(Intent):
    """An OVN daemon run in the host's namespace from its run directory: started when
    its pidfile names no live process, stopped (and its files removed) by undo."""

    host: str
    run_dir: str

    @property
    def daemon(self) -> _Daemon:
        raise NotImplementedError

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.HOST, ovn.text(self.daemon.argv())),)

    def apply(self, ctx: Context) -> None:
        if not read_pid(self.daemon.pidfile):
            ctx.run(ctx.host(self.host).place, self.daemon.argv())

    def verify(self, ctx: Context) -> bool:
        return read_pid(self.daemon.pidfile) is not None

    def undo(self, ctx: Context) -> None:
        ovn.stop(self.daemon.pidfile, self.daemon.files())


@dataclass(frozen=True)
class OvnNorthd(_OvnDaemon):
    """ovn-northd: translates the logical network (NB) into logical flows (SB)."""

    host: str
    run_dir: str

    @property
    def daemon(self) -> ovn.Northd:
        return ovn.Northd(Path(self.run_dir))

    def key(self) -> str:
        return "ovn-northd"

    def title(self) -> str:
        return "ovn-northd (northbound -> southbound)"


@dataclass(frozen=True)
class OvnChassis(Intent):
    """The host's OVS told where OVN's southbound is and how to reach this chassis
    (Open_vSwitch external_ids, as ovn-controller reads them). What the settings
    replace is kept beside them (ovn.SAVED) and put back by undo and `clean`."""

    host: str
    sb_remote: str  # tcp:10.0.0.3:6642
    encap_ip: str
    system_id: str
    datapath: str = "netdev"
    encap: str = "geneve"

    @property
    def settings(self) -> dict[str, str]:
        return {
            "ovn-remote": self.sb_remote,
            "ovn-encap-type": self.encap,
            "ovn-encap-ip": self.encap_ip,
            "system-id": self.system_id,
            "ovn-bridge-datapath-type": self.datapath,
            "ovn-monitor-all": "true",
        }

    def key(self) -> str:
        return "ovn-chassis"

    def title(self) -> str:
        encap = self.encap.capitalize()
        return f"chassis {self.system_id}: {encap} on {self.encap_ip}, southbound {self.sb_remote}"

    def commands(self) -> tuple[Cmd, ...]:
        sets = " ".join(f"external_ids:{k}={v}" for k, v in self.settings.items())
        return (Cmd(Where.OVS, f"ovs-vsctl set open_vswitch . {sets}"),)

    def apply(self, ctx: Context) -> None:
        ovn.set_chassis(ctx.ovs(self.host), self.settings)

    def verify(self, ctx: Context) -> bool:
        ids = ovn.ovs_ids(ctx.ovs(self.host))
        return all(ids.get(k) == v for k, v in self.settings.items())

    def undo(self, ctx: Context) -> None:
        """What the settings replaced comes back (a real host's own ovn-remote, say)."""
        ovn.restore_chassis(ctx.ovs(self.host))


@dataclass(frozen=True)
class OvnController(_OvnDaemon):
    """ovn-controller on a host: registers the chassis in SB, programs br-int, builds
    the Geneve tunnels to the other chassis. A dead one is started again (apply)."""

    host: str
    run_dir: str

    @property
    def daemon(self) -> ovn.Controller:
        return ovn.Controller(Path(self.run_dir))

    def key(self) -> str:
        return "ovn-controller"

    def title(self) -> str:
        return f"ovn-controller on {self.host}"

    @property
    def settle(self) -> float:
        """23.03.1 may crash right after it starts (see ovn.Controller): its monitor
        starts it again at once, but a second crash within 10 s waits out those 10 s."""
        return 12.0

    def apply(self, ctx: Context) -> None:
        """Started when neither the daemon nor its monitor runs: a monitor alone is
        restarting a crashed daemon, and a second ovn-controller on one chassis would
        fight the first over br-int."""
        if not self.daemon.pids():
            ctx.run(ctx.host(self.host).place, self.daemon.argv())

    def nudge(self, ctx: Context, waited: float, before: float) -> None:
        restart_held_off(ctx, [(self.host, self.daemon)])

    def undo(self, ctx: Context) -> None:
        """The monitor too, even between a crash and the restart (no pidfile then): a
        controller left behind would make br-int again, of the kernel's datapath."""
        ovn.stop(self.daemon.pidfile, self.daemon.files(), others=self.daemon.pids())


def restart_held_off(ctx: Context, controllers: Sequence[tuple[str, ovn.Controller]]) -> None:
    """Start again, at once, each lab controller whose monitor holds off: the daemon
    crashed twice within 10 s, and its monitor waits out those 10 s before the next
    start (OVS's restart throttle). Half a second with no daemon tells that from the
    at-once restart after a first crash; then the monitor is stopped and a fresh one
    started, whose first restart is at once again."""
    down = [(h, c) for h, c in controllers if read_pid(c.pidfile) is None and c.pids()]
    if not down:
        return
    time.sleep(0.5)
    for host, c in down:
        if read_pid(c.pidfile) is None:
            ovn.stop(c.pidfile, (), timeout=0.5, others=c.pids())  # it may sleep through SIGTERM
            if not c.pids():
                ctx.run(ctx.host(host).place, c.argv())


def _answers(remote: str, which: str) -> bool:
    """The NB ("nb") or SB ("sb") database answers at `remote`."""
    table, database = ("NB_Global", "OVN_Northbound") if which == "nb" else ("SB_Global", "OVN_Southbound")
    try:
        select(remote, [table], timeout=2, database=database)
    except WorkbenchError:
        return False
    return True


class _SystemPart(Intent):
    """A part of the system's OVN (real mode): started the package's way when its
    daemons do not run; never stopped by undo (the default: nothing)."""

    host: str
    ovs_sock: str
    PART: ClassVar[str]  # "central", "controller" (see ovn.SystemOvn.start_argv)
    DAEMONS: ClassVar[tuple[str, ...]]

    @property
    def system(self) -> ovn.SystemOvn:
        return ovn.SystemOvn(self.ovs_sock)

    def start(self, ctx: Context) -> None:
        if not self.system.running(self.DAEMONS):
            ctx.run(ctx.host(self.host).place, self.system.start_argv(self.PART))


@dataclass(frozen=True)
class SystemCentral(_SystemPart):
    """Real mode: the system's OVN central (Debian's ovn-central: NB, SB, ovn-northd)
    answering on the underlay. On host1 a central that does not run is started the
    package's way; elsewhere it is host1's to run. Never stopped: it is the system's."""

    host: str
    ovs_sock: str
    nb: str  # tcp:10.0.0.3:6641
    sb: str
    local: bool  # this host is the central
    PART: ClassVar[str] = "central"
    DAEMONS: ClassVar[tuple[str, ...]] = ovn.CENTRAL_DAEMONS

    def key(self) -> str:
        return "ovn-central"

    def title(self) -> str:
        where = "here" if self.local else "on host1"
        return f"the system's OVN central {where}, answering at {self.nb} and {self.sb}"

    def commands(self) -> tuple[Cmd, ...]:
        check = (Cmd(Where.HOST, _nbctl(self.nb, "get-connection")),)
        if not self.local:
            return check
        return (Cmd(Where.HOST, ovn.text(self.system.start_argv("central"))),) + check

    def apply(self, ctx: Context) -> None:
        if self.verify(ctx):
            return
        if not self.local:
            raise NotReady(
                f"OVN central does not answer at {self.nb} and {self.sb}: start ovn-central on host1 "
                "(`containet --real --host host1 scenario apply ovn` starts it; see the Vagrantfile)"
            )
        self.start(ctx)
        deadline = time.monotonic() + 5
        while not self.verify(ctx):
            if time.monotonic() > deadline:
                ip = self.nb.split(":")[1]
                raise NotReady(
                    f"OVN central runs but does not listen on the underlay ({self.nb}, {self.sb}): "
                    f"ovn-nbctl set-connection ptcp:{ovn.NB_PORT}:{ip} && "
                    f"ovn-sbctl set-connection ptcp:{ovn.SB_PORT}:{ip}"
                )
            time.sleep(0.1)

    def verify(self, ctx: Context) -> bool:
        return _answers(self.nb, "nb") and _answers(self.sb, "sb")


@dataclass(frozen=True)
class SystemController(_SystemPart):
    """Real mode: the system's ovn-controller (Debian's ovn-host) on this host's OVS,
    with its integration bridge. Started the package's way when it does not run, never
    stopped (the system's); br-int is its own, made by it."""

    host: str
    ovs_sock: str
    PART: ClassVar[str] = "controller"
    DAEMONS: ClassVar[tuple[str, ...]] = (ovn.CONTROLLER,)

    def key(self) -> str:
        return "ovn-controller"

    def title(self) -> str:
        return f"the system's ovn-controller on {self.host}, with its {ovn.BR_INT}"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.HOST, ovn.text(self.system.start_argv("controller"))),)

    @property
    def settle(self) -> float:
        return 10.0  # its --monitor starts it again after 23.03.1's startup crash

    def apply(self, ctx: Context) -> None:
        self.start(ctx)

    def verify(self, ctx: Context) -> bool:
        return self.system.running(self.DAEMONS) and ctx.ovs(self.host).has_bridge(ovn.BR_INT)


@dataclass(frozen=True)
class LogicalSwitch(Intent):
    """A logical switch in OVN's northbound database: one layer-2 segment that spans
    every chassis."""

    host: str
    nb: str  # the NB remote
    name: str

    def key(self) -> str:
        return f"ls:{self.name}"

    def title(self) -> str:
        return f"logical switch {self.name}"

    def commands(self) -> tuple[Cmd, ...]:
        return (
            Cmd(
                Where.HOST,
                _nbctl(
                    self.nb,
                    "ls-add",
                    self.name,
                    "--",
                    "set",
                    "logical_switch",
                    self.name,
                    f"external_ids:{OVS_MARK}={MARK_VALUE}",
                ),
            ),
        )

    def apply(self, ctx: Context) -> None:
        nb = ctx.ovn_nb(self.nb)
        nb.api.ls_add(self.name, may_exist=True, external_ids=MARK).execute(check_error=True)

    def verify(self, ctx: Context) -> bool:
        return ctx.ovn_nb(self.nb).row("Logical_Switch", self.name) is not None

    def undo(self, ctx: Context) -> None:
        if not _nb_there(self.nb):
            return
        nb = ctx.ovn_nb(self.nb)
        row = nb.row("Logical_Switch", self.name)
        # ports left are another host's (real mode: each host's containet adds its own)
        if row is not None and _ours(row) and not row.get("ports"):
            nb.api.ls_del(self.name, if_exists=True).execute(check_error=True)


@dataclass(frozen=True)
class LogicalPort(Intent):
    """A logical switch port with the MAC and IP of the container that binds it, marked
    with the host whose containet made it (real mode: `clean` there removes its own)."""

    host: str
    nb: str
    switch: str
    name: str
    mac: str
    ip: str

    @property
    def address(self) -> str:
        return f"{self.mac} {self.ip}"

    @property
    def subject(self) -> str:
        """The container it stands for: `container rm` takes it away with the container."""
        return self.name

    def key(self) -> str:
        return f"lsp:{self.name}"

    def title(self) -> str:
        return f"logical port {self.name} on {self.switch} ({self.address})"

    def commands(self) -> tuple[Cmd, ...]:
        return (
            Cmd(
                Where.HOST,
                _nbctl(
                    self.nb,
                    "lsp-add",
                    self.switch,
                    self.name,
                    "--",
                    "lsp-set-addresses",
                    self.name,
                    self.address,
                    "--",
                    "set",
                    "logical_switch_port",
                    self.name,
                    f"external_ids:{OVS_MARK}={MARK_VALUE}",
                    f"external_ids:{ovn.PORT_HOST}={self.host}",
                ),
            ),
        )

    def apply(self, ctx: Context) -> None:
        api = ctx.ovn_nb(self.nb).api
        with api.transaction(check_error=True) as txn:
            ids = {**MARK, ovn.PORT_HOST: self.host}
            txn.add(api.lsp_add(self.switch, self.name, may_exist=True, external_ids=ids))
            txn.add(api.lsp_set_addresses(self.name, [self.address]))

    def verify(self, ctx: Context) -> bool:
        nb = ctx.ovn_nb(self.nb)
        port = nb.row("Logical_Switch_Port", self.name)
        switch = nb.row("Logical_Switch", self.switch)
        if port is None or switch is None:
            return False
        members = {str(getattr(p, "uuid", p)) for p in switch.get("ports") or []}
        return list(port.get("addresses") or []) == [self.address] and str(port["_uuid"]) in members

    def undo(self, ctx: Context) -> None:
        if not _nb_there(self.nb):
            return
        nb = ctx.ovn_nb(self.nb)
        row = nb.row("Logical_Switch_Port", self.name)
        if row is not None and _ours(row):
            nb.api.lsp_del(self.name, if_exists=True).execute(check_error=True)


@dataclass(frozen=True)
class OvnPlumb(Plumb):
    """A container wired to br-int as its logical port: as the seed's plumbing, with
    eth0 carrying the logical port's MAC and the OVS interface naming the logical
    port (external_ids:iface-id), which is what makes ovn-controller bind it here."""

    mac: str = ""
    iface_id: str = ""

    def title(self) -> str:
        return f"wire {self.name} {self.cidr} to {self.attach.bridge} as logical port {self.iface_id}"

    def commands(self) -> tuple[Cmd, ...]:
        out = []
        for cmd in super().commands():
            if cmd.text.startswith(f"ip link add {self.veth} "):
                cmd = Cmd(
                    cmd.where,
                    f"ip link add {self.veth} mtu {self.mtu} type veth peer name eth0 address {self.mac} "
                    f"mtu {self.mtu} netns {pid_expr(self.ref)}",
                )
            elif cmd.where is Where.OVS and cmd.text.startswith("ovs-vsctl add-port"):
                cmd = Cmd(
                    cmd.where,
                    f"{cmd.text} -- set interface {self.veth} external_ids:iface-id={self.iface_id}",
                )
            out.append(cmd)
        return tuple(out)

    def apply(self, ctx: Context) -> None:
        row = ctx.container(self.name)
        if row is None or not row.pid:
            raise BadInput(f"container {self.name} is not running")
        ovs = ctx.ovs(self.host)
        if ovs.port_bridge(self.veth) is not None:
            ovs.del_port(self.veth)
        mark = IPT_COMMENT

        def host_side(ipr: Any) -> None:
            stale = links.link_row(ipr, self.veth)
            if stale is not None and stale.alias == mark:
                links.delete_link(ipr, self.veth)
            links.add_veth_into(ipr, self.veth, "eth0", row.pid, self.mtu, alias=mark, peer_mac=self.mac)

        ctx.netlink(ctx.host(self.host).place, host_side)
        inside = Place.of_pid(row.pid, self.name)
        ctx.netlink(inside, links.configure_iface, "eth0", self.cidr, self.gateway, self.mtu)
        if not self.tx_offload:
            ctx.call(inside, links.tx_checksum, "eth0", False)
        ovs.add_port(self.attach.bridge, self.veth, external_ids={"iface-id": self.iface_id})

    def verify(self, ctx: Context) -> bool:
        if not super().verify(ctx):
            return False
        row = ctx.container(self.name)
        assert row is not None
        crow = ctx.netlink(Place.of_pid(row.pid, self.name), links.link_row, "eth0")
        iface = ctx.ovs(self.host).row("Interface", self.veth) or {}
        return (
            crow is not None
            and crow.mac == self.mac
            and (iface.get("external_ids") or {}).get("iface-id") == self.iface_id
        )


@dataclass(frozen=True)
class _Readings:
    down: list[str]  # logical ports not up
    missing: dict[str, list[str]]  # host -> chassis addresses it has no tunnel to
    behind: list[str]  # hosts whose ovn-controller has not caught up with the NB
    northd: bool  # ovn-northd has passed the NB's last change on to the SB


@dataclass(frozen=True)
class OvnReady(Readiness):
    """Readiness, a barrier over the hosts it names: every logical port is up (bound on
    its chassis, flows installed: NB's `up`, set from SB's Port_Binding); each host has
    a Geneve tunnel to every other chassis the SB knows (the other hosts; in real mode
    the other VMs); and each host's ovn-controller has caught up with the NB as it is
    now, what `ovn-nbctl --wait=hv sync` waits for: apply raises NB_Global.nb_cfg,
    ovn-northd hands it to the SB, and an ovn-controller copies it into its
    Chassis_Private row once the flows of that state are in its OVS. So one started
    again after a kill counts only when it has programmed br-int again."""

    host: str  # "": a barrier
    nb: str
    sb: str
    ports: tuple[str, ...]
    hosts: tuple[str, ...]
    bound: float = 30.0

    def key(self) -> str:
        return "ovn-ready"

    def title(self) -> str:
        return f"wait until {len(self.ports)} logical ports are up and {len(self.hosts)} chassis tunnelled"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.HOST, _nbctl(self.nb, "--wait=hv", "sync"), host=self.hosts[0]),) + tuple(
            Cmd(Where.OVS, f"ovs-vsctl --columns=name,type find interface type={ovn.ENCAP}", host=h)
            for h in self.hosts
        )

    def apply(self, ctx: Context) -> None:
        """A new nb_cfg for the controllers to reach (as --wait=hv does)."""
        nb = ctx.ovn_nb(self.nb)
        row = nb.rows("NB_Global")[0]
        nb.api.db_set("NB_Global", row["_uuid"], ("nb_cfg", _int(row.get("nb_cfg")) + 1)).execute(
            check_error=True
        )

    def nudge(self, ctx: Context, waited: float, before: float) -> None:
        """A controller that crashed after its own step verified: see restart_held_off."""
        lab = [ctx.host(h) for h in self.hosts]
        restart_held_off(ctx, [(h.name, ovn.Controller(h.run_dir)) for h in lab if h.run_dir and not h.real])

    def _read(self, ctx: Context) -> _Readings:
        nb = ctx.ovn_nb(self.nb)
        up = {r["name"]: r.get("up") in ([True], True) for r in nb.rows("Logical_Switch_Port")}
        glob = nb.rows("NB_Global")[0]
        nb_cfg = _int(glob.get("nb_cfg"))
        sb = select(self.sb, ["Chassis", "Encap", "Chassis_Private"], database="OVN_Southbound")
        encap_ip = {r["_uuid"]: r["ip"] for r in sb["Encap"]}
        chassis = {r["name"]: {encap_ip.get(u) for u in uuids(r.get("encaps"))} for r in sb["Chassis"]}
        seen = {r["name"]: _int(r.get("nb_cfg")) for r in sb["Chassis_Private"]}
        missing = {}
        for h in self.hosts:
            rows = ctx.ovs(h).rows("Interface", ["type", "options"])
            remotes = {(r.get("options") or {}).get("remote_ip") for r in rows if r.get("type") == ovn.ENCAP}
            want = {ip for name, ips in chassis.items() if name != h for ip in ips if ip}
            lacking = sorted(want - remotes) or ["?"] * (len(self.hosts) - 1 - len(remotes))
            if lacking:
                missing[h] = lacking
        return _Readings(
            down=[p for p in self.ports if not up.get(p)],
            missing=missing,
            behind=[h for h in self.hosts if seen.get(h, -1) < nb_cfg],
            northd=_int(glob.get("sb_cfg")) >= nb_cfg,
        )

    def verify(self, ctx: Context) -> bool:
        got = self._read(ctx)
        return not (got.down or got.missing or got.behind)

    def progress(self, ctx: Context) -> str | None:
        got = self._read(ctx)
        line = f"{len(self.ports) - len(got.down)} of {len(self.ports)} logical ports up"
        if got.down:
            line += f" (waiting: {', '.join(got.down[:6])}{' ...' if len(got.down) > 6 else ''})"
        if got.missing:
            line += "; tunnels missing on " + ", ".join(
                f"{h} ({', '.join(ips)})" for h, ips in got.missing.items()
            )
        if got.behind:
            line += f"; ovn-controller catching up on {', '.join(got.behind)}"
            if not got.northd:
                line += " (ovn-northd has not passed the northbound's last change on yet: is it running?)"
        return line


def _int(value: object) -> int:
    """An integer column as ovsdbapp or select gives it (a number, or [] / [n])."""
    got = one(value)
    return got if isinstance(got, int) else 0
