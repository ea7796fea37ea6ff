"""Intents of an OVN network: central (NB, SB, ovn-northd), a chassis per host
(external_ids, ovn-controller), logical switches and ports (through ovsdbapp's OVN
northbound API), a container bound to its logical port, and the readiness of it all.

The daemons' files live in the host's run directory (see workbench.ovn); every
command shown is the argument list that runs."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .. import links, ovn
from ..errors import BadInput
from ..host import Place
from ..marks import IPT_COMMENT, MARK_VALUE, OVS_MARK
from ..ovs import read_pid
from .base import Cmd, Intent, Where, pid_expr
from .containers import Plumb

if TYPE_CHECKING:
    from ..steps import Context

MARK = {OVS_MARK: MARK_VALUE}


def _nbctl(remote: str, *args: str) -> str:
    return shlex.join(["ovn-nbctl", f"--db={remote}", *args])


def _lab_only(ctx: Context, host: str) -> None:
    """OVN's daemons are started here for the emulated lab's hosts only: on a real
    host (the seed's VMs) the system's OVN services are the way, not done yet."""
    if ctx.host(host).real:
        raise BadInput(
            "the ovn scenarios run in the emulated lab only for now: real mode (the system's "
            "ovn-central / ovn-host services) is not implemented yet"
        )


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
        _lab_only(ctx, self.host)
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
        _lab_only(ctx, self.host)
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
    (Open_vSwitch external_ids, as ovn-controller reads them)."""

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
        _lab_only(ctx, self.host)
        ovs = ctx.ovs(self.host)
        ovs.api.db_set("Open_vSwitch", ".", ("external_ids", self.settings)).execute(check_error=True)

    def verify(self, ctx: Context) -> bool:
        rows = ctx.ovs(self.host).rows("Open_vSwitch", ["external_ids"])
        ids = (rows[0].get("external_ids") or {}) if rows else {}
        return all(ids.get(k) == v for k, v in self.settings.items())

    def undo(self, ctx: Context) -> None:
        ovs = ctx.ovs(self.host)
        ovs.api.db_remove("Open_vSwitch", ".", "external_ids", *self.settings).execute(check_error=True)


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
        if row is not None and (row.get("external_ids") or {}).get(OVS_MARK) == MARK_VALUE:
            nb.api.ls_del(self.name, if_exists=True).execute(check_error=True)


@dataclass(frozen=True)
class LogicalPort(Intent):
    """A logical switch port with the MAC and IP of the container that binds it."""

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
                ),
            ),
        )

    def apply(self, ctx: Context) -> None:
        api = ctx.ovn_nb(self.nb).api
        with api.transaction(check_error=True) as txn:
            txn.add(api.lsp_add(self.switch, self.name, may_exist=True, external_ids=MARK))
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
        if row is not None and (row.get("external_ids") or {}).get(OVS_MARK) == MARK_VALUE:
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
class OvnReady(Intent):
    """Readiness: every logical port is up (bound on its chassis, flows installed: NB's
    `up`, set from SB's Port_Binding) and every chassis has its Geneve tunnel to each
    other one. It changes nothing; a barrier over the hosts it names."""

    host: str  # "": a barrier
    nb: str
    ports: tuple[str, ...]
    hosts: tuple[str, ...]
    bound: float = 30.0

    def key(self) -> str:
        return "ovn-ready"

    def title(self) -> str:
        return f"wait until {len(self.ports)} logical ports are up and {len(self.hosts)} chassis tunnelled"

    @property
    def settle(self) -> float:
        return self.bound

    @property
    def readiness(self) -> bool:
        return True

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.HOST, _nbctl(self.nb, "--wait=hv", "sync"), host=self.hosts[0]),) + tuple(
            Cmd(Where.OVS, f"ovs-vsctl --columns=name,type find interface type={ovn.ENCAP}", host=h)
            for h in self.hosts
        )

    def _read(self, ctx: Context) -> tuple[list[str], dict[str, int]]:
        nb = ctx.ovn_nb(self.nb)
        up = {
            r["name"]: bool(r.get("up") == [True] or r.get("up") is True)
            for r in nb.rows("Logical_Switch_Port")
        }
        down = [p for p in self.ports if not up.get(p)]
        tunnels = {}
        for h in self.hosts:
            tunnels[h] = sum(1 for r in ctx.ovs(h).rows("Interface", ["type"]) if r.get("type") == ovn.ENCAP)
        return down, tunnels

    def apply(self, ctx: Context) -> None:
        """Nothing to change: the step waits (up to `bound`) for verify."""

    def verify(self, ctx: Context) -> bool:
        down, tunnels = self._read(ctx)
        want = len(self.hosts) - 1
        return not down and all(n >= want for n in tunnels.values())

    def progress(self, ctx: Context) -> str | None:
        down, tunnels = self._read(ctx)
        want = len(self.hosts) - 1
        short = [h for h, n in tunnels.items() if n < want]
        line = f"{len(self.ports) - len(down)} of {len(self.ports)} logical ports up"
        if down:
            line += f" (waiting: {', '.join(down[:6])}{' ...' if len(down) > 6 else ''})"
        if short:
            line += f"; tunnels missing on {', '.join(short)}"
        return line
