"""Classic faults as intents: apply injects, undo reverts to the values read before.

Each fault intent carries the prior values it replaces (read by `prepare` just
before inject), so that `fault revert`, `scenario undo` and `clean` restore what
was there, not a default. Its commands are what inject runs, as typed by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .. import links
from ..impair import codec
from ..intents.base import Cmd, ContainerRef, Intent, Where
from ..intents.switch import PortTag, TunnelRemote
from ..ovs import one

if TYPE_CHECKING:
    from ..steps import Context

BRIDGE_NF = "net.bridge.bridge-nf-call-iptables"


@codec.register
@dataclass(frozen=True)
class MtuEnd:
    host: str
    container: ContainerRef
    veth: str
    eth0_mtu: int = 0  # before the fault (0: not read yet)
    veth_mtu: int = 0


@codec.register
@dataclass(frozen=True)
class MtuBlackhole(Intent):
    """Both ends of a path at MTU 1500 over a tunnel that fits 1462: ping works, TCP stalls."""

    host: str
    ends: tuple[MtuEnd, ...]
    mtu: int = 1500

    def key(self) -> str:
        return "fault:mtu"

    def title(self) -> str:
        return f"MTU {self.mtu} on {' and '.join(e.container.name for e in self.ends)} and their host sides"

    def commands(self) -> tuple[Cmd, ...]:
        out: list[Cmd] = []
        for e in self.ends:
            out.append(Cmd(Where.CONTAINER, f"ip link set eth0 mtu {self.mtu}", e.container, e.host))
            out.append(Cmd(Where.HOST, f"ip link set {e.veth} mtu {self.mtu}", None, e.host))
        return tuple(out)

    def prepare(self, ctx: Context) -> MtuBlackhole:
        ends = []
        for e in self.ends:
            inside = ctx.netlink(ctx.place_of(e.container), links.link_row, "eth0")
            outside = ctx.netlink(ctx.host(e.host).place, links.link_row, e.veth)
            ends.append(
                MtuEnd(
                    e.host, e.container, e.veth, inside.mtu if inside else 0, outside.mtu if outside else 0
                )
            )
        return MtuBlackhole(self.host, tuple(ends), self.mtu)

    def _set(self, ctx: Context, pick: str) -> None:
        for e in self.ends:
            for place, link, prior in (
                (ctx.host(e.host).place, e.veth, e.veth_mtu),
                (ctx.place_of(e.container), "eth0", e.eth0_mtu),
            ):
                mtu = self.mtu if pick == "fault" else prior
                if mtu and ctx.netlink(place, links.link_row, link) is not None:
                    ctx.netlink(place, links.set_mtu, link, mtu)

    def apply(self, ctx: Context) -> None:
        self._set(ctx, "fault")

    def verify(self, ctx: Context) -> bool:
        return all(
            (row := ctx.netlink(ctx.place_of(e.container), links.link_row, "eth0")) is not None
            and row.mtu == self.mtu
            for e in self.ends
        )

    def undo(self, ctx: Context) -> None:
        self._set(ctx, "prior")


@codec.register
@dataclass(frozen=True)
class VlanMismatch(Intent):
    """One container's OVS port on another VLAN than its peers."""

    host: str
    port: str
    tag: int = 20
    prior: int | None = None

    def key(self) -> str:
        return "fault:vlan"

    def title(self) -> str:
        return f"tag {self.tag} on {self.port} ({self.host})"

    def commands(self) -> tuple[Cmd, ...]:
        return PortTag(self.host, self.port, self.tag).commands()

    def prepare(self, ctx: Context) -> VlanMismatch:
        row = ctx.ovs(self.host).row("Port", self.port) or {}
        return VlanMismatch(self.host, self.port, self.tag, one(row.get("tag")))

    def apply(self, ctx: Context) -> None:
        PortTag(self.host, self.port, self.tag).apply(ctx)

    def verify(self, ctx: Context) -> bool:
        return PortTag(self.host, self.port, self.tag).verify(ctx)

    def undo(self, ctx: Context) -> None:
        if ctx.ovs(self.host).row("Port", self.port) is not None:
            PortTag(self.host, self.port, self.prior).apply(ctx)


