"""Intents on Open vSwitch, through the host's OVSDB (ovsdbapp)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import links
from ..marks import MARK_VALUE, OVS_MARK
from ..ovs import PURGE_EVERY, one, purge_datapath_flows
from ..rstp import TreeState, tree_state
from .base import Cmd, Intent, Readiness, Where, every

if TYPE_CHECKING:
    from ..steps import Context


def _set(ctx: Context, host: str, table: str, record: str, *values: tuple[str, Any]) -> None:
    ctx.ovs(host).api.db_set(table, record, *values).execute(check_error=True)


@dataclass(frozen=True)
class OvsBridge(Intent):
    """An OVS bridge of ours; `fail_mode` set from its creation on (OVN's br-int is
    "secure": see scenarios.ovn)."""

    host: str
    name: str
    datapath: str = "netdev"
    fail_mode: str | None = None

    def key(self) -> str:
        return f"ovs:{self.name}"

    def title(self) -> str:
        return f"OVS bridge {self.name}"

    def commands(self) -> tuple[Cmd, ...]:
        dp = f" datapath_type={self.datapath}" if self.datapath != "system" else ""
        dp += f" fail_mode={self.fail_mode}" if self.fail_mode else ""
        dp = f" -- set bridge {self.name}{dp} external_ids:{OVS_MARK}={MARK_VALUE}"
        return (
            Cmd(Where.OVS, f"ovs-vsctl add-br {self.name}{dp}"),
            Cmd(Where.HOST, f"ip link set {self.name} up"),
        )

    def apply(self, ctx: Context) -> None:
        ctx.ovs(self.host).add_bridge(self.name, datapath_type=self.datapath, fail_mode=self.fail_mode)

        def up(ipr: Any) -> None:
            if links.index_of(ipr, self.name) is not None:
                links.set_up(ipr, self.name)

        ctx.netlink(ctx.host(self.host).place, up)

    def verify(self, ctx: Context) -> bool:
        if not ctx.ovs(self.host).has_bridge(self.name):
            return False
        place = ctx.host(self.host).place
        row = ctx.netlink(place, links.link_row, self.name)
        if row is not None and not row.admin_up:
            ctx.netlink(place, links.set_up, self.name)  # the tap appears a moment later
            return False
        return row is not None

    def undo(self, ctx: Context) -> None:
        ovs = ctx.ovs(self.host)
        if ovs.is_ours("Bridge", self.name):  # a bridge that was there before stays
            ovs.del_bridge(self.name)


@dataclass(frozen=True)
class TunnelPort(Intent):
    """An OVS tunnel port (gre, vxlan) to another host's underlay address."""

    host: str
    bridge: str
    port: str
    kind: str  # gre, vxlan
    remote_ip: str

    def key(self) -> str:
        return f"tunnel:{self.port}"

    def title(self) -> str:
        return f"{self.kind.upper()} port {self.port} on {self.bridge} -> {self.remote_ip}"

    def commands(self) -> tuple[Cmd, ...]:
        return (
            Cmd(
                Where.OVS,
                f"ovs-vsctl add-port {self.bridge} {self.port} -- set interface {self.port} "
                f"type={self.kind} options:remote_ip={self.remote_ip}",
            ),
        )

    def apply(self, ctx: Context) -> None:
        ctx.ovs(self.host).add_port(
            self.bridge, self.port, iface_type=self.kind, options={"remote_ip": self.remote_ip}
        )

    def verify(self, ctx: Context) -> bool:
        ovs = ctx.ovs(self.host)
        iface = ovs.row("Interface", self.port)
        return (
            iface is not None
            and self.port in ovs.ports(self.bridge)
            and iface.get("type") == self.kind
            and (iface.get("options") or {}).get("remote_ip") == self.remote_ip
        )

    def undo(self, ctx: Context) -> None:
        ctx.ovs(self.host).del_port(self.port)


