"""Intents of the kernel's own tunnel (scenario kvxlan): a VXLAN device, its flood
list, and -- in the emulated lab -- the underlay handed from OVS to the kernel."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import links, portio
from ..lab import UNDERLAY_KERNEL, UNDERLAY_KEY
from ..marks import IPT_COMMENT
from .base import Cmd, Intent, Where

if TYPE_CHECKING:
    from ..steps import Context

VXLAN_PORT = 4789
_MARK = f"external_ids:{UNDERLAY_KEY}={UNDERLAY_KERNEL}"


def _fdb(op: str, name: str, remote: str) -> Cmd:
    return Cmd(Where.HOST, f"bridge fdb {op} {links.ZERO_MAC} dev {name} dst {remote}")


@dataclass(frozen=True)
class KernelUnderlay(Intent):
    """The lab's underlay address moved from OVS's br-phy to the NIC it bridges (eth1),
    so that the kernel sends the tunnel's packets itself instead of through OVS's
    userspace datapath. br-phy stays, marked, so `lab up` knows it is meant to be so."""

    host: str
    nic: str  # eth1
    bridge: str  # br-phy
    cidr: str  # the host's underlay address, 10.0.0.3/24

    def key(self) -> str:
        return f"underlay:{self.nic}"

    def title(self) -> str:
        return f"hand the underlay to the kernel: {self.nic} out of {self.bridge}, {self.cidr} on {self.nic}"

    def commands(self) -> tuple[Cmd, ...]:
        return (
            Cmd(
                Where.OVS, f"ovs-vsctl set bridge {self.bridge} external_ids:{UNDERLAY_KEY}={UNDERLAY_KERNEL}"
            ),
            Cmd(Where.OVS, f"ovs-vsctl del-port {self.bridge} {self.nic}"),
            Cmd(Where.HOST, f"ip addr del {self.cidr} dev {self.bridge}"),
            Cmd(Where.HOST, f"ip addr add {self.cidr} dev {self.nic}"),
            Cmd(Where.HOST, f"ip link set {self.nic} up"),
        )

    def _marked(self, ctx: Context) -> bool:
        row = ctx.ovs(self.host).row("Bridge", self.bridge) or {}
        return (row.get("external_ids") or {}).get(UNDERLAY_KEY) == UNDERLAY_KERNEL

    def apply(self, ctx: Context) -> None:
        ovs = ctx.ovs(self.host)
        ovs.api.db_set("Bridge", self.bridge, ("external_ids", {UNDERLAY_KEY: UNDERLAY_KERNEL})).execute(
            check_error=True
        )
        ovs.del_port(self.nic, self.bridge)

        def move(ipr: Any) -> None:
            links.delete_address(ipr, self.bridge, self.cidr)
            links.add_address(ipr, self.nic, self.cidr)
            links.set_up(ipr, self.nic)

        ctx.netlink(ctx.host(self.host).place, move)

    def verify(self, ctx: Context) -> bool:
        if not self._marked(ctx) or self.nic in ctx.ovs(self.host).ports(self.bridge):
            return False

        def read(ipr: Any) -> tuple[links.LinkRow | None, links.LinkRow | None]:
            return links.link_row(ipr, self.nic), links.link_row(ipr, self.bridge)

        nic, bridge = ctx.netlink(ctx.host(self.host).place, read)
        return (
            nic is not None
            and nic.admin_up
            and self.cidr in nic.addresses
            and (bridge is None or self.cidr not in bridge.addresses)
        )

    def undo(self, ctx: Context) -> None:
        """Exactly back: the address off eth1, eth1 a port of br-phy again, the address
        on br-phy (up), the mark gone."""
        ovs = ctx.ovs(self.host)
        if not ovs.has_bridge(self.bridge):
            return  # the lab's own repair makes it again, with eth1 and the address
        place = ctx.host(self.host).place
        nic = ctx.netlink(place, links.link_row, self.nic)
        if not self._marked(ctx) and (nic is None or self.cidr not in nic.addresses):
            return  # never handed over (or given back already): nothing of ours to take back
        ctx.netlink(place, links.delete_address, self.nic, self.cidr)
        io = portio.current()  # opened as the lab's other data ports are (workbench.portio)
        ovs.add_port(self.bridge, self.nic, iface_type=io.type, options=io.options or None)

        def back(ipr: Any) -> None:
            links.add_address(ipr, self.bridge, self.cidr)
            links.set_up(ipr, self.bridge)

        ctx.netlink(place, back)
        ovs.api.db_remove("Bridge", self.bridge, "external_ids", UNDERLAY_KEY).execute(check_error=True)


@dataclass(frozen=True)
class VxlanDevice(Intent):
    """A kernel VXLAN device: VNI, UDP port, local address, the remotes it floods to
    (one: the seed's `remote`; more: head-end replication, an all-zeros fdb entry per
    remote), the underlay device it sends by (None: the route decides), its MTU, marked.

    A device of that name with another VNI, port or local address is made again (the
    kernel cannot change a VNI); remotes are set in place."""

    host: str
    name: str
    vni: int
    local: str
    remotes: tuple[str, ...]
    mtu: int
    underlay: str | None = None
    port: int = VXLAN_PORT
    mark: bool = True  # False: the doctor re-makes a device built by hand (not ours)
    replace: bool = False  # the doctor's fix: the device is there with a VNI or port to change

    @property
    def unicast(self) -> str | None:
        """The single `remote` of a point-to-point device (two hosts), else None."""
        return self.remotes[0] if len(self.remotes) == 1 else None

    def key(self) -> str:
        return f"vxlan:{self.name}"

    def title(self) -> str:
        return f"kernel VXLAN {self.name} VNI {self.vni} -> {', '.join(self.remotes)}"

    def commands(self) -> tuple[Cmd, ...]:
        dev = f" dev {self.underlay}" if self.underlay else ""
        remote = f" remote {self.unicast}" if self.unicast else ""
        out = [Cmd(Where.HOST, f"ip link del {self.name}")] if self.replace else []
        out += [
            Cmd(
                Where.HOST,
                f"ip link add {self.name} type vxlan id {self.vni} local {self.local}{remote}"
                f" dstport {self.port}{dev}",
            ),
            Cmd(Where.HOST, f"ip link set {self.name} mtu {self.mtu}"),
        ]
        if self.mark:
            at = 2 if self.replace else 1
            out.insert(
                at, Cmd(Where.HOST, f"ip link set {self.name} alias {IPT_COMMENT}")
            )  # containet's mark
        if not self.unicast:
            out += [
                Cmd(Where.HOST, f"bridge fdb append {links.ZERO_MAC} dev {self.name} dst {r}")
                for r in self.remotes
            ]
        out.append(Cmd(Where.HOST, f"ip link set {self.name} up"))
        return tuple(out)

    def _fits(self, row: links.VxlanRow) -> bool:
        """The parts the kernel cannot change in place."""
        return (row.vni, row.port, row.local) == (self.vni, self.port, self.local)

    def apply(self, ctx: Context) -> None:
        def do(ipr: Any) -> None:
            row = links.vxlan_row(ipr, self.name)
            if row is not None and not self._fits(row):
                links.delete_link(ipr, self.name)
                row = None
            if row is None:
                links.add_vxlan(
                    ipr,
                    self.name,
                    self.vni,
                    self.local,
                    self.port,
                    self.mtu,
                    remote=self.unicast,
                    underlay=self.underlay,
                    mark=IPT_COMMENT if self.mark else None,
                )
            else:
                links.set_mtu(ipr, self.name, self.mtu)
            if self.unicast and row is not None and row.group != self.unicast:
                ipr.link(
                    "set", index=links.must_index(ipr, self.name), kind="vxlan", vxlan_group=self.unicast
                )
            have = links.flood_remotes(ipr, links.must_index(ipr, self.name))
            for wrong in set(have) - set(self.remotes):
                links.delete_remote(ipr, self.name, wrong)
            for remote in self.remotes:
                if remote not in have:
                    links.append_remote(ipr, self.name, remote)
            links.set_up(ipr, self.name)

        ctx.netlink(ctx.host(self.host).place, do)

    def verify(self, ctx: Context) -> bool:
        row = ctx.netlink(ctx.host(self.host).place, links.vxlan_row, self.name)
        return (
            row is not None
            and self._fits(row)
            and row.link.mtu == self.mtu
            and row.link.admin_up
            and set(row.remotes) == set(self.remotes)
            and (self.underlay is None or row.underlay == self.underlay)
        )

    def undo(self, ctx: Context) -> None:
        def do(ipr: Any) -> None:
            row = links.link_row(ipr, self.name)
            if row is not None and row.alias == IPT_COMMENT:  # a device that is not ours stays
                links.delete_link(ipr, self.name)

        ctx.netlink(ctx.host(self.host).place, do)


@dataclass(frozen=True)
class VxlanRemote(Intent):
    """A VXLAN device floods to `remote` and no longer to `wrong` (the doctor's fix for
    a device pointing elsewhere): `remote` of a point-to-point device, else its fdb."""

    host: str
    name: str
    remote: str
    wrong: str | None = None
    unicast: bool = True  # the device was made with `remote` (a point-to-point device)

    def key(self) -> str:
        return f"vxlan-remote:{self.name}"

    def title(self) -> str:
        return f"make {self.name} send to {self.remote}"

    def commands(self) -> tuple[Cmd, ...]:
        if self.unicast:
            out = [Cmd(Where.HOST, f"ip link set {self.name} type vxlan remote {self.remote}")]
        else:
            out = [_fdb("append", self.name, self.remote)]
        if self.wrong:
            out.append(_fdb("del", self.name, self.wrong))
        return tuple(out)

    def apply(self, ctx: Context) -> None:
        def do(ipr: Any) -> None:
            if self.unicast:
                links.set_vxlan_remote(ipr, self.name, self.remote)
            else:
                links.append_remote(ipr, self.name, self.remote)
            if self.wrong and self.wrong != self.remote:
                links.delete_remote(ipr, self.name, self.wrong)

        ctx.netlink(ctx.host(self.host).place, do)

    def verify(self, ctx: Context) -> bool:
        row = ctx.netlink(ctx.host(self.host).place, links.vxlan_row, self.name)
        return row is not None and self.remote in row.remotes and self.wrong not in row.remotes