@codec.register
@dataclass(frozen=True)
class ForwardDrop(Intent):
    """Bridged frames pass iptables (br_netfilter) and FORWARD's policy is DROP."""

    host: str
    prior_policy: str = "ACCEPT"
    prior_bridge_nf: str = ""  # "" when the sysctl is not there

    def key(self) -> str:
        return "fault:forward-drop"

    def title(self) -> str:
        return f"FORWARD policy DROP with bridge netfilter on {self.host}"

    def commands(self) -> tuple[Cmd, ...]:
        return (
            Cmd(Where.HOST, f"sysctl -w {BRIDGE_NF}=1"),
            Cmd(Where.HOST, "iptables -P FORWARD DROP"),
        )

    def prepare(self, ctx: Context) -> ForwardDrop:
        place = ctx.host(self.host).place
        rules = ctx.run(place, ["iptables", "-w", "-S", "FORWARD"]).stdout.splitlines()
        policy = rules[0].split()[-1] if rules and rules[0].startswith("-P FORWARD") else "ACCEPT"
        nf = ctx.run(place, ["sysctl", "-n", BRIDGE_NF], check=False)
        return ForwardDrop(self.host, policy, nf.stdout.strip() if nf.returncode == 0 else "")

    def apply(self, ctx: Context) -> None:
        place = ctx.host(self.host).place
        ctx.run(place, ["sysctl", "-q", "-w", f"{BRIDGE_NF}=1"])
        ctx.run(place, ["iptables", "-w", "-P", "FORWARD", "DROP"])

    def verify(self, ctx: Context) -> bool:
        rules = ctx.run(ctx.host(self.host).place, ["iptables", "-w", "-S", "FORWARD"]).stdout
        return rules.startswith("-P FORWARD DROP")

    def undo(self, ctx: Context) -> None:
        place = ctx.host(self.host).place
        ctx.run(place, ["iptables", "-w", "-P", "FORWARD", self.prior_policy])
        if self.prior_bridge_nf:
            ctx.run(place, ["sysctl", "-q", "-w", f"{BRIDGE_NF}={self.prior_bridge_nf}"])


@codec.register
@dataclass(frozen=True)
class TxChecksumOn(Intent):
    """tx checksum offload on in a container whose port is on OVS's userspace datapath."""

    host: str
    container: ContainerRef
    prior: bool = False

    def key(self) -> str:
        return "fault:tx-checksum"

    def title(self) -> str:
        return f"tx checksum offload on in {self.container.name}"

    def commands(self) -> tuple[Cmd, ...]:
        return (Cmd(Where.CONTAINER, "ethtool -K eth0 tx on", self.container),)

    def prepare(self, ctx: Context) -> TxChecksumOn:
        return TxChecksumOn(
            self.host, self.container, ctx.call(ctx.place_of(self.container), links.tx_checksum, "eth0")
        )

    def apply(self, ctx: Context) -> None:
        ctx.call(ctx.place_of(self.container), links.tx_checksum, "eth0", True)

    def verify(self, ctx: Context) -> bool:
        return bool(ctx.call(ctx.place_of(self.container), links.tx_checksum, "eth0"))

    def undo(self, ctx: Context) -> None:
        ctx.call(ctx.place_of(self.container), links.tx_checksum, "eth0", self.prior)


@codec.register
@dataclass(frozen=True)
class WrongRemote(Intent):
    """A tunnel port pointing at an address where no peer is (inside the lab's underlay)."""

    host: str
    port: str
    remote_ip: str
    prior: str = ""

    def key(self) -> str:
        return "fault:remote-ip"

    def title(self) -> str:
        return f"{self.port} on {self.host} pointed at {self.remote_ip}"

    def commands(self) -> tuple[Cmd, ...]:
        return TunnelRemote(self.host, self.port, self.remote_ip).commands()

    def prepare(self, ctx: Context) -> WrongRemote:
        iface = ctx.ovs(self.host).row("Interface", self.port) or {}
        prior = (iface.get("options") or {}).get("remote_ip", "")
        return WrongRemote(self.host, self.port, self.remote_ip, prior)

    def apply(self, ctx: Context) -> None:
        TunnelRemote(self.host, self.port, self.remote_ip).apply(ctx)

    def verify(self, ctx: Context) -> bool:
        return TunnelRemote(self.host, self.port, self.remote_ip).verify(ctx)

    def undo(self, ctx: Context) -> None:
        if self.prior and ctx.ovs(self.host).row("Interface", self.port) is not None:
            TunnelRemote(self.host, self.port, self.prior).apply(ctx)