#: RSTP's bridge timers for a lab whose bridges are one tunnel apart (every other
#: bridge is a neighbour, or the root's): the protocol's smallest forward delay, and
#: the max age it allows (2 x (forward delay - 1)). RSTP settles by a handshake
#: between neighbours; when one is lost a port moves on by its forward-delay timer
#: instead, twice: 2 x 15 s with the default, 2 x 4 s with these. (On 8 hosts the
#: handshakes were lost to stale datapath flows: see RstpConverged.nudge.)
RSTP_TIMERS = {"rstp-forward-delay": "4", "rstp-max-age": "6"}


@dataclass(frozen=True)
class Rstp(Intent):
    """Rapid spanning tree on an OVS bridge, with the lab's timers (RSTP_TIMERS)."""

    host: str
    bridge: str

    def key(self) -> str:
        return f"rstp:{self.bridge}"

    def title(self) -> str:
        return f"RSTP on {self.bridge}"

    def commands(self) -> tuple[Cmd, ...]:
        timers = " ".join(f"other_config:{k}={v}" for k, v in RSTP_TIMERS.items())
        return (Cmd(Where.OVS, f"ovs-vsctl set bridge {self.bridge} rstp_enable=true {timers}"),)

    def apply(self, ctx: Context) -> None:
        api = ctx.ovs(self.host).api
        with api.transaction(check_error=True) as txn:  # one change: the tree starts with them
            for k, v in RSTP_TIMERS.items():
                txn.add(api.db_set("Bridge", self.bridge, ("other_config", {k: v})))
            txn.add(api.db_set("Bridge", self.bridge, ("rstp_enable", True)))

    def verify(self, ctx: Context) -> bool:
        row = ctx.ovs(self.host).row("Bridge", self.bridge) or {}
        config = row.get("other_config") or {}
        return bool(row.get("rstp_enable")) and all(config.get(k) == v for k, v in RSTP_TIMERS.items())

    def undo(self, ctx: Context) -> None:
        if ctx.ovs(self.host).has_bridge(self.bridge):
            api = ctx.ovs(self.host).api
            with api.transaction(check_error=True) as txn:
                txn.add(api.db_set("Bridge", self.bridge, ("rstp_enable", False)))
                for k in RSTP_TIMERS:
                    txn.add(api.db_remove("Bridge", self.bridge, "other_config", k))


@dataclass(frozen=True)
class RstpConverged(Readiness):
    """Readiness: rapid spanning tree has converged over these hosts' bridges.

    Turning RSTP on takes effect at once, but the tree takes seconds to settle: until
    then Designated ports are still Discarding and frames between some hosts are
    dropped. Every port (tunnels, and containers' ports on the bridge) must be stable
    and every bridge must agree on one root (see workbench.rstp). With no host of its
    own it is a barrier: it waits for every step before it, and changes nothing."""

    host: str  # "": a barrier over the hosts it names
    bridges: tuple[tuple[str, str], ...]  # (host, bridge)
    bound: float = 30.0  # seconds it may take

    def key(self) -> str:
        return "rstp-converged:" + ",".join(sorted({b for _h, b in self.bridges}))

    def title(self) -> str:
        names = sorted({b for _h, b in self.bridges})
        return f"wait for spanning tree to converge on {', '.join(names)} ({len(self.bridges)} hosts)"

    def commands(self) -> tuple[Cmd, ...]:
        return tuple(Cmd(Where.OVS, f"ovs-appctl rstp/show {bridge}", host=h) for h, bridge in self.bridges)

    def read(self, ctx: Context) -> TreeState:
        readings = []
        for h, bridge in self.bridges:
            ovs = ctx.ovs(h)
            readings.append((h, bridge, ovs.rows("Bridge"), ovs.rows("Port")))
        return tree_state(readings)

    def verify(self, ctx: Context) -> bool:
        return self.read(ctx).converged

    def progress(self, ctx: Context) -> str | None:
        return self.read(ctx).describe()

    def nudge(self, ctx: Context, waited: float, before: float) -> None:
        """Every PURGE_EVERY seconds of waiting, the bridges' hosts drop their datapath
        flows (see ovs.purge_datapath_flows): a port held Designated/Discarding for
        30 s, its handshake's BPDUs lost, settled within 3 s of one."""
        if every(PURGE_EVERY, waited, before):
            purge_datapath_flows(ctx.host(h) for h in sorted({h for h, _b in self.bridges}))


@dataclass(frozen=True)
class OvsPort(Intent):
    """A link made a port of an OVS bridge, with an access VLAN tag or none."""

    host: str
    bridge: str
    port: str
    tag: int | None = None

    def key(self) -> str:
        return f"port:{self.port}"

    def title(self) -> str:
        return f"add {self.port} to {self.bridge}"

    def commands(self) -> tuple[Cmd, ...]:
        tag = f" tag={self.tag}" if self.tag is not None else ""
        return (Cmd(Where.OVS, f"ovs-vsctl add-port {self.bridge} {self.port}{tag}"),)

    def apply(self, ctx: Context) -> None:
        ctx.ovs(self.host).add_port(self.bridge, self.port, tag=self.tag)

    def verify(self, ctx: Context) -> bool:
        ovs = ctx.ovs(self.host)
        return (
            self.port in ovs.ports(self.bridge)
            and one((ovs.row("Port", self.port) or {}).get("tag")) == self.tag
        )

    def undo(self, ctx: Context) -> None:
        ctx.ovs(self.host).del_port(self.port)


@dataclass(frozen=True)
class PortTag(Intent):
    """The access VLAN tag of an existing OVS port (None: untagged)."""

    host: str
    port: str
    tag: int | None

    def key(self) -> str:
        return f"tag:{self.port}"

    def title(self) -> str:
        return f"set {self.port}'s tag to {'none (untagged)' if self.tag is None else self.tag}"

    def commands(self) -> tuple[Cmd, ...]:
        if self.tag is None:
            return (Cmd(Where.OVS, f"ovs-vsctl clear port {self.port} tag"),)
        return (Cmd(Where.OVS, f"ovs-vsctl set port {self.port} tag={self.tag}"),)

    def apply(self, ctx: Context) -> None:
        ctx.ovs(self.host).set_tag(self.port, self.tag)

    def verify(self, ctx: Context) -> bool:
        return one((ctx.ovs(self.host).row("Port", self.port) or {}).get("tag")) == self.tag


@dataclass(frozen=True)
class TunnelRemote(Intent):
    """Where an existing tunnel port points (options:remote_ip)."""

    host: str
    port: str
    remote_ip: str

    def key(self) -> str:
        return f"remote:{self.port}"

    def title(self) -> str:
        return f"point {self.port} at {self.remote_ip}"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.OVS, f"ovs-vsctl set interface {self.port} options:remote_ip={self.remote_ip}"),)

    def apply(self, ctx: Context) -> None:
        _set(ctx, self.host, "Interface", self.port, ("options", {"remote_ip": self.remote_ip}))

    def verify(self, ctx: Context) -> bool:
        iface = ctx.ovs(self.host).row("Interface", self.port) or {}
        return (iface.get("options") or {}).get("remote_ip") == self.remote_ip


@dataclass(frozen=True)
class InterfaceType(Intent):
    """The type of an existing OVS interface (gre, vxlan, ...)."""

    host: str
    port: str
    kind: str

    def key(self) -> str:
        return f"type:{self.port}"

    def title(self) -> str:
        return f"make {self.port} a {self.kind} port"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.OVS, f"ovs-vsctl set interface {self.port} type={self.kind}"),)

    def apply(self, ctx: Context) -> None:
        _set(ctx, self.host, "Interface", self.port, ("type", self.kind))

    def verify(self, ctx: Context) -> bool:
        return (ctx.ovs(self.host).row("Interface", self.port) or {}).get("type") == self.kind
